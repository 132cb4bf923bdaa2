//! The installer's console log: `POST /v1/hosts/{name}/log?token=…` from
//! the installer (the install token), `GET /v1/hosts/{name}/log?after=…`
//! for the operator (the API token).

use super::api::authorize;
use super::install::TokenQuery;
use super::{blocking, known_host, AppError, St};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query};
use axum::http::HeaderMap;
use axum::Json;
use metalboot_spec::log::{LogBatch, LogPage, MAX_BATCH_LINES};
use metalboot_spec::quote;
use serde::Deserialize;

/// Most lines one `GET` returns.
const MAX_PAGE: usize = 1000;

/// `POST /v1/hosts/{name}/log?token=…`: a batch of console lines.
pub async fn append(
    st: St,
    Path(name): Path<String>,
    Query(q): Query<TokenQuery>,
    batch: Result<Json<LogBatch>, JsonRejection>,
) -> Result<Json<serde_json::Value>, AppError> {
    known_host(&st.0, &name)?;
    let Json(batch) = batch.map_err(|e| AppError::BadRequest(e.body_text()))?;
    if batch.lines.len() > MAX_BATCH_LINES {
        return Err(AppError::BadRequest(format!(
            "{} lines in one batch; at most {MAX_BATCH_LINES}",
            batch.lines.len()
        )));
    }
    let s = st.0.clone();
    let stored =
        blocking(move || s.store.append_log(&name, &q.token, &batch)).await?.map_err(|_| AppError::Forbidden)?;
    Ok(Json(serde_json::json!({ "stored": stored })))
}

/// `?after=…&limit=…` of [`page`].
#[derive(Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    after: i64,
    limit: Option<usize>,
}

/// `GET /v1/hosts/{name}/log?after=ID&limit=N`: the lines after `ID`.
pub async fn page(
    st: St,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<LogPage>, AppError> {
    authorize(&st, &headers)?;
    if st.0.inventory.load().get(&name).is_none() {
        return Err(AppError::NotFound(format!("no host {} in the inventory", quote(&name))));
    }
    let limit = q.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let s = st.0.clone();
    Ok(Json(blocking(move || s.store.log(&name, q.after, limit)).await?))
}
