//! Shared test set-up: the fixture configuration and inventory, a temporary
//! data directory, real asset files, and a helper to send requests to the
//! router without a socket.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use metalboot::assets::Assets;
use metalboot::config::Config;
use metalboot::http::{app, AppState, Shared};
use metalboot::inventory::Inventory;
use metalboot::render::Renderer;
use metalboot::state::{hash_token, Store};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tower::ServiceExt;

/// Bearer token the test servers accept.
pub const API_TOKEN: &str = "test-api-token";

/// The fixtures directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The fixture config, pointed at `data_dir`.
pub fn fixture_config(data_dir: &Path) -> Config {
    let mut c = Config::load(Some(&fixtures().join("metalboot.toml"))).expect("fixture config loads");
    c.data_dir = data_dir.to_path_buf();
    let assets = data_dir.join("assets");
    for v in c.assets.values_mut() {
        *v = assets.join(v.file_name().expect("asset has a file name"));
    }
    c
}

/// Writes deterministic asset files; returns the rootfs bytes.
pub fn write_assets(data_dir: &Path) -> Vec<u8> {
    let dir = data_dir.join("assets");
    std::fs::create_dir_all(&dir).unwrap();
    let rootfs: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    std::fs::write(dir.join("rootfs.tar.zst"), &rootfs).unwrap();
    std::fs::write(dir.join("vmlinuz"), b"kernel image bytes").unwrap();
    std::fs::write(dir.join("initramfs.img"), b"initramfs bytes").unwrap();
    rootfs
}

/// A server state over the fixtures, with hosts that say `arm = true` armed.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub state: Shared,
    pub rootfs: Vec<u8>,
}

impl TestServer {
    pub fn new() -> TestServer {
        Self::with_renderer(Renderer::embedded().unwrap())
    }

    pub fn with_renderer(renderer: Renderer) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let config = fixture_config(dir.path());
        let rootfs = write_assets(dir.path());
        let inventory = Inventory::load(config.inventory.as_ref().unwrap()).unwrap();
        let store = Store::open(dir.path()).unwrap();
        let armed: Vec<&str> = inventory.hosts().iter().filter(|h| h.arm).map(|h| h.name.as_str()).collect();
        store.arm_new_hosts(armed).unwrap();
        let assets = Assets::new(config.assets.clone());
        let state = Arc::new(AppState {
            config,
            inventory: metalboot::live::Live::new(inventory),
            renderer,
            store,
            assets,
            api_token_hash: hash_token(API_TOKEN),
            tls: None,
            metrics: Default::default(),
            reloader: None,
            sessions: Default::default(),
        });
        TestServer { dir, state, rootfs }
    }

    /// Sends one request.
    pub async fn send(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let resp = app(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap().to_vec();
        (status, headers, body)
    }

    pub async fn get(&self, uri: &str) -> (StatusCode, String) {
        let (s, _, b) = self.send(Request::get(uri).body(Body::empty()).unwrap()).await;
        (s, String::from_utf8_lossy(&b).into_owned())
    }

    pub async fn api(&self, method: &str, uri: &str) -> (StatusCode, serde_json::Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {API_TOKEN}"))
            .body(Body::empty())
            .unwrap();
        let (s, _, b) = self.send(req).await;
        (s, serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null))
    }

    pub async fn post_json(&self, uri: &str, body: serde_json::Value) -> (StatusCode, String) {
        let req =
            Request::post(uri).header("content-type", "application/json").body(Body::from(body.to_string())).unwrap();
        let (s, _, b) = self.send(req).await;
        (s, String::from_utf8_lossy(&b).into_owned())
    }
}

/// The install token on an iPXE script's kernel line.
pub fn token_of(script: &str) -> String {
    let i = script.find("metalboot.token=").expect("script carries a token") + "metalboot.token=".len();
    script[i..].chars().take_while(|c| c.is_ascii_hexdigit()).collect()
}

/// A real `metalboot serve` process on 127.0.0.1 (any port), killed on drop.
pub struct ServerProcess {
    pub child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The HTTPS address, with `[server.tls]`.
    pub tls: Option<std::net::SocketAddr>,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `metalboot --config CONFIG serve` in `dir` (relative paths in the
/// config are taken from there), logging to `dir/server.log`, and waits for
/// its ready file.
pub fn spawn_server(dir: &Path, config: &Path) -> ServerProcess {
    spawn_server_with_nofile(dir, config, None)
}

/// As [`spawn_server`], with the open-file limit (soft and hard) set to
/// `nofile` when given, as a service manager would.
pub fn spawn_server_with_nofile(dir: &Path, config: &Path, nofile: Option<u64>) -> ServerProcess {
    use std::time::{Duration, Instant};
    let ready = dir.join("ready");
    let _ = std::fs::remove_file(&ready);
    let mut cmd = match nofile {
        Some(n) => {
            let mut c = std::process::Command::new("sh");
            c.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\""), env!("CARGO_BIN_EXE_metalboot")]);
            c
        }
        None => std::process::Command::new(env!("CARGO_BIN_EXE_metalboot")),
    };
    let child = cmd
        .arg("--config")
        .arg(config)
        .args(["serve", "--listen", "127.0.0.1:0", "--ready-file"])
        .arg(&ready)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("server.log")).unwrap())
        .spawn()
        .unwrap();
    let mut srv = ServerProcess { child, base: String::new(), tls: None };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(&ready) {
            let mut lines = text.lines();
            srv.base = format!("http://{}", lines.next().unwrap_or_default());
            srv.tls = lines.find_map(|l| l.strip_prefix("tls ")).map(|a| a.parse().unwrap());
            return srv;
        }
        assert!(
            Instant::now() < deadline,
            "server did not become ready: {}",
            std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the `metalboot` binary with `--config CONFIG ARGS` in `dir`.
pub fn metalboot(dir: &Path, config: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_metalboot"))
        .arg("--config")
        .arg(config)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// The headers (names lower-cased) and body of an HTTP/1.1 request whose
/// request line `r` has already read.
pub fn read_headers_and_body(r: &mut impl std::io::BufRead) -> (Vec<(String, String)>, Vec<u8>) {
    let mut headers = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let t = line.trim_end();
        if t.is_empty() {
            break;
        }
        if let Some((k, v)) = t.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").map(|(_, v)| v.parse().unwrap()).unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    (headers, body)
}
