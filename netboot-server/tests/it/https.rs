//! HTTPS (`[server.tls]`) against a real `metalboot serve` on loopback: a
//! client that pins the logged pin gets through, one pinning another key is
//! stopped in the handshake; the generated certificate survives restarts,
//! `metalboot tls fingerprint` prints the same pin, given PEM files are
//! served, bad ones stop start-up naming the field, a stalled handshake is
//! closed, SIGHUP serves a renewed certificate for the same key only, and
//! `http::tls_base` names the HTTPS URL and pin an installer will be given.
//! The client pins the public key as the installer will: no CA, no name
//! check; curl's `--pinnedpubkey` takes the same string.

use crate::common::{metalboot, spawn_server, ServerProcess};
use metalboot_spec::{Pin, PinSet};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Accepts the server's certificate when its public key matches a pin, as
/// the installer will; signatures are checked as usual.
#[derive(Debug)]
struct PinVerifier {
    pins: PinSet,
    provider: Arc<rustls::crypto::CryptoProvider>,
    /// The certificate the server showed.
    seen: Mutex<Vec<u8>>,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.seen.lock().unwrap() = end_entity.to_vec();
        match self.pins.matches_certificate(end_entity) {
            Ok(true) => Ok(ServerCertVerified::assertion()),
            Ok(false) => Err(rustls::Error::General("the server's key matches no pin".into())),
            Err(e) => Err(rustls::Error::General(e.to_string())),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// GET /healthz over HTTPS to `addr`, pinning `pins`; the whole response.
fn https_healthz(addr: SocketAddr, pins: &str) -> std::io::Result<String> {
    https_get(addr, pins).map(|(resp, _)| resp)
}

/// As [`https_healthz`], with the certificate (DER) the server showed.
fn https_get(addr: SocketAddr, pins: &str) -> std::io::Result<(String, Vec<u8>)> {
    let provider = metalboot::tls::crypto_provider();
    let verifier =
        Arc::new(PinVerifier { pins: pins.parse().unwrap(), provider: provider.clone(), seen: Mutex::default() });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let conn = rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("metalboot").unwrap()).unwrap();
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")?;
    let mut out = String::new();
    tls.read_to_string(&mut out)?;
    let seen = verifier.seen.lock().unwrap().clone();
    Ok((out, seen))
}

/// Writes `metalboot.toml` in `dir`: data in `dir/data`, HTTPS on any
/// loopback port, with `[server]` lines `server` and `[server.tls]` lines `tls`.
fn write_config(dir: &Path, server: &str, tls: &str) -> std::path::PathBuf {
    let config = dir.join("metalboot.toml");
    let text = format!("[server]\ndata_dir = \"data\"\n{server}\n[server.tls]\nlisten = \"127.0.0.1:0\"\n{tls}\n");
    std::fs::write(&config, text).unwrap();
    config
}

/// The server, its HTTPS address and the pin its start-up log shows.
fn start(dir: &Path, config: &Path) -> (ServerProcess, SocketAddr, String) {
    let srv = spawn_server(dir, config);
    let tls = srv.tls.expect("the ready file names the HTTPS address");
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap();
    let line = log.lines().find(|l| l.contains("listening for HTTPS")).unwrap_or_else(|| panic!("{log}"));
    let pin = line.split_whitespace().find_map(|w| w.strip_prefix("pin=")).expect("the pin is logged").to_string();
    (srv, tls, pin)
}

/// `metalboot --config CONFIG ARGS…` in `dir`.
fn pin_of_key(key: &rcgen::KeyPair) -> String {
    use rcgen::PublicKeyData;
    Pin::of_spki(&key.subject_public_key_info()).to_string()
}

fn is_ok(resp: &str) -> bool {
    resp.starts_with("HTTP/1.1 200") && resp.ends_with("ok\n")
}

#[test]
fn pinned_client_gets_healthz_over_https_beside_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "", "");
    let (srv, tls, pin) = start(dir.path(), &config);
    let resp = https_healthz(tls, &pin).unwrap();
    assert!(is_ok(&resp), "{resp}");
    // a new key is not pinned, but a list holding the right pin is accepted
    let other = pin_of_key(&rcgen::KeyPair::generate().unwrap());
    assert!(is_ok(&https_healthz(tls, &format!("{other};{pin}")).unwrap()));
    let http: SocketAddr = srv.base.trim_start_matches("http://").parse().unwrap();
    let mut s = TcpStream::connect(http).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(is_ok(&resp), "plain HTTP stays on for the PXE first stage: {resp}");
}

#[test]
fn client_pinning_another_key_fails_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "", "");
    let (_srv, tls, pin) = start(dir.path(), &config);
    let other = pin_of_key(&rcgen::KeyPair::generate().unwrap());
    assert_ne!(other, pin);
    let e = https_healthz(tls, &other).unwrap_err();
    assert!(e.to_string().contains("matches no pin"), "{e}");
}

#[test]
fn generated_certificate_is_reused_across_restarts() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "", "");
    let (srv, _, pin) = start(dir.path(), &config);
    drop(srv);
    let tls_dir = dir.path().join("data/tls");
    let mode = |f: &str| std::fs::metadata(tls_dir.join(f)).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode("key.pem"), mode(".")), (0o600, 0o700));
    let cert = std::fs::read(tls_dir.join("cert.pem")).unwrap();
    let (_srv, tls, again) = start(dir.path(), &config);
    assert_eq!(again, pin);
    assert_eq!(std::fs::read(tls_dir.join("cert.pem")).unwrap(), cert, "the same certificate, not only the same key");
    assert!(is_ok(&https_healthz(tls, &pin).unwrap()));
}

#[test]
fn fingerprint_prints_the_logged_pin_and_generates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "", "");
    let out = metalboot(dir.path(), &config, &["tls", "fingerprint"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no certificate at") && err.contains("data/tls/cert.pem"), "{err}");
    assert!(!dir.path().join("data/tls").exists(), "fingerprint made nothing");
    let (_srv, _, pin) = start(dir.path(), &config);
    let out = metalboot(dir.path(), &config, &["tls", "fingerprint"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{pin}\n"));
}

#[test]
fn given_certificate_and_key_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let rcgen::CertifiedKey { cert, signing_key } = rcgen::generate_simple_self_signed(["localhost".into()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), signing_key.serialize_pem()).unwrap();
    let config = write_config(dir.path(), "", "cert = \"cert.pem\"\nkey = \"key.pem\"");
    // the pin of the key as rcgen encodes it, not through the certificate
    let want = pin_of_key(&signing_key);
    let (_srv, tls, pin) = start(dir.path(), &config);
    assert_eq!(pin, want);
    assert!(is_ok(&https_healthz(tls, &want).unwrap()));
    assert!(!dir.path().join("data/tls").exists(), "nothing generated");
    let out = metalboot(dir.path(), &config, &["tls", "fingerprint"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{want}\n"));
    let out = metalboot(dir.path(), &config, &["check-config"]);
    assert!(String::from_utf8(out.stdout).unwrap().contains(&format!("pin {want}")));
}

/// Runs `serve` to its exit (it must stop by itself); its stderr.
fn serve_fails(dir: &Path, config: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_metalboot"))
        .arg("--config")
        .arg(config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("serve started despite the bad TLS files");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn bad_key_file_stops_start_up_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let rcgen::CertifiedKey { cert, .. } = rcgen::generate_simple_self_signed(["localhost".into()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), "not a key\n").unwrap();
    let config = write_config(dir.path(), "", "cert = \"cert.pem\"\nkey = \"key.pem\"");
    let config_name = config.display().to_string();
    for err in [
        serve_fails(dir.path(), &config),
        String::from_utf8(metalboot(dir.path(), &config, &["check-config"]).stderr).unwrap(),
    ] {
        assert!(
            err.contains(&config_name) && err.contains("field `server.tls.key`") && err.contains("key.pem"),
            "{err}"
        );
    }
    // a well-formed key that belongs to another certificate
    std::fs::write(dir.path().join("key.pem"), rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let err = serve_fails(dir.path(), &config);
    assert!(err.contains("field `server.tls.key`") && err.contains("does not fit certificate"), "{err}");
    // a certificate file with no certificate in it
    std::fs::write(dir.path().join("cert.pem"), "").unwrap();
    let err = serve_fails(dir.path(), &config);
    assert!(err.contains("field `server.tls.cert`") && err.contains("no CERTIFICATE"), "{err}");
}

#[test]
fn stalled_tls_handshake_is_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "header_read_timeout_secs = 1", "");
    let (_srv, tls, pin) = start(dir.path(), &config);
    let mut s = TcpStream::connect(tls).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let started = Instant::now();
    let closed = loop {
        let mut b = [0u8; 64];
        match s.read(&mut b) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Ok(0) | Err(_) => break started.elapsed(), // closed or reset
            Ok(n) => panic!("{n} bytes from a server that was sent nothing"),
        }
        assert!(started.elapsed() < Duration::from_secs(10), "still open after 10 s");
    };
    assert!(closed >= Duration::from_millis(900), "{closed:?}");
    assert!(is_ok(&https_healthz(tls, &pin).unwrap()), "the server still answers");
}

#[test]
fn curl_accepts_the_pin_as_its_pinnedpubkey() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "", "");
    let (_srv, tls, pin) = start(dir.path(), &config);
    let url = format!("https://{tls}/healthz");
    // --insecure: no CA check; the pin is checked all the same
    let curl =
        |pin: &str| Command::new("curl").args(["-sS", "--insecure", "--pinnedpubkey", pin, &url]).output().unwrap();
    let out = curl(&pin);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "{}", String::from_utf8_lossy(&out.stderr));
    let out = curl(&pin_of_key(&rcgen::KeyPair::generate().unwrap()));
    // 90: CURLE_SSL_PINNEDPUBKEYNOTMATCH
    assert_eq!(out.status.code(), Some(90), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Waits until `server.log` in `dir` holds `text` `times` times.
fn wait_for_log(dir: &Path, text: &str, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap();
        if log.matches(text).count() >= times {
            return;
        }
        assert!(Instant::now() < deadline, "no {text:?} in the log:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sighup_serves_a_renewed_certificate_for_the_same_key_only() {
    let dir = tempfile::tempdir().unwrap();
    let issue = |name: &str, key: &rcgen::KeyPair| {
        rcgen::CertificateParams::new(vec![name.to_string()]).unwrap().self_signed(key).unwrap()
    };
    let key = rcgen::KeyPair::generate().unwrap();
    let first = issue("first.example", &key);
    std::fs::write(dir.path().join("cert.pem"), first.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
    let config = write_config(dir.path(), "", "cert = \"cert.pem\"\nkey = \"key.pem\"");
    let (srv, tls, pin) = start(dir.path(), &config);
    assert_eq!(https_get(tls, &pin).unwrap().1, first.der().to_vec());
    let hup = || assert!(Command::new("kill").args(["-HUP", &srv.child.id().to_string()]).status().unwrap().success());
    let renewed = issue("renewed.example", &key);
    std::fs::write(dir.path().join("cert.pem"), renewed.pem()).unwrap();
    hup();
    wait_for_log(dir.path(), "reloaded the TLS certificate", 1);
    let (resp, seen) = https_get(tls, &pin).unwrap();
    assert!(is_ok(&resp) && seen == renewed.der().to_vec(), "the renewed certificate is served");
    // another key would need a new pin: refused, the renewed certificate kept
    let other = rcgen::KeyPair::generate().unwrap();
    std::fs::write(dir.path().join("cert.pem"), issue("other.example", &other).pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), other.serialize_pem()).unwrap();
    hup();
    wait_for_log(dir.path(), "keeping the TLS certificate in use", 1);
    assert!(std::fs::read_to_string(dir.path().join("server.log")).unwrap().contains("holds another key"));
    assert_eq!(https_get(tls, &pin).unwrap().1, renewed.der().to_vec());
}

#[test]
fn tls_base_is_what_an_installer_will_be_pointed_at() {
    let mut srv = crate::common::TestServer::new();
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(axum::http::header::HOST, "10.0.0.1:8080".parse().unwrap());
    let base = |srv: &crate::common::TestServer| metalboot::http::tls_base(&srv.state, &headers).unwrap();
    assert_eq!(base(&srv), None, "no [server.tls]: nothing");
    let pin: Pin = pin_of_key(&rcgen::KeyPair::generate().unwrap()).parse().unwrap();
    let state = Arc::get_mut(&mut srv.state).unwrap();
    state.tls = Some(metalboot::tls::TlsEndpoint { public_url: None, port: 8443, pin });
    // the fixture's public_url is http://192.0.2.1:8080: its host, on the HTTPS port
    assert_eq!(base(&srv), Some(("https://192.0.2.1:8443".to_string(), pin)));
    let state = Arc::get_mut(&mut srv.state).unwrap();
    state.config.public_url = None;
    assert_eq!(base(&srv), Some(("https://10.0.0.1:8443".to_string(), pin)), "the Host header's host");
    let state = Arc::get_mut(&mut srv.state).unwrap();
    state.tls.as_mut().unwrap().public_url = Some("https://boot.example".into());
    assert_eq!(base(&srv), Some(("https://boot.example".to_string(), pin)), "public_url_tls as it is");
}
