//! Which disk a selector names: its rules (all must hold, and they must
//! match exactly one disk), checked at load and matched against what the
//! installer (sysfs) or the reinstall command (lsblk) reads.

use crate::error::opt;
use crate::error::quote;
use crate::safe;
use crate::{ByteSize, SpecError};
use serde::{Deserialize, Serialize};

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

/// What a [`DiskSelector`] is matched on, however it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskIdentity<'a> {
    /// Device node, `/dev/<name>`.
    pub path: &'a str,
    /// Serial number, trimmed.
    pub serial: Option<&'a str>,
    /// World Wide Name / wwid, trimmed, in any of its spellings.
    pub wwn: Option<&'a str>,
    /// Model, trimmed.
    pub model: Option<&'a str>,
    /// Size in bytes.
    pub size: u64,
}

/// Kernel block device names that are never install targets (loop, RAM and
/// compressed-RAM disks, optical and floppy drives, device-mapper, MD RAID,
/// network block devices, raw flash), whatever a selector says.
pub fn never_a_target(name: &str) -> bool {
    ["loop", "ram", "zram", "sr", "fd", "dm-", "md", "nbd", "mtdblock"].iter().any(|p| name.starts_with(p))
}

/// A WWN as compared: lower case, without `0x`, `naa.` or `eui.` (sysfs
/// `wwid` says `naa.5000…`, lsblk `0x5000…`).
pub fn norm_wwn(s: &str) -> String {
    let l = s.trim().to_ascii_lowercase();
    l.trim_start_matches("0x").trim_start_matches("naa.").trim_start_matches("eui.").to_string()
}

impl DiskSelector {
    /// Checks each rule's characters and that the size range is not empty.
    pub fn validate(&self) -> Result<(), SpecError> {
        opt(&self.path, "path", |p| {
            safe::check_abs_path(p)?;
            if !p.starts_with("/dev/") {
                return Err(format!("{} is not under /dev", quote(p)));
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

    /// Why a disk with these facts does not satisfy the selector (`None`:
    /// it does). The one rule for the installer (on sysfs facts) and for
    /// `metalboot reinstall` (on `lsblk` facts, before anything changes);
    /// `id.path` is compared as given, so a `/dev/disk/by-*` link in the
    /// selector is resolved by the caller first. Whether a disk may be
    /// chosen at all (removable, in use) is the caller's to say.
    pub fn mismatch(&self, id: &DiskIdentity<'_>) -> Option<String> {
        if let Some(p) = &self.path {
            if p != id.path {
                return Some(format!("path is {}", id.path));
            }
        }
        if let Some(s) = &self.serial {
            if id.serial != Some(s.as_str()) {
                return Some(format!("serial is {}", id.serial.unwrap_or("unknown")));
            }
        }
        if let Some(w) = &self.wwn {
            if id.wwn.map(norm_wwn) != Some(norm_wwn(w)) {
                return Some(format!("wwn is {}", id.wwn.unwrap_or("unknown")));
            }
        }
        if let Some(m) = &self.model {
            if id.model != Some(m.as_str()) {
                return Some(format!("model is {}", id.model.unwrap_or("unknown")));
            }
        }
        if let Some(min) = self.min_size {
            if id.size < min.0 {
                return Some(format!("{} bytes is below min_size {min}", id.size));
            }
        }
        if let Some(max) = self.max_size {
            if id.size > max.0 {
                return Some(format!("{} bytes is above max_size {max}", id.size));
            }
        }
        None
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
