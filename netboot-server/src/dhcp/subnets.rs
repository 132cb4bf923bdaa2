//! Address pools: the subnet of the interface DHCP serves on, and subnets
//! behind DHCP relays (`[[dhcp.subnets]]`). RFC 2131 §4.3.1: a request a
//! relay forwarded carries the relay's address on the client's link in
//! giaddr, and the address comes from the subnet holding giaddr; a request
//! without giaddr came on our own link. A relayed request from a subnet no
//! pool holds is not answered; a client renewing by unicast (no giaddr)
//! is answered from the pool holding its address.

use anyhow::{bail, Result};
use metalboot_spec::IpCidr;
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr};

/// `[[dhcp.subnets]]`: a subnet behind a relay.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct SubnetConfig {
    /// The relayed subnet, e.g. `10.98.1.0/24`; the relay's address on
    /// that link (giaddr) lies in it.
    pub subnet: String,
    /// First and last pool address.
    pub range: [Ipv4Addr; 2],
    /// Default gateway handed out (usually the relay's address).
    pub router: Option<Ipv4Addr>,
    /// Resolvers handed out (default: those of `[dhcp]`).
    pub dns: Option<Vec<Ipv4Addr>>,
    /// Lease time in seconds (default: that of `[dhcp]`).
    pub lease_secs: Option<u32>,
}

/// One pool as the server uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// Subnet (address part is the network).
    pub subnet: IpCidr,
    /// Pool start.
    pub range_start: Ipv4Addr,
    /// Pool end.
    pub range_end: Ipv4Addr,
    /// Router option.
    pub router: Option<Ipv4Addr>,
    /// DNS option.
    pub dns: Vec<Ipv4Addr>,
    /// Lease time.
    pub lease_secs: u32,
}

impl Pool {
    /// Whether `ip` is a pool address.
    pub fn in_range(&self, ip: Ipv4Addr) -> bool {
        (u32::from(self.range_start)..=u32::from(self.range_end)).contains(&u32::from(ip))
    }

    /// Whether `ip` is in the pool's subnet.
    pub fn holds(&self, ip: Ipv4Addr) -> bool {
        self.subnet.contains(ip.into())
    }
}

/// Checks a range against its subnet; `what` names it in errors.
pub fn check_range(what: &str, subnet: IpCidr, range: [Ipv4Addr; 2]) -> Result<()> {
    for ip in range {
        if !subnet.contains(ip.into()) {
            bail!("{what}.range address {ip} is outside {what}.subnet {subnet}");
        }
    }
    if u32::from(range[0]) > u32::from(range[1]) {
        bail!("{what}.range starts after it ends");
    }
    Ok(())
}

/// The relayed pools of `subnets`, checked against each other and against
/// `local` (the interface's pool, first in the result's order of lookup);
/// `dns` and `lease_secs` are `[dhcp]`'s, the defaults.
pub fn relayed(subnets: &[SubnetConfig], local: &Pool, dns: &[Ipv4Addr], lease_secs: u32) -> Result<Vec<Pool>> {
    let mut pools: Vec<Pool> = Vec::new();
    for (i, c) in subnets.iter().enumerate() {
        let what = format!("dhcp.subnets[{i}]");
        let subnet: IpCidr = c.subnet.parse().map_err(|e: String| anyhow::anyhow!("{what}.subnet: {e}"))?;
        let IpAddr::V4(_) = subnet.addr else { bail!("{what}.subnet {subnet} is not IPv4") };
        check_range(&what, subnet, c.range)?;
        if let Some(r) = c.router.filter(|r| !subnet.contains((*r).into())) {
            bail!("{what}.router {r} is outside {what}.subnet {subnet}");
        }
        if c.lease_secs == Some(0) {
            bail!("{what}.lease_secs must be more than 0");
        }
        if overlaps(subnet, local.subnet) {
            bail!("{what}.subnet {subnet} overlaps dhcp.subnet {} (the interface's own)", local.subnet);
        }
        if let Some(j) = pools.iter().position(|p| overlaps(subnet, p.subnet)) {
            bail!("{what}.subnet {subnet} overlaps dhcp.subnets[{j}].subnet {}", pools[j].subnet);
        }
        pools.push(Pool {
            subnet,
            range_start: c.range[0],
            range_end: c.range[1],
            router: c.router,
            dns: c.dns.clone().unwrap_or_else(|| dns.to_vec()),
            lease_secs: c.lease_secs.unwrap_or(lease_secs),
        });
    }
    Ok(pools)
}

/// Whether two IPv4 subnets share an address (one holds the other's network).
fn overlaps(a: IpCidr, b: IpCidr) -> bool {
    a.contains(b.addr) || b.contains(a.addr)
}

/// Index into `pools` (the interface's first) of the pool a request is
/// answered from: the one holding `giaddr` when a relay forwarded it (None
/// when no pool holds the relay); for a request that came straight to us,
/// the one holding `ciaddr` (a client behind a relay renews by unicast to
/// us, without giaddr: RFC 2131 §4.3.2), else the interface's own.
pub fn pool_for(pools: &[Pool], giaddr: Ipv4Addr, ciaddr: Ipv4Addr) -> Option<usize> {
    if !giaddr.is_unspecified() {
        return pools.iter().position(|p| p.holds(giaddr));
    }
    let held = (!ciaddr.is_unspecified()).then(|| pools.iter().position(|p| p.holds(ciaddr))).flatten();
    held.or((!pools.is_empty()).then_some(0))
}

/// Walks an encoded packet's options (after the 236-byte header and the
/// magic cookie) as sent: `Ok` with the range of option `code`'s value, or
/// `Err` with the offset of End when there is none; None for a packet cut
/// short or without the cookie.
fn find(packet: &[u8], code: u8) -> Option<Result<std::ops::Range<usize>, usize>> {
    if packet.get(236..240)? != [99, 130, 83, 99] {
        return None;
    }
    let mut i = 240;
    loop {
        match *packet.get(i)? {
            0 => i += 1,
            255 => return Some(Err(i)),
            c => {
                let value = i + 2..i + 2 + usize::from(*packet.get(i + 1)?);
                packet.get(value.clone())?;
                if c == code {
                    return Some(Ok(value));
                }
                i = value.end;
            }
        }
    }
}

/// Puts option `code` with `value` (at most 255 bytes) last, just before End,
/// in an encoded packet; false when the packet has no End to put it before.
pub fn append_option(packet: &mut Vec<u8>, code: u8, value: &[u8]) -> bool {
    // no option has code 255 (End), so the walk ends at End
    let (Some(Err(end)), Ok(len)) = (find(packet, 255), u8::try_from(value.len())) else { return false };
    packet.splice(end..end, [code, len].into_iter().chain(value.iter().copied()));
    true
}

/// The value of the first option `code` in a DHCP packet's options field,
/// as sent. Option 82 is echoed byte for byte (RFC 3046 §2.2: "the entire
/// contents"), whatever sub-options and order the relay chose.
pub fn raw_option(packet: &[u8], code: u8) -> Option<&[u8]> {
    match find(packet, code)? {
        Ok(value) => packet.get(value),
        Err(_) => None,
    }
}
