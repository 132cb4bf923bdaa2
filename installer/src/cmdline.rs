//! The installer's inputs from the kernel command line: `metalboot.url`,
//! `metalboot.host`, `metalboot.token`, `metalboot.plan` (a local plan file),
//! `metalboot.action`, `BOOTIF` (pxelinux style, the NIC that booted) and the
//! kernel's `ip=` syntax for static networking
//! (`ip=<client>:<server>:<gw>:<netmask>:<hostname>:<device>:<autoconf>:<dns0>:<dns1>`).

use metalboot_spec::MacAddr;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Static IPv4 settings from `ip=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticIp {
    /// Our address.
    pub address: Ipv4Addr,
    /// Prefix length from the netmask.
    pub prefix: u8,
    /// Default gateway.
    pub gateway: Option<Ipv4Addr>,
    /// Hostname field.
    pub hostname: Option<String>,
    /// Device name field.
    pub device: Option<String>,
    /// Resolvers.
    pub dns: Vec<Ipv4Addr>,
}

/// Static IPv6 from `metalboot.ip6=ADDR/LEN[,GATEWAY]`, next to (or instead
/// of, with `ip=off`) the IPv4 of `ip=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticIp6 {
    /// Our address.
    pub address: Ipv6Addr,
    /// Prefix length.
    pub prefix: u8,
    /// Default gateway (may be link-local or off-prefix: on-link).
    pub gateway: Option<Ipv6Addr>,
}

/// Parses `metalboot.ip6`.
pub fn parse_ip6(v: &str) -> Result<StaticIp6, CmdlineError> {
    let bad = |why: &str| CmdlineError::Bad(format!("metalboot.ip6={v:?}: {why}"));
    let (cidr, gw) = match v.split_once(',') {
        Some((c, g)) => (c, Some(g)),
        None => (v, None),
    };
    let (a, len) = cidr.split_once('/').ok_or_else(|| bad("expected ADDR/LEN[,GATEWAY]"))?;
    let address: Ipv6Addr = a.parse().map_err(|_| bad("address is not IPv6"))?;
    let prefix: u8 = len.parse().ok().filter(|p| *p <= 128).ok_or_else(|| bad("prefix length is not 0-128"))?;
    let gateway = gw.map(|g| g.parse::<Ipv6Addr>().map_err(|_| bad("gateway is not IPv6"))).transpose()?;
    Ok(StaticIp6 { address, prefix, gateway })
}

/// How the installer brings up its network.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NetConfig {
    /// DHCP on the boot NIC (default).
    #[default]
    Dhcp,
    /// Static from `ip=`.
    Static(StaticIp),
    /// `ip=off`/`none`: leave the network alone.
    Off,
}

/// Everything the installer takes from `/proc/cmdline`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BootArgs {
    /// Server base URL.
    pub url: Option<String>,
    /// Host name in the inventory.
    pub host: Option<String>,
    /// Install token.
    pub token: Option<String>,
    /// A local plan file instead of fetching one.
    pub plan: Option<String>,
    /// What to do: `install` (default) or `probe` (print facts, power off).
    pub action: Option<String>,
    /// NIC that booted, from `BOOTIF=01-aa-bb-…`.
    pub bootif: Option<MacAddr>,
    /// Network config.
    pub net: NetConfig,
    /// Static IPv6, from `metalboot.ip6`.
    pub ip6: Option<StaticIp6>,
    /// `metalboot.fallback=reboot`: when anything fails before the first
    /// write (no network, no server, the disk refused, no random seed),
    /// reboot instead of stopping: a kexec'd installer, or one started from
    /// a one-shot GRUB entry, then comes back up as the old system.
    pub fallback_reboot: bool,
    /// `metalboot.standalone`: the plan, image and host keys came inside the
    /// initramfs (`metalboot.plan`); nothing is fetched or reported. The
    /// carried network is still brought up and must reach its gateway
    /// before anything is written.
    pub standalone: bool,
}

/// Why the command line could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CmdlineError {
    /// A value did not parse.
    #[error("kernel command line: {0}")]
    Bad(String),
}

fn prefix_of(mask: Ipv4Addr) -> Result<u8, CmdlineError> {
    let m = u32::from(mask);
    if m.leading_ones() + m.trailing_zeros() != 32 {
        return Err(CmdlineError::Bad(format!("netmask {mask} is not contiguous")));
    }
    Ok(m.leading_ones() as u8)
}

/// Parses the kernel's `ip=` value.
pub fn parse_ip(v: &str) -> Result<NetConfig, CmdlineError> {
    match v {
        "dhcp" | "on" | "any" | "both" | "" => return Ok(NetConfig::Dhcp),
        "off" | "none" => return Ok(NetConfig::Off),
        _ => {}
    }
    let f: Vec<&str> = v.split(':').collect();
    let get = |i: usize| f.get(i).copied().filter(|s| !s.is_empty());
    let bad = |what: &str, s: &str| CmdlineError::Bad(format!("ip=: bad {what} {s:?}"));
    let address: Ipv4Addr =
        get(0).ok_or_else(|| bad("client address", ""))?.parse().map_err(|_| bad("client address", f[0]))?;
    let gateway = match get(2) {
        Some(g) => Some(g.parse().map_err(|_| bad("gateway", g))?),
        None => None,
    };
    let prefix = match get(3) {
        Some(m) => prefix_of(m.parse().map_err(|_| bad("netmask", m))?)?,
        None => 24,
    };
    if let Some(auto) = get(6) {
        if !["off", "none"].contains(&auto) {
            return Ok(NetConfig::Dhcp);
        }
    }
    let mut dns = Vec::new();
    for i in [7, 8] {
        if let Some(d) = get(i) {
            dns.push(d.parse().map_err(|_| bad("dns server", d))?);
        }
    }
    Ok(NetConfig::Static(StaticIp {
        address,
        prefix,
        gateway,
        hostname: get(4).map(str::to_string),
        device: get(5).map(str::to_string),
        dns,
    }))
}

/// Parses a whole command line.
pub fn parse(cmdline: &str) -> Result<BootArgs, CmdlineError> {
    let mut a = BootArgs::default();
    for word in cmdline.split_whitespace() {
        let (k, v) = word.split_once('=').unwrap_or((word, ""));
        match k {
            "metalboot.url" => a.url = Some(v.trim_end_matches('/').to_string()),
            "metalboot.host" => a.host = Some(v.to_string()),
            "metalboot.token" => a.token = Some(v.to_string()),
            "metalboot.plan" => a.plan = Some(v.to_string()),
            "metalboot.action" => a.action = Some(v.to_string()),
            "BOOTIF" => {
                let mac = v.strip_prefix("01-").unwrap_or(v);
                a.bootif = Some(mac.parse().map_err(|e: String| CmdlineError::Bad(format!("BOOTIF: {e}")))?);
            }
            "ip" => a.net = parse_ip(v)?,
            "metalboot.standalone" => a.standalone = true,
            "metalboot.ip6" => a.ip6 = Some(parse_ip6(v)?),
            "metalboot.fallback" => match v {
                "reboot" => a.fallback_reboot = true,
                "stop" => a.fallback_reboot = false,
                other => return Err(CmdlineError::Bad(format!("metalboot.fallback={other:?}: reboot or stop"))),
            },
            _ => {}
        }
    }
    if a.standalone && a.plan.is_none() {
        return Err(CmdlineError::Bad("metalboot.standalone needs metalboot.plan=FILE (the carried plan)".into()));
    }
    if let Some(h) = &a.host {
        metalboot_spec::safe::check_host_name(h).map_err(|e| CmdlineError::Bad(format!("metalboot.host: {e}")))?;
    }
    if let Some(t) = &a.token {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(CmdlineError::Bad("metalboot.token is not a token".into()));
        }
    }
    Ok(a)
}

/// The command line with the token masked, for logs.
pub fn redact(cmdline: &str) -> String {
    cmdline
        .split_whitespace()
        .map(|w| if w.starts_with("metalboot.token=") { "metalboot.token=<redacted>" } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_metalboot_args_bootif_and_dhcp() {
        let a = parse("console=ttyS0 BOOTIF=01-52-54-00-ab-cd-ef ip=dhcp metalboot.url=http://10.0.0.1:8080/ metalboot.host=web1 metalboot.token=abc123").unwrap();
        assert_eq!(a.url.as_deref(), Some("http://10.0.0.1:8080"));
        assert_eq!(a.host.as_deref(), Some("web1"));
        assert_eq!(a.token.as_deref(), Some("abc123"));
        assert_eq!(a.bootif.unwrap().to_string(), "52:54:00:ab:cd:ef");
        assert_eq!(a.net, NetConfig::Dhcp);
        assert!(!a.fallback_reboot);
    }

    #[test]
    fn ip6_parses_with_and_without_a_gateway_and_refuses_junk() {
        let a = parse("ip=off metalboot.ip6=2001:db8:2::42/64,fe80::1").unwrap();
        assert_eq!(a.net, NetConfig::Off);
        let six = a.ip6.unwrap();
        assert_eq!((six.address.to_string(), six.prefix), ("2001:db8:2::42".into(), 64));
        assert_eq!(six.gateway, Some("fe80::1".parse().unwrap()));
        assert_eq!(parse_ip6("fd00::5/128").unwrap().gateway, None);
        for bad in ["fd00::5", "10.0.0.1/24", "fd00::5/129", "fd00::5/64,10.0.0.1", "fd00::5/64;reboot"] {
            assert!(parse_ip6(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn standalone_needs_a_carried_plan() {
        let a = parse("metalboot.standalone metalboot.plan=/metalboot/plan.json").unwrap();
        assert!(a.standalone && a.plan.as_deref() == Some("/metalboot/plan.json"));
        assert!(!parse("metalboot.plan=/p.json").unwrap().standalone);
        assert!(parse("metalboot.standalone").unwrap_err().to_string().contains("metalboot.plan"));
    }

    #[test]
    fn fallback_reboot_is_opt_in_and_checked() {
        assert!(parse("metalboot.fallback=reboot").unwrap().fallback_reboot);
        assert!(!parse("metalboot.fallback=stop").unwrap().fallback_reboot);
        assert!(parse("metalboot.fallback=shell").is_err());
    }

    #[test]
    fn parses_static_ip_forms() {
        let NetConfig::Static(s) =
            parse_ip("192.0.2.10::192.0.2.1:255.255.255.0:web1:eth0:off:192.0.2.53:198.51.100.53").unwrap()
        else {
            panic!()
        };
        assert_eq!(s.address.to_string(), "192.0.2.10");
        assert_eq!(s.prefix, 24);
        assert_eq!(s.gateway.unwrap().to_string(), "192.0.2.1");
        assert_eq!(s.device.as_deref(), Some("eth0"));
        assert_eq!(s.dns.len(), 2);
        let NetConfig::Static(h) = parse_ip("203.0.113.7::172.31.1.1:255.255.255.255:vps::off").unwrap() else {
            panic!()
        };
        assert_eq!(h.prefix, 32);
        assert_eq!(parse_ip("off").unwrap(), NetConfig::Off);
        assert!(parse_ip("192.0.2.10::192.0.2.1:255.0.255.0::").is_err());
        assert!(parse_ip("300.0.2.10").is_err());
    }

    #[test]
    fn rejects_hostile_host_and_token_and_redacts() {
        assert!(parse("metalboot.host=../x").is_err());
        assert!(parse("metalboot.token=a;b").is_err());
        assert_eq!(redact("a metalboot.token=secret b"), "a metalboot.token=<redacted> b");
    }
}
