//! One host of the inventory, as the operator writes it (TOML, kept in git).
//!
//! Every field is typed or checked by [`HostSpec::validate`]; a host that
//! passes can be rendered into an iPXE script, a preseed or a kernel command
//! line without further escaping (renderers still check again).

use crate::safe;
use crate::{ByteSize, IpCidr, MacAddr, SpecError};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// How a host is installed.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Our installer streams the root filesystem image (default).
    #[default]
    Image,
    /// Debian's netboot installer driven by a per-host preseed.
    DebianInstaller,
}

/// A host in the inventory.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// Host name: one DNS label; also the installed system's hostname.
    pub name: String,
    /// MAC addresses the host network-boots with.
    #[serde(default)]
    pub macs: Vec<MacAddr>,
    /// Labels, which become groups in the Ansible inventory.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Install method.
    #[serde(default)]
    pub method: Method,
    /// Arm the host for install the first time the server sees it.
    #[serde(default)]
    pub arm: bool,
    /// Which disk to install to. Required: metalboot never guesses.
    pub disk: DiskSelector,
    /// Partition and subvolume layout.
    #[serde(default)]
    pub layout: Layout,
    /// Network configuration of the installer and the installed system.
    #[serde(default)]
    pub network: NetworkSpec,
    /// Keys written to root's `authorized_keys`.
    #[serde(default)]
    pub ssh_authorized_keys: Vec<String>,
    /// Optional crypt(3) hash for root's password; never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_password_hash: Option<String>,
    /// Name of the root filesystem image asset.
    #[serde(default = "default_image")]
    pub image: String,
    /// Extra kernel arguments for the installed system.
    #[serde(default)]
    pub kernel_args: Vec<String>,
    /// What happens when the installer fails: keep a shell or reboot.
    #[serde(default)]
    pub on_failure: crate::OnFailure,
    /// Handing the host to the config layer.
    #[serde(default)]
    pub handoff: HandoffSpec,
    /// Extra Debian packages the Debian installer adds (`method =
    /// "debian-installer"` only; an image carries its own packages).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
}

fn default_image() -> String {
    "rootfs.tar.zst".to_string()
}

/// Rules that must match exactly one disk. All given rules must hold.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct DiskSelector {
    /// Device path, e.g. `/dev/vda` or a `/dev/disk/by-id/…` link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Serial number as in `/sys/block/*/device/serial`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// World Wide Name as in `/sys/block/*/device/wwid` or `…/wwn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wwn: Option<String>,
    /// Model as in `/sys/block/*/device/model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Smallest acceptable size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_size: Option<ByteSize>,
    /// Largest acceptable size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<ByteSize>,
    /// Allow wiping a disk that already holds partitions.
    #[serde(default)]
    pub wipe: bool,
}

/// A BTRFS subvolume and where it is mounted.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Subvolume {
    /// Subvolume name, starting with `@`.
    pub name: String,
    /// Absolute mount point in the installed system.
    pub mountpoint: String,
}

/// Partition and subvolume layout (DESIGN.md's default).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// Size of the BIOS boot partition in MiB.
    #[serde(default = "default_bios_boot")]
    pub bios_boot_mib: u64,
    /// Size of the EFI system partition in MiB.
    #[serde(default = "default_esp")]
    pub esp_mib: u64,
    /// Subvolumes; exactly one is mounted at `/` and becomes the default.
    #[serde(default = "default_subvolumes")]
    pub subvolumes: Vec<Subvolume>,
    /// BTRFS mount options.
    #[serde(default = "default_mount_options")]
    pub mount_options: String,
}

fn default_bios_boot() -> u64 {
    1
}
fn default_esp() -> u64 {
    512
}
fn default_mount_options() -> String {
    "compress=zstd:1,noatime".to_string()
}
fn default_subvolumes() -> Vec<Subvolume> {
    [("@", "/"), ("@home", "/home"), ("@var_log", "/var/log"), ("@snapshots", "/.snapshots")]
        .into_iter()
        .map(|(n, m)| Subvolume { name: n.into(), mountpoint: m.into() })
        .collect()
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            bios_boot_mib: default_bios_boot(),
            esp_mib: default_esp(),
            subvolumes: default_subvolumes(),
            mount_options: default_mount_options(),
        }
    }
}

/// The smallest root partition the installer makes.
pub const MIN_ROOT_BYTES: u64 = 2 << 30;

impl Layout {
    /// The subvolume mounted at `/`.
    pub fn root_subvolume(&self) -> Option<&Subvolume> {
        self.subvolumes.iter().find(|s| s.mountpoint == "/")
    }

    /// The smallest disk this layout fits on: 1 MiB before the first
    /// partition, the BIOS boot partition, the ESP, the smallest root, and
    /// the 33 sectors of the backup GPT.
    pub fn min_disk_bytes(&self) -> u64 {
        (1 + self.bios_boot_mib + self.esp_mib) * (1 << 20) + MIN_ROOT_BYTES + 33 * 512
    }
}

/// DHCP or static addressing.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum NetMode {
    /// Address from DHCP.
    #[default]
    Dhcp,
    /// Addresses, gateways and resolvers from the inventory.
    Static,
}

/// Network settings for the installer and the installed system.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// `dhcp` (default) or `static`.
    #[serde(default)]
    pub mode: NetMode,
    /// The NIC to configure, by MAC; default the host's first MAC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
    /// Static addresses with prefix lengths.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<IpCidr>,
    /// IPv4 default gateway; may lie outside the subnet (then on-link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// IPv6 default gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<IpAddr>,
    /// DNS resolvers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<IpAddr>,
    /// DNS search domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
}

/// Settings for handing the installed host to the config layer.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HandoffSpec {
    /// User Ansible connects as.
    #[serde(default = "default_ansible_user")]
    pub ansible_user: String,
    /// Address Ansible connects to; default the reported or static address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ansible_host: Option<IpAddr>,
}

fn default_ansible_user() -> String {
    "root".into()
}

impl Default for HandoffSpec {
    fn default() -> Self {
        HandoffSpec { ansible_user: default_ansible_user(), ansible_host: None }
    }
}

fn each<T>(items: &[T], field: &str, f: impl Fn(&T) -> Result<(), String>) -> Result<(), SpecError> {
    for (i, item) in items.iter().enumerate() {
        f(item).map_err(|m| SpecError::new(format!("{field}[{i}]"), m))?;
    }
    Ok(())
}

fn opt(v: &Option<String>, field: &str, f: impl Fn(&str) -> Result<(), String>) -> Result<(), SpecError> {
    match v {
        Some(s) => f(s).map_err(|m| SpecError::new(field, m)),
        None => Ok(()),
    }
}

impl HostSpec {
    /// Checks every field; the error names the first bad field.
    pub fn validate(&self) -> Result<(), SpecError> {
        safe::check_host_name(&self.name).map_err(|m| SpecError::new("name", m))?;
        each(&self.labels, "labels", |l| safe::check_label(l))?;
        self.disk.validate().map_err(|e| e.under("disk"))?;
        self.layout.validate().map_err(|e| e.under("layout"))?;
        self.network.validate(&self.macs).map_err(|e| e.under("network"))?;
        each(&self.ssh_authorized_keys, "ssh_authorized_keys", |k| safe::check_ssh_public_key(k))?;
        opt(&self.root_password_hash, "root_password_hash", safe::check_password_hash)?;
        safe::check_word(&self.image, 128).map_err(|m| SpecError::new("image", m))?;
        if self.image.contains('/') {
            return Err(SpecError::new("image", "names an asset, not a path: no '/'"));
        }
        each(&self.kernel_args, "kernel_args", |a| safe::check_kernel_arg(a))?;
        safe::check_word(&self.handoff.ansible_user, 32).map_err(|m| SpecError::new("handoff.ansible_user", m))?;
        each(&self.packages, "packages", |p| safe::check_package_name(p))?;
        if !self.packages.is_empty() && self.method != Method::DebianInstaller {
            return Err(SpecError::new(
                "packages",
                "only hosts with method = \"debian-installer\" install extra packages; an image carries its own",
            ));
        }
        if self.ssh_authorized_keys.is_empty() && self.root_password_hash.is_none() {
            return Err(SpecError::new(
                "ssh_authorized_keys",
                "no key and no root_password_hash: nobody could log in to the installed host",
            ));
        }
        Ok(())
    }
}

impl DiskSelector {
    /// Checks each rule's characters and that the size range is not empty.
    pub fn validate(&self) -> Result<(), SpecError> {
        opt(&self.path, "path", |p| {
            safe::check_abs_path(p)?;
            if !p.starts_with("/dev/") {
                return Err(format!("{p:?} is not under /dev"));
            }
            Ok(())
        })?;
        opt(&self.serial, "serial", |s| safe::check_spaced_word(s, 128))?;
        opt(&self.wwn, "wwn", |s| safe::check_word(s, 128))?;
        opt(&self.model, "model", |s| safe::check_spaced_word(s, 128))?;
        if let (Some(min), Some(max)) = (self.min_size, self.max_size) {
            if min > max {
                return Err(SpecError::new("min_size", format!("{min} is larger than max_size {max}")));
            }
        }
        Ok(())
    }

    /// A one-line human summary: `serial=X, size 8GiB..16GiB`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = &self.path {
            parts.push(format!("path={p}"));
        }
        if let Some(s) = &self.serial {
            parts.push(format!("serial={s}"));
        }
        if let Some(s) = &self.wwn {
            parts.push(format!("wwn={s}"));
        }
        if let Some(s) = &self.model {
            parts.push(format!("model={s}"));
        }
        match (self.min_size, self.max_size) {
            (Some(a), Some(b)) => parts.push(format!("size {a}..{b}")),
            (Some(a), None) => parts.push(format!("size >= {a}")),
            (None, Some(b)) => parts.push(format!("size <= {b}")),
            (None, None) => {}
        }
        if parts.is_empty() {
            "the only eligible disk".into()
        } else {
            parts.join(", ")
        }
    }
}

impl Layout {
    /// Checks sizes, subvolume names, mount points and mount options.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.bios_boot_mib == 0 || self.bios_boot_mib > 64 {
            return Err(SpecError::new("bios_boot_mib", "must be 1 to 64"));
        }
        if self.esp_mib < 32 || self.esp_mib > 4096 {
            return Err(SpecError::new("esp_mib", "must be 32 to 4096"));
        }
        if self.subvolumes.iter().filter(|s| s.mountpoint == "/").count() != 1 {
            return Err(SpecError::new("subvolumes", "exactly one subvolume must be mounted at /"));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, s) in self.subvolumes.iter().enumerate() {
            let f = format!("subvolumes[{i}]");
            let rest = s.name.strip_prefix('@').unwrap_or("-");
            if !rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
                || s.name.len() > 64
            {
                return Err(SpecError::new(
                    format!("{f}.name"),
                    format!("{:?} must start with '@' then letters, digits, _ - .", s.name),
                ));
            }
            safe::check_abs_path(&s.mountpoint).map_err(|m| SpecError::new(format!("{f}.mountpoint"), m))?;
            if !seen.insert((&s.name, "n")) || !seen.insert((&s.mountpoint, "m")) {
                return Err(SpecError::new(f, "duplicate subvolume name or mount point"));
            }
        }
        safe::check_word(&self.mount_options, 255).map_err(|m| SpecError::new("mount_options", m))?;
        if self.mount_options.split(',').any(|o| o.starts_with("subvol")) {
            return Err(SpecError::new("mount_options", "subvol options are set per subvolume"));
        }
        Ok(())
    }
}

impl NetworkSpec {
    /// Checks that static settings are complete and consistent.
    pub fn validate(&self, macs: &[MacAddr]) -> Result<(), SpecError> {
        if let Some(m) = self.mac {
            if !macs.is_empty() && !macs.contains(&m) {
                return Err(SpecError::new("mac", format!("{m} is not one of the host's macs")));
            }
        }
        each(&self.search, "search", |d| {
            for label in d.split('.') {
                safe::check_label(label).or_else(|_| {
                    if label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') && !label.is_empty() {
                        Ok(())
                    } else {
                        Err(format!("{d:?} is not a domain name"))
                    }
                })?;
            }
            Ok(())
        })?;
        match self.mode {
            NetMode::Dhcp => {
                if !self.addresses.is_empty() || self.gateway.is_some() || self.gateway6.is_some() {
                    return Err(SpecError::new(
                        "mode",
                        "addresses/gateways given but mode is \"dhcp\"; set mode = \"static\"",
                    ));
                }
            }
            NetMode::Static => {
                if self.addresses.is_empty() {
                    return Err(SpecError::new("addresses", "static mode needs at least one address"));
                }
                if let Some(gw) = self.gateway {
                    if !gw.is_ipv4() {
                        return Err(SpecError::new("gateway", "must be IPv4; use gateway6 for IPv6"));
                    }
                    if !self.addresses.iter().any(|a| a.addr.is_ipv4()) {
                        return Err(SpecError::new("gateway", "IPv4 gateway without an IPv4 address"));
                    }
                }
                if let Some(gw) = self.gateway6 {
                    if !gw.is_ipv6() {
                        return Err(SpecError::new("gateway6", "must be IPv6"));
                    }
                }
            }
        }
        Ok(())
    }

    /// The first IPv4 address, if any.
    pub fn ipv4(&self) -> Option<&IpCidr> {
        self.addresses.iter().find(|a| a.addr.is_ipv4())
    }
}
