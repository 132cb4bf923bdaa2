//! `[server.tls]` and `public_url_tls` as `Config::parse` reads them.

use super::config::CertSource;
use crate::config::Config;
use anyhow::Result;
use std::path::{Path, PathBuf};

fn parse(text: &str) -> Result<Config> {
    Config::parse(text, Path::new("/etc/mb"), None)
}

#[test]
fn no_tls_section_means_no_https() {
    assert_eq!(parse("[server]\n").unwrap().tls, None);
}

#[test]
fn generated_certificate_is_named_by_the_public_urls_and_localhost() {
    let c = parse(
        "[server]\ndata_dir = \"/var/lib/mb\"\npublic_url = \"http://10.0.0.1:8080\"\n\
         public_url_tls = \"https://boot.example:8443/\"\n[server.tls]\n",
    )
    .unwrap();
    let tls = c.tls.unwrap();
    assert_eq!(tls.listen, "0.0.0.0:8443".parse().unwrap());
    let names = vec!["boot.example".to_string(), "10.0.0.1".into(), "localhost".into()];
    assert_eq!(tls.source, CertSource::Generated { dir: "/var/lib/mb/tls".into(), names });
    assert_eq!(tls.source.cert_path(), PathBuf::from("/var/lib/mb/tls/cert.pem"));
    assert_eq!(c.public_url_tls.as_deref(), Some("https://boot.example:8443"));
    let c = parse("[server.tls]\nlisten = \"[::]:443\"\nnames = [\"*.boot.example\", \"fd00::1\"]\n").unwrap();
    let Some(CertSource::Generated { names, .. }) = c.tls.map(|t| t.source) else { panic!("generated") };
    assert_eq!(names, ["*.boot.example", "fd00::1"]);
}

#[test]
fn given_files_are_taken_from_the_config_directory() {
    let c = parse("[server.tls]\ncert = \"tls/fullchain.pem\"\nkey = \"/secret/key.pem\"\n").unwrap();
    let want = CertSource::Files { cert: "/etc/mb/tls/fullchain.pem".into(), key: "/secret/key.pem".into() };
    assert_eq!(c.tls.unwrap().source, want);
}

#[test]
fn rejects_bad_tls_settings_naming_the_field() {
    for (text, field) in [
        ("[server.tls]\ncert = \"c.pem\"\n", "server.tls.key"),
        ("[server.tls]\nkey = \"k.pem\"\n", "server.tls.cert"),
        ("[server.tls]\ncert = \"c\"\nkey = \"k\"\nnames = [\"a\"]\n", "server.tls.names"),
        ("[server.tls]\nnames = []\n", "server.tls.names"),
        ("[server.tls]\nnames = [\"ok\", \"bad name\"]\n", "server.tls.names[1]"),
        ("[server.tls]\nnames = [\"-x.example\"]\n", "server.tls.names[0]"),
        ("[server.tls]\nlisten = \"nowhere\"\n", "server.tls.listen"),
        ("[server.tls]\nport = 443\n", "port"),
        ("[server]\npublic_url_tls = \"https://x\"\n", "server.public_url_tls"),
        ("[server]\npublic_url_tls = \"http://x\"\n[server.tls]\n", "server.public_url_tls"),
        ("[server]\npublic_url_tls = \"https://x/\\n\"\n[server.tls]\n", "server.public_url_tls"),
    ] {
        let e = format!("{:#}", parse(text).unwrap_err());
        assert!(e.contains(field), "{text}: {e}");
    }
}

#[test]
fn https_base_is_the_public_url_tls_or_the_http_host_on_the_tls_port() {
    let pin = "sha256//XWtYtT918SnoN8A4VG6ide7fA/cyhOS3ESyKlvzkuqQ=".parse().unwrap();
    let mut e = super::TlsEndpoint { public_url: None, port: 8443, pin };
    assert_eq!(e.base_url("http://10.0.0.1:8080").as_deref(), Some("https://10.0.0.1:8443"));
    assert_eq!(e.base_url("http://boot.example/metalboot").as_deref(), Some("https://boot.example:8443"));
    assert_eq!(e.base_url("http://[fd00::1]:8080").as_deref(), Some("https://[fd00::1]:8443"));
    assert_eq!(e.base_url("http://"), None);
    e.public_url = Some("https://boot.example".into());
    assert_eq!(e.base_url("http://10.0.0.1:8080").as_deref(), Some("https://boot.example"));
}

#[test]
fn a_generated_key_outlives_its_certificate_and_keeps_the_pin() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let source = |name: &str| CertSource::Generated { dir: tls.clone(), names: vec![name.to_string()] };
    let pin = super::load_or_create(&source("localhost")).unwrap().pin;
    let cert = std::fs::read(tls.join("cert.pem")).unwrap();
    assert_eq!(super::read_pin(&source("localhost")).unwrap(), pin);
    // other names alone do not replace a certificate that is there
    assert_eq!(super::load_or_create(&source("boot.example")).unwrap().pin, pin);
    assert_eq!(std::fs::read(tls.join("cert.pem")).unwrap(), cert);
    // without it, the key is kept: a new certificate, the same pin
    std::fs::remove_file(tls.join("cert.pem")).unwrap();
    assert_eq!(super::load_or_create(&source("boot.example")).unwrap().pin, pin);
    assert_ne!(std::fs::read(tls.join("cert.pem")).unwrap(), cert);
    // a certificate without its key is refused, not replaced
    std::fs::remove_file(tls.join("key.pem")).unwrap();
    let e = format!("{:#}", super::load_or_create(&source("localhost")).err().unwrap());
    assert!(e.contains("has no key beside it"), "{e}");
    assert!(tls.join("cert.pem").exists() && !tls.join("key.pem").exists());
}
