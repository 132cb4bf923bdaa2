//! What a running Linux host says about its network and disks, parsed from
//! `ip -j addr`, `ip -j -4 route`, `ip -j -6 route`, resolv.conf and
//! `lsblk -J`, into the static network config the reinstalled host
//! must come back with (matched by MAC) and the disk facts the operator
//! confirms before anything is wiped.

use anyhow::{bail, Context, Result};
use metalboot_spec::{IpCidr, MacAddr, NetMode, NetworkSpec};
use serde::Deserialize;
use std::net::IpAddr;

#[derive(Deserialize)]
struct Link {
    ifname: String,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    link_type: Option<String>,
    #[serde(default)]
    addr_info: Vec<AddrInfo>,
}

#[derive(Deserialize)]
struct AddrInfo {
    family: String,
    local: String,
    prefixlen: u8,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    tentative: bool,
    #[serde(default)]
    deprecated: bool,
}

#[derive(Deserialize)]
struct Route {
    dst: String,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    dev: Option<String>,
    #[serde(default)]
    metric: Option<u32>,
}

/// One Ethernet interface with its global addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct Interface {
    /// Kernel name (`eth0`, `enp1s0`).
    pub name: String,
    /// Hardware address: how the new system finds it again.
    pub mac: MacAddr,
    /// Global-scope addresses with prefix lengths.
    pub addresses: Vec<IpCidr>,
}

/// A default route.
#[derive(Debug, Clone, PartialEq)]
pub struct Gateway {
    /// Next hop.
    pub via: IpAddr,
    /// Out of this interface.
    pub dev: String,
}

/// The network as the running host has it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NetFacts {
    /// Ethernet interfaces (loopback and non-Ethernet links left out).
    pub interfaces: Vec<Interface>,
    /// IPv4 default route (lowest metric).
    pub gateway4: Option<Gateway>,
    /// IPv6 default route (lowest metric).
    pub gateway6: Option<Gateway>,
    /// Resolvers (loopback stubs left out).
    pub dns: Vec<IpAddr>,
    /// Search domains.
    pub search: Vec<String>,
}

fn default_route(json: &str, what: &str) -> Result<Option<Gateway>> {
    if json.trim().is_empty() {
        return Ok(None);
    }
    let routes: Vec<Route> = serde_json::from_str(json).with_context(|| format!("parsing `ip -j {what} route`"))?;
    let mut best: Option<(u32, Gateway)> = None;
    for r in routes {
        if r.dst != "default" {
            continue;
        }
        let (Some(gw), Some(dev)) = (r.gateway, r.dev) else { continue };
        let via: IpAddr = gw.parse().with_context(|| format!("gateway {gw:?} in `ip -j {what} route`"))?;
        let m = r.metric.unwrap_or(0);
        if !matches!(&best, Some((bm, _)) if *bm <= m) {
            best = Some((m, Gateway { via, dev }));
        }
    }
    Ok(best.map(|(_, g)| g))
}

/// Resolvers and search domains from resolv.conf text; `127.0.0.53` and
/// other loopback stubs are skipped (pass systemd-resolved's upstream file,
/// `/run/systemd/resolve/resolv.conf`, when there is one).
pub fn parse_resolv_conf(text: &str) -> (Vec<IpAddr>, Vec<String>) {
    let (mut dns, mut search) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let mut w = line.split_whitespace();
        match w.next() {
            Some("nameserver") => {
                if let Some(Ok(ip)) = w.next().map(|a| a.split('%').next().unwrap_or(a).parse::<IpAddr>()) {
                    if !ip.is_loopback() && !dns.contains(&ip) {
                        dns.push(ip);
                    }
                }
            }
            // systemd-resolved writes `search .` for "no search domain"
            Some("search") | Some("domain") => {
                for d in w.map(|d| d.trim_end_matches('.')).filter(|d| !d.is_empty()) {
                    if !search.iter().any(|s| s == d) {
                        search.push(d.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    (dns, search)
}

impl NetFacts {
    /// Parses the recorded outputs.
    pub fn parse(addr_json: &str, route4_json: &str, route6_json: &str, resolv_conf: &str) -> Result<NetFacts> {
        let links: Vec<Link> = serde_json::from_str(addr_json).context("parsing `ip -j addr`")?;
        let mut interfaces = Vec::new();
        for l in links {
            if l.link_type.as_deref() != Some("ether") {
                continue;
            }
            let Some(mac) = l.address.as_deref() else { continue };
            let mac: MacAddr = mac.parse().map_err(|e| anyhow::anyhow!("interface {}: {e}", l.ifname))?;
            let mut addresses = Vec::new();
            for a in &l.addr_info {
                if a.scope != "global" || a.tentative || a.deprecated || !(a.family == "inet" || a.family == "inet6") {
                    continue;
                }
                let addr: IpAddr = a.local.parse().with_context(|| format!("address {:?} on {}", a.local, l.ifname))?;
                addresses.push(IpCidr { addr, prefix: a.prefixlen });
            }
            interfaces.push(Interface { name: l.ifname, mac, addresses });
        }
        let (dns, search) = parse_resolv_conf(resolv_conf);
        Ok(NetFacts {
            interfaces,
            gateway4: default_route(route4_json, "-4")?,
            gateway6: default_route(route6_json, "-6")?,
            dns,
            search,
        })
    }

    /// The interface the host is reached on: the one with the IPv4 default
    /// route, else the IPv6 one, else the only one with an address.
    pub fn primary(&self) -> Result<&Interface> {
        let by_name = |n: &str| self.interfaces.iter().find(|i| i.name == n);
        if let Some(i) = self.gateway4.as_ref().and_then(|g| by_name(&g.dev)) {
            return Ok(i);
        }
        if let Some(i) = self.gateway6.as_ref().and_then(|g| by_name(&g.dev)) {
            return Ok(i);
        }
        let with: Vec<&Interface> = self.interfaces.iter().filter(|i| !i.addresses.is_empty()).collect();
        match with.as_slice() {
            [one] => Ok(one),
            [] => bail!("no Ethernet interface with a global address"),
            many => bail!(
                "no default route and {} interfaces with addresses ({}); cannot tell which one reaches the host",
                many.len(),
                many.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// The static config the reinstalled host gets: the primary interface's
    /// addresses, matched by MAC, with its default routes and resolvers.
    pub fn network_spec(&self) -> Result<NetworkSpec> {
        let p = self.primary()?;
        if p.addresses.is_empty() {
            bail!("interface {} has no global address to keep", p.name);
        }
        let on = |g: &Option<Gateway>| g.as_ref().filter(|g| g.dev == p.name).map(|g| g.via);
        Ok(NetworkSpec {
            mode: NetMode::Static,
            mac: Some(p.mac),
            addresses: p.addresses.clone(),
            gateway: on(&self.gateway4),
            gateway6: on(&self.gateway6),
            dns: self.dns.clone(),
            search: self.search.clone(),
        })
    }
}

/// A whole disk as `lsblk -J -b -o NAME,PATH,SIZE,TYPE,SERIAL,MODEL,WWN,RM,RO,MOUNTPOINTS` reports it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DiskFacts {
    /// `/dev/vda`.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// Serial, if the disk has one.
    pub serial: Option<String>,
    /// Model, if reported.
    pub model: Option<String>,
    /// World Wide Name, if reported (`0x5000…`).
    pub wwn: Option<String>,
    /// The kernel's removable flag.
    pub removable: bool,
    /// Read-only.
    pub read_only: bool,
    /// Partitions: (path, size, mountpoint).
    pub partitions: Vec<(String, u64, Option<String>)>,
    /// Holds the running root filesystem.
    pub holds_root: bool,
    /// Every mount point on the disk, its partitions and anything on them
    /// (LVM, RAID, crypt), `[SWAP]` included, and those of a mounted BTRFS
    /// filesystem a partition is a member of (lsblk shows the mounts on
    /// the one device the kernel names): a disk in use.
    pub mounts: Vec<String>,
}

#[derive(Deserialize)]
struct Lsblk {
    blockdevices: Vec<BlockDev>,
}

#[derive(Deserialize)]
struct BlockDev {
    path: String,
    size: serde_json::Value,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    serial: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    wwn: Option<String>,
    /// `true`/`false`, or `"1"`/`"0"` from util-linux before 2.33.
    #[serde(default)]
    rm: serde_json::Value,
    #[serde(default)]
    ro: serde_json::Value,
    /// `FSTYPE` and `UUID` (absent before this command asked for them).
    #[serde(default)]
    fstype: Option<String>,
    #[serde(default)]
    uuid: Option<String>,
    #[serde(default)]
    mountpoint: Option<String>,
    /// util-linux ≥ 2.37: every mount (a BTRFS partition is mounted once per
    /// subvolume, and `MOUNTPOINT` shows only one of them).
    #[serde(default)]
    mountpoints: Vec<Option<String>>,
    #[serde(default)]
    children: Vec<BlockDev>,
}

impl BlockDev {
    fn mounts(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.mountpoints.iter().flatten().map(String::as_str).collect();
        if let Some(m) = self.mountpoint.as_deref() {
            if !v.contains(&m) {
                v.push(m);
            }
        }
        v
    }
}

fn size_of(v: &serde_json::Value) -> u64 {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or(0)
}

fn flag(v: &serde_json::Value) -> bool {
    v.as_bool().unwrap_or_else(|| v.as_str() == Some("1") || v.as_u64() == Some(1))
}

/// The mounts of every BTRFS filesystem, by UUID: one of several member
/// devices shows them, the others none.
fn btrfs_mounts(devs: &[BlockDev], out: &mut Vec<(String, Vec<String>)>) {
    for d in devs {
        if let (Some("btrfs"), Some(uuid)) = (d.fstype.as_deref(), d.uuid.as_deref()) {
            let i = match out.iter().position(|(u, _)| u == uuid) {
                Some(i) => i,
                None => {
                    out.push((uuid.to_string(), Vec::new()));
                    out.len() - 1
                }
            };
            for m in d.mounts() {
                if !out[i].1.iter().any(|o| o == m) {
                    out[i].1.push(m.to_string());
                }
            }
        }
        btrfs_mounts(&d.children, out);
    }
}

fn all_mounts(d: &BlockDev, btrfs: &[(String, Vec<String>)], out: &mut Vec<String>) {
    let member = match (d.fstype.as_deref(), d.uuid.as_deref()) {
        (Some("btrfs"), Some(uuid)) => btrfs.iter().find(|(u, _)| u == uuid).map(|(_, m)| m.as_slice()),
        _ => None,
    };
    for m in d.mounts().into_iter().chain(member.unwrap_or_default().iter().map(String::as_str)) {
        if !out.iter().any(|o| o == m) {
            out.push(m.to_string());
        }
    }
    for c in &d.children {
        all_mounts(c, btrfs, out);
    }
}

fn trimmed(s: &Option<String>) -> Option<String> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(String::from)
}

/// Whole disks from `lsblk -J -b -o
/// NAME,PATH,SIZE,TYPE,SERIAL,MODEL,WWN,RM,RO,FSTYPE,UUID,MOUNTPOINTS` (or
/// `…,MOUNTPOINT` from older util-linux; `WWN`, `RM`, `RO`, `FSTYPE` and
/// `UUID` may be missing). A disk holds the root filesystem when `/` is
/// mounted from it, or from a BTRFS filesystem one of its partitions is a
/// member of (a root in raid1 holds every member disk).
pub fn parse_lsblk(json: &str) -> Result<Vec<DiskFacts>> {
    let l: Lsblk = serde_json::from_str(json).context("parsing `lsblk -J`")?;
    let mut btrfs = Vec::new();
    btrfs_mounts(&l.blockdevices, &mut btrfs);
    Ok(l.blockdevices
        .iter()
        .filter(|d| d.kind == "disk")
        .map(|d| DiskFacts {
            path: d.path.clone(),
            size: size_of(&d.size),
            serial: trimmed(&d.serial),
            model: trimmed(&d.model),
            wwn: trimmed(&d.wwn),
            removable: flag(&d.rm),
            read_only: flag(&d.ro),
            partitions: d
                .children
                .iter()
                .map(|c| {
                    let m = c.mounts();
                    (c.path.clone(), size_of(&c.size), (!m.is_empty()).then(|| m.join(",")))
                })
                .collect(),
            mounts: {
                let mut v = Vec::new();
                all_mounts(d, &btrfs, &mut v);
                v
            },
            holds_root: false,
        })
        .map(|mut d| {
            d.holds_root = d.mounts.iter().any(|m| m == "/");
            d
        })
        .collect())
}
