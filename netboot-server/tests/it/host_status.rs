//! An installed host's status reports through the real router: signed by
//! OpenSSH's `ssh-keygen -Y sign` with the host key the installer reported,
//! kept and shown with the host; a replay, another key, a missing
//! signature or a host not installed changes nothing.

use crate::common::{token_of, TestServer};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use std::path::Path;
use std::process::Command;

const WEB1: &str = "/boot.ipxe?mac=52:54:00:00:00:01&platform=pcbios&buildarch=i386";

fn keygen(dir: &Path, name: &str) -> String {
    let key = dir.join(name);
    let st = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key).status().unwrap();
    assert!(st.success(), "ssh-keygen");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    public.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// The base64 line `ssh-keygen -Y sign` makes for `body`, as the header carries it.
fn sign(dir: &Path, key: &str, body: &str) -> String {
    let f = dir.join("body");
    std::fs::write(&f, body).unwrap();
    let _ = std::fs::remove_file(dir.join("body.sig"));
    let st = Command::new("ssh-keygen")
        .args(["-Y", "sign", "-q", "-n", "metalboot-status", "-f"])
        .arg(dir.join(key))
        .arg(&f)
        .status()
        .unwrap();
    assert!(st.success(), "ssh-keygen -Y sign");
    std::fs::read_to_string(dir.join("body.sig")).unwrap().lines().filter(|l| !l.starts_with("-----")).collect()
}

async fn post(s: &TestServer, body: &str, sig: Option<&str>) -> (StatusCode, String) {
    let mut req = Request::post("/v1/hosts/web1/status").header("content-type", "application/json");
    if let Some(sig) = sig {
        req = req.header("metalboot-signature", sig);
    }
    let (st, _, b) = s.send(req.body(Body::from(body.to_string())).unwrap()).await;
    (st, String::from_utf8_lossy(&b).into_owned())
}

#[tokio::test]
async fn signed_reports_are_kept_and_anything_else_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let base = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 3600;
    let host_key = keygen(d.path(), "host");
    keygen(d.path(), "other");
    let body = |at: u64| {
        json!({"host": "web1", "at": at, "snapshots": ["@home.20261205T2210+0000"],
               "run": {"result": "exit-code", "exit_status": "10", "errors": ["ERROR: Host key verification failed."]}})
        .to_string()
    };
    let s = TestServer::new();
    // before the host is installed: nothing to check a signature against
    let (st, _) = post(&s, &body(100), Some(&sign(d.path(), "host", &body(100)))).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (_, script) = s.get(WEB1).await;
    let token = token_of(&script);
    let rep = json!({"host_keys": [host_key], "addresses": ["192.0.2.7/24"]});
    assert_eq!(s.post_json(&format!("/v1/hosts/web1/report?token={token}"), rep.clone()).await.0, StatusCode::OK);
    // the key is known, but the host is only rebooting into its new system
    let (st, why) = post(&s, &body(base - 10), Some(&sign(d.path(), "host", &body(base - 10)))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(why.contains("is rebooting, not installed"), "{why}");
    assert_eq!(s.post_json(&format!("/v1/hosts/web1/installed?token={token}"), rep).await.0, StatusCode::OK);

    let b = body(base);
    let (st, why) = post(&s, &b, Some(&sign(d.path(), "host", &b))).await;
    assert_eq!(st, StatusCode::OK, "{why}");
    let (_, host) = s.api("GET", "/v1/hosts/web1").await;
    assert_eq!(host["status"]["snapshots"][0], "@home.20261205T2210+0000");
    assert_eq!(host["status"]["run"]["errors"][0], "ERROR: Host key verification failed.");
    // the same report again, an older one, another key, no signature, a changed body
    let (st, why) = post(&s, &b, Some(&sign(d.path(), "host", &b))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(why.contains("not newer"), "{why}");
    let newer = body(base + 60);
    assert_eq!(post(&s, &newer, Some(&sign(d.path(), "other", &newer))).await.0, StatusCode::FORBIDDEN);
    assert_eq!(post(&s, &newer, None).await.0, StatusCode::FORBIDDEN);
    // signed by the right key but for another host, or from a clock far ahead
    let other = newer.replace("\"web1\"", "\"web2\"");
    let (st, why) = post(&s, &other, Some(&sign(d.path(), "host", &other))).await;
    assert!(st == StatusCode::BAD_REQUEST && why.contains("for host \"web2\""), "{why}");
    let ahead = body(base + 3600 + 3600);
    let (st, why) = post(&s, &ahead, Some(&sign(d.path(), "host", &ahead))).await;
    assert!(st == StatusCode::BAD_REQUEST && why.contains("ahead of the server"), "{why}");
    let sig = sign(d.path(), "host", &newer);
    assert_eq!(post(&s, &newer.replace("exit-code", "success"), Some(&sig)).await.0, StatusCode::FORBIDDEN);
    let (_, host) = s.api("GET", "/v1/hosts/web1").await;
    assert_eq!(host["status"]["at"], base, "nothing refused was kept");
    // the status page shows it, the failed run marked
    let req = Request::get("/").header("authorization", format!("Bearer {}", crate::common::API_TOKEN));
    let (st, _, page) = s.send(req.body(Body::empty()).unwrap()).await;
    let page = String::from_utf8_lossy(&page);
    assert_eq!(st, StatusCode::OK);
    assert!(
        page.contains("<ul class=\"snapshots failed\"><li>snapshots: 1 @home — newest @home.20261205T2210+0000</li>"),
        "{page}"
    );
    assert!(page.contains("last run: FAILED (exit-code, exit status 10) at "), "{page}");
    // a signed but malformed report names what is wrong
    let bad = json!({"host": "web1", "at": base + 100, "snapshots": ["a b"], "run": {"result": "success"}}).to_string();
    let (st, why) = post(&s, &bad, Some(&sign(d.path(), "host", &bad))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(why.contains("snapshot name"), "{why}");
    assert_eq!(post(&s, &newer, Some(&sig)).await.0, StatusCode::OK);
}
