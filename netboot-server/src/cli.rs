//! Command-line interface: `serve`, `check-config`, `hosts …` (through the
//! operator API) and `render …` (what a host would be served, for debugging).

use crate::operator::client::ApiClient;
use crate::operator::hosts::{self, HostsAction};
use crate::script::{self, Platform, Site};
use crate::serve::{self, load_all};
use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use metalboot_spec::quote;
use metalboot_spec::ImageRef;
use std::path::PathBuf;

/// metalboot: bare-metal bootstrap and netboot installer.
#[derive(Parser, Debug)]
#[command(name = "metalboot", version, about)]
pub struct Cli {
    /// Server configuration file (default: the embedded configuration).
    #[arg(long, global = true, env = "METALBOOT_CONFIG")]
    pub config: Option<PathBuf>,
    /// PEM file of CA certificates to trust, beside the system's, when
    /// talking to an https:// server (`--server`, `server.public_url`).
    #[arg(long, global = true, env = "METALBOOT_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the netboot server.
    Serve {
        /// Override server.listen (e.g. 127.0.0.1:0).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Write the bound address to this file once listening (and, with
        /// [server.tls], a second line `tls ADDRESS`).
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
    /// Validate the configuration and inventory; exit non-zero on error.
    CheckConfig,
    /// Inspect and change hosts through the operator API.
    Hosts {
        /// Server base URL (default: from the config's listen address).
        #[arg(long, env = "METALBOOT_SERVER")]
        server: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// What to do with the hosts.
        #[command(subcommand)]
        action: HostsAction,
    },
    /// The Ansible inventory of installed hosts, as an inventory script
    /// prints it (`--list`, `--host NAME`).
    Inventory {
        /// Server base URL (default: from the config's listen address).
        #[arg(long, env = "METALBOOT_SERVER")]
        server: Option<String>,
        /// Inventory format.
        #[command(subcommand)]
        format: InventoryFormat,
    },
    /// Write known_hosts lines (name and addresses) for every installed host.
    KnownHosts {
        /// Server base URL (default: from the config's listen address).
        #[arg(long, env = "METALBOOT_SERVER")]
        server: Option<String>,
        /// Write here (atomically) instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Print SSHFP records (SHA-256) for every installed host's keys.
    Sshfp {
        /// Server base URL (default: from the config's listen address).
        #[arg(long, env = "METALBOOT_SERVER")]
        server: Option<String>,
        /// Zone the host names live in (owner names become absolute).
        #[arg(long)]
        domain: Option<String>,
    },
    /// Reinstall a running Linux server in place over SSH: discover its
    /// disks and network, confirm, start the installer (kexec, else a
    /// one-shot GRUB entry), follow it until the new system phones home. It
    /// comes back on the same addresses.
    Reinstall {
        /// Target, disk and confirmation options.
        #[command(flatten)]
        opts: crate::operator::reinstall::run::Options,
        /// Server base URL (default: from the config's listen address).
        #[arg(long, env = "METALBOOT_SERVER")]
        server: Option<String>,
    },
    /// Have the running server read its inventory again (as SIGHUP does)
    /// and wait for the outcome: exit non-zero, with the reason, when the
    /// new inventory was refused. The service's `systemctl reload`.
    Reload {
        /// Server base URL (default: from the config's listen address).
        #[arg(long, env = "METALBOOT_SERVER")]
        server: Option<String>,
    },
    /// HTTPS certificate tools.
    Tls {
        /// What to do.
        #[command(subcommand)]
        action: TlsAction,
    },
    /// The inventory's hosts as QEMU VMs on a private network, installed
    /// through the production path, for testing the config layer (root).
    Lab(crate::lab::LabArgs),
    /// Print what a host would be served.
    Render {
        /// What to render.
        #[command(subcommand)]
        what: RenderWhat,
    },
    /// Write the manual pages and shell completions made from this command
    /// line's own definition into DIR (for packaging).
    #[command(hide = true)]
    GenerateDocs {
        /// Output directory (`man/` and `completions/` under it).
        dir: PathBuf,
    },
}

/// `tls` actions.
#[derive(Subcommand, Debug)]
pub enum TlsAction {
    /// Print the pin of the certificate `serve` uses (`sha256//BASE64`, as
    /// curl's --pinnedpubkey takes it). Reads the certificate file only;
    /// generates nothing.
    Fingerprint,
}

/// `inventory` formats.
#[derive(Subcommand, Debug)]
pub enum InventoryFormat {
    /// Ansible's dynamic inventory JSON.
    Ansible {
        /// Every group and host (the default).
        #[arg(long)]
        list: bool,
        /// One host's variables.
        #[arg(long, conflicts_with = "list")]
        host: Option<String>,
    },
}

/// `render` targets.
#[derive(Subcommand, Debug)]
pub enum RenderWhat {
    /// The installer iPXE script an armed host gets.
    Ipxe {
        /// Host name.
        host: String,
        /// Firmware platform.
        #[arg(long, value_enum, default_value = "pcbios")]
        platform: PlatformArg,
        /// Options shared by `render` targets.
        #[command(flatten)]
        common: RenderArgs,
    },
    /// The Debian installer preseed.
    Preseed {
        /// Host name.
        host: String,
        /// Options shared by `render` targets.
        #[command(flatten)]
        common: RenderArgs,
    },
    /// The install plan (JSON).
    Plan {
        /// Host name.
        host: String,
        /// Options shared by `render` targets.
        #[command(flatten)]
        common: RenderArgs,
    },
}

/// Options shared by `render` targets.
#[derive(clap::Args, Debug)]
pub struct RenderArgs {
    /// Base URL to render with (default: server.public_url, else from listen).
    #[arg(long)]
    base_url: Option<String>,
    /// Token to render with (default: a placeholder; real tokens are issued at boot).
    #[arg(long, default_value = "RENDER-ONLY-TOKEN")]
    token: String,
}

/// `--platform`.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum PlatformArg {
    /// Legacy BIOS.
    Pcbios,
    /// UEFI.
    Efi,
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let cfg_path = cli.config.as_deref();
    let ca_file = cli.ca_file.as_deref();
    match cli.command {
        Command::Serve { listen, ready_file } => serve::run(cfg_path, listen, ready_file.as_deref()).await,
        Command::GenerateDocs { dir } => crate::docs::write(<Cli as clap::CommandFactory>::command(), &dir),
        Command::CheckConfig => {
            let (config, inv, _) = load_all(cfg_path)?;
            let https = config.tls.as_ref().map(|tls| check_tls(&config, tls)).transpose()?;
            let missing: Vec<&String> = config.assets.iter().filter(|(_, p)| !p.is_file()).map(|(n, _)| n).collect();
            println!(
                "{}: OK, {} host(s), {} asset(s) configured",
                config.source.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "embedded config".into()),
                inv.hosts().len(),
                config.assets.len()
            );
            if config.dhcp.mode != crate::dhcp::DhcpMode::Off {
                println!(
                    "dhcp: {} on {}, router advertisements {}",
                    format!("{:?}", config.dhcp.mode).to_lowercase(),
                    config.dhcp.interface.as_deref().unwrap_or("(no interface)"),
                    if config.dhcp.router_advertisements_on() { "on" } else { "off" }
                );
                for p in config.dhcp.relayed_pools().unwrap_or_default() {
                    println!("dhcp: relayed subnet {} ({} to {})", p.subnet, p.range_start, p.range_end);
                }
            }
            if let Some(line) = https {
                println!("{line}");
            }
            if !missing.is_empty() {
                println!(
                    "note: asset files not present yet: {}",
                    missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                );
            }
            for (host, image, path) in serve::hosts_missing_their_image(&config, &inv) {
                println!("note: host {host:?} installs {image}, which is not there yet ({})", path.display());
            }
            Ok(())
        }
        Command::Reload { server } => {
            let config = crate::config::Config::load(cfg_path)?;
            let base = server.unwrap_or_else(|| local_base(&config));
            let client = ApiClient::new(&base, &serve::api_token(&config, false)?, ca_file)?;
            let said = tokio::task::spawn_blocking(move || client.reload()).await.context("reloading")??;
            println!("{said}");
            Ok(())
        }
        Command::Hosts { server, json, action } => {
            let (config, _, _) = load_all(cfg_path)?;
            let base = server.unwrap_or_else(|| local_base(&config));
            let token = serve::api_token(&config, false)?;
            let client = ApiClient::new(&base, &token, ca_file)?;
            tokio::task::spawn_blocking(move || hosts::hosts_command(&client, action, json))
                .await
                .context("running hosts command")?
        }
        Command::Render { what } => render(cfg_path, what),
        Command::Lab(args) => {
            let cfg = cfg_path.map(std::path::Path::to_path_buf);
            let code = tokio::task::spawn_blocking(move || crate::lab::run(cfg.as_deref(), args)).await??;
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
        Command::Tls { action: TlsAction::Fingerprint } => {
            let config = crate::config::Config::load(cfg_path)?;
            let origin = crate::tls::config_origin(config.source.as_deref());
            let tls = config.tls.as_ref().with_context(|| format!("{origin}: no [server.tls] section"))?;
            println!("{}", crate::tls::read_pin(&tls.source).with_context(|| origin)?);
            Ok(())
        }
        Command::Reinstall { opts: o, server } => {
            let client = api_client(cfg_path, ca_file, server)?;
            tokio::task::spawn_blocking(move || crate::operator::reinstall::run::run(&client, &o))
                .await
                .context("reinstall")?
        }
        Command::Inventory { server, format: InventoryFormat::Ansible { host, .. } } => {
            let client = api_client(cfg_path, ca_file, server)?;
            let doc = tokio::task::spawn_blocking(move || client.ansible(host.as_deref())).await??;
            println!("{}", serde_json::to_string_pretty(&doc)?);
            Ok(())
        }
        Command::KnownHosts { server, output } => {
            let client = api_client(cfg_path, ca_file, server)?;
            tokio::task::spawn_blocking(move || hosts::known_hosts_command(&client, output.as_deref())).await?
        }
        Command::Sshfp { server, domain } => {
            let client = api_client(cfg_path, ca_file, server)?;
            let text =
                tokio::task::spawn_blocking(move || hosts::sshfp_text(&client.list()?, domain.as_deref())).await??;
            print!("{text}");
            Ok(())
        }
    }
}

/// `check-config` on `[server.tls]`: given files must load (the key fitting
/// the certificate); a generated certificate is read if it is there yet.
fn check_tls(config: &crate::config::Config, tls: &crate::tls::TlsConfig) -> Result<String> {
    use crate::tls::CertSource;
    let origin = || crate::tls::config_origin(config.source.as_deref());
    let path = tls.source.cert_path();
    let pin = match &tls.source {
        CertSource::Files { .. } => crate::tls::load_or_create(&tls.source).with_context(origin)?.pin,
        CertSource::Generated { .. } if path.exists() => crate::tls::read_pin(&tls.source)?,
        CertSource::Generated { .. } => {
            return Ok(format!("https: {}, certificate made on first start in {}", tls.listen, path.display()))
        }
    };
    Ok(format!("https: {}, pin {pin}", tls.listen))
}

fn api_client(
    cfg_path: Option<&std::path::Path>,
    ca_file: Option<&std::path::Path>,
    server: Option<String>,
) -> Result<ApiClient> {
    let (config, _, _) = load_all(cfg_path)?;
    let base = server.unwrap_or_else(|| local_base(&config));
    let token = serve::api_token(&config, false)?;
    ApiClient::new(&base, &token, ca_file)
}

fn local_base(config: &crate::config::Config) -> String {
    if let Some(u) = &config.public_url {
        return u.clone();
    }
    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{addr}")
}

fn render(cfg_path: Option<&std::path::Path>, what: RenderWhat) -> Result<()> {
    let (config, inv, renderer) = load_all(cfg_path)?;
    let (name, common) = match &what {
        RenderWhat::Ipxe { host, common, .. }
        | RenderWhat::Preseed { host, common }
        | RenderWhat::Plan { host, common } => (host, common),
    };
    let host = inv.get(name).with_context(|| format!("no host {} in the inventory", quote(name)))?;
    let base = match &common.base_url {
        Some(b) => {
            crate::config::check_base_url(b)?;
            b.trim_end_matches('/').to_string()
        }
        None => local_base(&config),
    };
    // plain HTTP: `render` does not read the TLS key, so it has no pin to hand out
    let site = Site { base_url: &base, tls: None, console: &config.console, debian: &config.debian_installer };
    let out = match what {
        RenderWhat::Ipxe { platform, .. } => {
            let mac =
                host.macs.first().copied().with_context(|| format!("host {} has no MAC to boot with", quote(name)))?;
            let p = match platform {
                PlatformArg::Pcbios => Platform::Pcbios,
                PlatformArg::Efi => Platform::Efi,
            };
            script::install_script(&renderer, &site, host, &mac, p, &common.token)?
        }
        RenderWhat::Preseed { .. } => script::preseed(&renderer, &site, host, &common.token)?,
        RenderWhat::Plan { .. } => {
            let assets = crate::assets::Assets::new(config.assets.clone());
            let image = match assets.info(&host.image) {
                Ok(i) => ImageRef { url: format!("{base}/assets/{}", host.image), sha256: i.sha256, size: i.size },
                Err(e) => {
                    eprintln!("warning: {e}; plan shows a zero checksum");
                    ImageRef { url: format!("{base}/assets/{}", host.image), sha256: "0".repeat(64), size: 0 }
                }
            };
            serde_json::to_string_pretty(&crate::plan::plan(&site, host, image))? + "\n"
        }
    };
    print!("{out}");
    Ok(())
}
