//! The state store survives SIGKILL: a real `metalboot serve` process is
//! killed in the middle of an install sequence (while events are being
//! posted), restarted on the same data directory, and every acknowledged
//! change is still there; the install then finishes with the same token.

use crate::common;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    common::write_assets(&dir.path().join("data"));
    let inv = common::fixtures().join("inventory");
    let cfg = dir.path().join("metalboot.toml");
    std::fs::write(
        &cfg,
        format!("[server]\ndata_dir = \"data\"\ninventory = \"{}\"\napi_token_file = \"api-token\"\n", inv.display()),
    )
    .unwrap();
    std::fs::write(dir.path().join("api-token"), "kill9-api-token\n").unwrap();
    (dir, cfg)
}

fn api_get(base: &str, path: &str) -> serde_json::Value {
    ureq::get(&format!("{base}{path}"))
        .set("Authorization", "Bearer kill9-api-token")
        .call()
        .unwrap()
        .into_json()
        .unwrap()
}

#[test]
fn state_and_timeline_survive_sigkill_mid_install() {
    let (dir, cfg) = setup();
    let srv = common::spawn_server(dir.path(), &cfg);
    let script = ureq::get(&format!("{}/boot.ipxe?mac=52:54:00:00:00:01&platform=pcbios", srv.base))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let token = common::token_of(&script);

    // A client posts progress events as fast as it can; we SIGKILL the server
    // while it does. Every event that got a 200 must be in the timeline.
    let acked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let poster = {
        let (acked, stop, base, token) = (acked.clone(), stop.clone(), srv.base.clone(), token.clone());
        std::thread::spawn(move || {
            let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(5)).build();
            for i in 0..100_000u64 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let body = serde_json::json!({"step": "unpack", "percent": (i % 100), "bytes": i, "message": format!("event {i}")});
                match agent.post(&format!("{base}/v1/hosts/web1/events?token={token}")).send_json(body) {
                    Ok(_) => {
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => break,
                }
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.load(Ordering::SeqCst) < 50 {
        assert!(Instant::now() < deadline, "events are not being acknowledged");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut srv = srv;
    srv.child.kill().unwrap(); // SIGKILL
    srv.child.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    poster.join().unwrap();
    let acked = acked.load(Ordering::SeqCst);
    drop(srv);

    let srv = common::spawn_server(dir.path(), &cfg);
    let host = api_get(&srv.base, "/v1/hosts/web1");
    assert_eq!(host["state"], "installing");
    let timeline = host["timeline"].as_array().unwrap();
    let states: Vec<&str> = timeline.iter().filter_map(|e| e["state"].as_str()).collect();
    assert_eq!(states, ["armed", "booting", "installing"]);
    let events: Vec<u64> =
        timeline.iter().filter(|e| e["kind"] == "progress").map(|e| e["bytes"].as_u64().unwrap()).collect();
    assert!(events.len() >= acked, "{} events stored, {acked} acknowledged", events.len());
    assert!(events.len() <= acked + 1, "at most the one in flight may be extra");
    assert!(events.iter().enumerate().all(|(i, b)| *b == i as u64), "events out of order or missing");

    // The same token still finishes the install after the restart.
    let rep = serde_json::json!({"host_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"]});
    ureq::post(&format!("{}/v1/hosts/web1/report?token={token}", srv.base)).send_json(rep.clone()).unwrap();
    ureq::post(&format!("{}/v1/hosts/web1/installed?token={token}", srv.base)).send_json(rep).unwrap();
    assert_eq!(api_get(&srv.base, "/v1/hosts/web1")["state"], "installed");

    // `metalboot hosts show` reads the same timeline through the API.
    let out = Command::new(env!("CARGO_BIN_EXE_metalboot"))
        .args(["--config", cfg.to_str().unwrap(), "hosts", "--server", &srv.base, "show", "web1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("state:  installed") && text.contains("-> rebooting") && text.contains("event 0"), "{text}");
    assert!(!text.contains(&token), "token printed by hosts show");
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    assert!(!log.contains(&token), "token in server log");
}

#[test]
fn inventory_arm_happens_once_across_restarts() {
    let (dir, cfg) = setup();
    let srv = common::spawn_server(dir.path(), &cfg);
    let out = Command::new(env!("CARGO_BIN_EXE_metalboot"))
        .args(["--config", cfg.to_str().unwrap(), "hosts", "--server", &srv.base, "disarm", "web1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    drop(srv);
    // web1 says `arm = true`, but the store has seen it: a restart must not re-arm it.
    let srv = common::spawn_server(dir.path(), &cfg);
    assert_eq!(api_get(&srv.base, "/v1/hosts/web1")["state"], "disarmed");
    let list = Command::new(env!("CARGO_BIN_EXE_metalboot"))
        .args(["--config", cfg.to_str().unwrap(), "hosts", "--server", &srv.base, "list"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.lines().any(|l| l.starts_with("web1") && l.contains("disarmed")), "{text}");
}
