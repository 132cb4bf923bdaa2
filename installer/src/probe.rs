//! Disk facts from sysfs, without udev: `/sys/block/*` gives size (`size`
//! counts 512-byte units whatever the disk's sectors), the logical sector
//! size (`queue/logical_block_size`: 512, or 4096 on "4Kn" disks), removable
//! and rotational flags, read-only, partitions; the model and serial come from
//! `device/model`, `serial` (virtio), `device/serial` (NVMe) or the SCSI VPD
//! page 0x80 (`device/vpd_pg80`, SATA and SAS); the WWN from `wwid` or
//! `device/wwid`. Everything is read relative to a sysfs root, so tests run
//! on recorded trees.

use serde::Serialize;
use std::path::Path;

/// What we know about one whole disk.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct DiskFacts {
    /// Kernel name, e.g. `vda`, `nvme0n1`.
    pub name: String,
    /// Device node, `/dev/<name>`.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Logical sector size in bytes: what partition tables count in.
    pub logical_block_size: u64,
    /// The kernel's removable flag.
    pub removable: bool,
    /// Spinning disk.
    pub rotational: bool,
    /// Read-only.
    pub read_only: bool,
    /// Model string, trimmed.
    pub model: Option<String>,
    /// Serial number, trimmed.
    pub serial: Option<String>,
    /// World Wide Name / wwid, trimmed.
    pub wwn: Option<String>,
    /// Partition names (`vda1`, `nvme0n1p2`).
    pub partitions: Vec<String>,
}

fn read_trim(p: &Path) -> Option<String> {
    let s = std::fs::read_to_string(p).ok()?;
    let t = s.trim().trim_matches('\0').trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// The serial from a SCSI VPD page 0x80 (unit serial number): a 4-byte
/// header whose byte 3 is the length, then ASCII.
pub fn serial_from_vpd80(raw: &[u8]) -> Option<String> {
    if raw.len() < 4 || raw[1] != 0x80 {
        return None;
    }
    let len = raw[3] as usize;
    let body = raw.get(4..4 + len.min(raw.len() - 4))?;
    let s = String::from_utf8_lossy(body).trim().trim_matches('\0').to_string();
    (!s.is_empty()).then_some(s)
}

/// Reads every whole disk under `<sys>/block`.
pub fn probe_disks(sys: &Path) -> std::io::Result<Vec<DiskFacts>> {
    let mut disks = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(sys.join("block"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !metalboot_spec::disk::never_a_target(n))
        .collect();
    names.sort();
    for name in names {
        let d = sys.join("block").join(&name);
        let num = |f: &str| read_trim(&d.join(f)).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        let size = num("size") * 512;
        if size == 0 {
            continue; // empty card reader, ejected media
        }
        let serial = read_trim(&d.join("serial"))
            .or_else(|| read_trim(&d.join("device/serial")))
            .or_else(|| std::fs::read(d.join("device/vpd_pg80")).ok().and_then(|r| serial_from_vpd80(&r)));
        let wwn = read_trim(&d.join("wwid")).or_else(|| read_trim(&d.join("device/wwid")));
        let partitions = partitions_of(&d)?;
        disks.push(DiskFacts {
            path: format!("/dev/{name}"),
            size,
            logical_block_size: logical_block_size(&d),
            removable: num("removable") == 1,
            rotational: num("queue/rotational") == 1,
            read_only: num("ro") == 1,
            model: read_trim(&d.join("device/model")),
            serial,
            wwn,
            partitions,
            name,
        });
    }
    Ok(disks)
}

/// The logical sector size of the block device at `d` (`/sys/block/NAME`);
/// 512 when the kernel does not say (as before `queue/` existed).
fn logical_block_size(d: &Path) -> u64 {
    read_trim(&d.join("queue/logical_block_size")).and_then(|s| s.parse().ok()).filter(|&n| n > 0).unwrap_or(512)
}

/// Names of the partitions the kernel knows on the block device at `d`
/// (`/sys/block/NAME`), sorted.
fn partitions_of(d: &Path) -> std::io::Result<Vec<String>> {
    let mut partitions: Vec<String> = std::fs::read_dir(d)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("partition").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    partitions.sort();
    Ok(partitions)
}

/// Loop devices with a backing file, as disks (for tests on the build
/// machine); everything else is left out.
pub fn probe_loop_disks(sys: &Path) -> std::io::Result<Vec<DiskFacts>> {
    let mut out = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(sys.join("block"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("loop") && sys.join("block").join(n).join("loop/backing_file").exists())
        .collect();
    names.sort();
    for name in names {
        let d = sys.join("block").join(&name);
        let size = read_trim(&d.join("size")).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0) * 512;
        let partitions = partitions_of(&d)?;
        out.push(DiskFacts {
            path: format!("/dev/{name}"),
            size,
            logical_block_size: logical_block_size(&d),
            removable: false,
            rotational: false,
            read_only: read_trim(&d.join("ro")).as_deref() == Some("1"),
            model: None,
            serial: None,
            wwn: None,
            partitions,
            name,
        });
    }
    Ok(out)
}

/// `vda` + 3 → `vda3`; `nvme0n1` + 3 → `nvme0n1p3` (a name ending in a digit
/// gets a `p`, as the kernel names them).
pub fn partition_name(disk: &str, n: u32) -> String {
    if disk.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{disk}p{n}")
    } else {
        format!("{disk}{n}")
    }
}

/// One line per disk for the console.
pub fn describe(d: &DiskFacts) -> String {
    format!(
        "{} {:.1} GiB{} model={} serial={} wwn={} partitions={}{}{}",
        d.path,
        d.size as f64 / (1u64 << 30) as f64,
        if d.logical_block_size == 512 { String::new() } else { format!(" {}-byte sectors", d.logical_block_size) },
        d.model.as_deref().unwrap_or("-"),
        d.serial.as_deref().unwrap_or("-"),
        d.wwn.as_deref().unwrap_or("-"),
        d.partitions.len(),
        if d.removable { " removable" } else { "" },
        if d.read_only { " read-only" } else { "" },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names() {
        assert_eq!(partition_name("vda", 3), "vda3");
        assert_eq!(partition_name("sda", 1), "sda1");
        assert_eq!(partition_name("nvme0n1", 3), "nvme0n1p3");
        assert_eq!(partition_name("mmcblk0", 2), "mmcblk0p2");
    }

    /// A `/sys/block` tree with one disk per `(name, logical_block_size)`
    /// (`None`: no such file), each 8 GiB.
    fn sysfs(disks: &[(&str, Option<&str>)]) -> tempfile::TempDir {
        let sys = tempfile::tempdir().unwrap();
        for (name, lbs) in disks {
            let d = sys.path().join("block").join(name);
            std::fs::create_dir_all(d.join("queue")).unwrap();
            std::fs::write(d.join("size"), "16777216\n").unwrap();
            if let Some(lbs) = lbs {
                std::fs::write(d.join("queue/logical_block_size"), format!("{lbs}\n")).unwrap();
            }
        }
        sys
    }

    #[test]
    fn logical_block_size_is_read_and_defaults_to_512() {
        let sys = sysfs(&[("nvme0n1", Some("4096")), ("sda", Some("512")), ("vda", None), ("vdb", Some("junk"))]);
        let d = probe_disks(sys.path()).unwrap();
        let got: Vec<(&str, u64, u64)> = d.iter().map(|d| (d.name.as_str(), d.size, d.logical_block_size)).collect();
        assert_eq!(
            got,
            [("nvme0n1", 8 << 30, 4096), ("sda", 8 << 30, 512), ("vda", 8 << 30, 512), ("vdb", 8 << 30, 512)]
        );
    }

    #[test]
    fn loop_disks_carry_their_sector_size() {
        let sys = sysfs(&[("loop0", Some("4096")), ("loop1", None)]);
        for l in ["loop0", "loop1"] {
            let d = sys.path().join("block").join(l).join("loop");
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("backing_file"), "/tmp/disk.img\n").unwrap();
        }
        let d = probe_loop_disks(sys.path()).unwrap();
        assert_eq!(d.iter().map(|d| d.logical_block_size).collect::<Vec<_>>(), [4096, 512]);
    }

    #[test]
    fn describe_names_a_sector_size_other_than_512() {
        let sys = sysfs(&[("nvme0n1", Some("4096")), ("sda", Some("512"))]);
        let d = probe_disks(sys.path()).unwrap();
        assert_eq!(describe(&d[0]), "/dev/nvme0n1 8.0 GiB 4096-byte sectors model=- serial=- wwn=- partitions=0");
        assert_eq!(describe(&d[1]), "/dev/sda 8.0 GiB model=- serial=- wwn=- partitions=0");
    }

    #[test]
    fn vpd80_serial() {
        let mut raw = vec![0x00, 0x80, 0x00, 0x08];
        raw.extend_from_slice(b"  S1234 ");
        assert_eq!(serial_from_vpd80(&raw).as_deref(), Some("S1234"));
        assert_eq!(serial_from_vpd80(&[0, 0x83, 0, 0]), None);
    }
}
