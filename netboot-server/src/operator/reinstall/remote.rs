//! The discovery run on the target over SSH (`ssh user@host sh -s` with
//! [`DISCOVER_SCRIPT`] on standard input, as the login user: it reads only
//! what any user may), its sectioned output parsed into
//! [`Discovered`], and the summary the operator confirms before anything is
//! wiped.

use super::discover::{parse_lsblk, DiskFacts, NetFacts};
use super::rootfs::{root_of, RootFs};
use anyhow::{bail, Context, Result};
use metalboot_spec::quote;
use metalboot_spec::NetworkSpec;
use std::collections::BTreeMap;

/// POSIX sh; read-only; every section is introduced by a `### name` line.
pub const DISCOVER_SCRIPT: &str = r#"set -u
export LC_ALL=C
# kexec, ip and lsblk live in sbin, which a login that is not root may not have
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"; export PATH
echo '### metalboot-discover 1'
echo '### boot'
if [ -d /sys/firmware/efi ]; then echo uefi; else echo bios; fi
echo '### hostname'
hostname
echo '### kernel'
uname -rm
echo '### boot_id'
cat /proc/sys/kernel/random/boot_id
echo '### addr'
ip -j addr
echo '### route4'
ip -j -4 route
echo '### route6'
ip -j -6 route 2>/dev/null || echo '[]'
echo '### resolv'
if [ -r /run/systemd/resolve/resolv.conf ]; then cat /run/systemd/resolve/resolv.conf; else cat /etc/resolv.conf 2>/dev/null; fi
echo '### lsblk'
lsblk -J -b -o NAME,PATH,SIZE,TYPE,SERIAL,MODEL,WWN,RM,RO,FSTYPE,UUID,MOUNTPOINTS 2>/dev/null || lsblk -J -b -o NAME,PATH,SIZE,TYPE,SERIAL,MODEL,WWN,RM,RO,FSTYPE,UUID,MOUNTPOINT
echo '### btrfs'
for d in /sys/fs/btrfs/*/devices/*; do if [ -e "$d" ]; then f=${d%/devices/*}; echo "${f##*/} ${d##*/}"; fi; done
echo '### mounts'
cat /proc/mounts
echo '### disk_links'
for l in /dev/disk/by-id/* /dev/disk/by-path/*; do if [ -L "$l" ]; then echo "$l $(readlink -f "$l")"; fi; done
echo '### kexec'
command -v kexec || echo none
echo '### authorized_keys'
cat "$HOME/.ssh/authorized_keys" 2>/dev/null
echo '### end'
"#;

/// How the target boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootMode {
    /// Legacy BIOS.
    Bios,
    /// UEFI.
    Uefi,
}

/// Everything discovery found.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// BIOS or UEFI.
    pub boot: BootMode,
    /// Current hostname.
    pub hostname: String,
    /// `uname -rm`.
    pub kernel: String,
    /// This boot's id: a different one later means the system rebooted.
    pub boot_id: Option<String>,
    /// Network as configured now.
    pub net: NetFacts,
    /// Whole disks.
    pub disks: Vec<DiskFacts>,
    /// What the running system runs from (`/proc/mounts`).
    pub root: RootFs,
    /// `/dev/disk/by-id` and `by-path` links and the device each names.
    pub disk_links: Vec<(String, String)>,
    /// Path of `kexec`, if installed.
    pub kexec: Option<String>,
    /// The login user's `authorized_keys` lines, as found (may be empty).
    pub authorized_keys: Vec<String>,
}

/// Splits the output of a script that introduces each section with
/// `### name`, starting with `### {header} N` and ending with `### end`.
pub(super) fn sections(text: &str, header: &str, what: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut cur: Option<(String, String)> = None;
    let mut ended = false;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("### ") {
            if let Some((n, body)) = cur.take() {
                out.insert(n, body);
            }
            if name == "end" {
                ended = true;
                break;
            }
            cur = Some((name.to_string(), String::new()));
        } else if let Some((_, body)) = cur.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if !out.keys().any(|k| k.starts_with(header)) {
        bail!("the target's output is not from metalboot's {what} (no header): is `sh` a POSIX shell there?");
    }
    if !ended {
        bail!("{what} output ends early (no `### end`): the SSH session was cut, or a command hung");
    }
    Ok(out)
}

impl Discovered {
    /// Parses the output of [`DISCOVER_SCRIPT`].
    pub fn parse(text: &str) -> Result<Discovered> {
        let s = sections(text, "metalboot-discover", "discovery")?;
        let get =
            |k: &str| s.get(k).map(String::as_str).with_context(|| format!("discovery output has no `{k}` section"));
        let boot = match get("boot")?.trim() {
            "uefi" => BootMode::Uefi,
            "bios" => BootMode::Bios,
            other => bail!("boot mode {} is neither bios nor uefi", quote(other)),
        };
        let net = NetFacts::parse(get("addr")?, get("route4")?, get("route6")?, get("resolv")?)
            .context("reading the target's network (is iproute2 with `ip -j` there?)")?;
        let mut disks = parse_lsblk(get("lsblk")?).context("reading the target's disks (util-linux lsblk)")?;
        // an older target's script output has no section: lsblk's word only
        super::members::apply(&mut disks, s.get("btrfs").map(String::as_str).unwrap_or_default());
        let root = root_of(get("mounts")?).context("reading the target's /proc/mounts")?;
        let disk_links = s
            .get("disk_links")
            .map(|t| t.lines().filter_map(|l| l.split_once(' ')).map(|(a, b)| (a.to_string(), b.to_string())))
            .into_iter()
            .flatten()
            .collect();
        let kexec = match get("kexec")?.trim() {
            "none" | "" => None,
            p => Some(p.to_string()),
        };
        Ok(Discovered {
            boot,
            hostname: get("hostname")?.trim().to_string(),
            kernel: get("kernel")?.trim().to_string(),
            boot_id: s.get("boot_id").map(|b| b.trim().to_string()).filter(|b| !b.is_empty()),
            net,
            disks,
            root,
            disk_links,
            kexec,
            authorized_keys: s
                .get("authorized_keys")
                .map(|t| t.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')))
                .into_iter()
                .flatten()
                .map(String::from)
                .collect(),
        })
    }

    /// The disk holding the running root filesystem: the one a reinstall
    /// in place replaces.
    pub fn root_disk(&self) -> Result<&DiskFacts> {
        let roots: Vec<&DiskFacts> = self.disks.iter().filter(|d| d.holds_root).collect();
        match roots.as_slice() {
            [one] => Ok(one),
            [] => bail!("no disk holds the root filesystem (root is {}): refusing to guess", self.root.what),
            many => bail!(
                "the root filesystem spans {} disks ({}): refusing to guess (a host on several disks lists them in the \
             inventory: disks = [{{…}}, {{…}}] with layout = {{ raid = \"raid1\" }})",
                many.len(),
                many.iter().map(|d| d.path.as_str()).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

/// A size as the summaries print it: GiB with one decimal, else MiB.
pub fn gib(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64)
    }
}

/// What the operator confirms: the disks that will be wiped (or, keeping
/// subvolumes, rewritten in place) and the network the new system comes
/// back with.
pub fn summary(
    target: &str,
    name: &str,
    d: &Discovered,
    disks: &[&DiskFacts],
    net: &NetworkSpec,
    via: &str,
    keeping: bool,
) -> String {
    let mut s = String::new();
    s.push_str(&format!("target:   {target} (now \"{}\", {}, {:?} boot)\n", d.hostname, d.kernel, d.boot));
    s.push_str(&format!("becomes:  {name}\n"));
    for disk in disks {
        s.push_str(&format!(
            "{} {} {} model={} serial={}\n",
            if keeping { "REWRITES:" } else { "WIPES:   " },
            disk.path,
            gib(disk.size),
            disk.model.as_deref().unwrap_or("-"),
            disk.serial.as_deref().unwrap_or("-")
        ));
        for (p, size, mnt) in &disk.partitions {
            s.push_str(&format!("          {p} {} {}\n", gib(*size), mnt.as_deref().unwrap_or("")));
        }
    }
    let addrs: Vec<String> = net.addresses.iter().map(|a| a.to_string()).collect();
    s.push_str(&format!(
        "network:  static on {} {}\n",
        net.mac.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
        addrs.join(" ")
    ));
    if let Some(g) = net.gateway {
        s.push_str(&format!("          gateway {g}\n"));
    }
    if let Some(g) = net.gateway6 {
        s.push_str(&format!("          gateway6 {g}\n"));
    }
    if !net.dns.is_empty() {
        let dns: Vec<String> = net.dns.iter().map(|a| a.to_string()).collect();
        s.push_str(&format!("          dns {}\n", dns.join(" ")));
    }
    s.push_str(&format!("boots via: {via}\n"));
    s
}
