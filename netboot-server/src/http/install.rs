//! Install-time endpoints, all guarded by the host's current install token:
//! the plan and preseed it fetches, the progress events it posts, the
//! installer's final report and the first boot's phone-home.

use super::reinstall::InstallOverride;
use super::{blocking, known_host, AppError, Bases, St};
use crate::script;
use crate::state::{HostRecord, HostReport, ProgressEvent, TokenError};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query};
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::Json;
use metalboot_spec::quote;
use metalboot_spec::ImageRef;
use serde::Deserialize;

/// `?token=…`
#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    pub(super) token: String,
}

fn token_result(r: Result<HostRecord, TokenError>) -> Result<HostRecord, AppError> {
    r.map_err(|_| AppError::Forbidden)
}

async fn require_token(st: &St, name: &str, token: String) -> Result<HostRecord, AppError> {
    let (s, n) = (st.0.clone(), name.to_string());
    token_result(blocking(move || s.store.check_token(&n, &token)).await?)
}

/// `GET /v1/hosts/{name}/plan?token=…`
#[tracing::instrument(skip_all, fields(host = %name))]
pub async fn plan(
    st: St,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Result<impl IntoResponse, AppError> {
    let mut host = known_host(&st.0, &name)?;
    require_token(&st, &name, q.token).await?;
    let (s, n) = (st.0.clone(), name.clone());
    let (mut keep, mut rollback_after) = (Vec::new(), None);
    if let Some(json) = blocking(move || s.store.install_override(&n)).await? {
        let ov: InstallOverride =
            serde_json::from_str(&json).map_err(|e| AppError::Internal(anyhow::anyhow!("stored override: {e}")))?;
        host = ov.apply(&host);
        keep = ov.keep;
        rollback_after = ov.rollback_after;
    }
    let bases = Bases::of(&st.0, &headers)?;
    let site = bases.site(&st.0.config);
    let s = st.0.clone();
    let image_name = host.image.clone();
    let info = blocking(move || {
        s.assets
            .info(&image_name)
            .map_err(|e| anyhow::Error::from(e).context(format!("the plan's image {image_name:?}")))
    })
    .await?;
    // over HTTPS with [server.tls], like every other call of the installer
    let image =
        ImageRef { url: format!("{}/assets/{}", site.api_base(), host.image), sha256: info.sha256, size: info.size };
    let mut plan = crate::plan::plan(&site, &host, image);
    crate::plan::keeping(&mut plan, keep, rollback_after);
    Ok(Json(plan))
}

/// `GET /v1/hosts/{name}/preseed?token=…`
#[tracing::instrument(skip_all, fields(host = %name))]
pub async fn preseed(
    st: St,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Result<impl IntoResponse, AppError> {
    let host = known_host(&st.0, &name)?;
    let token = q.token.clone();
    require_token(&st, &name, q.token).await?;
    let bases = Bases::of(&st.0, &headers)?;
    let site = bases.site(&st.0.config);
    let body = script::preseed(&st.0.renderer, &site, &host, &token)?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], body))
}

/// `GET /v1/hosts/{name}/di/{script}?token=…`: one of the host scripts the
/// Debian installer's preseed runs ([`script::DI_SCRIPTS`]).
#[tracing::instrument(skip_all, fields(host = %name, script = %script_name))]
pub async fn di_script(
    st: St,
    Path((name, script_name)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Result<impl IntoResponse, AppError> {
    let host = known_host(&st.0, &name)?;
    if !script::DI_SCRIPTS.contains(&script_name.as_str()) {
        return Err(AppError::NotFound(format!("no installer script called {}", quote(&script_name))));
    }
    let token = q.token.clone();
    require_token(&st, &name, q.token).await?;
    let bases = Bases::of(&st.0, &headers)?;
    let site = bases.site(&st.0.config);
    let body = script::di_script(&st.0.renderer, &site, &host, &token, &script_name)?
        .ok_or_else(|| AppError::NotFound(format!("no installer script called {}", quote(&script_name))))?;
    Ok(([(header::CONTENT_TYPE, "text/x-shellscript; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], body))
}

/// `POST /v1/hosts/{name}/events?token=…` with a [`ProgressEvent`].
#[tracing::instrument(skip_all, fields(host = %name, step = tracing::field::Empty))]
pub async fn event(
    st: St,
    Path(name): Path<String>,
    Query(q): Query<TokenQuery>,
    ev: Result<Json<ProgressEvent>, JsonRejection>,
) -> Result<impl IntoResponse, AppError> {
    known_host(&st.0, &name)?;
    // a step or field the contract does not know is the client's error
    let Json(ev) = ev.map_err(|e| AppError::BadRequest(e.body_text()))?;
    tracing::Span::current().record("step", ev.step.as_str());
    let mut ev = ev;
    ev.message = clean_message(&ev.message);
    let (step, finished) = (ev.step.as_str(), ev.status != crate::state::EventStatus::Running);
    let s = st.0.clone();
    let n = name.clone();
    // a host failed already refuses the token (403), so its hooks fire
    // once, for the event that failed it
    let out = blocking(move || s.store.record_event(&n, &q.token, &ev)).await?.map_err(|_| AppError::Forbidden)?;
    st.0.metrics.step(&name, step, finished);
    if out.became_failed {
        st.0.install_ended("failed", &name);
    }
    Ok(Json(out.record))
}

/// `?token=…&status=…&message=…` of [`event_get`].
#[derive(Deserialize)]
pub struct EventQuery {
    #[serde(default)]
    token: String,
    #[serde(default)]
    status: crate::state::EventStatus,
    #[serde(default)]
    message: String,
}

/// `GET /v1/hosts/{name}/events/{step}?token=…&status=…&message=…`: the same
/// event as the POST, for installers whose HTTP client can only GET (the
/// Debian installer's busybox `wget` has neither `--post-data` nor
/// `--header`). Guarded by the same token.
#[tracing::instrument(skip_all, fields(host = %name, step = %step))]
pub async fn event_get(
    st: St,
    Path((name, step)): Path<(String, String)>,
    Query(q): Query<EventQuery>,
) -> Result<impl IntoResponse, AppError> {
    known_host(&st.0, &name)?;
    require_token(&st, &name, q.token.clone()).await?;
    let step: metalboot_spec::Step = step.parse().map_err(|e| AppError::BadRequest(format!("{e}")))?;
    let ev = ProgressEvent::new(step, q.status, q.message);
    event(st, Path(name), Query(TokenQuery { token: q.token }), Ok(Json(ev))).await
}

/// `POST /v1/hosts/{name}/report?token=…`: the installer is done, rebooting.
#[tracing::instrument(skip_all, fields(host = %name))]
pub async fn report(
    st: St,
    Path(name): Path<String>,
    Query(q): Query<TokenQuery>,
    Json(rep): Json<HostReport>,
) -> Result<impl IntoResponse, AppError> {
    known_host(&st.0, &name)?;
    check_report(&rep)?;
    let s = st.0.clone();
    let rec = token_result(blocking(move || s.store.record_report(&name, &q.token, &rep)).await?)?;
    Ok(Json(rec))
}

/// `POST /v1/hosts/{name}/installed?token=…`: first boot phoned home.
#[tracing::instrument(skip_all, fields(host = %name))]
pub async fn installed(
    st: St,
    Path(name): Path<String>,
    Query(q): Query<TokenQuery>,
    Json(rep): Json<HostReport>,
) -> Result<impl IntoResponse, AppError> {
    known_host(&st.0, &name)?;
    check_report(&rep)?;
    let s = st.0.clone();
    let n = name.clone();
    let (rec, first) =
        blocking(move || s.store.record_installed(&n, &q.token, &rep)).await?.map_err(|_| AppError::Forbidden)?;
    if first {
        tracing::info!("host installed");
        st.0.install_ended("installed", &name);
    } else {
        tracing::info!("host installed: the same phone-home again (its answer was lost), answered the same");
    }
    Ok(Json(rec))
}

/// `POST /v1/hosts/{name}/rolled-back?token=…`: a keeping reinstall's
/// previous system is back, with its own host keys and addresses; the host
/// is `failed` with why.
#[tracing::instrument(skip_all, fields(host = %name))]
pub async fn rolled_back(
    st: St,
    Path(name): Path<String>,
    Query(q): Query<TokenQuery>,
    Json(mut rep): Json<HostReport>,
) -> Result<impl IntoResponse, AppError> {
    known_host(&st.0, &name)?;
    check_report(&rep)?;
    rep.rolled_back = rep.rolled_back.as_deref().map(|w| clean_message(w).chars().take(300).collect());
    let s = st.0.clone();
    let n = name.clone();
    let out =
        blocking(move || s.store.record_rolled_back(&n, &q.token, &rep)).await?.map_err(|_| AppError::Forbidden)?;
    tracing::warn!("the previous system is back: the new one did not phone home");
    if out.became_failed {
        st.0.install_ended("failed", &name);
    }
    Ok(Json(out.record))
}

fn check_report(rep: &HostReport) -> Result<(), AppError> {
    for (i, k) in rep.host_keys.iter().enumerate() {
        metalboot_spec::safe::check_ssh_public_key(k.trim())
            .map_err(|m| AppError::BadRequest(format!("host_keys[{i}]: {m}")))?;
    }
    if let Some(k) = &rep.backup_key {
        metalboot_spec::safe::check_ssh_public_key(k.trim())
            .map_err(|m| AppError::BadRequest(format!("backup_key: {m}")))?;
    }
    for (i, a) in rep.addresses.iter().enumerate() {
        let ok = a.parse::<std::net::IpAddr>().is_ok() || a.parse::<metalboot_spec::IpCidr>().is_ok();
        if !ok {
            return Err(AppError::BadRequest(format!("addresses[{i}]: {} is not an IP address", quote(a))));
        }
    }
    if rep.host_keys.len() > 16 || rep.addresses.len() > 64 {
        return Err(AppError::BadRequest("too many keys or addresses".into()));
    }
    Ok(())
}

/// Messages are shown on terminals: drop control characters, cap the length.
fn clean_message(m: &str) -> String {
    m.chars().map(|c| if c.is_control() { ' ' } else { c }).take(4096).collect()
}
