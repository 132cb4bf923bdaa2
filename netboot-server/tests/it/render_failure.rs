//! A template that fails to render answers 500 with no detail in the body,
//! logs why, and changes no state.

use crate::common;
use axum::http::StatusCode;
use common::TestServer;
use metalboot::render::Renderer;
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn templates_with_broken_install_script() -> tempfile::TempDir {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../preseed-templates");
    let dir = tempfile::tempdir().unwrap();
    for sub in ["ipxe", "debian"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        for e in std::fs::read_dir(src.join(sub)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.path().join(sub).join(e.file_name())).unwrap();
        }
    }
    // Compiles, but refers to a variable the context does not have.
    std::fs::write(
        dir.path().join("ipxe/install-image.ipxe.j2"),
        "#!ipxe\nkernel {{ kernel_url }} {{ no_such_variable }}\n",
    )
    .unwrap();
    dir
}

#[tokio::test(flavor = "current_thread")]
async fn render_failure_is_500_logged_and_changes_nothing() {
    let buf = Buf::default();
    let writer = buf.clone();
    let sub = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
    let _guard = tracing::subscriber::set_default(sub);

    let tdir = templates_with_broken_install_script();
    let s = TestServer::with_renderer(Renderer::from_dir(tdir.path()).unwrap());
    let (st, body) = s.get("/boot.ipxe?mac=52:54:00:00:00:01&platform=pcbios").await;
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!body.contains("no_such_variable"), "detail leaked into the body: {body}");
    let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("ipxe/install-image.ipxe.j2") && log.contains("undefined"), "log: {log}");
    // the host is still armed, and no token was issued
    assert_eq!(s.api("GET", "/v1/hosts/web1").await.1["state"], "armed");
}

#[test]
fn template_that_does_not_compile_stops_startup() {
    let tdir = templates_with_broken_install_script();
    std::fs::write(tdir.path().join("ipxe/local.ipxe.j2"), "{% if %}").unwrap();
    let err = Renderer::from_dir(tdir.path()).err().expect("broken template refused");
    assert!(format!("{err:#}").contains("local.ipxe.j2"), "{err:#}");
}
