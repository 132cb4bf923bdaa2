//! `POST /v1/hosts/{name}/status`: an installed host's snapshots and how
//! its last snapshot run ended, sent after each run. No token: the body is
//! signed with the host's SSH host key (ed25519), checked against the key
//! the installer reported; each report must be newer than the last.

use super::{blocking, known_host, AppError, St};
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use metalboot_spec::status::{HostStatus, SIGNATURE_HEADER, STATUS_NAMESPACE};

/// Largest report taken.
const MAX_BODY: usize = 256 * 1024;

/// Checks the signature against the host's recorded ed25519 host key.
fn check_signature(host_keys: &[String], body: &[u8], sig: &str) -> Result<(), String> {
    let key = host_keys
        .iter()
        .filter_map(|k| crate::sshkey::parse_key(k).ok())
        .find(|k| k.kind == "ssh-ed25519")
        .ok_or("the host has no recorded ssh-ed25519 host key")?;
    crate::sshsig::verify(&key.blob, STATUS_NAMESPACE, body, sig).map_err(|e| format!("{e:#}"))
}

/// The handler.
#[tracing::instrument(skip_all, fields(host = %name))]
pub async fn status(
    st: St,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, AppError> {
    known_host(&st.0, &name)?;
    if body.len() > MAX_BODY {
        return Err(AppError::BadRequest(format!("a status report is at most {MAX_BODY} bytes")));
    }
    let sig = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).ok_or(AppError::Forbidden)?.to_string();
    let s = st.0.clone();
    let rec = blocking(move || s.store.get(&name)).await?;
    if let Err(why) = check_signature(&rec.host_keys, &body, &sig) {
        tracing::warn!("status report refused: {why}");
        return Err(AppError::Forbidden);
    }
    let mut status: HostStatus =
        serde_json::from_slice(&body).map_err(|e| AppError::BadRequest(format!("status report: {e}")))?;
    if status.host != rec.name {
        return Err(AppError::BadRequest(format!("a report for host {:?} sent to {}'s URL", status.host, rec.name)));
    }
    status.clean_errors();
    status.check().map_err(AppError::BadRequest)?;
    let s = st.0.clone();
    let n = rec.name.clone();
    match blocking(move || s.store.record_status(&n, &status)).await? {
        Ok(rec) => Ok(axum::Json(rec)),
        Err(why) => Err(AppError::BadRequest(why)),
    }
}
