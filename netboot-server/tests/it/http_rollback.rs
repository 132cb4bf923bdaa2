//! A keeping reinstall's trial through the real router: the plan carries
//! the deadline and where the previous system reports, and that report
//! fails the host with why and gives it back its old host keys, once.

use crate::common;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{TestServer, API_TOKEN};
use serde_json::{json, Value};

const OLD_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFwC0mL6IcgzOB9v98a03pAs+6hA9ahGvVbMAoDTHuCF";
const NEW_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

async fn reinstall(s: &TestServer, extra: Value) -> (StatusCode, String) {
    let mut body = json!({
        "mac": "52:54:00:00:00:03",
        "network": { "mode": "static", "addresses": ["203.0.113.7/32"], "gateway": "172.31.1.1" },
        "disk": { "serial": "VPS-ROOT", "wipe": true },
        "via": "kexec"
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let req = Request::post("/v1/hosts/vps1/reinstall")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {API_TOKEN}"));
    let (st, _, b) = s.send(req.body(Body::from(body.to_string())).unwrap()).await;
    (st, String::from_utf8_lossy(&b).into_owned())
}

async fn plan_of(s: &TestServer, body: &str) -> (String, metalboot_spec::InstallPlan) {
    let token = serde_json::from_str::<Value>(body).unwrap()["token"].as_str().unwrap().to_string();
    let (st, plan) = s.get(&format!("/v1/hosts/vps1/plan?token={token}")).await;
    assert_eq!(st, StatusCode::OK, "{plan}");
    let plan: metalboot_spec::InstallPlan = serde_json::from_str(&plan).unwrap();
    plan.validate().unwrap();
    (token, plan)
}

#[tokio::test]
async fn a_keeping_plan_has_a_trial_and_a_bad_deadline_is_refused() {
    let s = TestServer::new();
    for (extra, why) in [
        (json!({ "rollback_after": 60 }), "only with keep"),
        (json!({ "keep": ["@home"], "rollback_after": 29 }), "rollback_after 29"),
        (json!({ "keep": ["@home"], "rollback_after": 86_401 }), "from 30 to 86400"),
    ] {
        let (st, body) = reinstall(&s, extra).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains(why), "{why}: {body}");
    }
    let (st, body) = reinstall(&s, json!({ "keep": ["@home"] })).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (_, plan) = plan_of(&s, &body).await;
    assert_eq!(plan.rollback_after, Some(metalboot_spec::plan::DEFAULT_ROLLBACK_AFTER_SECS));
    assert!(plan.endpoints.rolled_back.ends_with("/v1/hosts/vps1/rolled-back"), "{:?}", plan.endpoints);
    let (st, body) = reinstall(&s, json!({ "keep": ["@home"], "rollback_after": 45 })).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(plan_of(&s, &body).await.1.rollback_after, Some(45));
    // a reinstall that keeps nothing has no trial
    let (st, body) = reinstall(&s, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (_, plan) = plan_of(&s, &body).await;
    assert_eq!((plan.rollback_after, plan.endpoints.rolled_back.as_str()), (None, ""));
}

#[tokio::test]
async fn the_previous_system_back_fails_the_host_with_why_and_its_old_keys_once() {
    let s = TestServer::new();
    let (_, body) = reinstall(&s, json!({ "keep": ["@home"], "rollback_after": 45 })).await;
    let (token, _) = plan_of(&s, &body).await;
    // before the installer's report the trial has not begun
    let back = json!({ "host_keys": [OLD_KEY], "addresses": ["203.0.113.7/32"], "rolled_back": "no phone-home within 45 s of its boot\u{1b}[2J" });
    let (st, text) = s.post_json(&format!("/v1/hosts/vps1/rolled-back?token={token}"), back.clone()).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{text}");
    let (st, text) =
        s.post_json(&format!("/v1/hosts/vps1/report?token={token}"), json!({ "host_keys": [NEW_KEY] })).await;
    assert_eq!(st, StatusCode::OK, "{text}");
    let (st, text) = s.post_json("/v1/hosts/vps1/rolled-back?token=wrong", back.clone()).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{text}");
    let (st, text) = s.post_json(&format!("/v1/hosts/vps1/rolled-back?token={token}"), back.clone()).await;
    assert_eq!(st, StatusCode::OK, "{text}");
    let (_, host) = s.api("GET", "/v1/hosts/vps1").await;
    assert_eq!(host["state"], "failed", "{host}");
    assert_eq!(host["failed_step"], "first-boot", "{host}");
    let err = host["failed_error"].as_str().unwrap();
    assert!(err.starts_with("the new system's trial failed: no phone-home within 45 s of its boot"), "{err}");
    assert!(err.contains("rolled back by itself") && !err.contains('\u{1b}'), "{err}");
    assert_eq!(host["host_keys"], json!([OLD_KEY]), "the old system's keys are the host's again");
    // once: the token is dead, for the report and for a late phone-home
    let (st, _) = s.post_json(&format!("/v1/hosts/vps1/rolled-back?token={token}"), back).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) =
        s.post_json(&format!("/v1/hosts/vps1/installed?token={token}"), json!({ "host_keys": [NEW_KEY] })).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}
