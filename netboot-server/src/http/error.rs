//! One error type for every handler: 4xx for bad client input, 5xx for our
//! failures with the detail in the log, never in the body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use metalboot_spec::one_line;

/// Most characters of a 4xx body: the message is about the client's own
/// input (a JSON parser's message may quote it whole), so it is sent on one
/// line and cut short.
const BODY_MAX: usize = 400;

/// A handler failure.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Malformed request.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Missing or wrong operator bearer token.
    #[error("unauthorized")]
    Unauthorized,
    /// Wrong, old or missing install token.
    #[error("forbidden")]
    Forbidden,
    /// No such thing.
    #[error("not found: {0}")]
    NotFound(String),
    /// Our failure (render, database, I/O).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::BadRequest(m) => {
                (StatusCode::BAD_REQUEST, format!("{}\n", one_line(&m, BODY_MAX))).into_response()
            }
            AppError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
                "missing or wrong API token\n",
            )
                .into_response(),
            AppError::Forbidden => (StatusCode::FORBIDDEN, "token not valid for this host\n").into_response(),
            AppError::NotFound(m) => (StatusCode::NOT_FOUND, format!("{}\n", one_line(&m, BODY_MAX))).into_response(),
            AppError::Internal(e) if e.chain().any(|c| c.is::<crate::state::Unavailable>()) => {
                tracing::error!(error = format!("{e:#}"), "request failed: no state database");
                (StatusCode::SERVICE_UNAVAILABLE, "the state database is unreachable; try again later\n")
                    .into_response()
            }
            AppError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error; see the server log\n").into_response()
            }
        }
    }
}
