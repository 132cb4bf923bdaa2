//! The operator API's wire types: what `metalboot serve` answers and what
//! the operator commands (`metalboot hosts`, `reinstall`, `known-hosts`, …)
//! send and read, and the host states and records behind them. Both sides
//! use these, so the operator's code needs nothing of the server's.

use crate::error::quote;
use crate::{DiskSelector, MacAddr, Method, NetworkSpec};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a host is in its install life cycle.
///
/// `absent → armed → booting → installing → rebooting → installed`, with
/// `failed` reachable from booting/installing/rebooting and `disarmed` from any
/// state by the operator. Only armed, booting and installing hosts get the
/// installer when they network-boot: that is the install-once guard.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HostState {
    /// In the inventory, never armed.
    Absent,
    /// Will be installed at its next network boot.
    Armed,
    /// Has been served the installer; token issued.
    Booting,
    /// The installer reported progress.
    Installing,
    /// The installer finished and reported host keys; waiting for first boot.
    Rebooting,
    /// First boot phoned home. Token dead.
    Installed,
    /// The install failed; see `failed_step`/`failed_error`.
    Failed,
    /// The operator stopped the install.
    Disarmed,
}

impl HostState {
    /// Every state, in the order a host goes through them.
    pub const ALL: [HostState; 8] = [
        HostState::Absent,
        HostState::Armed,
        HostState::Booting,
        HostState::Installing,
        HostState::Rebooting,
        HostState::Installed,
        HostState::Failed,
        HostState::Disarmed,
    ];

    /// True when a network boot should start the installer.
    pub fn wants_install(self) -> bool {
        matches!(self, HostState::Armed | HostState::Booting | HostState::Installing)
    }

    /// True when install-time calls with the host's token are accepted.
    pub fn token_live(self) -> bool {
        matches!(self, HostState::Booting | HostState::Installing | HostState::Rebooting | HostState::Failed)
    }

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Absent => "absent",
            HostState::Armed => "armed",
            HostState::Booting => "booting",
            HostState::Installing => "installing",
            HostState::Rebooting => "rebooting",
            HostState::Installed => "installed",
            HostState::Failed => "failed",
            HostState::Disarmed => "disarmed",
        }
    }
}

impl fmt::Display for HostState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HostState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "absent" => HostState::Absent,
            "armed" => HostState::Armed,
            "booting" => HostState::Booting,
            "installing" => HostState::Installing,
            "rebooting" => HostState::Rebooting,
            "installed" => HostState::Installed,
            "failed" => HostState::Failed,
            "disarmed" => HostState::Disarmed,
            other => return Err(format!("unknown host state {} in database", quote(other))),
        })
    }
}

/// What the store knows about one host.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct HostRecord {
    /// Host name.
    pub name: String,
    /// Current state.
    pub state: HostState,
    /// Step that failed, when `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    /// Error of the failed step, when `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_error: Option<String>,
    /// SSH host public keys reported by the installer / first boot.
    pub host_keys: Vec<String>,
    /// Addresses reported by the first boot.
    pub addresses: Vec<String>,
    /// The key the host logs in to its backup targets with, as the
    /// installer reported it (`[[host.snapshots.send]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_key: Option<String>,
    /// The host's last status report (snapshots, the last run), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<crate::status::HostStatus>,
    /// When the host phoned home (RFC 3339), if it has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installed_at: Option<String>,
    /// Last change (RFC 3339).
    pub updated_at: String,
    /// While the host boots, installs or reboots: the installer's latest
    /// progress entry (step, percent, message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<TimelineEntry>,
}

/// One timeline entry.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TimelineEntry {
    /// When (RFC 3339, milliseconds).
    pub at: String,
    /// `state` for transitions, `progress` for installer steps, `log` otherwise.
    pub kind: String,
    /// New state, for transitions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Installer step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Percent of the step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<i64>,
    /// Bytes done in the step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<i64>,
    /// Human message.
    pub message: String,
}

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
    pub method: Method,
    /// Disk selector, in words.
    pub disk: String,
    /// The smallest disk the host's layout fits on, whatever the disk's
    /// sector size (0: not said).
    #[serde(default)]
    pub min_disk_bytes: u64,
    /// The disk selector itself, for `metalboot reinstall` from a rescue
    /// system, where it chooses the disk (absent from an older server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_selector: Option<DiskSelector>,
    /// Every disk selector of a host on several disks (btrfs raid1; then
    /// `disk_selector` is absent); empty for one disk.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disks: Vec<DiskSelector>,
    /// Who logs in over SSH on the installed system (root, or the admin
    /// user when root login is off).
    #[serde(default = "root_login")]
    pub login: String,
}

impl HostView {
    /// Every disk selector of the host: its `disks`, else its one
    /// `disk_selector` (none from an older server).
    pub fn selectors(&self) -> Vec<DiskSelector> {
        if self.disks.is_empty() {
            self.disk_selector.iter().cloned().collect()
        } else {
            self.disks.clone()
        }
    }
}

fn root_login() -> String {
    "root".into()
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
    /// The disk the operator confirmed: the one holding `/` (or, from a
    /// rescue system, the host's own selector, checked on the discovered
    /// disks); for a host on several disks, the first of `disks`.
    pub disk: DiskSelector,
    /// For a host on several disks (btrfs raid1): every disk the operator
    /// confirmed, in the inventory's order, each pinned to the disk
    /// discovery found; empty for one disk.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disks: Vec<DiskSelector>,
    /// How the installer is booted (`kexec`), for the timeline.
    pub via: String,
    /// Seconds the installer keeps trying to reach the server for its plan
    /// before it reboots into the old system (`metalboot.wait`; absent:
    /// the installer's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_wait: Option<u32>,
    /// Subvolumes to keep (`--keep @home`): only the root (and the
    /// layout's other subvolumes) are replaced, nothing is repartitioned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep: Vec<String>,
    /// With `keep`: seconds the new system has to phone home from its first
    /// boot before the host boots its previous system again (absent: the
    /// default, [`crate::plan::DEFAULT_ROLLBACK_AFTER_SECS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_after: Option<u32>,
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
    pub step: crate::Step,
    /// Why.
    pub error: String,
}
