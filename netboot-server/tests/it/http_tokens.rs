//! Install tokens against someone who knows an armed host's MAC: asking for
//! `/boot.ipxe` needs no credential, so it must never take the install away
//! from the installer already running; re-issues are bounded; a failed
//! install's token is dead. Through the real router.

use crate::common;
use axum::http::StatusCode;
use common::{token_of, TestServer};
use metalboot::state::{MAX_TOKEN_REISSUES, TOO_MANY_BOOTS_STEP};
use serde_json::json;

const WEB1: &str = "/boot.ipxe?mac=52:54:00:00:00:01&platform=pcbios&buildarch=i386";

fn progress(step: &str) -> serde_json::Value {
    json!({"step": step, "percent": 5, "message": "working"})
}

async fn event(s: &TestServer, token: &str, body: serde_json::Value) -> StatusCode {
    s.post_json(&format!("/v1/hosts/web1/events?token={token}"), body).await.0
}

async fn plan(s: &TestServer, token: &str) -> StatusCode {
    s.get(&format!("/v1/hosts/web1/plan?token={token}")).await.0
}

/// The hijack: the host is installing with its token; a second, anonymous
/// `boot.ipxe` for its MAC gets a script (it cannot be told apart from a
/// real re-PXE) but the running installer keeps fetching its plan and
/// posting events. Only a machine that actually uses the new token takes
/// the install over.
#[tokio::test]
async fn a_second_boot_request_does_not_revoke_the_running_installers_token() {
    let s = TestServer::new();
    let running = token_of(&s.get(WEB1).await.1);
    assert_eq!(event(&s, &running, progress("partition")).await, StatusCode::OK);

    let (st, script) = s.get(WEB1).await;
    assert_eq!(st, StatusCode::OK);
    let other = token_of(&script);
    assert_ne!(other, running);

    assert_eq!(plan(&s, &running).await, StatusCode::OK);
    assert_eq!(event(&s, &running, progress("mkfs")).await, StatusCode::OK);
    assert_eq!(event(&s, &running, progress("unpack")).await, StatusCode::OK);
    assert_eq!(s.api("GET", "/v1/hosts/web1").await.1["state"], "installing");

    // the new token is first used: it is now the host's, the old one dies
    assert_eq!(plan(&s, &other).await, StatusCode::OK);
    assert_eq!(plan(&s, &running).await, StatusCode::FORBIDDEN);
    assert_eq!(event(&s, &running, progress("configure")).await, StatusCode::FORBIDDEN);
    let (_, host) = s.api("GET", "/v1/hosts/web1").await;
    let notes: Vec<&str> = host["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "token")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert_eq!(notes.len(), 1, "{host}");
}

/// Each boot mid-install is counted; the one after the last re-issue fails
/// the host ("too many boots"), serves the local disk and revokes both
/// tokens. Re-arming starts over.
#[tokio::test]
async fn boots_past_the_reissue_bound_fail_the_host() {
    let s = TestServer::new();
    let first = token_of(&s.get(WEB1).await.1);
    let mut last = String::new();
    for _ in 0..MAX_TOKEN_REISSUES {
        last = token_of(&s.get(WEB1).await.1);
    }
    let (st, script) = s.get(WEB1).await;
    assert_eq!(st, StatusCode::OK);
    assert!(!script.contains("metalboot.token"), "{script}");
    assert!(script.contains("too many boots") && script.contains("sanboot"), "{script}");
    let (_, host) = s.api("GET", "/v1/hosts/web1").await;
    assert_eq!(host["state"], "failed");
    assert_eq!(host["failed_step"], TOO_MANY_BOOTS_STEP);
    assert!(host["failed_error"].as_str().unwrap().starts_with("too many boots"), "{host}");
    for t in [&first, &last] {
        assert_eq!(plan(&s, t).await, StatusCode::FORBIDDEN);
        assert_eq!(event(&s, t, progress("network")).await, StatusCode::FORBIDDEN);
    }
    // later boots get the local disk and change nothing
    assert!(s.get(WEB1).await.1.contains("last install failed"));

    assert_eq!(s.api("POST", "/v1/hosts/web1/arm").await.1["state"], "armed");
    let fresh = token_of(&s.get(WEB1).await.1);
    assert_eq!(plan(&s, &fresh).await, StatusCode::OK);
}

/// Entering `failed` revokes the token: the failed installer (or whoever
/// holds its token) can no longer fetch the plan, post events, report host
/// keys or move the host back to `rebooting`. Both ways in: the installer's
/// failed event and the operator's fail.
#[tokio::test]
async fn failed_revokes_the_token() {
    let s = TestServer::new();
    let keys =
        json!({"host_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"]});

    let t = token_of(&s.get(WEB1).await.1);
    let failed = json!({"step": "unpack", "status": "failed", "message": "disk full"});
    assert_eq!(event(&s, &t, failed).await, StatusCode::OK);
    let by_operator = {
        assert_eq!(s.api("POST", "/v1/hosts/web1/arm").await.1["state"], "armed");
        let t2 = token_of(&s.get(WEB1).await.1);
        let req = axum::http::Request::post("/v1/hosts/web1/fail")
            .header("authorization", format!("Bearer {}", common::API_TOKEN))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(json!({"step": "kexec", "error": "kexec refused"}).to_string()))
            .unwrap();
        assert_eq!(s.send(req).await.0, StatusCode::OK);
        t2
    };
    for tok in [&t, &by_operator] {
        assert_eq!(plan(&s, tok).await, StatusCode::FORBIDDEN);
        assert_eq!(event(&s, tok, progress("configure")).await, StatusCode::FORBIDDEN);
        let (st, _) = s.post_json(&format!("/v1/hosts/web1/report?token={tok}"), keys.clone()).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, _) = s.get(&format!("/v1/hosts/web1/events/unpack?token={tok}&status=done")).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
    }
    let (_, host) = s.api("GET", "/v1/hosts/web1").await;
    assert_eq!(host["state"], "failed");
    assert_eq!(host["failed_step"], "kexec");
    assert!(host["host_keys"].as_array().unwrap().is_empty(), "{host}");
}
