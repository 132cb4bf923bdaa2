//! The install plan: everything the installer needs to install one host,
//! served as JSON at `/v1/hosts/{name}/plan?token=…`. The token itself is not
//! in the plan; the installer got it on its kernel command line.

use crate::{AdminUser, DiskSelector, Layout, MacAddr, NetworkSpec, OnFailure, SpecError, SshdSettings};
use serde::{Deserialize, Serialize};

/// Version of the plan format; the installer refuses plans it does not know.
pub const PLAN_VERSION: u32 = 1;

/// Where to fetch the root filesystem image, and how to check it.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImageRef {
    /// HTTP URL of the `.tar.zst`.
    pub url: String,
    /// Lower-case hex sha256 of the whole file.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// URLs the installer and the first boot report to (token added by caller).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Endpoints {
    /// Progress events.
    pub events: String,
    /// Installer's final report (host keys) before reboot.
    pub report: String,
    /// First-boot phone-home.
    pub installed: String,
    /// The installed host's signed status reports (after each snapshot
    /// run); only for a host with `[host.snapshots]`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// A keeping reinstall's previous system, booted again because the new
    /// one did not phone home, says so here; only in a plan with `keep`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rolled_back: String,
}

/// The install plan for one host.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InstallPlan {
    /// Format version, [`PLAN_VERSION`].
    pub version: u32,
    /// Host name; the installed system's hostname.
    pub hostname: String,
    /// MACs of the host.
    pub macs: Vec<MacAddr>,
    /// Target disk rules (one disk). Either this or `disks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskSelector>,
    /// Rules for two or more disks (`layout.raid = "raid1"`). An installer
    /// from before this field refuses such a plan (unknown field, no `disk`)
    /// rather than install on one disk.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disks: Vec<DiskSelector>,
    /// Partitions and subvolumes.
    pub layout: Layout,
    /// Network of the installed system.
    pub network: NetworkSpec,
    /// The root filesystem image.
    pub image: ImageRef,
    /// Keys for root's `authorized_keys`.
    pub ssh_authorized_keys: Vec<String>,
    /// Optional crypt(3) hash for root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_password_hash: Option<String>,
    /// The user to make besides root, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminUser>,
    /// The SSH daemon's login settings (a plan from before they existed:
    /// root with a key only, no passwords).
    #[serde(default)]
    pub ssh: SshdSettings,
    /// Extra kernel arguments for the installed system.
    pub kernel_args: Vec<String>,
    /// Shell or reboot after a failure.
    pub on_failure: OnFailure,
    /// Report URLs.
    pub endpoints: Endpoints,
    /// Snapshots the installed system takes (btrbk and its timer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<crate::SnapshotSpec>,
    /// A reinstall that keeps these subvolumes of the disk's filesystem
    /// (`reinstall --keep`): nothing is repartitioned, the old root is kept
    /// read-only under `@snapshots`, a new one is written beside it. An
    /// installer from before this field refuses such a plan (unknown field)
    /// rather than wipe the disk.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep: Vec<String>,
    /// A keeping reinstall's trial: the previous root stays bootable, the
    /// new system boots once, and without a phone-home within this many
    /// seconds of that boot the host boots its previous system again. Only
    /// with `keep`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_after: Option<u32>,
}

/// How long a keeping reinstall's new system has to phone home before the
/// host boots its previous system again, unless the reinstall says.
pub const DEFAULT_ROLLBACK_AFTER_SECS: u32 = 600;

/// The range `rollback_after` may take, in seconds.
pub const ROLLBACK_AFTER_RANGE: std::ops::RangeInclusive<u32> = 30..=86_400;

impl InstallPlan {
    /// Every disk selector: the one `disk`, else `disks`.
    pub fn disk_selectors(&self) -> &[DiskSelector] {
        crate::disk::selectors(&self.disk, &self.disks)
    }

    /// The installer's own check of a plan received over the network.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.version != PLAN_VERSION {
            return Err(SpecError::new("version", format!("plan version {} is not {PLAN_VERSION}", self.version)));
        }
        crate::safe::check_host_name(&self.hostname).map_err(|m| SpecError::new("hostname", m))?;
        crate::disk::check_disks(self.disk.as_ref(), &self.disks, self.layout.raid)?;
        self.layout.validate().map_err(|e| e.under("layout"))?;
        self.network.validate(&self.macs).map_err(|e| e.under("network"))?;
        if self.image.sha256.len() != 64 || !self.image.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SpecError::new("image.sha256", "not a hex sha256"));
        }
        for (i, k) in self.ssh_authorized_keys.iter().enumerate() {
            crate::safe::check_ssh_public_key(k).map_err(|m| SpecError::new(format!("ssh_authorized_keys[{i}]"), m))?;
        }
        if let Some(a) = &self.admin {
            a.validate().map_err(|e| e.under("admin"))?;
        }
        for (i, a) in self.kernel_args.iter().enumerate() {
            crate::safe::check_kernel_arg(a).map_err(|m| SpecError::new(format!("kernel_args[{i}]"), m))?;
        }
        if let Some(snap) = &self.snapshots {
            snap.validate(&self.layout).map_err(|e| e.under("snapshots"))?;
        }
        crate::keep::check_keep(&self.keep, &self.layout)?;
        if let Some(secs) = self.rollback_after {
            if self.keep.is_empty() {
                return Err(SpecError::new("rollback_after", "only a reinstall that keeps subvolumes rolls back"));
            }
            if !ROLLBACK_AFTER_RANGE.contains(&secs) {
                return Err(SpecError::new("rollback_after", format!("{secs} s is not between 30 s and 24 h")));
            }
        }
        let e = &self.endpoints;
        for (url, field) in [
            (&e.events, "events"),
            (&e.report, "report"),
            (&e.installed, "installed"),
            (&e.status, "status"),
            (&e.rolled_back, "rolled_back"),
        ] {
            check_endpoint(url).map_err(|m| SpecError::new(format!("endpoints.{field}"), m))?;
        }
        Ok(())
    }
}

/// An endpoint URL goes into files the new system sources as shell: http
/// or https, and nothing but the characters a URL of ours has.
fn check_endpoint(url: &str) -> Result<(), String> {
    let ok_chars = url.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~:/[]%?=&".contains(&b));
    if url.is_empty() || ((url.starts_with("http://") || url.starts_with("https://")) && ok_chars && url.len() <= 512) {
        Ok(())
    } else {
        Err(format!("{} is not an http(s) URL of plain characters", crate::quote(url)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RootLogin;

    fn plan_json() -> serde_json::Value {
        serde_json::json!({
            "version": 1,
            "hostname": "web1",
            "macs": ["52:54:00:00:00:01"],
            "disk": { "path": "/dev/vda" },
            "layout": {},
            "network": {},
            "image": { "url": "http://192.0.2.1:8080/assets/rootfs.tar.zst", "sha256": "ab".repeat(32), "size": 1 },
            "ssh_authorized_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMq"],
            "kernel_args": [],
            "on_failure": "shell",
            "endpoints": { "events": "http://192.0.2.1/e", "report": "http://192.0.2.1/r", "installed": "http://192.0.2.1/i" }
        })
    }

    #[test]
    fn a_plan_without_login_settings_means_root_with_a_key() {
        let p: InstallPlan = serde_json::from_value(plan_json()).unwrap();
        p.validate().unwrap();
        assert_eq!(p.admin, None);
        assert_eq!(
            p.ssh,
            SshdSettings { permit_root_login: RootLogin::ProhibitPassword, password_authentication: false }
        );
    }

    #[test]
    fn endpoints_are_plain_urls_since_the_new_system_sources_them() {
        let mut v = plan_json();
        v["endpoints"]["status"] = "https://192.0.2.1:8443/v1/hosts/web1/status".into();
        serde_json::from_value::<InstallPlan>(v.clone()).unwrap().validate().unwrap();
        v["endpoints"]["status"] = "https://x/'; reboot; '".into();
        let e = serde_json::from_value::<InstallPlan>(v.clone()).unwrap().validate().unwrap_err().to_string();
        assert!(e.contains("endpoints.status"), "{e}");
        v["endpoints"]["status"] = "".into();
        v["endpoints"]["installed"] = "file:///etc/passwd".into();
        assert!(serde_json::from_value::<InstallPlan>(v).unwrap().validate().is_err());
    }

    #[test]
    fn the_installer_checks_the_admin_user_again() {
        let mut v = plan_json();
        v["admin"] = serde_json::json!({
            "name": "ops",
            "ssh_authorized_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMq"],
            "sudo": true,
            "shell": "/bin/bash"
        });
        v["ssh"] = serde_json::json!({ "permit_root_login": "no", "password_authentication": false });
        let p: InstallPlan = serde_json::from_value(v.clone()).unwrap();
        p.validate().unwrap();
        v["admin"]["name"] = "ops\nroot".into();
        let p: InstallPlan = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(p.validate().unwrap_err().field, "admin.name");
        v["ssh"]["permit_root_login"] = "without-password".into();
        assert!(serde_json::from_value::<InstallPlan>(v).is_err(), "only the values metalboot writes");
    }

    #[test]
    fn a_plan_carries_one_disk_or_several_with_raid1() {
        let p: InstallPlan = serde_json::from_value(plan_json()).unwrap();
        assert_eq!(p.disk_selectors().len(), 1);
        let out = serde_json::to_value(&p).unwrap();
        assert!(out.get("disks").is_none() && out["layout"].get("raid").is_none(), "one-disk plans as before: {out}");
        let mut v = plan_json();
        v.as_object_mut().unwrap().remove("disk");
        v["disks"] = serde_json::json!([{ "serial": "A" }, { "serial": "B" }]);
        v["layout"] = serde_json::json!({ "raid": "raid1" });
        let p: InstallPlan = serde_json::from_value(v.clone()).unwrap();
        p.validate().unwrap();
        assert_eq!(p.disk_selectors().iter().map(|s| s.describe()).collect::<Vec<_>>(), ["serial=A", "serial=B"]);
        v["layout"] = serde_json::json!({});
        let p: InstallPlan = serde_json::from_value(v).unwrap();
        assert_eq!(p.validate().unwrap_err().field, "layout.raid");
    }
}
