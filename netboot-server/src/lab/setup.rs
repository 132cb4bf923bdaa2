//! What `metalboot lab up` makes from the operator's config and inventory:
//! the lab server's config (the operator's, with the network parts
//! replaced), the lab's copy of the inventory (the selected hosts, armed,
//! with the lab's key), each host's firmware and its VM disks.

use super::vm::{Bus, Firmware};
use crate::config::Config;
use anyhow::{bail, Context, Result};
use metalboot_spec::{quote, DiskSelector, HostSpec, NetMode};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The lab's network: the server on the bridge, DHCP hands out the rest.
pub const SUBNET: &str = "10.99.0.0/24";
/// The lab server's HTTP port (iPXE, the operator API).
pub const HTTP_PORT: u16 = 8080;
/// The lab server's HTTPS port (the installer, the phone-home).
pub const TLS_PORT: u16 = 8443;

/// The hosts `--hosts` names, in inventory order (every host if none).
pub fn select<'a>(hosts: &'a [HostSpec], names: &[String]) -> Result<Vec<&'a HostSpec>> {
    for n in names {
        if !hosts.iter().any(|h| &h.name == n) {
            let known: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
            bail!("--hosts: no host {} in the inventory (it has: {})", quote(n), known.join(", "));
        }
    }
    let chosen: Vec<&HostSpec> = hosts.iter().filter(|h| names.is_empty() || names.contains(&h.name)).collect();
    if chosen.is_empty() {
        bail!("the inventory has no hosts: the lab boots one VM per inventory host");
    }
    for h in &chosen {
        if h.macs.is_empty() {
            bail!("host {}: no `macs`: its VM network-boots with the host's first MAC", quote(&h.name));
        }
        if h.network.mode == NetMode::Static {
            bail!(
                "host {}: static addressing; the lab gives every host an address by DHCP on its own network \
                 (leave it out with --hosts)",
                quote(&h.name)
            );
        }
    }
    Ok(chosen)
}

/// Each selected host's firmware from `--firmware` values: `bios` or `uefi`
/// for every host, `NAME=bios|uefi` for one (which wins); BIOS by default.
pub fn firmware(hosts: &[&HostSpec], args: &[String]) -> Result<BTreeMap<String, Firmware>> {
    let parse = |v: &str| match v {
        "bios" => Ok(Firmware::Bios),
        "uefi" => Ok(Firmware::Uefi),
        other => bail!("--firmware: {} is neither bios nor uefi", quote(other)),
    };
    let mut all = Firmware::Bios;
    let mut one = BTreeMap::new();
    for a in args {
        match a.split_once('=') {
            Some((name, fw)) => {
                if !hosts.iter().any(|h| h.name == name) {
                    bail!("--firmware {}: {} is not a host of this lab", quote(a), quote(name));
                }
                one.insert(name.to_string(), parse(fw)?);
            }
            None => all = parse(a)?,
        }
    }
    Ok(hosts.iter().map(|h| (h.name.clone(), one.get(&h.name).copied().unwrap_or(all))).collect())
}

/// One disk of a host's VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabDisk {
    /// Image file name in the host's directory.
    pub file: String,
    /// Serial number the guest sees.
    pub serial: String,
    /// Controller.
    pub bus: Bus,
    /// Size in bytes.
    pub size: u64,
}

/// The disks that make `host`'s selectors match: a serial where one is
/// asked for, a size inside `min_size`..`max_size` (else `default_size`),
/// the controller a `/dev/…` path names.
pub fn disks(host: &HostSpec, default_size: u64) -> Result<Vec<LabDisk>> {
    let selectors: Vec<&DiskSelector> = host.disk.iter().chain(host.disks.iter()).collect();
    if selectors.is_empty() {
        bail!("host {}: no `disk` or `disks` selector", quote(&host.name));
    }
    let mut out = Vec::new();
    for (i, sel) in selectors.iter().enumerate() {
        let what = |m: &str| format!("host {}, disk {}: {m}", quote(&host.name), i + 1);
        if sel.model.is_some() || sel.wwn.is_some() {
            bail!("{}", what("the lab's VM disks have no model or WWN to match; select by serial, size or path"));
        }
        let bus = match sel.path.as_deref() {
            None => Bus::Virtio,
            Some(p) => bus_of(p).ok_or_else(|| {
                anyhow::anyhow!(
                    "{}",
                    what(&format!("the lab makes /dev/vdX, /dev/sdX or /dev/nvmeXn1 disks, not {}", quote(p)))
                )
            })?,
        };
        let min = sel.min_size.map_or(0, |s| s.0);
        let max = sel.max_size.map_or(u64::MAX, |s| s.0);
        let size = default_size.clamp(min, max.max(min));
        // QEMU gives the guest at most 20 bytes of a serial
        if let Some(s) = sel.serial.as_deref().filter(|s| s.len() > 20 || !s.chars().all(|c| c.is_ascii_graphic())) {
            bail!(
                "{}",
                what(&format!("serial {} cannot be a VM disk's: at most 20 printable ASCII characters", quote(s)))
            );
        }
        let serial =
            sel.serial.clone().unwrap_or_else(|| format!("LAB{}-{}", i + 1, host.name).chars().take(20).collect());
        out.push(LabDisk { file: format!("disk{}.img", i + 1), serial, bus, size });
    }
    Ok(out)
}

/// The controller of a `/dev/vdX`, `/dev/sdX` or `/dev/nvmeXn1` path.
fn bus_of(path: &str) -> Option<Bus> {
    let dev = path.strip_prefix("/dev/")?;
    let one_letter = |rest: &str| rest.len() == 1 && rest.chars().all(|c| c.is_ascii_lowercase());
    if dev.strip_prefix("vd").is_some_and(one_letter) {
        Some(Bus::Virtio)
    } else if dev.strip_prefix("sd").is_some_and(one_letter) {
        Some(Bus::Sata)
    } else if dev.strip_prefix("nvme").and_then(|r| r.strip_suffix("n1")).is_some_and(|n| n.parse::<u8>().is_ok()) {
        Some(Bus::Nvme)
    } else {
        None
    }
}

/// The lab's inventory: the selected hosts, armed, each with `key` among
/// root's keys (and the admin user's own, if it lists them), and no
/// `handoff.ansible_host` (that is the production address).
pub fn inventory(hosts: &[&HostSpec], key: &str) -> Result<String> {
    #[derive(serde::Serialize)]
    struct File {
        host: Vec<HostSpec>,
    }
    let mut out = Vec::new();
    for h in hosts {
        let mut h = (*h).clone();
        h.arm = true;
        h.ssh_authorized_keys.push(key.to_string());
        if let Some(keys) = h.admin.as_mut().and_then(|a| a.ssh_authorized_keys.as_mut()) {
            keys.push(key.to_string());
        }
        h.handoff.ansible_host = None;
        out.push(h);
    }
    let text = toml::to_string(&File { host: out }).context("writing the lab's inventory")?;
    Ok(format!("# made by `metalboot lab up` from the operator's inventory\n{text}"))
}

/// The lab server's config: the operator's (`text`, read from `base`), its
/// relative paths made absolute; `[server]` on the lab network with its data
/// in `dir`, full DHCP and TFTP on the lab's bridge; no `[state]` (the lab
/// keeps its own) and no hooks (they act on the real world).
pub fn server_config(text: &str, base: &Path, cfg: &Config, dir: &Path) -> Result<String> {
    use toml::Value;
    let mut t: toml::Table = toml::from_str(text).context("reading the config again")?;
    let ip = super::netns::SERVER_IP;
    let abs = |p: &str| -> String {
        let p = Path::new(p);
        if p.is_absolute() { p.to_path_buf() } else { base.join(p) }.display().to_string()
    };
    let path = |p: &Path| Value::String(p.display().to_string());
    let old = t.remove("server").and_then(|v| v.as_table().cloned()).unwrap_or_default();
    let mut server = toml::Table::new();
    for key in ["console", "header_read_timeout_secs", "max_connections", "max_connections_per_ip"] {
        if let Some(v) = old.get(key) {
            server.insert(key.into(), v.clone());
        }
    }
    if let Some(tpl) = old.get("templates").and_then(Value::as_str) {
        server.insert("templates".into(), Value::String(abs(tpl)));
    }
    server.insert("listen".into(), Value::String(format!("{ip}:{HTTP_PORT}")));
    server.insert("public_url".into(), Value::String(format!("http://{ip}:{HTTP_PORT}")));
    server.insert("data_dir".into(), path(&dir.join("data")));
    server.insert("inventory".into(), path(&dir.join("hosts.toml")));
    server.insert("api_token_file".into(), path(&dir.join("api-token")));
    let mut tls = toml::Table::new();
    tls.insert("listen".into(), Value::String(format!("{ip}:{TLS_PORT}")));
    server.insert("tls".into(), Value::Table(tls));
    t.insert("server".into(), Value::Table(server));

    // every asset by its absolute path, wherever the operator's config put it
    let mut assets = toml::Table::new();
    assets.insert("files".into(), Value::Table(cfg.assets.iter().map(|(n, p)| (n.clone(), path(p))).collect()));
    t.remove("assets");
    t.insert("assets".into(), Value::Table(assets));

    let mut tftp = t.remove("tftp").and_then(|v| v.as_table().cloned()).unwrap_or_default();
    tftp.retain(|k, _| k == "files" || k == "max_transfers");
    absolute_files(&mut tftp, &abs);
    tftp.insert("listen".into(), Value::String(format!("{ip}:69")));
    t.insert("tftp".into(), Value::Table(tftp));

    let dhcp: toml::Table = toml::from_str(&format!(
        "mode = \"full\"\ninterface = \"br0\"\nsubnet = \"{SUBNET}\"\nrange = [\"10.99.0.100\", \"10.99.0.199\"]\n"
    ))
    .context("the lab's [dhcp]")?;
    t.insert("dhcp".into(), Value::Table(dhcp));
    t.remove("state");
    if let Some(h) = t.get_mut("handoff").and_then(Value::as_table_mut) {
        h.remove("hooks");
    }
    let text = toml::to_string(&t).context("writing the lab's config")?;
    Ok(format!("# made by `metalboot lab up` from {}\n{text}", cfg_origin(cfg)))
}

/// `files = { name = path }` with every path absolute.
fn absolute_files(t: &mut toml::Table, abs: &dyn Fn(&str) -> String) {
    if let Some(files) = t.get_mut("files").and_then(toml::Value::as_table_mut) {
        for (_, v) in files.iter_mut() {
            if let Some(p) = v.as_str() {
                *v = toml::Value::String(abs(p));
            }
        }
    }
}

fn cfg_origin(cfg: &Config) -> String {
    cfg.source.as_ref().map_or_else(|| "the embedded default config".into(), |p| p.display().to_string())
}

/// The operator's config text and the directory its relative paths start
/// from.
pub fn config_source(cfg: &Config) -> Result<(String, PathBuf)> {
    match &cfg.source {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading config {}", p.display()))?;
            let base = p.parent().filter(|b| !b.as_os_str().is_empty()).unwrap_or(Path::new("."));
            Ok((text, std::path::absolute(base).context("the config's directory")?))
        }
        None => Ok((crate::config::DEFAULT_CONFIG.to_string(), std::env::current_dir()?)),
    }
}

#[cfg(test)]
#[path = "setup_tests.rs"]
mod tests;
