//! The status page at `/`: every host with its state, the current step's
//! progress, the last error, host key fingerprints, the timeline and the
//! installer's log, with arm and disarm (confirmed first), updated live
//! over server-sent events (`live`). Rendered server-side with the
//! `ui/` templates; a few lines of plain JavaScript apply the updates.
//! Access: a login form takes the API token once and sets a session
//! cookie (`session`); a bearer token works as for the API.

mod live;
pub mod session;
pub mod view;

use super::{blocking, AppError, Shared};
use crate::render::names;
use crate::state::{hash_token, hashes_equal};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;

use super::listen::OverHttps;

type Https = Option<Extension<OverHttps>>;

/// The page's routes.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(page))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/ui/events", get(live::events))
        .route("/ui/hosts/{name}/{action}", post(act))
        .route(
            "/ui/style.css",
            get(|| async { asset("text/css", include_str!("../../../../preseed-templates/ui/style.css")) }),
        )
        .route(
            "/ui/app.js",
            get(|| async { asset("text/javascript", include_str!("../../../../preseed-templates/ui/app.js")) }),
        )
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// An HTML response with the page's security headers.
fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn redirect(to: &str, cookie: Option<String>) -> Response {
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response();
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r
}

/// Who is asking: a live session (its form token), or a bearer token
/// (no forms needed: a browser never sends one by itself).
pub(crate) enum Viewer {
    Session { id: String, form_token: String },
    Bearer,
}

impl Viewer {
    fn form_token(&self) -> &str {
        match self {
            Viewer::Session { form_token, .. } => form_token,
            Viewer::Bearer => "",
        }
    }
}

pub(crate) fn viewer(st: &Shared, headers: &HeaderMap) -> Option<Viewer> {
    if let Some(id) = session::cookie_id(headers) {
        if let Some(form_token) = st.sessions.form_token(&id) {
            return Some(Viewer::Session { id, form_token });
        }
    }
    let bearer = headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")?;
    hashes_equal(&hash_token(bearer.trim()), &st.api_token_hash).then_some(Viewer::Bearer)
}

fn login_page(st: &Shared, status: StatusCode, error: Option<&str>, https: bool) -> Result<Response, AppError> {
    let body = st.renderer.render(names::UI_LOGIN, &serde_json::json!({ "error": error, "https": https }))?;
    Ok(html(status, body))
}

/// `GET /`: the page, or the login form.
async fn page(State(st): State<Shared>, https: Https, headers: HeaderMap) -> Result<Response, AppError> {
    let Some(v) = viewer(&st, &headers) else {
        return login_page(&st, StatusCode::OK, None, https.is_some());
    };
    let form_token = v.form_token().to_string();
    let s = st.clone();
    let body = blocking(move || {
        let inv = s.inventory.load();
        let hosts = inv.hosts().iter().map(|h| view::host(h, &s.store)).collect::<anyhow::Result<Vec<_>>>()?;
        let sections =
            hosts.iter().map(|h| view::render_host(&s.renderer, h, &form_token)).collect::<anyhow::Result<Vec<_>>>()?;
        let summary = view::render_summary(&s.renderer, &hosts)?;
        s.renderer.render(
            names::UI_PAGE,
            &serde_json::json!({ "hosts": sections, "summary": summary, "form_token": form_token }),
        )
    })
    .await?;
    Ok(html(StatusCode::OK, body))
}

/// The login form's fields.
#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
}

/// `POST /login`: the API token for a session cookie.
async fn login(State(st): State<Shared>, https: Https, Form(f): Form<LoginForm>) -> Result<Response, AppError> {
    if !hashes_equal(&hash_token(f.token.trim()), &st.api_token_hash) {
        tracing::warn!("status page: login with a wrong token");
        return login_page(&st, StatusCode::UNAUTHORIZED, Some("That is not the API token."), https.is_some());
    }
    let id = st.sessions.create();
    tracing::info!("status page: logged in");
    Ok(redirect("/", Some(session::set_cookie(&id, https.is_some()))))
}

/// A form's own token (and, for arm and disarm, the confirmation).
#[derive(Deserialize)]
struct ActionForm {
    #[serde(default)]
    form_token: String,
    #[serde(default)]
    confirm: String,
}

/// The viewer, if the form carries its session's form token (or a bearer
/// token came with it).
fn form_viewer(st: &Shared, headers: &HeaderMap, form_token: &str) -> Result<Viewer, AppError> {
    match viewer(st, headers) {
        Some(Viewer::Session { id, form_token: want }) if hashes_equal(form_token, &want) => {
            Ok(Viewer::Session { id, form_token: want })
        }
        Some(Viewer::Bearer) => Ok(Viewer::Bearer),
        Some(Viewer::Session { .. }) => Err(AppError::BadRequest("the form is stale: reload the page".into())),
        None => Err(AppError::Unauthorized),
    }
}

/// `POST /logout`
async fn logout(
    State(st): State<Shared>,
    https: Https,
    headers: HeaderMap,
    Form(f): Form<ActionForm>,
) -> Result<Response, AppError> {
    if let Viewer::Session { id, .. } = form_viewer(&st, &headers, &f.form_token)? {
        st.sessions.remove(&id);
    }
    Ok(redirect("/", Some(session::set_cookie("", https.is_some()))))
}

/// `POST /ui/hosts/{name}/{arm|disarm}`: asks for a confirmation first
/// (the page's script gives it; without script, a page of its own).
async fn act(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path((name, action)): Path<(String, String)>,
    Form(f): Form<ActionForm>,
) -> Result<Response, AppError> {
    let v = form_viewer(&st, &headers, &f.form_token)?;
    let question = match action.as_str() {
        "arm" => "At its next network boot its disk is wiped and it is installed again.",
        "disarm" => "It boots its local disk from now on.",
        _ => return Err(AppError::NotFound(format!("no action {}", metalboot_spec::quote(&action)))),
    };
    if st.inventory.load().get(&name).is_none() {
        return Err(AppError::NotFound(format!("no host {} in the inventory", metalboot_spec::quote(&name))));
    }
    if f.confirm != "yes" {
        let ctx =
            serde_json::json!({ "name": name, "action": action, "question": question, "form_token": v.form_token() });
        return Ok(html(StatusCode::OK, st.renderer.render(names::UI_CONFIRM, &ctx)?));
    }
    let s = st.clone();
    let (n, arm) = (name.clone(), action == "arm");
    let rec = blocking(move || {
        if arm {
            s.store.arm(&n, "armed by operator (status page)")
        } else {
            s.store.disarm(&n, "disarmed by operator (status page)")
        }
    })
    .await?;
    tracing::info!(host = %name, state = %rec.state, "status page: {action}");
    Ok(redirect(&format!("/#host-{name}"), None))
}
