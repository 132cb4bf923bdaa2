//! One host of the inventory, as the operator writes it (TOML, kept in git).
//!
//! Every field is typed or checked by [`HostSpec::validate`]; a host that
//! passes can be rendered into an iPXE script, a preseed or a kernel command
//! line without further escaping (renderers still check again).

use crate::error::opt;
use crate::error::quote;
use crate::safe;
use crate::{AdminSpec, AdminUser, DiskSelector, IpCidr, Layout, MacAddr, SpecError, SshSpec, SshdSettings};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// What the installer does after a failure.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Stay up with a shell on the console for inspection.
    #[default]
    Shell,
    /// Reboot.
    Reboot,
}

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
    /// Which disk to install to. This or `disks` is required: metalboot
    /// never guesses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskSelector>,
    /// Two or more disks, each selector matching exactly one, for one BTRFS
    /// mirrored across them (`layout.raid = "raid1"`; image method only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disks: Vec<DiskSelector>,
    /// Partition and subvolume layout.
    #[serde(default)]
    pub layout: Layout,
    /// Network configuration of the installer and the installed system.
    #[serde(default)]
    pub network: NetworkSpec,
    /// Keys written to root's `authorized_keys` (and the admin user's,
    /// unless it lists its own).
    #[serde(default)]
    pub ssh_authorized_keys: Vec<String>,
    /// Optional crypt(3) hash for root's password; never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_password_hash: Option<String>,
    /// A user made besides root, who logs in with keys and uses sudo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminSpec>,
    /// Root login and password logins over SSH.
    #[serde(default)]
    pub ssh: SshSpec,
    /// Name of the root filesystem image asset: `rootfs.tar.zst` (Debian's
    /// generic kernel, the default) or `rootfs-cloud.tar.zst` (its cloud
    /// kernel, for VMs), or any name under the server's `[assets.files]`.
    #[serde(default = "default_image")]
    pub image: String,
    /// Extra kernel arguments for the installed system.
    #[serde(default)]
    pub kernel_args: Vec<String>,
    /// What happens when the installer fails: keep a shell or reboot.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// Handing the host to the config layer.
    #[serde(default)]
    pub handoff: HandoffSpec,
    /// Extra Debian packages the Debian installer adds (`method =
    /// "debian-installer"` only; an image carries its own packages).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
    /// Snapshots of its subvolumes, taken by the installed system (btrbk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<crate::SnapshotSpec>,
}

fn default_image() -> String {
    "rootfs.tar.zst".to_string()
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
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct HandoffSpec {
    /// User Ansible connects as; default the admin user, else root (see
    /// [`HostSpec::ansible_user`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ansible_user: Option<String>,
    /// Address Ansible connects to; default the reported or static address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ansible_host: Option<IpAddr>,
}

fn each<T>(items: &[T], field: &str, f: impl Fn(&T) -> Result<(), String>) -> Result<(), SpecError> {
    for (i, item) in items.iter().enumerate() {
        f(item).map_err(|m| SpecError::new(format!("{field}[{i}]"), m))?;
    }
    Ok(())
}

impl HostSpec {
    /// Checks every field; the error names the first bad field.
    pub fn validate(&self) -> Result<(), SpecError> {
        safe::check_host_name(&self.name).map_err(|m| SpecError::new("name", m))?;
        each(&self.labels, "labels", |l| safe::check_label(l))?;
        crate::disk::check_disks(self.disk.as_ref(), &self.disks, self.layout.raid)?;
        self.layout.validate().map_err(|e| e.under("layout"))?;
        if self.method == Method::DebianInstaller && (!self.disks.is_empty() || !self.layout.raid.is_none()) {
            let field = if self.disks.is_empty() { "layout.raid" } else { "disks" };
            return Err(SpecError::new(
                field,
                "several disks (btrfs raid1) are not supported with method = \"debian-installer\"; use the image method",
            ));
        }
        self.network.validate(&self.macs).map_err(|e| e.under("network"))?;
        each(&self.ssh_authorized_keys, "ssh_authorized_keys", |k| safe::check_ssh_public_key(k))?;
        opt(&self.root_password_hash, "root_password_hash", safe::check_password_hash)?;
        safe::check_word(&self.image, 128).map_err(|m| SpecError::new("image", m))?;
        if self.image.contains('/') {
            return Err(SpecError::new("image", "names an asset, not a path: no '/'"));
        }
        each(&self.kernel_args, "kernel_args", |a| safe::check_kernel_arg(a))?;
        opt(&self.handoff.ansible_user, "handoff.ansible_user", |u| safe::check_word(u, 32))?;
        each(&self.packages, "packages", |p| safe::check_package_name(p))?;
        if !self.packages.is_empty() && self.method != Method::DebianInstaller {
            return Err(SpecError::new(
                "packages",
                "only hosts with method = \"debian-installer\" install extra packages; an image carries its own",
            ));
        }
        if let Some(a) = &self.admin {
            a.validate(&self.ssh_authorized_keys).map_err(|e| e.under("admin"))?;
        } else if self.ssh_authorized_keys.is_empty() && self.root_password_hash.is_none() {
            return Err(SpecError::new(
                "ssh_authorized_keys",
                "no key and no root_password_hash: nobody could log in to the installed host",
            ));
        }
        self.ssh.validate(self.admin.is_some()).map_err(|e| e.under("ssh"))?;
        if let Some(snap) = &self.snapshots {
            if self.method == Method::DebianInstaller {
                return Err(SpecError::new(
                    "snapshots",
                    "snapshots are set up by metalboot's installer; not with method = \"debian-installer\"",
                ));
            }
            snap.validate(&self.layout).map_err(|e| e.under("snapshots"))?;
        }
        Ok(())
    }

    /// Every disk selector: the one `disk`, else `disks`.
    pub fn disk_selectors(&self) -> &[DiskSelector] {
        crate::disk::selectors(&self.disk, &self.disks)
    }

    /// Whether the host is installed on several disks.
    pub fn multi_disk(&self) -> bool {
        self.disk_selectors().len() > 1
    }

    /// The disks in words (see [`crate::disk::describe_selectors`]).
    pub fn describe_disks(&self) -> String {
        crate::disk::describe_selectors(self.disk_selectors())
    }

    /// The admin user as the plan carries it, every default resolved.
    pub fn admin_user(&self) -> Option<AdminUser> {
        self.admin.as_ref().map(|a| a.resolve(&self.ssh_authorized_keys))
    }

    /// The installed system's SSH daemon settings.
    pub fn sshd_settings(&self) -> SshdSettings {
        self.ssh.resolve(self.admin.is_some())
    }

    /// Who logs in over SSH on the installed system: the admin user when
    /// there is one (root login is then off by default, and root may have
    /// no key), else root.
    pub fn ssh_login(&self) -> &str {
        self.admin.as_ref().map_or("root", |a| a.name.as_str())
    }

    /// The user Ansible connects as: `handoff.ansible_user`, else the admin
    /// user, else root.
    pub fn ansible_user(&self) -> &str {
        match (&self.handoff.ansible_user, &self.admin) {
            (Some(u), _) => u,
            (None, Some(a)) => &a.name,
            (None, None) => "root",
        }
    }

    /// Whether Ansible becomes root with sudo: it connects as the admin
    /// user, who has passwordless sudo.
    pub fn ansible_become(&self) -> bool {
        self.admin.as_ref().is_some_and(|a| a.sudo && a.name == self.ansible_user())
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
                        Err(format!("{} is not a domain name", quote(d)))
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

#[cfg(test)]
#[path = "host_tests.rs"]
mod tests;
