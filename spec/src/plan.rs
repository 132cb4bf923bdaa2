//! The install plan: everything the installer needs to install one host,
//! served as JSON at `/v1/hosts/{name}/plan?token=…`. The token itself is not
//! in the plan; the installer got it on its kernel command line.

use crate::{DiskSelector, Layout, MacAddr, NetworkSpec, OnFailure, SpecError};
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
    /// Target disk rules.
    pub disk: DiskSelector,
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
    /// Extra kernel arguments for the installed system.
    pub kernel_args: Vec<String>,
    /// Shell or reboot after a failure.
    pub on_failure: OnFailure,
    /// Report URLs.
    pub endpoints: Endpoints,
}

impl InstallPlan {
    /// The installer's own check of a plan received over the network.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.version != PLAN_VERSION {
            return Err(SpecError::new("version", format!("plan version {} is not {PLAN_VERSION}", self.version)));
        }
        crate::safe::check_host_name(&self.hostname).map_err(|m| SpecError::new("hostname", m))?;
        self.disk.validate().map_err(|e| e.under("disk"))?;
        self.layout.validate().map_err(|e| e.under("layout"))?;
        self.network.validate(&self.macs).map_err(|e| e.under("network"))?;
        if self.image.sha256.len() != 64 || !self.image.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SpecError::new("image.sha256", "not a hex sha256"));
        }
        for (i, k) in self.ssh_authorized_keys.iter().enumerate() {
            crate::safe::check_ssh_public_key(k).map_err(|m| SpecError::new(format!("ssh_authorized_keys[{i}]"), m))?;
        }
        for (i, a) in self.kernel_args.iter().enumerate() {
            crate::safe::check_kernel_arg(a).map_err(|m| SpecError::new(format!("kernel_args[{i}]"), m))?;
        }
        Ok(())
    }
}
