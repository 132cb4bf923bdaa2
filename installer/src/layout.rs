//! The partition layout for a disk, as a pure function of the disk size, its
//! logical sector size and the plan's layout: GPT with a BIOS boot
//! partition, an EFI system partition and a BTRFS root filling the rest,
//! every partition aligned to 1 MiB.
//!
//! Partition boundaries are counted in the disk's logical sectors (512 or
//! 4096 bytes, as the kernel reports in `queue/logical_block_size`), and the
//! GPT takes a different number of them at each end: the 128 entries of 128
//! bytes fill 32 sectors of 512 bytes but 4 of 4096 (UEFI 2.10 §5.3). FAT32
//! needs at least 65,525 clusters; with 4096-byte sectors (and clusters)
//! that is an ESP of about 260 MiB.

use metalboot_spec::disk::backup_gpt_sectors;
use metalboot_spec::{Layout, SECTOR_SIZES};
use serde::Serialize;

const MIB: u64 = 1 << 20;
/// Smallest root partition we accept.
pub const MIN_ROOT: u64 = metalboot_spec::MIN_ROOT_BYTES;
/// Smallest ESP on a disk with 4096-byte sectors: FAT32's 65,525 clusters of
/// 4 KiB, the FATs and the reserved sectors (mkfs.fat 4.2 makes a full FAT32
/// from 259 MiB up; 260 MiB is the minimum usually given for 4Kn drives).
pub const MIN_ESP_MIB_4KN: u64 = 260;

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
    /// First sector (LBA, in the disk's logical sectors).
    pub start_lba: u64,
    /// Length in the disk's logical sectors.
    pub length_lba: u64,
    /// The disk's logical sector size in bytes.
    pub sector_bytes: u64,
}

impl PartSpec {
    /// Offset of the first byte on the disk.
    pub fn start_bytes(&self) -> u64 {
        self.start_lba * self.sector_bytes
    }

    /// Size in bytes.
    pub fn bytes(&self) -> u64 {
        self.length_lba * self.sector_bytes
    }
}

/// Why a disk cannot be laid out.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    /// The layout does not fit.
    #[error("disk of {disk} bytes is too small: the layout needs at least {need} bytes")]
    TooSmall {
        /// Disk size.
        disk: u64,
        /// Needed, for this sector size.
        need: u64,
    },
    /// A logical sector size other than 512 or 4096.
    #[error(
        "the disk's logical sector size is {0} bytes; the installer partitions only disks with 512- or \
         4096-byte sectors"
    )]
    SectorSize(u64),
    /// An ESP too small for FAT32 on 4096-byte sectors.
    #[error(
        "an ESP of {esp_mib} MiB is too small for a disk with 4096-byte sectors: FAT32 needs at least \
         {MIN_ESP_MIB_4KN} MiB there (set layout.esp_mib)"
    )]
    EspTooSmall {
        /// The layout's ESP size.
        esp_mib: u64,
    },
}

/// Computes the partitions for a disk of `disk_bytes` with logical sectors
/// of `sector_bytes`.
pub fn partition_layout(disk_bytes: u64, sector_bytes: u64, layout: &Layout) -> Result<Vec<PartSpec>, LayoutError> {
    if !SECTOR_SIZES.contains(&sector_bytes) {
        return Err(LayoutError::SectorSize(sector_bytes));
    }
    if sector_bytes == 4096 && layout.esp_mib < MIN_ESP_MIB_4KN {
        return Err(LayoutError::EspTooSmall { esp_mib: layout.esp_mib });
    }
    let bios = layout.bios_boot_mib * MIB;
    let esp = layout.esp_mib * MIB;
    // 1 MiB before the first partition (past the primary GPT); the backup GPT
    // takes the last sectors.
    let end = (disk_bytes.saturating_sub(backup_gpt_sectors(sector_bytes) * sector_bytes) / MIB) * MIB;
    let root_start = MIB + bios + esp;
    if end < root_start + MIN_ROOT {
        return Err(LayoutError::TooSmall { disk: disk_bytes, need: layout.min_disk_bytes(sector_bytes) });
    }
    let part = |number, name, kind, start: u64, len: u64| PartSpec {
        number,
        name,
        kind,
        start_lba: start / sector_bytes,
        length_lba: len / sector_bytes,
        sector_bytes,
    };
    Ok(vec![
        part(1, "bios-boot", PartKind::BiosBoot, MIB, bios),
        part(2, "esp", PartKind::Esp, MIB + bios, esp),
        part(3, "root", PartKind::Root, root_start, end - root_start),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use metalboot_spec::disk::first_usable_sector;

    fn end_bytes(p: &PartSpec) -> u64 {
        p.start_bytes() + p.bytes()
    }

    #[test]
    fn default_layout_on_8g_disk_is_aligned() {
        let parts = partition_layout(8 << 30, 512, &Layout::default()).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].start_lba, 2048);
        assert_eq!(parts[0].start_bytes(), MIB);
        assert_eq!(parts[0].bytes(), MIB);
        assert_eq!(parts[1].start_bytes(), 2 * MIB);
        assert_eq!(parts[1].bytes(), 512 * MIB);
        assert_eq!(parts[2].start_bytes(), 514 * MIB);
        for p in &parts {
            assert_eq!(p.start_bytes() % MIB, 0, "{p:?}");
            assert_eq!(p.bytes() % MIB, 0, "{p:?}");
        }
        let end = end_bytes(&parts[2]);
        assert!(end <= (8 << 30) - 33 * 512);
        assert_eq!(end, (8 << 30) - MIB, "root ends at the last whole MiB before the backup GPT");
    }

    #[test]
    fn default_layout_on_a_4kn_disk_counts_4096_byte_sectors() {
        let disk = 8 << 30;
        let parts = partition_layout(disk, 4096, &Layout::default()).unwrap();
        assert_eq!(parts.iter().map(|p| p.start_lba).collect::<Vec<_>>(), [256, 512, 514 * 256]);
        assert_eq!(parts[0].length_lba, 256);
        assert_eq!(parts[1].length_lba, 512 * 256);
        for p in &parts {
            assert_eq!(p.sector_bytes, 4096);
            assert_eq!(p.start_bytes() % MIB, 0, "{p:?}");
            assert_eq!(p.bytes() % MIB, 0, "{p:?}");
        }
        // contiguous, and the same bytes as on a 512-byte disk of the same size
        assert_eq!(end_bytes(&parts[0]), parts[1].start_bytes());
        assert_eq!(end_bytes(&parts[1]), parts[2].start_bytes());
        let same_512: Vec<_> = partition_layout(disk, 512, &Layout::default())
            .unwrap()
            .iter()
            .map(|p| (p.start_bytes(), p.bytes()))
            .collect();
        assert_eq!(parts.iter().map(|p| (p.start_bytes(), p.bytes())).collect::<Vec<_>>(), same_512);
        // after the primary GPT (6 sectors), before the backup GPT (5 sectors)
        assert!(parts[0].start_lba >= first_usable_sector(4096));
        let last_lba = parts[2].start_lba + parts[2].length_lba - 1;
        assert!(last_lba < disk / 4096 - 5, "{last_lba}");
    }

    #[test]
    fn the_root_ends_before_the_backup_gpt_of_either_sector_size() {
        // a disk that ends just after a MiB boundary: 5 sectors of 4096 (33 of
        // 512) past it hold the backup GPT, one sector fewer does not
        for (extra, sector, ends_at_last_mib) in
            [(5 * 4096, 4096, true), (4 * 4096, 4096, false), (33 * 512, 512, true), (32 * 512, 512, false)]
        {
            let disk = (8 << 30) + extra;
            let parts = partition_layout(disk, sector, &Layout::default()).unwrap();
            let end = end_bytes(&parts[2]);
            assert!(end + backup_gpt_sectors(sector) * sector <= disk, "{sector}: {end} {disk}");
            assert_eq!(end == 8 << 30, ends_at_last_mib, "{sector}: {end}");
        }
    }

    #[test]
    fn too_small_disk_is_refused() {
        for sector in SECTOR_SIZES {
            let e = partition_layout(2 << 30, sector, &Layout::default()).unwrap_err();
            assert!(matches!(e, LayoutError::TooSmall { need, .. } if need > 2 << 30), "{e}");
        }
    }

    #[test]
    fn the_spec_minimum_is_exactly_where_the_layout_starts_to_fit() {
        for l in [Layout::default(), Layout { bios_boot_mib: 2, esp_mib: 300, ..Layout::default() }] {
            for sector in SECTOR_SIZES {
                let need = l.min_disk_bytes(sector);
                assert!(partition_layout(need, sector, &l).is_ok(), "{sector}: {need}");
                assert_eq!(
                    partition_layout(need - 1, sector, &l).unwrap_err(),
                    LayoutError::TooSmall { disk: need - 1, need },
                    "{sector}"
                );
                assert!(l.min_disk_bytes_any_sector() >= need);
            }
        }
        let small_esp = Layout { bios_boot_mib: 2, esp_mib: 100, ..Layout::default() };
        let need = small_esp.min_disk_bytes(512);
        assert!(partition_layout(need, 512, &small_esp).is_ok());
        assert!(matches!(partition_layout(need - 1, 512, &small_esp), Err(LayoutError::TooSmall { .. })));
    }

    #[test]
    fn other_sector_sizes_are_refused_by_name() {
        for sector in [0, 520, 1024, 2048, 8192] {
            let e = partition_layout(8 << 30, sector, &Layout::default()).unwrap_err();
            assert_eq!(e, LayoutError::SectorSize(sector));
            assert!(e.to_string().contains(&format!("is {sector} bytes")), "{e}");
        }
    }

    #[test]
    fn an_esp_too_small_for_fat32_on_4kn_is_refused() {
        let l = Layout { esp_mib: 259, ..Layout::default() };
        let e = partition_layout(64 << 30, 4096, &l).unwrap_err();
        assert_eq!(e, LayoutError::EspTooSmall { esp_mib: 259 });
        assert_eq!(
            e.to_string(),
            "an ESP of 259 MiB is too small for a disk with 4096-byte sectors: FAT32 needs at least 260 MiB there \
             (set layout.esp_mib)"
        );
        // the same ESP is fine on 512-byte sectors, and 260 MiB on 4096
        assert!(partition_layout(64 << 30, 512, &l).is_ok());
        assert!(partition_layout(64 << 30, 4096, &Layout { esp_mib: 260, ..Layout::default() }).is_ok());
    }
}
