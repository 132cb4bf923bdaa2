//! `metalboot serve`: load everything once, open the state store, bind, and
//! run until SIGINT/SIGTERM.

use crate::assets::Assets;
use crate::config::Config;
use crate::http::listen::Listeners;
use crate::http::{app, AppState};
use crate::inventory::Inventory;
pub use crate::load::{check_host_images, hosts_missing_their_image, load_all};
use crate::state::{hash_token, new_token, Store};
use crate::tls::{ServerCert, TlsEndpoint};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// Where the operator API token comes from: the configured file, then
/// `METALBOOT_API_TOKEN`, then `<data_dir>/api-token` (created 0600 with a
/// random token on first start).
pub fn api_token(config: &Config, create: bool) -> Result<String> {
    if let Some(f) = &config.api_token_file {
        let t = std::fs::read_to_string(f).with_context(|| format!("reading API token file {}", f.display()))?;
        let t = t.trim().to_string();
        anyhow::ensure!(!t.is_empty(), "API token file {} is empty", f.display());
        return Ok(t);
    }
    if let Ok(t) = std::env::var("METALBOOT_API_TOKEN") {
        if !t.trim().is_empty() {
            return Ok(t.trim().to_string());
        }
    }
    let path = default_token_path(config);
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        _ if create => {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("creating {}", config.data_dir.display()))?;
            let t = new_token();
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("creating API token file {}", path.display()))?;
            writeln!(f, "{t}")?;
            tracing::info!(path = %path.display(), "generated an operator API token");
            Ok(t)
        }
        _ => anyhow::bail!(
            "no API token: set METALBOOT_API_TOKEN, server.api_token_file, or start the server once to create {}",
            path.display()
        ),
    }
}

fn default_token_path(config: &Config) -> PathBuf {
    config.data_dir.join("api-token")
}

/// Runs the server. `ready_file`, if given, receives the bound address once
/// the socket is listening (for tests and scripts: no sleeping).
pub async fn run(
    config_path: Option<&Path>,
    listen: Option<std::net::SocketAddr>,
    ready_file: Option<&Path>,
) -> Result<()> {
    let (mut config, inventory, renderer) = load_all(config_path)?;
    if let Some(l) = listen {
        config.listen = l;
    }
    let (was, fd_limit) = crate::http::listen::raise_fd_limit().context("raising the open-file limit")?;
    let mut limits = config.http_limits.clone();
    limits.max_connections = crate::http::listen::fit_to_fd_limit(limits.max_connections, fd_limit);
    tracing::info!(
        nofile_soft_was = was,
        nofile = fd_limit,
        max_connections = limits.max_connections,
        max_connections_per_ip = limits.max_connections_per_ip,
        header_read_timeout_secs = limits.header_read_timeout.as_secs(),
        "HTTP connection limits"
    );
    if limits.max_connections < config.http_limits.max_connections {
        tracing::warn!(
            configured = config.http_limits.max_connections,
            nofile = fd_limit,
            "server.max_connections lowered to fit the open-file limit"
        );
    }
    let tls_cert = match &config.tls {
        Some(t) => Some(crate::tls::load_or_create(&t.source).with_context(|| tls_origin(&config))?),
        None => None,
    };
    let store = match &config.state.url {
        Some(url) => Store::connect(url)?,
        None => Store::open(&config.data_dir)?,
    };
    let to_arm: Vec<&str> = inventory.hosts().iter().filter(|h| h.arm).map(|h| h.name.as_str()).collect();
    for name in store.arm_new_hosts(to_arm)? {
        tracing::info!(host = %name, "armed new host from inventory");
    }
    let token = api_token(&config, true)?;
    let assets = Assets::new(config.assets.clone());
    for (name, path) in assets.files() {
        if !path.is_file() {
            tracing::warn!(asset = %name, path = %path.display(), "asset file missing; requests for it get 404");
        }
    }
    for (host, image, path) in hosts_missing_their_image(&config, &inventory) {
        tracing::warn!(%host, %image, path = %path.display(), "the host's image is missing: its installer gets no plan");
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding HTTP to {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, hosts = inventory.hosts().len(), "metalboot listening");
    let tls = bind_tls(&config, tls_cert.as_ref()).await?;
    let tls_reload = config.tls.as_ref().zip(tls_cert).map(|(t, cert)| (t.source.clone(), cert));
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let (dhcp_task, dhcp_settings) = match start_dhcp(&config, &inventory, &store, addr.port(), &metrics)? {
        Some((t, s)) => (Some(t), Some(s)),
        None => (None, None),
    };
    let _ra_task = start_router_advertisements(&config)?;
    let tftp_task = start_tftp(&config, &metrics).await?;
    let endpoint = tls.as_ref().map(|(_, _, e)| e.clone());
    let started = config.clone();
    let state = Arc::new(AppState {
        config,
        inventory: crate::live::Live::new(inventory),
        renderer,
        store,
        assets,
        api_token_hash: hash_token(&token),
        tls: endpoint,
        metrics,
        reloader: Some(crate::reload::Reloader {
            config_path: config_path.map(Path::to_path_buf),
            started,
            dhcp: dhcp_settings,
            http_port: addr.port(),
            tls: tls_reload,
            running: Default::default(),
        }),
        sessions: Default::default(),
    });
    // before the ready file and READY=1: a reload right after start must
    // find the handler in place, not kill the process
    let _reload = AbortOnDrop(reload_on_sighup(state.clone())?);
    if let Some(f) = ready_file {
        let tmp = f.with_extension("tmp");
        let mut text = format!("{addr}\n");
        if let Some((l, _, _)) = &tls {
            text += &format!("tls {}\n", l.local_addr()?);
        }
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, f).with_context(|| format!("writing {}", f.display()))?;
    }
    // systemd (Type=notify): ready now that every listener is bound
    let hosts = state.inventory.load().hosts().len();
    crate::sdnotify::notify(&format!("READY=1\nSTATUS=serving {hosts} host(s) on {addr}"));
    let _watchdog = crate::sdnotify::spawn_watchdog().map(AbortOnDrop);
    let st = state.clone();
    let watch = tokio::spawn(crate::handoff::watch_first_boot(
        state.store.clone(),
        std::time::Duration::from_secs(state.config.handoff.first_boot_timeout_secs),
        std::time::Duration::from_secs(10),
        move |name| st.install_ended("failed", name),
    ));
    let listeners = Listeners { http: listener, tls: tls.map(|(l, a, _)| (l, a)) };
    let http = crate::http::listen::serve(listeners, app(state), &limits, shutdown());
    let _watch = AbortOnDrop(watch);
    tokio::select! {
        r = http => r.context("serving HTTP"),
        r = wait(dhcp_task) => r.context("DHCP server stopped"),
        r = wait(tftp_task) => r.context("TFTP server stopped"),
    }
}

fn tls_origin(config: &Config) -> String {
    crate::tls::config_origin(config.source.as_deref())
}

/// Binds HTTPS with the loaded certificate and logs its pin.
async fn bind_tls(
    config: &Config,
    cert: Option<&ServerCert>,
) -> Result<Option<(tokio::net::TcpListener, TlsAcceptor, TlsEndpoint)>> {
    let (Some(tls), Some(cert)) = (&config.tls, cert) else { return Ok(None) };
    let listener = tokio::net::TcpListener::bind(tls.listen)
        .await
        .with_context(|| format!("binding HTTPS to {}", tls.listen))
        .with_context(|| tls_origin(config))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, pin = %cert.pin, cert = %cert.cert_path.display(), "metalboot listening for HTTPS");
    let endpoint = TlsEndpoint { public_url: config.public_url_tls.clone(), port: addr.port(), pin: cert.pin };
    Ok(Some((listener, TlsAcceptor::from(cert.config.clone()), endpoint)))
}

/// Reloads on every SIGHUP until dropped (see [`crate::reload`]).
fn reload_on_sighup(state: Arc<AppState>) -> Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    Ok(tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let st = state.clone();
            // the outcome is logged by reload()
            let _ =
                tokio::task::spawn_blocking(move || st.reloader.as_ref().map(|r| r.reload(&st.inventory, &st.store)))
                    .await;
        }
    }))
}

type Task = tokio::task::JoinHandle<Result<()>>;

struct AbortOnDrop(tokio::task::JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn wait(task: Option<Task>) -> Result<()> {
    match task {
        Some(t) => t.await.context("joining task")?,
        None => std::future::pending().await,
    }
}

fn start_dhcp(
    config: &Config,
    inventory: &Inventory,
    store: &Store,
    http_port: u16,
    metrics: &Arc<crate::metrics::Metrics>,
) -> Result<Option<(Task, Arc<crate::live::Live<crate::dhcp::DhcpSettings>>)>> {
    use crate::dhcp::{ledger, socket, DhcpMode};
    let mode = config.dhcp.mode;
    if mode == DhcpMode::Off {
        return Ok(None);
    }
    let settings = crate::reload::dhcp_settings(config, inventory, http_port)?;
    let iface = config.dhcp.interface.clone().unwrap_or_default();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let ledger = Arc::new(ledger::Ledger::open(store.clone(), &settings, now).context("loading DHCP leases")?);
    let server_ip = settings.server_ip;
    let settings = Arc::new(crate::live::Live::new(settings));
    let mut set = tokio::task::JoinSet::new();
    let (writer, queue) = tokio::sync::mpsc::channel(ledger::QUEUE);
    set.spawn(ledger::write_batches(ledger.clone(), queue));
    set.spawn(ledger::purge_expired_every(ledger.clone(), ledger::PURGE_EVERY));
    for port in [67, 4011] {
        let sock = socket::bind(&iface, port)?;
        set.spawn(socket::serve(sock, mode, settings.clone(), ledger.clone(), writer.clone(), metrics.clone()));
    }
    tracing::info!(?mode, interface = %iface, %server_ip, "DHCP listening");
    let task = tokio::spawn(async move {
        match set.join_next().await {
            Some(Ok(r)) => r,
            Some(Err(e)) => Err(e.into()),
            None => Ok(()),
        }
    });
    Ok(Some((task, settings)))
}

/// Router advertisements beside DHCP (see `ra`). A failure after start-up
/// ends this task only, with the error logged: DHCP and TFTP keep serving.
fn start_router_advertisements(config: &Config) -> Result<Option<AbortOnDrop>> {
    if !config.dhcp.router_advertisements_on() {
        return Ok(None);
    }
    let iface = config.dhcp.interface.as_deref().context("dhcp.interface is required when dhcp.mode is not off")?;
    let sock = crate::ra::socket::open(iface).context("in [dhcp] router_advertisements")?;
    Ok(Some(AbortOnDrop(tokio::spawn(async move {
        if let Err(e) = sock.serve().await {
            tracing::error!(error = format!("{e:#}"), "router advertisements stopped");
        }
    }))))
}

async fn start_tftp(config: &Config, metrics: &Arc<crate::metrics::Metrics>) -> Result<Option<Task>> {
    let enabled = config.tftp.enabled.unwrap_or(config.dhcp.mode != crate::dhcp::DhcpMode::Off);
    if !enabled {
        return Ok(None);
    }
    let sock = tokio::net::UdpSocket::bind(config.tftp.listen)
        .await
        .with_context(|| format!("binding TFTP to {}", config.tftp.listen))?;
    for (name, path) in &config.tftp.files {
        if !path.is_file() {
            tracing::warn!(file = %name, path = %path.display(), "TFTP file missing (apt-get install ipxe)");
        }
    }
    tracing::info!(addr = %sock.local_addr()?, "TFTP listening");
    Ok(Some(tokio::spawn(crate::tftp::serve(sock, Arc::new(config.tftp.clone()), metrics.clone()))))
}

async fn shutdown() {
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("installing SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutting down");
    crate::sdnotify::notify("STOPPING=1");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory(image: &str, method: &str) -> Inventory {
        let text = format!(
            "[[host]]\nname = \"vm1\"\nmacs = [\"52:54:00:00:00:01\"]\ndisk = {{ path = \"/dev/vda\" }}\n\
             ssh_authorized_keys = [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\"]\n\
             method = \"{method}\"\nimage = \"{image}\"\n"
        );
        Inventory::from_sources([("hosts.toml", text.as_str())]).unwrap()
    }

    fn config() -> Config {
        Config::parse("[assets]\ndir = \"/nonexistent/assets\"\n", Path::new("/"), None).unwrap()
    }

    #[test]
    fn either_image_flavour_is_a_known_asset() {
        for image in ["rootfs.tar.zst", "rootfs-cloud.tar.zst"] {
            check_host_images(&config(), &inventory(image, "image")).unwrap();
        }
    }

    #[test]
    fn rejects_an_image_that_is_no_asset_naming_host_and_field() {
        let e = check_host_images(&config(), &inventory("rootfs-trixie.tar.zst", "image")).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("\"vm1\"") && msg.contains("field `image`") && msg.contains("rootfs-trixie"), "{msg}");
        // a debian-installer host never fetches the image
        check_host_images(&config(), &inventory("rootfs-trixie.tar.zst", "debian-installer")).unwrap();
    }

    #[test]
    fn names_the_hosts_whose_image_file_is_missing() {
        let c = config();
        let inv = inventory("rootfs-cloud.tar.zst", "image");
        let missing = hosts_missing_their_image(&c, &inv);
        assert_eq!(missing, [("vm1", "rootfs-cloud.tar.zst", Path::new("/nonexistent/assets/rootfs-cloud.tar.zst"))]);
    }
}
