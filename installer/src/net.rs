//! Bringing up the installer's network: find the NIC by MAC (BOOTIF or the
//! plan), then DHCP with busybox `udhcpc` or static addresses with `ip`,
//! including a gateway outside the subnet (added on-link).

use crate::cmdline::{NetConfig, StaticIp};
use anyhow::{bail, Context, Result};
use metalboot_spec::MacAddr;
use std::process::Command;
use std::time::{Duration, Instant};

const BUSYBOX: &str = "/usr/bin/busybox";

fn ip(args: &[&str]) -> Result<()> {
    let st = Command::new(BUSYBOX).arg("ip").args(args).status().context("running ip")?;
    if !st.success() {
        bail!("ip {} failed", args.join(" "));
    }
    Ok(())
}

/// Interfaces (name, MAC) from `/sys/class/net`, without loopback.
pub fn interfaces() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let mac = std::fs::read_to_string(e.path().join("address")).ok()?.trim().to_string();
                    (name != "lo").then_some((name, mac))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Waits for the NIC with `mac` (or any NIC) to appear; returns its name.
pub fn find_interface(mac: Option<&MacAddr>, wait: Duration) -> Result<String> {
    let start = Instant::now();
    loop {
        let ifs = interfaces();
        let found = match mac {
            Some(m) => ifs.iter().find(|(_, a)| a.parse::<MacAddr>().ok().as_ref() == Some(m)),
            None => ifs.first(),
        };
        if let Some((name, _)) = found {
            return Ok(name.clone());
        }
        if start.elapsed() > wait {
            bail!(
                "no network interface {}; present: {}",
                mac.map(|m| format!("with MAC {m}")).unwrap_or_default(),
                ifs.iter().map(|(n, a)| format!("{n} ({a})")).collect::<Vec<_>>().join(", ")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Configures `iface` per `cfg`. Returns a one-line summary.
pub fn bring_up(iface: &str, cfg: &NetConfig) -> Result<String> {
    ip(&["link", "set", "lo", "up"])?;
    ip(&["link", "set", iface, "up"])?;
    match cfg {
        NetConfig::Off => Ok(format!("{iface}: left unconfigured (ip=off)")),
        NetConfig::Dhcp => {
            let out = Command::new(BUSYBOX)
                .args([
                    "udhcpc",
                    "-i",
                    iface,
                    "-s",
                    "/usr/share/udhcpc/default.script",
                    "-q",
                    "-f",
                    "-n",
                    "-t",
                    "15",
                    "-T",
                    "2",
                ])
                .output()
                .context("running udhcpc")?;
            if !out.status.success() {
                bail!("DHCP on {iface} got no lease: {}", String::from_utf8_lossy(&out.stderr).trim());
            }
            let lease = String::from_utf8_lossy(&out.stderr)
                .lines()
                .find(|l| l.contains("lease of"))
                .unwrap_or("")
                .trim()
                .to_string();
            Ok(format!("{iface}: DHCP {lease}"))
        }
        NetConfig::Static(s) => {
            configure_static(iface, s)?;
            Ok(format!(
                "{iface}: static {}/{} gateway {}",
                s.address,
                s.prefix,
                s.gateway.map(|g| g.to_string()).unwrap_or("-".into())
            ))
        }
    }
}

/// Proves the carried network reaches its IPv4 gateway (it answers ARP from
/// our address), for a standalone install that has no server to reach
/// before it writes anything.
pub fn prove_gateway(iface: &str, cfg: &NetConfig) -> Result<String> {
    match cfg {
        NetConfig::Static(StaticIp { gateway: Some(gw), address, .. }) => {
            let (src, gw) = (address.to_string(), gw.to_string());
            let out = Command::new(BUSYBOX)
                .args(["arping", "-f", "-c", "5", "-w", "8", "-I", iface, "-s", &src, &gw])
                .output()
                .context("running arping")?;
            if !out.status.success() {
                bail!(
                    "gateway {gw} does not answer ARP on {iface} from {src}: {}",
                    String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or("").trim()
                );
            }
            Ok(format!("gateway {gw} answers ARP on {iface}"))
        }
        NetConfig::Static(_) => Ok(format!("{iface}: static without a gateway; nothing to prove")),
        NetConfig::Dhcp => Ok(format!("{iface}: a DHCP lease was obtained")),
        NetConfig::Off => bail!("ip=off: a standalone install needs the network it keeps"),
    }
}

fn configure_static(iface: &str, s: &StaticIp) -> Result<()> {
    ip(&["addr", "add", &format!("{}/{}", s.address, s.prefix), "dev", iface])?;
    if let Some(gw) = s.gateway {
        let g = gw.to_string();
        // onlink: the gateway may be outside the subnet (a /32 with a provider gateway)
        ip(&["route", "replace", "default", "via", &g, "dev", iface, "onlink"])?;
    }
    let mut resolv = String::new();
    for d in &s.dns {
        resolv.push_str(&format!("nameserver {d}\n"));
    }
    std::fs::write("/etc/resolv.conf", resolv).context("writing /etc/resolv.conf")?;
    Ok(())
}
