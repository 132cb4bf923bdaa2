//! Bringing up the installer's network: find the NIC by MAC (BOOTIF or the
//! plan), then DHCP with busybox `udhcpc` or static addresses with `ip`,
//! including a gateway outside the subnet (added on-link).

use anyhow::{bail, Context, Result};
use metalboot_spec::bootargs::{NetConfig, StaticIp, StaticIp6};
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

/// Adds the static IPv6 of `metalboot.ip6` (duplicate address detection
/// off, so it is usable at once) and its default route. Returns a summary.
pub fn bring_up_ip6(iface: &str, six: &StaticIp6) -> Result<String> {
    let dad = format!("/proc/sys/net/ipv6/conf/{iface}/accept_dad");
    std::fs::write(&dad, "0").with_context(|| format!("writing {dad} (is IPv6 in this kernel?)"))?;
    ip(&["-6", "addr", "add", &format!("{}/{}", six.address, six.prefix), "dev", iface])?;
    if let Some(gw) = six.gateway {
        ip(&["-6", "route", "replace", "default", "via", &gw.to_string(), "dev", iface, "onlink"])?;
    }
    Ok(format!(
        "{iface}: static {}/{} gateway6 {}",
        six.address,
        six.prefix,
        six.gateway.map(|g| g.to_string()).unwrap_or("-".into())
    ))
}

/// Proves the carried network reaches its gateway, for a standalone
/// install that has no server to reach before it writes anything: the IPv4
/// gateway must answer ARP from our address; without one, the IPv6 gateway
/// must answer ping or at least neighbour discovery.
pub fn prove_gateway(iface: &str, cfg: &NetConfig, six: Option<&StaticIp6>) -> Result<String> {
    match (cfg, six) {
        (NetConfig::Static(StaticIp { gateway: Some(gw), address, .. }), _) => {
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
        (_, Some(StaticIp6 { gateway: Some(gw), address, .. })) => {
            let g = gw.to_string();
            let ping = Command::new(BUSYBOX).args(["ping", "-6", "-c", "3", "-w", "8", &g]).output();
            if ping.is_ok_and(|o| o.status.success()) {
                return Ok(format!("gateway6 {g} answers ping on {iface}"));
            }
            let neigh = Command::new(BUSYBOX).args(["ip", "-6", "neigh", "show", &g, "dev", iface]).output();
            let n = neigh.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
            if n.contains("lladdr") {
                return Ok(format!("gateway6 {g} answers neighbour discovery on {iface} ({n})"));
            }
            bail!("gateway6 {g} answers neither ping nor neighbour discovery on {iface} from {address}")
        }
        (NetConfig::Static(_), _) => Ok(format!("{iface}: static without a gateway; nothing to prove")),
        (NetConfig::Dhcp, _) => Ok(format!("{iface}: a DHCP lease was obtained")),
        (NetConfig::Off, Some(_)) => Ok(format!("{iface}: IPv6 without a gateway; nothing to prove")),
        (NetConfig::Off, None) => bail!("ip=off and no metalboot.ip6: a standalone install needs the network it keeps"),
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
