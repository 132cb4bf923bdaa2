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

/// `metalboot hosts logs NAME --follow` against a real server prints what
/// is there, then the lines as they arrive.
#[test]
fn hosts_logs_follow_prints_lines_as_they_arrive() {
    use crate::common;
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    common::write_assets(&dir.path().join("data"));
    let cfg = dir.path().join("metalboot.toml");
    let inv = common::fixtures().join("inventory").join("image-hosts.toml");
    std::fs::write(
        &cfg,
        format!("[server]\ndata_dir = \"data\"\ninventory = \"{}\"\napi_token_file = \"api-token\"\n", inv.display()),
    )
    .unwrap();
    std::fs::write(dir.path().join("api-token"), "logs-api-token\n").unwrap();
    let srv = common::spawn_server(dir.path(), &cfg);
    let script = ureq::get(&format!("{}{WEB1}", srv.base)).call().unwrap().into_string().unwrap();
    let log = format!("{}/v1/hosts/web1/log?token={}", srv.base, token_of(&script));
    ureq::post(&log).send_json(json!({"lines": ["first", "second"]})).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_metalboot"))
        .arg("--config")
        .arg(&cfg)
        .args(["hosts", "--server", &srv.base, "logs", "web1", "--follow"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines() {
            if tx.send(l.unwrap()).is_err() {
                return;
            }
        }
    });
    let next = || rx.recv_timeout(std::time::Duration::from_secs(20)).expect("a line in time");
    assert_eq!((next(), next()), ("first".to_string(), "second".to_string()));
    ureq::post(&log).send_json(json!({"lines": ["third"], "dropped": 2})).unwrap();
    assert_eq!(next(), "[metalboot: 2 earlier line(s) could not be sent and were dropped]");
    assert_eq!(next(), "third");
    child.kill().unwrap();
    child.wait().unwrap();
    // without --follow it ends; an unknown host is an error naming it
    let done = common::metalboot(dir.path(), &cfg, &["hosts", "--server", &srv.base, "logs", "web1"]);
    assert!(done.status.success());
    assert_eq!(String::from_utf8_lossy(&done.stdout).lines().count(), 4);
    let bad = common::metalboot(dir.path(), &cfg, &["hosts", "--server", &srv.base, "logs", "nosuch"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nosuch"), "{}", String::from_utf8_lossy(&bad.stderr));
}
