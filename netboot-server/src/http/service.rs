//! The service endpoints: `GET /metrics`, the Prometheus text format of the
//! server's counters (see [`crate::metrics`]) and the inventory's hosts by
//! state, behind the operator API's bearer token (Prometheus sends it with
//! `authorization: { credentials_file: … }`); and `POST /v1/reload`, a
//! reload as SIGHUP does it (see [`crate::reload`]) that answers when done.

use super::api::authorize;
use super::{blocking, AppError, St};
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;

/// `GET /metrics`
pub async fn metrics(st: St, headers: HeaderMap) -> Result<impl IntoResponse, AppError> {
    authorize(&st, &headers)?;
    let s = st.0.clone();
    let hosts = blocking(move || {
        // every state, so a series drops to 0 instead of vanishing
        let mut by_state: std::collections::BTreeMap<String, u64> =
            metalboot_spec::api::HostState::ALL.iter().map(|st| (st.to_string(), 0)).collect();
        for h in s.inventory.load().hosts() {
            *by_state.entry(s.store.get(&h.name)?.state.to_string()).or_insert(0u64) += 1;
        }
        Ok(by_state)
    })
    .await?;
    let mut snap = st.0.metrics.snapshot();
    snap.hosts = hosts;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], crate::metrics::render(&snap)))
}

/// `POST /v1/reload`: `{"message": "inventory reloaded: …"}`, or 400 with
/// why it was refused (nothing changed then).
pub async fn reload(st: St, headers: HeaderMap) -> Result<axum::Json<serde_json::Value>, AppError> {
    authorize(&st, &headers)?;
    let s = st.0.clone();
    let out = tokio::task::spawn_blocking(move || match &s.reloader {
        Some(r) => r.reload(&s.inventory, &s.store).map_err(|e| AppError::BadRequest(format!("{e:#}"))),
        None => Err(AppError::BadRequest("this server cannot reload".into())),
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))??;
    Ok(axum::Json(serde_json::json!({ "message": out })))
}
