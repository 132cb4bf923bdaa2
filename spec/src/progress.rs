//! What an installer tells the server while it works: the named [`Step`]s,
//! the [`ProgressEvent`] posted per step (`POST /v1/hosts/NAME/events`, or
//! `GET …/events/STEP` from the Debian installer's busybox `wget`) and the
//! [`HostReport`] sent with the new host keys (`…/report`) and by the first
//! boot (`…/installed`). The server refuses a step it does not know, so a
//! renamed step fails in a unit test, not in a QEMU run.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! steps {
    ($($(#[$doc:meta])* $v:ident = $s:literal,)*) => {
        /// A named step of an install, as the installers and the reinstall
        /// command report it.
        #[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Step {
            $($(#[$doc])* #[serde(rename = $s)] $v,)*
        }

        impl Step {
            /// Every step, in the order an install goes through them.
            pub const ALL: &'static [Step] = &[$(Step::$v,)*];

            /// The step's name on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Step::$v => $s,)*
                }
            }
        }
    };
}

steps! {
    /// The installer brings up its network (and reaches the server, or
    /// proves the gateway when standalone).
    Network = "network",
    /// The Debian installer's preseed has loaded.
    PreseedEarly = "preseed-early",
    /// The host's disk selector picks the disk(s).
    SelectDisk = "select-disk",
    /// Exclusive access and size checks on the chosen disk.
    Preflight = "preflight",
    /// Waiting for the kernel's random pool to be seeded.
    Entropy = "entropy",
    /// The partition table is written: the first write.
    Partition = "partition",
    /// Filesystems are made.
    Mkfs = "mkfs",
    /// BTRFS subvolumes are made.
    Subvolumes = "subvolumes",
    /// The root filesystem image is streamed onto the disk.
    Unpack = "unpack",
    /// Hostname, network, fstab, keys of the new system.
    Configure = "configure",
    /// GRUB for BIOS and UEFI.
    Bootloader = "bootloader",
    /// The new system is unmounted and synced.
    Unmount = "unmount",
    /// The Debian installer's late command (keys, report).
    Finish = "finish",
    /// The installer reports the new host keys.
    Report = "report",
    /// The reinstall command starts the installer with kexec.
    Kexec = "kexec",
    /// The reinstall command starts the installer with a one-shot GRUB
    /// entry (`grub-reboot`).
    GrubReboot = "grub-reboot",
    /// The reinstall command prepares a standalone payload.
    Standalone = "standalone",
    /// The reinstall command waits for the new system.
    Install = "install",
    /// The installed system's first boot (phone-home).
    FirstBoot = "first-boot",
}

/// The installer's steps that come before its first write to any disk. A
/// failure in one of them leaves every disk as it was; with
/// `metalboot.fallback=reboot` the installer then reboots into the system
/// on disk (reinstall in place).
pub const STEPS_BEFORE_FIRST_WRITE: &[Step] = &[Step::Network, Step::SelectDisk, Step::Preflight, Step::Entropy];

impl Step {
    /// True for a step before the installer's first write.
    pub fn before_first_write(self) -> bool {
        STEPS_BEFORE_FIRST_WRITE.contains(&self)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step name nobody knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown step {}", crate::error::quote(.0))]
pub struct UnknownStep(pub String);

impl FromStr for Step {
    type Err = UnknownStep;

    fn from_str(s: &str) -> Result<Step, UnknownStep> {
        Step::ALL.iter().copied().find(|st| st.as_str() == s).ok_or_else(|| UnknownStep(s.chars().take(64).collect()))
    }
}

/// Status carried by a progress event.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    /// The step is under way.
    #[default]
    Running,
    /// The step finished.
    Done,
    /// The step failed; the install stops.
    Failed,
}

/// A progress event as an installer posts it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProgressEvent {
    /// The step.
    pub step: Step,
    /// `running` (default), `done` or `failed`.
    #[serde(default)]
    pub status: EventStatus,
    /// Percent done of this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u8>,
    /// Bytes done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Message; for `failed`, the error.
    #[serde(default)]
    pub message: String,
}

impl ProgressEvent {
    /// An event with a message.
    pub fn new(step: Step, status: EventStatus, message: impl Into<String>) -> ProgressEvent {
        ProgressEvent { step, status, percent: None, bytes: None, message: message.into() }
    }

    /// Progress within a running step.
    pub fn progress(step: Step, percent: u8, bytes: u64) -> ProgressEvent {
        ProgressEvent {
            step,
            status: EventStatus::Running,
            percent: Some(percent),
            bytes: Some(bytes),
            message: String::new(),
        }
    }
}

/// The installer's final report, or the first boot's phone-home.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HostReport {
    /// SSH host public keys (`type base64`).
    #[serde(default)]
    pub host_keys: Vec<String>,
    /// Addresses the host has.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// The public key the host logs in to its backup targets with
    /// (`[[host.snapshots.send]]`), reported by the installer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_key: Option<String>,
    /// A keeping reinstall's previous system, back because the new one did
    /// not phone home: why, as the new system said before it rebooted
    /// (empty when it never got that far).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_round_trips_by_name_and_json() {
        for s in Step::ALL {
            assert_eq!(s.as_str().parse::<Step>().unwrap(), *s);
            assert_eq!(serde_json::to_string(s).unwrap(), format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<Step>(&format!("\"{s}\"")).unwrap(), *s);
        }
        assert_eq!("partiton".parse::<Step>(), Err(UnknownStep("partiton".into())));
    }

    #[test]
    fn events_serialise_as_the_server_expects() {
        let e = ProgressEvent::progress(Step::Unpack, 40, 1024);
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"step": "unpack", "status": "running", "percent": 40, "bytes": 1024, "message": ""})
        );
        let f: ProgressEvent =
            serde_json::from_str(r#"{"step":"select-disk","status":"failed","message":"x"}"#).unwrap();
        assert_eq!(f, ProgressEvent::new(Step::SelectDisk, EventStatus::Failed, "x"));
        assert!(serde_json::from_str::<ProgressEvent>(r#"{"step":"wipe-all"}"#).is_err());
        assert!(serde_json::from_str::<ProgressEvent>(r#"{"step":"mkfs","extra":1}"#).is_err());
    }

    #[test]
    fn the_first_write_is_partition() {
        let first = Step::ALL.iter().position(|s| *s == Step::Partition).unwrap();
        assert!(STEPS_BEFORE_FIRST_WRITE.iter().all(|s| Step::ALL.iter().position(|x| x == s).unwrap() < first));
        assert!(!Step::Partition.before_first_write());
    }
}
