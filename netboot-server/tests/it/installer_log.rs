//! The installer's console log through the real router: posted with the
//! install token, read back with the API token, its tail on the timeline
//! when the install fails, and bounded per batch.

use crate::common::{token_of, TestServer};
use axum::http::StatusCode;
use serde_json::json;

const WEB1: &str = "/boot.ipxe?mac=52:54:00:00:00:01&platform=pcbios&buildarch=i386";

#[tokio::test]
async fn the_log_is_kept_with_the_host_and_its_tail_lands_on_the_timeline_on_failure() {
    let s = TestServer::new();
    let (_, script) = s.get(WEB1).await;
    let token = token_of(&script);
    let log = format!("/v1/hosts/web1/log?token={token}");
    let lines: Vec<String> = (0..30).map(|i| format!("metalboot: console line {i}")).collect();
    assert_eq!(s.post_json(&log, json!({"lines": lines})).await.0, StatusCode::OK);
    assert_eq!(s.post_json("/v1/hosts/web1/log?token=wrong", json!({"lines": ["x"]})).await.0, StatusCode::FORBIDDEN);
    assert_eq!(s.post_json(&log, json!({"lines": ["x"], "level": 3})).await.0, StatusCode::BAD_REQUEST);
    let many: Vec<String> = (0..501).map(|i| i.to_string()).collect();
    let (st, why) = s.post_json(&log, json!({"lines": many})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(why.contains("501 lines in one batch; at most 500"), "{why}");
    // the operator reads it with the API token, in pages
    assert_eq!(s.get("/v1/hosts/web1/log").await.0, StatusCode::UNAUTHORIZED);
    let (st, page) = s.api("GET", "/v1/hosts/web1/log?after=0&limit=10").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(page["lines"].as_array().unwrap().len(), 10);
    assert_eq!(page["lines"][0]["line"], "metalboot: console line 0");
    let (_, rest) = s.api("GET", &format!("/v1/hosts/web1/log?after={}", page["next"])).await;
    assert_eq!(rest["lines"].as_array().unwrap().len(), 20);
    assert_eq!(s.api("GET", "/v1/hosts/nosuch/log").await.0, StatusCode::NOT_FOUND);
    // a step running shows as the host's progress
    let events = format!("/v1/hosts/web1/events?token={token}");
    let ev = json!({"step": "unpack", "percent": 40, "message": "rootfs"});
    assert_eq!(s.post_json(&events, ev).await.0, StatusCode::OK);
    let (_, host) = s.api("GET", "/v1/hosts/web1").await;
    assert_eq!((host["progress"]["step"].as_str(), host["progress"]["percent"].as_i64()), (Some("unpack"), Some(40)));
    // the failure: the tail is on the timeline, the install's token sends nothing more
    let ev = json!({"step": "unpack", "status": "failed", "message": "zstd: corrupt"});
    assert_eq!(s.post_json(&events, ev).await.0, StatusCode::OK);
    let (_, host) = s.api("GET", "/v1/hosts/web1").await;
    let tail = host["timeline"].as_array().unwrap().iter().find(|e| e["kind"] == "log").expect("a log entry");
    let msg = tail["message"].as_str().unwrap();
    assert!(msg.starts_with("installer log, last 25 line(s):\nmetalboot: console line 5\n"), "{msg}");
    assert!(msg.ends_with("metalboot: console line 29"), "{msg}");
    assert_eq!(s.post_json(&log, json!({"lines": ["late"]})).await.0, StatusCode::FORBIDDEN);
}
