//! Which disk a host is installed on, and how it is laid out: the
//! selector's rules (each must match exactly one disk), the GPT + BTRFS
//! subvolume layout (DESIGN.md's default), and a host on two or more disks
//! (`disks = [...]`, `layout.raid = "raid1"`): every disk gets the same
//! partitions and one BTRFS with data and metadata mirrored spans their root
//! partitions (FIELD.md, "Two disks").

use crate::error::quote;
use crate::safe;
use crate::SpecError;
use serde::{Deserialize, Serialize};

pub use crate::selector::{never_a_target, norm_wwn, DiskIdentity, DiskSelector};

/// A BTRFS subvolume and where it is mounted.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Subvolume {
    /// Subvolume name, starting with `@`.
    pub name: String,
    /// Absolute mount point in the installed system.
    pub mountpoint: String,
}

/// How the root filesystem spans the host's disks.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Raid {
    /// One disk (`disk = {...}`).
    #[default]
    None,
    /// Two or more disks (`disks = [...]`): BTRFS `-d raid1 -m raid1`, every
    /// block on two of them, so the host survives losing one.
    Raid1,
}

impl Raid {
    /// The default: one disk.
    pub fn is_none(&self) -> bool {
        *self == Raid::None
    }
}

/// Partition and subvolume layout (DESIGN.md's default).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// Size of the BIOS boot partition in MiB.
    #[serde(default = "default_bios_boot")]
    pub bios_boot_mib: u64,
    /// Size of the EFI system partition in MiB (the installer refuses less
    /// than 260 on a disk with 4096-byte sectors: FAT32 does not fit).
    #[serde(default = "default_esp")]
    pub esp_mib: u64,
    /// Subvolumes; exactly one is mounted at `/` and becomes the default.
    #[serde(default = "default_subvolumes")]
    pub subvolumes: Vec<Subvolume>,
    /// BTRFS mount options.
    #[serde(default = "default_mount_options")]
    pub mount_options: String,
    /// `raid1` for a host on several disks (`disks = [...]`); default none.
    #[serde(default, skip_serializing_if = "Raid::is_none")]
    pub raid: Raid,
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
            raid: Raid::None,
        }
    }
}

/// The smallest root partition the installer makes.
pub const MIN_ROOT_BYTES: u64 = 2 << 30;

/// The logical sector sizes the installer partitions: 512 (native and
/// "512e" disks) and 4096 ("4Kn" disks, many NVMe drives).
pub const SECTOR_SIZES: [u64; 2] = [512, 4096];

/// Bytes of the GPT partition entry array: 128 entries of 128 bytes (the
/// UEFI minimum, and what the installer writes).
const GPT_ENTRY_ARRAY_BYTES: u64 = 128 * 128;

/// Sectors the backup GPT takes at the end of a disk: its header sector and
/// the entry array rounded up to whole sectors (33 at 512 bytes, 5 at 4096).
pub fn backup_gpt_sectors(sector_bytes: u64) -> u64 {
    1 + GPT_ENTRY_ARRAY_BYTES.div_ceil(sector_bytes)
}

/// The first sector a partition may start at: after the protective MBR, the
/// primary header and the entry array (34 at 512 bytes, 6 at 4096).
pub fn first_usable_sector(sector_bytes: u64) -> u64 {
    1 + backup_gpt_sectors(sector_bytes)
}

impl Layout {
    /// The subvolume mounted at `/`.
    pub fn root_subvolume(&self) -> Option<&Subvolume> {
        self.subvolumes.iter().find(|s| s.mountpoint == "/")
    }

    /// The smallest disk with `sector_bytes` logical sectors this layout
    /// fits on: 1 MiB before the first partition, the BIOS boot partition,
    /// the ESP, the smallest root, and the backup GPT.
    pub fn min_disk_bytes(&self, sector_bytes: u64) -> u64 {
        (1 + self.bios_boot_mib + self.esp_mib) * (1 << 20)
            + MIN_ROOT_BYTES
            + backup_gpt_sectors(sector_bytes) * sector_bytes
    }

    /// The smallest disk this layout fits on whatever its sector size (the
    /// largest of [`Layout::min_disk_bytes`] over [`SECTOR_SIZES`]), for a
    /// caller that does not know the disk's sector size.
    pub fn min_disk_bytes_any_sector(&self) -> u64 {
        SECTOR_SIZES.iter().map(|&s| self.min_disk_bytes(s)).max().unwrap_or_default()
    }
}

/// Checks a host's (or plan's) disks: exactly one of `disk` (one disk) and
/// `disks` (two or more, with `raid = "raid1"`), every selector valid, and no
/// two selectors that must name the same disk (the same path, the same WWN,
/// or the same rules). Errors name the field: `disk`, `disks[i]`,
/// `layout.raid`.
pub fn check_disks(disk: Option<&DiskSelector>, disks: &[DiskSelector], raid: Raid) -> Result<(), SpecError> {
    match (disk, disks) {
        (Some(_), [_, ..]) => {
            return Err(SpecError::new(
                "disks",
                "give either disk = { ... } (one disk) or disks = [{ ... }, { ... }] (several), not both",
            ))
        }
        (None, []) => {
            return Err(SpecError::new(
                "disk",
                "missing: metalboot never guesses; give disk = { ... } or disks = [{ ... }, { ... }]",
            ))
        }
        (Some(d), []) => {
            d.validate().map_err(|e| e.under("disk"))?;
            if raid != Raid::None {
                return Err(SpecError::new(
                    "layout.raid",
                    "raid1 needs at least two disks: list them as disks = [{ ... }, { ... }] in place of disk",
                ));
            }
            return Ok(());
        }
        (None, [_]) => {
            return Err(SpecError::new(
                "disks",
                "lists one disk: write it as disk = { ... }, or list two or more with layout.raid = \"raid1\"",
            ))
        }
        (None, _) => {}
    }
    for (i, d) in disks.iter().enumerate() {
        d.validate().map_err(|e| e.under(&format!("disks[{i}]")))?;
    }
    if raid != Raid::Raid1 {
        return Err(SpecError::new(
            "layout.raid",
            format!("{} disks need layout.raid = \"raid1\" (one BTRFS mirrored across them)", disks.len()),
        ));
    }
    for (j, b) in disks.iter().enumerate() {
        for (i, a) in disks[..j].iter().enumerate() {
            if let Some(why) = same_disk(a, b) {
                return Err(SpecError::new(
                    format!("disks[{j}]"),
                    format!(
                        "({}) names the same disk as disks[{i}] ({}): {why}; each selector must pick its own disk",
                        b.describe(),
                        a.describe()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The selectors of a host or plan: its one `disk`, else its `disks`.
pub fn selectors<'a>(disk: &'a Option<DiskSelector>, disks: &'a [DiskSelector]) -> &'a [DiskSelector] {
    match disk {
        Some(d) => std::slice::from_ref(d),
        None => disks,
    }
}

/// The disks in words: one selector's [`DiskSelector::describe`], or
/// `raid1 of [serial=A] + [serial=B]`.
pub fn describe_selectors(sels: &[DiskSelector]) -> String {
    match sels {
        [one] => one.describe(),
        many => {
            format!("raid1 of {}", many.iter().map(|s| format!("[{}]", s.describe())).collect::<Vec<_>>().join(" + "))
        }
    }
}

/// Why two selectors can only ever match the same disk, if they must.
fn same_disk(a: &DiskSelector, b: &DiskSelector) -> Option<&'static str> {
    if a.path.is_some() && a.path == b.path {
        return Some("the same path");
    }
    if let (Some(x), Some(y)) = (&a.wwn, &b.wwn) {
        if norm_wwn(x) == norm_wwn(y) {
            return Some("the same wwn");
        }
    }
    let rules = |s: &DiskSelector| DiskSelector { wipe: false, ..s.clone() };
    (rules(a) == rules(b)).then_some("the same rules")
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
                    format!("{} must start with '@' then letters, digits, _ - .", quote(&s.name)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ByteSize;

    #[test]
    fn gpt_reserves_follow_the_sector_size() {
        assert_eq!((backup_gpt_sectors(512), first_usable_sector(512)), (33, 34));
        assert_eq!((backup_gpt_sectors(4096), first_usable_sector(4096)), (5, 6));
    }

    #[test]
    fn min_disk_bytes_without_a_sector_size_is_the_larger_need() {
        let l = Layout::default();
        let base = (1 + 1 + 512) * (1 << 20) + MIN_ROOT_BYTES;
        assert_eq!(l.min_disk_bytes(512), base + 33 * 512);
        assert_eq!(l.min_disk_bytes(4096), base + 5 * 4096);
        assert_eq!(l.min_disk_bytes_any_sector(), base + 5 * 4096);
    }

    fn id<'a>(path: &'a str, serial: Option<&'a str>, wwn: Option<&'a str>, size: u64) -> DiskIdentity<'a> {
        DiskIdentity { path, serial, wwn, model: None, size }
    }

    #[test]
    fn a_selector_names_why_a_disk_does_not_match() {
        let sel = DiskSelector { serial: Some("S1".into()), min_size: Some(ByteSize(100)), ..Default::default() };
        assert_eq!(sel.mismatch(&id("/dev/sda", Some("S1"), None, 100)), None);
        assert_eq!(sel.mismatch(&id("/dev/sda", None, None, 100)).unwrap(), "serial is unknown");
        assert_eq!(sel.mismatch(&id("/dev/sda", Some("S1"), None, 99)).unwrap(), "99 bytes is below min_size 100B");
        let path = DiskSelector { path: Some("/dev/vdb".into()), ..Default::default() };
        assert_eq!(path.mismatch(&id("/dev/vda", None, None, 1)).unwrap(), "path is /dev/vda");
    }

    #[test]
    fn wwn_matches_in_the_spellings_of_sysfs_and_lsblk() {
        let sel = DiskSelector { wwn: Some("naa.5000C500A1B2C3D4".into()), ..Default::default() };
        assert_eq!(sel.mismatch(&id("/dev/sda", None, Some("0x5000c500a1b2c3d4"), 1)), None);
        assert!(sel.mismatch(&id("/dev/sda", None, Some("0x5000c500a1b2c3d5"), 1)).is_some());
    }
}
