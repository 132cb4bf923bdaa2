//! The network words of the kernel command line: the kernel's own `ip=`
//! (Documentation/admin-guide/nfs/nfsroot.rst:
//! `ip=<client>:<server>:<gw>:<netmask>:<hostname>:<device>:<autoconf>:<dns0>:<dns1>`)
//! and our `metalboot.ip6=ADDR/LEN[,GATEWAY]` beside it.

use super::{bad, BootArgsError};
use crate::error::quote;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Static IPv4 settings from `ip=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticIp {
    /// Our address.
    pub address: Ipv4Addr,
    /// Prefix length (written as a netmask).
    pub prefix: u8,
    /// Default gateway (may be off-subnet, as on a /32 VPS).
    pub gateway: Option<Ipv4Addr>,
    /// Hostname field.
    pub hostname: Option<String>,
    /// Device name field.
    pub device: Option<String>,
    /// Resolvers (the kernel syntax has room for two).
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

/// How the installer brings up its network (`ip=`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NetConfig {
    /// DHCP on the boot NIC (default).
    #[default]
    Dhcp,
    /// Static IPv4.
    Static(StaticIp),
    /// `ip=off`/`none`: no IPv4 (an IPv6-only host, or nothing at all).
    Off,
}

fn prefix_of(mask: Ipv4Addr) -> Result<u8, BootArgsError> {
    let m = u32::from(mask);
    if m.leading_ones() + m.trailing_zeros() != 32 {
        return Err(bad(format!("netmask {mask} is not contiguous")));
    }
    Ok(m.leading_ones() as u8)
}

fn netmask(prefix: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0))
}

impl NetConfig {
    /// Parses the kernel's `ip=` value.
    pub fn parse(v: &str) -> Result<NetConfig, BootArgsError> {
        match v {
            "dhcp" | "on" | "any" | "both" | "" => return Ok(NetConfig::Dhcp),
            "off" | "none" => return Ok(NetConfig::Off),
            _ => {}
        }
        let f: Vec<&str> = v.split(':').collect();
        let get = |i: usize| f.get(i).copied().filter(|s| !s.is_empty());
        let bad_field = |what: &str, s: &str| bad(format!("ip=: bad {what} {}", quote(s)));
        let address: Ipv4Addr = get(0)
            .ok_or_else(|| bad_field("client address", ""))?
            .parse()
            .map_err(|_| bad_field("client address", f[0]))?;
        let gateway = match get(2) {
            Some(g) => Some(g.parse().map_err(|_| bad_field("gateway", g))?),
            None => None,
        };
        let prefix = match get(3) {
            Some(m) => prefix_of(m.parse().map_err(|_| bad_field("netmask", m))?)?,
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
                dns.push(d.parse().map_err(|_| bad_field("dns server", d))?);
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

    /// The `ip=` word.
    pub fn to_arg(&self) -> String {
        match self {
            NetConfig::Dhcp => "ip=dhcp".into(),
            NetConfig::Off => "ip=off".into(),
            NetConfig::Static(s) => {
                let gw = s.gateway.map(|g| g.to_string()).unwrap_or_default();
                let mut w = format!(
                    "ip={}::{gw}:{}:{}:{}:off",
                    s.address,
                    netmask(s.prefix),
                    s.hostname.as_deref().unwrap_or(""),
                    s.device.as_deref().unwrap_or("")
                );
                for d in s.dns.iter().take(2) {
                    w.push(':');
                    w.push_str(&d.to_string());
                }
                w
            }
        }
    }
}

impl StaticIp6 {
    /// Parses a `metalboot.ip6` value.
    pub fn parse(v: &str) -> Result<StaticIp6, BootArgsError> {
        let bad6 = |why: &str| bad(format!("metalboot.ip6={}: {why}", quote(v)));
        let (cidr, gw) = match v.split_once(',') {
            Some((c, g)) => (c, Some(g)),
            None => (v, None),
        };
        let (a, len) = cidr.split_once('/').ok_or_else(|| bad6("expected ADDR/LEN[,GATEWAY]"))?;
        let address: Ipv6Addr = a.parse().map_err(|_| bad6("address is not IPv6"))?;
        let prefix: u8 = len.parse().ok().filter(|p| *p <= 128).ok_or_else(|| bad6("prefix length is not 0-128"))?;
        let gateway = gw.map(|g| g.parse::<Ipv6Addr>().map_err(|_| bad6("gateway is not IPv6"))).transpose()?;
        Ok(StaticIp6 { address, prefix, gateway })
    }
}

impl fmt::Display for StaticIp6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)?;
        if let Some(g) = self.gateway {
            write!(f, ",{g}")?;
        }
        Ok(())
    }
}
