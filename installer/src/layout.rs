//! The partition layout for a disk, as a pure function of the disk size and
//! the plan's layout: GPT with a BIOS boot partition, an EFI system partition
//! and a BTRFS root filling the rest, every partition aligned to 1 MiB.

use metalboot_spec::Layout;
use serde::Serialize;

/// Logical block size we partition with.
pub const LBA: u64 = 512;
const MIB: u64 = 1 << 20;
/// Smallest root partition we accept.
pub const MIN_ROOT: u64 = metalboot_spec::MIN_ROOT_BYTES;

/// Role of a partition.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PartKind {
    /// GRUB's core image for BIOS boot (type 21686148-…).
    BiosBoot,
    /// EFI system partition, vfat.
    Esp,
    /// BTRFS root.
    Root,
}

/// One partition to create.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct PartSpec {
    /// Partition number (1-based).
    pub number: u32,
    /// GPT partition name.
    pub name: &'static str,
    /// Role.
    pub kind: PartKind,
    /// First sector (512-byte LBA).
    pub start_lba: u64,
    /// Length in sectors.
    pub length_lba: u64,
}

impl PartSpec {
    /// Size in bytes.
    pub fn bytes(&self) -> u64 {
        self.length_lba * LBA
    }
}

/// Why a layout does not fit.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("disk of {disk} bytes is too small: the layout needs at least {need} bytes")]
pub struct TooSmall {
    /// Disk size.
    pub disk: u64,
    /// Needed.
    pub need: u64,
}

/// Computes the partitions for a disk of `disk_bytes`.
pub fn partition_layout(disk_bytes: u64, layout: &Layout) -> Result<Vec<PartSpec>, TooSmall> {
    let bios = layout.bios_boot_mib * MIB;
    let esp = layout.esp_mib * MIB;
    // 1 MiB before the first partition; the backup GPT needs 33 sectors at the end.
    let end = (disk_bytes.saturating_sub(33 * LBA) / MIB) * MIB;
    let root_start = MIB + bios + esp;
    if end < root_start + MIN_ROOT {
        return Err(TooSmall { disk: disk_bytes, need: layout.min_disk_bytes(LBA) });
    }
    Ok(vec![
        PartSpec {
            number: 1,
            name: "bios-boot",
            kind: PartKind::BiosBoot,
            start_lba: MIB / LBA,
            length_lba: bios / LBA,
        },
        PartSpec { number: 2, name: "esp", kind: PartKind::Esp, start_lba: (MIB + bios) / LBA, length_lba: esp / LBA },
        PartSpec {
            number: 3,
            name: "root",
            kind: PartKind::Root,
            start_lba: root_start / LBA,
            length_lba: (end - root_start) / LBA,
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_layout_on_8g_disk_is_aligned() {
        let parts = partition_layout(8 << 30, &Layout::default()).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].start_lba * LBA, MIB);
        assert_eq!(parts[0].bytes(), MIB);
        assert_eq!(parts[1].start_lba * LBA, 2 * MIB);
        assert_eq!(parts[1].bytes(), 512 * MIB);
        assert_eq!(parts[2].start_lba * LBA, 514 * MIB);
        for p in &parts {
            assert_eq!((p.start_lba * LBA) % MIB, 0, "{p:?}");
            assert_eq!(p.bytes() % MIB, 0, "{p:?}");
        }
        let end = (parts[2].start_lba + parts[2].length_lba) * LBA;
        assert!(end <= (8 << 30) - 33 * LBA);
        assert_eq!(end, (8 << 30) - MIB, "root ends at the last whole MiB before the backup GPT");
    }

    #[test]
    fn too_small_disk_is_refused() {
        let e = partition_layout(2 << 30, &Layout::default()).unwrap_err();
        assert!(e.need > 2 << 30);
    }

    #[test]
    fn the_spec_minimum_is_exactly_where_the_layout_starts_to_fit() {
        for l in [Layout::default(), Layout { bios_boot_mib: 2, esp_mib: 100, ..Layout::default() }] {
            let need = l.min_disk_bytes(LBA);
            assert!(partition_layout(need, &l).is_ok(), "{need}");
            assert_eq!(partition_layout(need - 1, &l).unwrap_err().need, need);
        }
    }
}
