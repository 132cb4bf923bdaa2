//! DHCP for network boot: full mode (addresses from a pool, reservations from
//! the inventory, leases persisted, relay support) and proxy mode (boot
//! information only, beside an existing DHCP server). The pure core is
//! `classify` → `decide` → `reply`; only `socket` touches the network.

pub mod classify;
pub mod decide;
pub mod leases;
pub mod ledger;
pub mod pool;
pub mod reply;
pub mod socket;
pub mod subnets;

use anyhow::{bail, Context, Result};
use metalboot_spec::{IpCidr, MacAddr, NetMode};
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr};
pub use subnets::{Pool, SubnetConfig};

/// DHCP mode.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum DhcpMode {
    /// No DHCP (default): another server, or reinstall only.
    #[default]
    Off,
    /// Addresses and boot information.
    Full,
    /// Boot information only (proxyDHCP, ports 67 and 4011).
    Proxy,
}

/// `[dhcp]` in metalboot.toml.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct DhcpConfig {
    /// off, full or proxy.
    #[serde(default)]
    pub mode: DhcpMode,
    /// Interface to serve on (required unless off).
    pub interface: Option<String>,
    /// Our address on it (default: the interface's address inside `subnet`).
    pub server_ip: Option<Ipv4Addr>,
    /// The provisioning subnet, e.g. `10.99.0.0/24` (full mode).
    pub subnet: Option<String>,
    /// First and last pool address (full mode).
    pub range: Option<[Ipv4Addr; 2]>,
    /// Default gateway handed out.
    pub router: Option<Ipv4Addr>,
    /// Resolvers handed out.
    #[serde(default)]
    pub dns: Vec<Ipv4Addr>,
    /// Lease time in seconds.
    #[serde(default = "default_lease")]
    pub lease_secs: u32,
    /// TFTP file for BIOS PXE ROMs.
    #[serde(default = "default_bios")]
    pub bios_file: String,
    /// TFTP file for UEFI PXE.
    #[serde(default = "default_efi")]
    pub efi_file: String,
    /// Answer IPv6 router solicitations on the interface with advertisements
    /// that announce nothing, so iPXE and Linux stop waiting for a router
    /// (see `ra`). Default: on in full mode, off in proxy mode.
    pub router_advertisements: Option<bool>,
    /// Subnets behind DHCP relays, each with its own pool (full mode).
    #[serde(default)]
    pub subnets: Vec<SubnetConfig>,
}

fn default_lease() -> u32 {
    3600
}
fn default_bios() -> String {
    "undionly.kpxe".into()
}
fn default_efi() -> String {
    "snponly.efi".into()
}

/// Resolved settings the core works with.
#[derive(Debug, Clone)]
pub struct DhcpSettings {
    /// Our address.
    pub server_ip: Ipv4Addr,
    /// Address pools: the interface's subnet first, then the relayed ones
    /// (see `subnets`). In proxy mode, one pool with an empty range.
    pub pools: Vec<Pool>,
    /// BIOS boot file.
    pub bios_file: String,
    /// UEFI boot file.
    pub efi_file: String,
    /// `http://server:port` for iPXE and HTTP Boot.
    pub http_base: String,
    /// MAC → static address from the inventory.
    pub reservations: Vec<(MacAddr, Ipv4Addr)>,
}

impl DhcpSettings {
    /// The pool of the interface's own subnet.
    pub fn local(&self) -> &Pool {
        &self.pools[0]
    }

    /// The pool a request with `giaddr` and `ciaddr` is answered from (see
    /// `subnets::pool_for`).
    pub fn pool_for(&self, giaddr: Ipv4Addr, ciaddr: Ipv4Addr) -> Option<&Pool> {
        subnets::pool_for(&self.pools, giaddr, ciaddr).map(|i| &self.pools[i])
    }
}

/// IPv4 addresses (with prefix) of `iface`.
pub fn interface_addrs(iface: &str) -> Result<Vec<IpCidr>> {
    let mut out = Vec::new();
    for a in nix::ifaddrs::getifaddrs().context("listing interface addresses")? {
        if a.interface_name != iface {
            continue;
        }
        if let (Some(addr), Some(mask)) = (a.address, a.netmask) {
            if let (Some(sa), Some(m)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) {
                out.push(IpCidr { addr: IpAddr::V4(sa.ip()), prefix: u32::from(m.ip()).leading_ones() as u8 });
            }
        }
    }
    Ok(out)
}

impl DhcpConfig {
    /// Whether to send router advertisements on the interface.
    pub fn router_advertisements_on(&self) -> bool {
        match self.mode {
            DhcpMode::Off => false,
            DhcpMode::Full => self.router_advertisements.unwrap_or(true),
            DhcpMode::Proxy => self.router_advertisements.unwrap_or(false),
        }
    }

    /// Checks what needs no interface or inventory.
    pub fn validate(&self) -> Result<()> {
        if self.mode == DhcpMode::Off && self.router_advertisements == Some(true) {
            bail!("field `dhcp.router_advertisements`: needs dhcp.mode = \"full\" or \"proxy\" (it serves dhcp.interface)");
        }
        if self.mode != DhcpMode::Full && !self.subnets.is_empty() {
            bail!(
                "field `dhcp.subnets`: needs dhcp.mode = \"full\" (relayed subnets get addresses from their own pools)"
            );
        }
        if !self.subnets.is_empty() {
            self.relayed_pools()?;
        }
        Ok(())
    }

    /// The `[[dhcp.subnets]]` pools, checked against each other and
    /// `dhcp.subnet` (no interface needed).
    pub fn relayed_pools(&self) -> Result<Vec<Pool>> {
        let subnet: IpCidr = match &self.subnet {
            Some(s) => s.parse().map_err(|e: String| anyhow::anyhow!("dhcp.subnet: {e}"))?,
            None => bail!("field `dhcp.subnets`: needs dhcp.subnet (the interface's own subnet)"),
        };
        let local = Pool {
            subnet,
            range_start: Ipv4Addr::UNSPECIFIED,
            range_end: Ipv4Addr::UNSPECIFIED,
            router: None,
            dns: Vec::new(),
            lease_secs: self.lease_secs,
        };
        subnets::relayed(&self.subnets, &local, &self.dns, self.lease_secs)
    }

    /// Checks the config against the interface and the inventory.
    pub fn resolve(&self, inventory: &crate::inventory::Inventory, http_port: u16) -> Result<DhcpSettings> {
        let iface = self.interface.as_deref().context("dhcp.interface is required when dhcp.mode is not off")?;
        let addrs = interface_addrs(iface)?;
        let subnet: Option<IpCidr> = match &self.subnet {
            Some(s) => Some(s.parse().map_err(|e: String| anyhow::anyhow!("dhcp.subnet: {e}"))?),
            None => None,
        };
        let server_ip = match (self.server_ip, subnet) {
            (Some(ip), _) => ip,
            (None, Some(sn)) => match addrs.iter().find(|a| sn.contains(a.addr)) {
                Some(IpCidr { addr: IpAddr::V4(v4), .. }) => *v4,
                _ => bail!("interface {iface} has no address in dhcp.subnet {sn} (it has: {addrs:?})"),
            },
            (None, None) => match addrs.first() {
                Some(IpCidr { addr: IpAddr::V4(v4), .. }) => *v4,
                _ => bail!("interface {iface} has no IPv4 address"),
            },
        };
        let (subnet, range) = match self.mode {
            DhcpMode::Full => {
                let sn = subnet.context("dhcp.subnet is required in full mode")?;
                if !addrs.iter().any(|a| sn.contains(a.addr)) {
                    bail!("refusing full DHCP on {iface}: it has no address in dhcp.subnet {sn} (it has: {addrs:?})");
                }
                let r = self.range.context("dhcp.range is required in full mode")?;
                subnets::check_range("dhcp", sn, r)?;
                (sn, r)
            }
            _ => (subnet.unwrap_or(IpCidr { addr: server_ip.into(), prefix: 24 }), [Ipv4Addr::UNSPECIFIED; 2]),
        };
        let local = Pool {
            subnet,
            range_start: range[0],
            range_end: range[1],
            router: self.router,
            dns: self.dns.clone(),
            lease_secs: self.lease_secs,
        };
        let mut pools = vec![local];
        pools.extend(subnets::relayed(&self.subnets, &pools[0], &self.dns, self.lease_secs)?);
        let mut reservations = Vec::new();
        for h in inventory.hosts() {
            if h.network.mode != NetMode::Static {
                continue;
            }
            if let Some(IpCidr { addr: IpAddr::V4(v4), .. }) = h.network.ipv4() {
                if pools.iter().any(|p| p.holds(*v4)) {
                    for m in &h.macs {
                        reservations.push((*m, *v4));
                    }
                }
            }
        }
        Ok(DhcpSettings {
            server_ip,
            pools,
            bios_file: self.bios_file.clone(),
            efi_file: self.efi_file.clone(),
            http_base: format!("http://{server_ip}:{http_port}"),
            reservations,
        })
    }
}

#[cfg(test)]
mod lease_tests;
#[cfg(test)]
mod relay_tests;
#[cfg(test)]
mod tests;
