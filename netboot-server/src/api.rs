//! The operator API's wire types: what `metalboot serve` answers and what the
//! operator commands (`metalboot hosts`, `reinstall`, `known-hosts`, …)
//! send and read. Both sides use these, so this module depends on neither:
//! only on `spec` and the host record the state store keeps.
//!
//! `HostRecord`, `HostState` and `TimelineEntry` are defined with the store
//! (they are its rows) and re-exported here, so the operator side names them
//! through this module and never through the store.

use metalboot_spec::{DiskSelector, MacAddr, NetworkSpec};
use serde::{Deserialize, Serialize};

pub use crate::state::{HostRecord, HostState, TimelineEntry};

/// A host as the API shows it: inventory facts plus state.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct HostView {
    /// Stored state.
    #[serde(flatten)]
    pub record: HostRecord,
    /// MACs from the inventory.
    pub macs: Vec<String>,
    /// Labels from the inventory.
    pub labels: Vec<String>,
    /// Install method.
    pub method: metalboot_spec::Method,
    /// Disk selector, in words.
    pub disk: String,
    /// The smallest disk the host's layout fits on (0: not said).
    #[serde(default)]
    pub min_disk_bytes: u64,
}

/// `show` adds the timeline.
#[derive(Serialize, Deserialize, Debug)]
pub struct HostDetail {
    /// Host and state.
    #[serde(flatten)]
    pub host: HostView,
    /// Every recorded transition and event.
    pub timeline: Vec<TimelineEntry>,
}

/// What discovery found, and how the target will boot the installer.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ReinstallRequest {
    /// The NIC the network config belongs to.
    pub mac: MacAddr,
    /// The running system's network, as static config.
    pub network: NetworkSpec,
    /// The disk the operator confirmed: the one holding `/`.
    pub disk: DiskSelector,
    /// How the installer is booted (`kexec`), for the timeline.
    pub via: String,
}

/// The installer to boot, with its command line (token included).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ReinstallBoot {
    /// Install token (also in `cmdline`).
    pub token: String,
    /// Installer kernel URL.
    pub kernel_url: String,
    /// Installer initramfs URL.
    pub initramfs_url: String,
    /// Kernel command line for the installer.
    pub cmdline: String,
}

/// A failure recorded by the operator side.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct FailRequest {
    /// Step that failed.
    pub step: String,
    /// Why.
    pub error: String,
}
