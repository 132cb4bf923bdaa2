//! `metalboot serve` with its state in PostgreSQL (`[state] url`): it serves
//! installers from the database; with the database gone it serves none and
//! says why (HTTP 503, and the log names the database), and serves again,
//! on the same connection settings, once the database is back.

use crate::common;

#[path = "../../../tests/src/postgres.rs"]
#[allow(dead_code)]
mod cluster;

/// The boot script for web1's MAC: `Ok(script)`, or `Err((status, body))`.
fn boot(base: &str) -> Result<String, (u16, String)> {
    match ureq::get(&format!("{base}/boot.ipxe?mac=52:54:00:00:00:01&platform=pcbios")).call() {
        Ok(r) => Ok(r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => Err((code, r.into_string().unwrap_or_default())),
        Err(e) => panic!("no answer from the server: {e}"),
    }
}

#[test]
#[ignore = "runs a PostgreSQL cluster as nobody: root only, run by `make unit`"]
fn serve_on_postgres_serves_no_installer_without_its_database() {
    let dir = tempfile::tempdir().unwrap();
    let pg = cluster::Cluster::start(&dir.path().join("pg")).unwrap();
    common::write_assets(&dir.path().join("data"));
    let cfg = dir.path().join("metalboot.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\ndata_dir = \"data\"\ninventory = \"{}\"\napi_token_file = \"api-token\"\n\n[state]\nurl = \"{}\"\n",
            common::fixtures().join("inventory").display(),
            pg.url
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("api-token"), "pg-api-token\n").unwrap();
    let srv = common::spawn_server(dir.path(), &cfg);
    assert!(boot(&srv.base).unwrap().contains("metalboot.token="), "no installer from a server on PostgreSQL");

    pg.stop().unwrap();
    let (code, body) = boot(&srv.base).expect_err("without its database the server served a script");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("state database"), "{body}");
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    assert!(log.contains("the state database postgresql://metalboot@"), "the log does not say why:\n{log}");

    pg.start_again().unwrap();
    assert!(boot(&srv.base).unwrap().contains("metalboot.token="), "no installer once the database was back");
}
