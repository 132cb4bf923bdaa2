//! The HTTP side of `metalboot serve` (axum): boot scripts, plans, preseeds,
//! assets, install-time reports and the operator API. Handlers are thin: they
//! parse, call the pure functions in `script` and the state store, and map
//! errors through one [`AppError`].

mod api;
mod assets;
mod boot;
mod error;
mod install;
pub mod listen;
mod log;
mod reinstall;
mod service;
mod status;
pub mod ui;

pub use error::AppError;

use crate::assets::Assets;
use crate::config::Config;
use crate::inventory::Inventory;
use crate::render::Renderer;
use crate::state::Store;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// Everything a handler needs; loaded once at start-up.
pub struct AppState {
    /// Server configuration.
    pub config: Config,
    /// Validated inventory, swapped whole by a reload (SIGHUP).
    pub inventory: crate::live::Live<Inventory>,
    /// Template environment.
    pub renderer: Renderer,
    /// State database.
    pub store: Store,
    /// Asset whitelist.
    pub assets: Assets,
    /// sha256 (hex) of the operator API bearer token.
    pub api_token_hash: String,
    /// HTTPS, when `[server.tls]` is on.
    pub tls: Option<crate::tls::TlsEndpoint>,
    /// Counters for `GET /metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// What SIGHUP and `POST /v1/reload` reload with (none in tests that
    /// build the state by hand).
    pub reloader: Option<crate::reload::Reloader>,
    /// Logins to the status page.
    pub sessions: crate::http::ui::session::Sessions,
}

impl AppState {
    /// An install ended (`installed` or `failed`): counted for the
    /// metrics, and the hooks fired.
    pub fn install_ended(&self, result: &'static str, name: &str) {
        self.metrics.install(name, result);
        crate::handoff::fire(&self.handoff(), result, name);
    }

    /// What the handoff (hooks) needs of this state.
    pub fn handoff(&self) -> crate::handoff::Handoff<'_> {
        crate::handoff::Handoff {
            config: &self.config.handoff,
            inventory: self.inventory.load(),
            store: &self.store,
            data_dir: &self.config.data_dir,
        }
    }
}

/// Shared state handle.
pub type Shared = Arc<AppState>;

/// The router with every route.
pub fn app(state: Shared) -> Router {
    Router::new()
        .route("/boot.ipxe", get(boot::boot_script))
        .route("/assets/{name}", get(assets::get_asset).head(assets::get_asset))
        .route("/v1/hosts", get(api::list_hosts))
        .route("/v1/inventory/ansible", get(api::ansible_inventory))
        .route("/v1/hosts/{name}", get(api::show_host))
        .route("/v1/hosts/{name}/arm", post(api::arm_host))
        .route("/v1/hosts/{name}/disarm", post(api::disarm_host))
        .route("/v1/hosts/{name}/reinstall", post(reinstall::reinstall))
        .route("/v1/hosts/{name}/fail", post(reinstall::fail))
        .route("/v1/hosts/{name}/plan", get(install::plan))
        .route("/v1/hosts/{name}/preseed", get(install::preseed))
        .route("/v1/hosts/{name}/di/{script}", get(install::di_script))
        .route("/v1/hosts/{name}/events", post(install::event))
        .route("/v1/hosts/{name}/events/{step}", get(install::event_get))
        .route("/v1/hosts/{name}/log", post(log::append).get(log::page))
        .route("/v1/hosts/{name}/report", post(install::report))
        .route("/v1/hosts/{name}/installed", post(install::installed))
        .route("/v1/hosts/{name}/rolled-back", post(install::rolled_back))
        .route("/v1/hosts/{name}/status", post(status::status))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(service::metrics))
        .route("/v1/reload", post(service::reload))
        .merge(ui::routes())
        .layer(axum::middleware::from_fn_with_state(state.clone(), log_request))
        .with_state(state)
}

/// Logs each request by method and path only (query strings carry
/// tokens), and counts it by route and status.
async fn log_request(
    axum::extract::State(st): axum::extract::State<Shared>,
    matched: Option<axum::extract::MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    tracing::info!(%method, %path, status, ms = started.elapsed().as_millis() as u64, "http");
    let bytes = (method != axum::http::Method::HEAD)
        .then(|| {
            resp.headers()
                .get(axum::http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .or_else(|| axum::body::HttpBody::size_hint(resp.body()).exact())
        })
        .flatten();
    st.metrics.http(matched.as_ref().map_or("unmatched", |m| m.as_str()), status, bytes);
    resp
}

/// The base URL a client should use: the configured public URL, or
/// `http://` + the request's Host header when none is configured.
pub fn base_url(state: &AppState, headers: &HeaderMap) -> Result<String, AppError> {
    if let Some(u) = &state.config.public_url {
        return Ok(u.clone());
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .ok_or_else(|| AppError::BadRequest("no Host header and no server.public_url configured".into()))?;
    let url = format!("http://{host}");
    crate::config::check_base_url(&url).map_err(|e| AppError::BadRequest(format!("bad Host header: {e}")))?;
    Ok(url)
}

/// The HTTPS base URL and the pin for a client that reached us over HTTP
/// (see [`crate::tls::TlsEndpoint::base_url`]); `None` without `[server.tls]`.
/// What the installer will be pointed at once it pins (`metalboot.pin=`).
pub fn tls_base(state: &AppState, headers: &HeaderMap) -> Result<Option<(String, metalboot_spec::Pin)>, AppError> {
    let Some(tls) = &state.tls else { return Ok(None) };
    let http = base_url(state, headers)?;
    let url = tls.base_url(&http).ok_or_else(|| AppError::BadRequest(format!("no host in {http}")))?;
    Ok(Some((url, tls.pin)))
}

/// Where the client of one request reaches us: [`base_url`] and, with
/// `[server.tls]`, [`tls_base`].
pub struct Bases {
    /// Plain HTTP.
    pub http: String,
    /// HTTPS and the pin.
    pub tls: Option<(String, metalboot_spec::Pin)>,
}

impl Bases {
    /// Reads both from the configuration and the request's Host header.
    pub fn of(state: &AppState, headers: &HeaderMap) -> Result<Bases, AppError> {
        Ok(Bases { http: base_url(state, headers)?, tls: tls_base(state, headers)? })
    }

    /// The [`crate::script::Site`] for these bases.
    pub fn site<'a>(&'a self, config: &'a Config) -> crate::script::Site<'a> {
        crate::script::Site {
            base_url: &self.http,
            tls: self.tls.as_ref().map(|(u, p)| (u.as_str(), *p)),
            console: &config.console,
            debian: &config.debian_installer,
        }
    }
}

/// Runs blocking work (SQLite, hashing) off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("blocking task failed: {e}")))?
        .map_err(AppError::Internal)
}

/// Only inventory hosts have install-time endpoints.
pub fn known_host(state: &AppState, name: &str) -> Result<metalboot_spec::HostSpec, AppError> {
    state.inventory.load().get(name).cloned().ok_or(AppError::Forbidden)
}

/// Keeps `State` in scope for the submodules' signatures.
pub type St = State<Shared>;
