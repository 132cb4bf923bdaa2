//! `GET /metrics`: the Prometheus text format of the server's counters
//! (see [`crate::metrics`]) and the inventory's hosts by state, behind the
//! operator API's bearer token (Prometheus sends it with
//! `authorization: { credentials_file: … }`).

use super::api::authorize;
use super::{blocking, AppError, St};
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;

/// `GET /metrics`
pub async fn metrics(st: St, headers: HeaderMap) -> Result<impl IntoResponse, AppError> {
    authorize(&st, &headers)?;
    let s = st.0.clone();
    let hosts = blocking(move || {
        let mut by_state = std::collections::BTreeMap::new();
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
