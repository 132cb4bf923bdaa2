//! `GET /metrics` through the real router: behind the API token, counting
//! what an install did, and well-formed for Prometheus (`promtool check
//! metrics`, from Debian's `prometheus` package).

use crate::common;
use axum::http::StatusCode;
use common::{token_of, TestServer};
use serde_json::json;

const WEB1: &str = "/boot.ipxe?mac=52:54:00:00:00:01&platform=pcbios&buildarch=i386";

fn line_value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn promtool_check(text: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs (apt-get install prometheus, as `make deps` does)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool check metrics:\n{said}\n{text}");
    said
}

#[tokio::test]
async fn metrics_count_an_install_and_pass_promtool() {
    let s = TestServer::new();
    assert_eq!(s.get("/metrics").await.0, StatusCode::UNAUTHORIZED);
    let (_, script) = s.get(WEB1).await;
    let token = token_of(&script);
    let events = format!("/v1/hosts/web1/events?token={token}");
    for ev in [json!({"step": "unpack", "percent": 5}), json!({"step": "unpack", "status": "done"})] {
        assert_eq!(s.post_json(&events, ev).await.0, StatusCode::OK);
    }
    assert_eq!(s.get("/v1/hosts/web1/plan?token=wrong").await.0, StatusCode::FORBIDDEN);
    let keys =
        json!({"host_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"]});
    assert_eq!(s.post_json(&format!("/v1/hosts/web1/report?token={token}"), keys.clone()).await.0, StatusCode::OK);
    assert_eq!(s.post_json(&format!("/v1/hosts/web1/installed?token={token}"), keys).await.0, StatusCode::OK);
    let (st, _, body) = s
        .send(
            axum::http::Request::get("/metrics")
                .header("authorization", format!("Bearer {}", common::API_TOKEN))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    let want = [
        ("metalboot_installs_total{result=\"installed\"}", 1.0),
        ("metalboot_installs_total{result=\"failed\"}", 0.0),
        ("metalboot_install_step_duration_seconds_count{step=\"unpack\"}", 1.0),
        ("metalboot_http_requests_total{route=\"/boot.ipxe\",code=\"200\"}", 1.0),
        ("metalboot_http_requests_total{route=\"/v1/hosts/{name}/events\",code=\"200\"}", 2.0),
        ("metalboot_http_requests_total{route=\"/v1/hosts/{name}/plan\",code=\"403\"}", 1.0),
        ("metalboot_http_requests_total{route=\"/metrics\",code=\"401\"}", 1.0),
        ("metalboot_hosts{state=\"installed\"}", 1.0),
    ];
    for (series, n) in want {
        assert_eq!(line_value(&text, series), Some(n), "{series}:\n{text}");
    }
    assert!(line_value(&text, "metalboot_http_response_bytes_total").unwrap() > 0.0, "{text}");
    let hosts: f64 = text
        .lines()
        .filter(|l| l.starts_with("metalboot_hosts{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    let (_, all) = s.api("GET", "/v1/hosts").await;
    assert_eq!(hosts as usize, all.as_array().unwrap().len(), "every inventory host counted once:\n{text}");
    promtool_check(&text);
}
