//! The status page through the real router: the login form and its
//! cookie, the page with every host (values escaped), arm and disarm with a
//! confirmation and the session's form token, and live updates over
//! server-sent events when a host's progress changes.

use crate::common::{token_of, TestServer, API_TOKEN};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;
use std::time::Duration;
use tower::ServiceExt;

const WEB1: &str = "/boot.ipxe?mac=52:54:00:00:00:01&platform=pcbios&buildarch=i386";

fn form(uri: &str, cookie: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookie)
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn page(s: &TestServer, cookie: &str) -> (StatusCode, String) {
    let (st, _, b) = s.send(Request::get("/").header(header::COOKIE, cookie).body(Body::empty()).unwrap()).await;
    (st, String::from_utf8(b).unwrap())
}

/// Logs in; the cookie to send back.
async fn login(s: &TestServer) -> String {
    let (st, h, _) = s.send(form("/login", "", &format!("token={API_TOKEN}"))).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let set = h.get(header::SET_COOKIE).unwrap().to_str().unwrap().to_string();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    assert!(!set.contains("Secure"), "plain HTTP here: {set}");
    set.split(';').next().unwrap().to_string()
}

fn form_token(page: &str) -> String {
    let i = page.find("name=\"form_token\" value=\"").expect("a form") + "name=\"form_token\" value=\"".len();
    page[i..i + 64].to_string()
}

#[tokio::test]
async fn login_page_arm_disarm_with_confirmation_and_escaping() {
    let s = TestServer::new();
    let (st, body) = page(&s, "").await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains("<label for=\"token\">API token</label>") && body.contains("plain HTTP"), "{body}");
    let (st, _, b) = s.send(form("/login", "", "token=wrong")).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(String::from_utf8(b).unwrap().contains("That is not the API token."));
    let cookie = login(&s).await;
    // a failure whose message carries markup: shown escaped, with the log's tail
    let (_, script) = s.get(WEB1).await;
    let token = token_of(&script);
    s.post_json(&format!("/v1/hosts/web1/log?token={token}"), json!({"lines": ["mkfs.btrfs <oops> & more"]})).await;
    let ev = json!({"step": "mkfs", "status": "failed", "message": "<script>alert(1)</script>"});
    assert_eq!(s.post_json(&format!("/v1/hosts/web1/events?token={token}"), ev).await.0, StatusCode::OK);
    let (st, body) = page(&s, &cookie).await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains("id=\"host-web1\""), "{body}");
    assert!(!body.contains("<script>alert"), "unescaped: {body}");
    assert!(body.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"), "{body}");
    assert!(body.contains("mkfs.btrfs &lt;oops&gt; &amp; more"), "the log's tail: {body}");
    let tok = form_token(&body);
    // arm: first the confirmation, then the change; a stale form or no session changes nothing
    let (st, _, b) = s.send(form("/ui/hosts/web1/arm", &cookie, &format!("form_token={tok}"))).await;
    let b = String::from_utf8(b).unwrap();
    assert_eq!(st, StatusCode::OK);
    assert!(b.contains("Arm web1?") && b.contains("name=\"confirm\" value=\"yes\""), "{b}");
    assert_eq!(s.api("GET", "/v1/hosts/web1").await.1["state"], "failed");
    let (st, _, _) =
        s.send(form("/ui/hosts/web1/arm", &cookie, &format!("form_token={}&confirm=yes", "0".repeat(64)))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _, _) = s.send(form("/ui/hosts/web1/arm", "", &format!("form_token={tok}&confirm=yes"))).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(s.api("GET", "/v1/hosts/web1").await.1["state"], "failed");
    let (st, h, _) = s.send(form("/ui/hosts/web1/arm", &cookie, &format!("form_token={tok}&confirm=yes"))).await;
    assert_eq!((st, h.get(header::LOCATION).unwrap().to_str().unwrap()), (StatusCode::SEE_OTHER, "/#host-web1"));
    assert_eq!(s.api("GET", "/v1/hosts/web1").await.1["state"], "armed");
    let (st, _, _) = s.send(form("/ui/hosts/web1/disarm", &cookie, &format!("form_token={tok}&confirm=yes"))).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(s.api("GET", "/v1/hosts/web1").await.1["state"], "disarmed");
    let (st, _, _) = s.send(form("/ui/hosts/nosuch/arm", &cookie, &format!("form_token={tok}&confirm=yes"))).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // log out: the cookie no longer opens the page
    let (st, _, _) = s.send(form("/logout", &cookie, &format!("form_token={tok}"))).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(page(&s, &cookie).await.1.contains("<label for=\"token\">API token</label>"));
}

/// The next server-sent event's text, within `limit`.
async fn next_event(body: &mut Body, limit: Duration) -> String {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + limit;
    while !text.contains("\n\n") {
        let frame = tokio::time::timeout_at(deadline, body.frame()).await.expect("an event in time").unwrap().unwrap();
        if let Ok(d) = frame.into_data() {
            text.push_str(std::str::from_utf8(&d).unwrap());
        }
    }
    text
}

#[tokio::test]
async fn progress_reaches_the_page_live() {
    let s = TestServer::new();
    let req =
        Request::get("/ui/events").header(header::AUTHORIZATION, format!("Bearer {API_TOKEN}")).body(Body::empty());
    let resp = metalboot::http::app(s.state.clone()).oneshot(req.unwrap()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = resp.into_body();
    // first, every host and the summary
    let mut first = Vec::new();
    while !first.iter().any(|e: &String| e.starts_with("event: summary")) {
        first.push(next_event(&mut body, Duration::from_secs(10)).await);
    }
    assert!(first.iter().any(|e| e.starts_with("event: host") && e.contains("id=\"host-web1\"")), "{first:?}");
    // a step in progress: only what changed is sent
    let (_, script) = s.get(WEB1).await;
    let token = token_of(&script);
    let ev = json!({"step": "unpack", "percent": 37, "message": "rootfs.tar.zst"});
    s.post_json(&format!("/v1/hosts/web1/events?token={token}"), ev).await;
    let mut seen = String::new();
    while !seen.contains("unpack") {
        let e = next_event(&mut body, Duration::from_secs(10)).await;
        assert!(!e.contains("id=\"host-db1\""), "an unchanged host was sent again: {e}");
        seen.push_str(&e);
    }
    assert!(seen.contains("value=\"37\"") && seen.contains("data-state=\"installing\""), "{seen}");
    let unauth = Request::get("/ui/events").body(Body::empty()).unwrap();
    assert_eq!(s.send(unauth).await.0, StatusCode::UNAUTHORIZED);
}
