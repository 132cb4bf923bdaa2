//! `GET`/`HEAD /assets/{name}` from the whitelist, with single `Range`
//! requests (206/416), a strong `ETag` (the sha256), `If-None-Match` (304),
//! `If-Range`, and `NAME.sha256` published beside each file.

use super::{blocking, AppError, St};
use crate::assets::{parse_range, AssetError, RangeSpec};
use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use metalboot_spec::quote;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Serves one whitelisted asset.
#[tracing::instrument(skip_all, fields(asset = %name))]
pub async fn get_asset(
    st: St,
    method: Method,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let (lookup, sidecar) = match name.strip_suffix(".sha256") {
        Some(base) => (base.to_string(), true),
        None => (name.clone(), false),
    };
    let s = st.0.clone();
    let info = blocking(move || match s.assets.info(&lookup) {
        Ok(i) => Ok(Ok(i)),
        Err(AssetError::Io(e)) => Err(e),
        Err(e) => Ok(Err(e.to_string())),
    })
    .await?
    .map_err(|m| {
        tracing::debug!(reason = %m, "asset not served");
        AppError::NotFound(format!("no asset {}", quote(&name)))
    })?;
    if sidecar {
        let base = name.trim_end_matches(".sha256");
        return Ok(([(header::CONTENT_TYPE, "text/plain")], format!("{}  {base}\n", info.sha256)).into_response());
    }
    let etag = format!("\"{}\"", info.sha256);
    if let Some(inm) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        if inm.split(',').any(|t| t.trim() == etag || t.trim() == "*") {
            return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
        }
    }
    let mut range = parse_range(headers.get(header::RANGE).and_then(|v| v.to_str().ok()), info.size);
    if let Some(ir) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        if ir.trim() != etag {
            range = RangeSpec::Full;
        }
    }
    let (status, start, len) = match range {
        RangeSpec::Full => (StatusCode::OK, 0, info.size),
        RangeSpec::Partial(a, b) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        RangeSpec::Unsatisfiable => {
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, [(header::CONTENT_RANGE, format!("bytes */{}", info.size))])
                .into_response())
        }
    };
    let mut resp = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, &etag)
        .header("X-Checksum-Sha256", &info.sha256);
    if status == StatusCode::PARTIAL_CONTENT {
        resp = resp.header(header::CONTENT_RANGE, format!("bytes {}-{}/{}", start, start + len - 1, info.size));
    }
    if method == Method::HEAD {
        return resp.body(Body::empty()).map_err(|e| AppError::Internal(e.into()));
    }
    let mut file = tokio::fs::File::open(&info.path)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("opening {}: {e}", info.path.display())))?;
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("seeking {}: {e}", info.path.display())))?;
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), 256 * 1024);
    resp.body(Body::from_stream(stream)).map_err(|e| AppError::Internal(e.into()))
}
