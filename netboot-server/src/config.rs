//! The server's configuration file, `metalboot.toml`: where to listen, where
//! state and assets live, where the inventory is. Loaded and validated once at
//! start-up; an invalid file stops start-up with a message naming the file and
//! the field. With no file at all, an embedded default is used.

use crate::http::listen::HttpLimits;
use anyhow::{bail, Context, Result};
use metalboot_spec::quote;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The embedded default configuration (used when no `--config` is given).
pub const DEFAULT_CONFIG: &str = include_str!("default-config.toml");

/// Standard asset names the templates refer to.
pub const ASSET_KERNEL: &str = "vmlinuz";
/// The installer initramfs.
pub const ASSET_INITRAMFS: &str = "initramfs.img";
/// The default root filesystem image: Debian's generic kernel, for bare metal.
pub const ASSET_ROOTFS: &str = "rootfs.tar.zst";
/// The same image with Debian's cloud kernel, for VMs and VPSs (a host's
/// `image = "rootfs-cloud.tar.zst"`).
pub const ASSET_ROOTFS_CLOUD: &str = "rootfs-cloud.tar.zst";
/// Debian netboot installer kernel.
pub const ASSET_DI_KERNEL: &str = "di-linux";
/// Debian netboot installer initrd.
pub const ASSET_DI_INITRD: &str = "di-initrd.gz";

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    server: ServerSection,
    #[serde(default)]
    assets: AssetsSection,
    #[serde(default)]
    debian_installer: DebianInstallerConfig,
    #[serde(default)]
    dhcp: crate::dhcp::DhcpConfig,
    #[serde(default)]
    tftp: crate::tftp::TftpConfig,
    #[serde(default)]
    handoff: crate::handoff::HandoffConfig,
    #[serde(default)]
    state: StateConfig,
}

/// `[state]`: where hosts, tokens, timelines and leases live.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// `postgres://user[:password]@host[:port]/db` (a Unix socket directory
    /// as a %2F-encoded host): one database several servers share. Unset:
    /// `state.db` in the data directory, for one server.
    pub url: Option<String>,
}

impl StateConfig {
    fn validate(&self) -> Result<()> {
        if let Some(u) = &self.url {
            if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
                anyhow::bail!(
                    "field `state.url`: must be postgres://… or postgresql://… (unset: SQLite in the data dir)"
                );
            }
        }
        Ok(())
    }
}

/// Settings for hosts installed with `method = "debian-installer"`.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct DebianInstallerConfig {
    /// Debian mirror URL, `http://host[:port]/path`; required for such hosts.
    pub mirror: Option<String>,
    /// HTTP proxy for the installer, optional.
    pub proxy: Option<String>,
    /// Suite to install.
    #[serde(default = "default_suite")]
    pub suite: String,
}

fn default_suite() -> String {
    "bookworm".into()
}

impl Default for DebianInstallerConfig {
    fn default() -> Self {
        DebianInstallerConfig { mirror: None, proxy: None, suite: default_suite() }
    }
}

impl DebianInstallerConfig {
    /// The mirror split into host (with port) and directory.
    pub fn mirror_parts(&self) -> Option<(&str, &str)> {
        let m = self.mirror.as_deref()?;
        let rest = m.strip_prefix("http://")?;
        Some(match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        })
    }
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct ServerSection {
    #[serde(default = "default_listen")]
    listen: SocketAddr,
    public_url: Option<String>,
    public_url_tls: Option<String>,
    tls: Option<crate::tls::TlsSection>,
    #[serde(default = "default_data_dir")]
    data_dir: PathBuf,
    inventory: Option<PathBuf>,
    templates: Option<PathBuf>,
    api_token_file: Option<PathBuf>,
    #[serde(default = "default_console")]
    console: Vec<String>,
    #[serde(default = "default_header_read_timeout")]
    header_read_timeout_secs: u64,
    #[serde(default = "default_max_connections")]
    max_connections: usize,
    #[serde(default = "default_max_connections_per_ip")]
    max_connections_per_ip: usize,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: default_listen(),
            public_url: None,
            public_url_tls: None,
            tls: None,
            data_dir: default_data_dir(),
            inventory: None,
            templates: None,
            api_token_file: None,
            console: default_console(),
            header_read_timeout_secs: default_header_read_timeout(),
            max_connections: default_max_connections(),
            max_connections_per_ip: default_max_connections_per_ip(),
        }
    }
}

fn default_listen() -> SocketAddr {
    "0.0.0.0:8080".parse().expect("constant address parses")
}
fn default_data_dir() -> PathBuf {
    "/var/lib/metalboot".into()
}
fn default_console() -> Vec<String> {
    vec!["console=tty0".into(), "console=ttyS0,115200n8".into()]
}
fn default_header_read_timeout() -> u64 {
    HttpLimits::default().header_read_timeout.as_secs()
}
fn default_max_connections() -> usize {
    HttpLimits::default().max_connections
}
fn default_max_connections_per_ip() -> usize {
    HttpLimits::default().max_connections_per_ip
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct AssetsSection {
    dir: Option<PathBuf>,
    #[serde(default)]
    files: BTreeMap<String, PathBuf>,
}

/// The validated server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// File it came from (`None` for the embedded default).
    pub source: Option<PathBuf>,
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// Base URL hosts reach the server at; `None`: taken from the request's Host.
    pub public_url: Option<String>,
    /// HTTPS base URL hosts reach the server at; `None`: the host of the HTTP
    /// base URL on the `[server.tls]` port.
    pub public_url_tls: Option<String>,
    /// HTTPS, if `[server.tls]` is there.
    pub tls: Option<crate::tls::TlsConfig>,
    /// State database and generated secrets live here.
    pub data_dir: PathBuf,
    /// Inventory file or directory; `None`: no hosts.
    pub inventory: Option<PathBuf>,
    /// Template directory; `None`: the templates embedded in the binary.
    pub templates: Option<PathBuf>,
    /// File holding the operator API token; `None`: `METALBOOT_API_TOKEN` or a generated one.
    pub api_token_file: Option<PathBuf>,
    /// Console arguments for kernels we boot.
    pub console: Vec<String>,
    /// HTTP connection limits and timeouts.
    pub http_limits: HttpLimits,
    /// Whitelisted assets: URL name → file.
    pub assets: BTreeMap<String, PathBuf>,
    /// Debian installer settings.
    pub debian_installer: DebianInstallerConfig,
    /// DHCP settings.
    pub dhcp: crate::dhcp::DhcpConfig,
    /// TFTP settings.
    pub tftp: crate::tftp::TftpConfig,
    /// Handoff: first-boot timeout and hooks.
    pub handoff: crate::handoff::HandoffConfig,
    /// Where the state lives.
    pub state: StateConfig,
}

impl Config {
    /// Loads and validates `path`, or the embedded default when `None`.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("reading config {}", p.display()))?;
                let base = p.parent().unwrap_or(Path::new(".")).to_path_buf();
                Self::parse(&text, &base, Some(p.to_path_buf())).with_context(|| format!("in config {}", p.display()))
            }
            None => Self::parse(DEFAULT_CONFIG, Path::new("."), None).context("in the embedded default config"),
        }
    }

    /// Parses config text; relative paths are taken from `base`.
    pub fn parse(text: &str, base: &Path, source: Option<PathBuf>) -> Result<Config> {
        let de = toml::Deserializer::new(text);
        let file: ConfigFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            anyhow::anyhow!("{}", metalboot_spec::parse_error(&path, e.into_inner().message()))
        })?;
        let abs = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
        let s = file.server;
        let http_limits = HttpLimits::new(s.header_read_timeout_secs, s.max_connections, s.max_connections_per_ip)?;
        if let Some(u) = &s.public_url {
            check_base_url(u).with_context(|| "field `server.public_url`")?;
        }
        if let Some(u) = &s.public_url_tls {
            check_base_url(u).context("field `server.public_url_tls`")?;
            if !u.starts_with("https://") || s.tls.is_none() {
                bail!("field `server.public_url_tls`: {} must be an https:// URL served by [server.tls]", quote(u));
            }
        }
        for (i, c) in s.console.iter().enumerate() {
            metalboot_spec::safe::check_word(c, 128)
                .map_err(|m| anyhow::anyhow!("field `server.console[{i}]`: {m}"))?;
        }
        let di = file.debian_installer;
        if let Some(m) = &di.mirror {
            check_base_url(m).context("field `debian_installer.mirror`")?;
            if !m.starts_with("http://") {
                bail!("field `debian_installer.mirror`: the Debian installer needs an http:// mirror");
            }
        }
        if let Some(p) = &di.proxy {
            check_base_url(p).context("field `debian_installer.proxy`")?;
        }
        metalboot_spec::safe::check_label(&di.suite)
            .map_err(|m| anyhow::anyhow!("field `debian_installer.suite`: {m}"))?;
        let data_dir = abs(&s.data_dir);
        let public = [s.public_url_tls.as_deref(), s.public_url.as_deref()];
        let tls = s.tls.map(|t| t.resolve(abs, &data_dir, &public)).transpose()?;
        let asset_dir = abs(&file.assets.dir.unwrap_or_else(|| data_dir.join("assets")));
        let mut assets = BTreeMap::new();
        for name in [ASSET_KERNEL, ASSET_INITRAMFS, ASSET_ROOTFS, ASSET_ROOTFS_CLOUD, ASSET_DI_KERNEL, ASSET_DI_INITRD]
        {
            assets.insert(name.to_string(), asset_dir.join(name));
        }
        // iPXE binaries are also served over HTTP (UEFI HTTP Boot)
        for (name, path) in &file.tftp.files {
            check_asset_name(name).map_err(|m| anyhow::anyhow!("field `tftp.files.{}`: {m}", quote(name)))?;
            assets.insert(name.clone(), abs(path));
        }
        for (name, path) in &file.assets.files {
            check_asset_name(name).map_err(|m| anyhow::anyhow!("field `assets.files.{}`: {m}", quote(name)))?;
            assets.insert(name.clone(), abs(path));
        }
        file.dhcp.validate()?;
        file.tftp.validate()?;
        file.state.validate()?;
        let mut handoff = file.handoff;
        handoff.validate()?;
        for (i, h) in handoff.hooks.iter_mut().enumerate() {
            h.secret_file = h.secret_file.as_deref().map(abs);
            h.ca_file = h.ca_file.as_deref().map(abs);
            if let Some(ca) = &h.ca_file {
                crate::tls::client::read_ca_file(ca)
                    .map_err(|e| anyhow::anyhow!("field `handoff.hooks[{i}].ca_file`: {e:#}"))?;
            }
        }
        Ok(Config {
            handoff,
            state: file.state,
            source,
            listen: s.listen,
            public_url: s.public_url.map(|u| u.trim_end_matches('/').to_string()),
            public_url_tls: s.public_url_tls.map(|u| u.trim_end_matches('/').to_string()),
            tls,
            data_dir,
            inventory: s.inventory.map(|p| abs(&p)),
            templates: s.templates.map(|p| abs(&p)),
            api_token_file: s.api_token_file.map(|p| abs(&p)),
            console: s.console,
            http_limits,
            assets,
            debian_installer: di,
            dhcp: file.dhcp,
            tftp: crate::tftp::TftpConfig {
                files: file.tftp.files.iter().map(|(k, v)| (k.clone(), abs(v))).collect(),
                ..file.tftp
            },
        })
    }
}

/// An asset's URL name: one safe path component.
pub fn check_asset_name(name: &str) -> Result<(), String> {
    metalboot_spec::safe::check_word(name, 128)?;
    if name.contains('/') || name.starts_with('.') || name.contains(',') || name.contains('=') {
        return Err(format!("{} must be a plain file name", quote(name)));
    }
    Ok(())
}

/// A base URL we put into scripts: `http(s)://host[:port][/path]`, safe characters only.
pub fn check_base_url(u: &str) -> Result<()> {
    let rest = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"))
        .with_context(|| format!("{} must start with http:// or https://", quote(u)))?;
    if rest.is_empty() || rest.starts_with('/') {
        bail!("{} has no host", quote(u));
    }
    if let Some(c) = rest.chars().find(|c| !(c.is_ascii_alphanumeric() || "._-:/[]".contains(*c))) {
        bail!("{} contains {c:?}; only letters, digits and . _ - : / [ ] are allowed", quote(u));
    }
    Ok(())
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
