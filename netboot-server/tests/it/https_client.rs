//! Outgoing HTTPS on loopback, against a CA made here with rcgen: a webhook
//! to an `https://` receiver is delivered (signature checked) when its hook
//! names the CA in `ca_file`, and fails naming the URL and the certificate
//! problem when it does not; the CLI's `--server https://…` with `--ca-file`
//! talks to a `metalboot serve` with `[server.tls]`, and without it is
//! refused the same way.

use crate::common::{metalboot, spawn_server};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const API_TOKEN: &str = "https-client-api-token";
const SECRET: &str = "webhook-secret-456";
const INVENTORY: &str = r#"
[[host]]
name = "web1"
macs = ["52:54:00:00:20:01"]
arm = true
disk = { serial = "WEB1-DISK" }
ssh_authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops"]
"#;

/// A test CA in `dir/ca.pem`, and `dir/cert.pem` + `dir/key.pem` for
/// 127.0.0.1 signed by it.
fn write_ca_and_server_cert(dir: &Path) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "metalboot test CA");
    std::fs::write(dir.join("ca.pem"), ca.self_signed(&ca_key).unwrap().pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
}

/// (headers, body) of each request the receiver took.
type Seen = Arc<Mutex<Vec<(Vec<(String, String)>, Vec<u8>)>>>;

/// A webhook receiver speaking HTTPS on 127.0.0.1 with `dir/cert.pem`:
/// answers 200 to every request; handshakes that fail are dropped.
fn tls_receiver(dir: &Path) -> (String, Seen) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = vec![CertificateDer::from_pem_file(dir.join("cert.pem")).unwrap()];
    let key = PrivateKeyDer::from_pem_file(dir.join("key.pem")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(metalboot::tls::crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let config = Arc::new(config);
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/hook", l.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(tcp) = conn else { continue };
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
            let tls = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut stream = rustls::StreamOwned::new(tls, tcp);
            let mut r = BufReader::new(&mut stream);
            let mut line = String::new();
            if r.read_line(&mut line).is_err() {
                continue; // the client refused our certificate
            }
            let (headers, body) = crate::common::read_headers_and_body(&mut r);
            s2.lock().unwrap().push((headers, body));
            let _ = write!(stream, "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            stream.conn.send_close_notify();
            let _ = stream.flush();
        }
    });
    (url, seen)
}

fn hook_notes(base: &str) -> Vec<String> {
    let host: serde_json::Value = ureq::get(&format!("{base}/v1/hosts/web1"))
        .set("Authorization", &format!("Bearer {API_TOKEN}"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    host["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "hook")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn https_webhook_is_delivered_with_its_ca_and_refused_without() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_ca_and_server_cert(dir);
    let (url, seen) = tls_receiver(dir);
    std::fs::write(dir.join("hosts.toml"), INVENTORY).unwrap();
    std::fs::write(dir.join("api-token"), API_TOKEN).unwrap();
    std::fs::write(dir.join("hook-secret"), SECRET).unwrap();
    let cfg = format!(
        r#"[server]
data_dir = "data"
inventory = "hosts.toml"
api_token_file = "api-token"

[[handoff.hooks]]
name = "with-ca"
on = ["failed"]
url = "{url}"
secret_file = "hook-secret"
ca_file = "ca.pem"
retries = 0

[[handoff.hooks]]
name = "without-ca"
on = ["failed"]
url = "{url}"
secret_file = "hook-secret"
retries = 0
"#
    );
    std::fs::write(dir.join("metalboot.toml"), cfg).unwrap();
    let out = metalboot(dir, Path::new("metalboot.toml"), &["check-config"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let srv = spawn_server(dir, Path::new("metalboot.toml"));
    let script = ureq::get(&format!("{}/boot.ipxe?mac=52:54:00:00:20:01&platform=pcbios", srv.base))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let token = crate::common::token_of(&script);
    let ev = format!("{}/v1/hosts/web1/events/unpack?token={token}&status=failed&message=disk%20full", srv.base);
    assert_eq!(ureq::get(&ev).call().unwrap().status(), 200);

    let deadline = Instant::now() + Duration::from_secs(30);
    let notes = loop {
        let notes = hook_notes(&srv.base);
        if notes.iter().any(|n| n.contains("without-ca")) && notes.iter().any(|n| n.contains("with-ca")) {
            break notes;
        }
        assert!(Instant::now() < deadline, "both hooks ran: {notes:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "only the hook that trusts the CA got through: {notes:?}");
    let (headers, body) = &seen[0];
    let sig = headers.iter().find(|(k, _)| k == "x-metalboot-signature-256").map(|(_, v)| v.clone());
    assert_eq!(sig, Some(metalboot::handoff::hooks::sign(SECRET.as_bytes(), body)));
    let facts: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!((facts["event"].as_str(), facts["host"].as_str()), (Some("failed"), Some("web1")));

    let refused = notes.iter().find(|n| n.contains("without-ca")).unwrap();
    assert!(refused.contains(&url), "the error names the URL: {refused}");
    assert!(refused.contains("UnknownIssuer") && refused.contains("ca_file"), "{refused}");
    assert!(notes.iter().any(|n| n.contains("with-ca") && n.contains("webhook ok")), "{notes:?}");
}

#[test]
fn cli_talks_to_an_https_server_with_its_ca_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_ca_and_server_cert(dir);
    std::fs::write(dir.join("hosts.toml"), INVENTORY).unwrap();
    std::fs::write(dir.join("api-token"), API_TOKEN).unwrap();
    let cfg = "[server]\ndata_dir = \"data\"\ninventory = \"hosts.toml\"\napi_token_file = \"api-token\"\n\
               [server.tls]\nlisten = \"127.0.0.1:0\"\ncert = \"cert.pem\"\nkey = \"key.pem\"\n";
    std::fs::write(dir.join("metalboot.toml"), cfg).unwrap();
    let srv = spawn_server(dir, Path::new("metalboot.toml"));
    let server = format!("https://{}", srv.tls.expect("the ready file names the HTTPS address"));

    let out =
        metalboot(dir, Path::new("metalboot.toml"), &["hosts", "--server", &server, "--ca-file", "ca.pem", "list"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("web1") && stdout.contains("armed"), "{stdout}");

    let out = metalboot(dir, Path::new("metalboot.toml"), &["hosts", "--server", &server, "list"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("{server}/v1/hosts")), "the error names the URL: {stderr}");
    assert!(stderr.contains("UnknownIssuer"), "and the certificate problem: {stderr}");
}
