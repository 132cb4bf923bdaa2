//! The installer against a real TLS server on 127.0.0.1 (rustls, a
//! self-signed certificate from rcgen): it fetches its plan when the
//! server's key is pinned, and otherwise stops at once with both pins named.

use crate::common::plan;
use metalboot_installer::{fetch, https};
use metalboot_spec::{Pin, PinSet};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct TlsServer {
    url: String,
    pin: Pin,
    /// Requests that got as far as HTTP (past the handshake).
    requests: Arc<AtomicUsize>,
}

/// Serves `body` as JSON to every request, over TLS with a new key.
#[allow(deprecated)]
fn serve_tls(body: String) -> TlsServer {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = c.cert.der().clone();
    let pin = Pin::of_certificate(&cert).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(c.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    std::thread::spawn(move || {
        for sock in listener.incoming().flatten() {
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, sock);
            let mut reader = BufReader::new(&mut tls);
            let mut line = String::new();
            // a refused handshake ends here, before any HTTP
            let mut ok = false;
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if line == "\r\n" {
                    ok = true;
                    break;
                }
                line.clear();
            }
            if !ok {
                continue;
            }
            seen.fetch_add(1, Ordering::SeqCst);
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.write_all(resp.as_bytes());
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    TlsServer { url, pin, requests }
}

fn plan_json(base: &str) -> String {
    serde_json::to_string(&plan(
        serde_json::json!({"serial": "S1"}),
        &format!("{base}/assets/rootfs.tar.zst"),
        &"ab".repeat(32),
        1,
    ))
    .unwrap()
}

#[test]
fn fetches_the_plan_from_the_pinned_server() {
    let srv = serve_tls(plan_json("https://127.0.0.1:1"));
    let http = https::agent(Some(&PinSet::one(srv.pin)));
    let p = fetch::fetch_plan(&http, &srv.url, "looptest", "tok", Duration::from_secs(5)).unwrap();
    assert_eq!(p.hostname, "looptest");
    assert_eq!(srv.requests.load(Ordering::SeqCst), 1);
}

#[test]
fn another_key_is_refused_at_once_naming_both_pins() {
    let srv = serve_tls(plan_json("https://127.0.0.1:1"));
    let other = Pin::of_spki(b"another key");
    let http = https::agent(Some(&PinSet::one(other)));
    let started = Instant::now();
    // plenty of patience: a refused key must not be retried as a network error
    let e = fetch::fetch_plan(&http, &srv.url, "looptest", "tok", Duration::from_secs(60)).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "retried for {:?}", started.elapsed());
    let msg = format!("{e:#}");
    assert!(msg.contains(&srv.pin.to_string()) && msg.contains(&other.to_string()), "{msg}");
    assert!(!msg.contains("tok"), "the token stays off the console: {msg}");
    assert!(https::refused_in(&e).is_some());
    assert_eq!(srv.requests.load(Ordering::SeqCst), 0, "no HTTP request reached the wrong server");
    let post = fetch::post_json(&http, &format!("{}/v1/hosts/looptest/report", srv.url), "tok", &1).unwrap_err();
    assert!(https::refused_in(&post).is_some(), "{post:#}");
}

#[test]
fn https_without_a_pin_is_refused_and_plain_http_still_works() {
    let srv = serve_tls(plan_json("http://127.0.0.1:1"));
    let http = https::agent(None);
    let e = fetch::fetch_plan(&http, &srv.url, "looptest", "tok", Duration::from_secs(60)).unwrap_err();
    assert!(format!("{e:#}").contains("no CA roots"), "{e:#}");
    let data = b"plain bytes".to_vec();
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&data))
    };
    let file = crate::common::serve_file(data.clone(), None);
    let mut out = Vec::new();
    fetch::stream_image(&http, &file.url, data.len() as u64, &sha, &mut out, &mut |_| {}).unwrap();
    assert_eq!(out, data);
}
