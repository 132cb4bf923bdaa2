//! Writing to the chosen disk: checks before the first write (not mounted,
//! exclusive access), wiping old signatures, the GPT (with the `gpt` crate),
//! the kernel re-reading the table, waiting for partition nodes, and making a
//! half-written disk unbootable after a failure.
//!
//! Everything on the disk is placed in its logical sectors (512 or 4096
//! bytes): the GPT's LBAs, the protective MBR's size, where the primary GPT
//! header sits (LBA 1: byte 512 or 4096).

use crate::cmd::{run, tool};
use crate::layout::{PartKind, PartSpec};
use crate::probe::partition_name;
use anyhow::{bail, Context, Result};
use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

nix::ioctl_none!(
    /// BLKRRPART (`_IO(0x12, 95)`, linux/fs.h): re-read the partition table.
    blkrrpart,
    0x12,
    95
);

/// Kernel names of disks holding a mounted filesystem (from `/proc/mounts`)
/// — the installer's own boot medium among them.
pub fn disks_in_use(mounts: &str, disks: &[String]) -> Vec<String> {
    disks
        .iter()
        .filter(|d| {
            mounts.lines().filter_map(|l| l.split_whitespace().next()).any(|src| {
                src.strip_prefix("/dev/").is_some_and(|s| {
                    s == d.as_str()
                        || (s.starts_with(d.as_str())
                            && s[d.len()..].trim_start_matches('p').chars().all(|c| c.is_ascii_digit()))
                })
            })
        })
        .cloned()
        .collect()
}

/// Opens the disk with O_EXCL: fails if anything (a mount, a holder) uses it.
pub fn ensure_exclusive_access(dev: &str) -> Result<()> {
    OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_EXCL)
        .open(dev)
        .with_context(|| format!("opening {dev} exclusively (is it mounted or in use?)"))?;
    Ok(())
}

fn zero_range(f: &mut std::fs::File, offset: u64, len: u64) -> Result<()> {
    f.seek(SeekFrom::Start(offset))?;
    let buf = vec![0u8; len as usize];
    f.write_all(&buf)?;
    Ok(())
}

/// Zeroes the first and last MiB (MBR, both GPT copies, most signatures).
pub fn zero_ends(dev: &str, size: u64) -> Result<()> {
    let mut f = OpenOptions::new().write(true).open(dev).with_context(|| format!("opening {dev} for writing"))?;
    let mib = 1 << 20;
    zero_range(&mut f, 0, mib.min(size)).with_context(|| format!("zeroing the start of {dev}"))?;
    if size > 2 * mib {
        zero_range(&mut f, size - mib, mib).with_context(|| format!("zeroing the end of {dev}"))?;
    }
    f.sync_all().with_context(|| format!("syncing {dev}"))?;
    Ok(())
}

/// Wipes filesystem/RAID signatures on the disk's partitions and the disk.
pub fn wipe_signatures(dev: &str, partitions: &[String]) -> Result<()> {
    let wipefs = tool(&["/usr/sbin/wipefs", "/sbin/wipefs"])?;
    for p in partitions {
        let _ = run(&wipefs, &["-a", "-f", &format!("/dev/{p}")]);
    }
    run(&wipefs, &["-a", "-f", dev]).with_context(|| format!("wiping signatures on {dev}"))?;
    Ok(())
}

/// The `gpt` crate's name for a logical sector size.
fn gpt_block_size(sector_bytes: u64) -> Result<gpt::disk::LogicalBlockSize> {
    match sector_bytes {
        512 => Ok(gpt::disk::LogicalBlockSize::Lb512),
        4096 => Ok(gpt::disk::LogicalBlockSize::Lb4096),
        n => bail!("cannot write a GPT with {n}-byte sectors (only 512 and 4096)"),
    }
}

/// Writes a protective MBR and a fresh GPT with `parts` onto a disk of
/// `size` bytes with logical sectors of `sector_bytes`.
pub fn write_partition_table(dev: &str, size: u64, sector_bytes: u64, parts: &[PartSpec]) -> Result<()> {
    let block = gpt_block_size(sector_bytes)?;
    if let Some(p) = parts.iter().find(|p| p.sector_bytes != sector_bytes) {
        bail!("partition {} is laid out in {}-byte sectors, {dev} has {sector_bytes}", p.number, p.sector_bytes);
    }
    let mut f = OpenOptions::new().read(true).write(true).open(dev).with_context(|| format!("opening {dev}"))?;
    // the protective partition covers the disk after LBA 0, in the disk's sectors
    let lbas = size / sector_bytes;
    let mbr = gpt::mbr::ProtectiveMBR::with_lb_size(u32::try_from(lbas - 1).unwrap_or(0xFFFF_FFFF));
    mbr.overwrite_lba0(&mut f).with_context(|| format!("writing protective MBR to {dev}"))?;
    let mut g = gpt::GptConfig::new()
        .writable(true)
        .logical_block_size(block)
        .create_from_device(f, None)
        .with_context(|| format!("creating GPT on {dev}"))?;
    for p in parts {
        let ty = match p.kind {
            PartKind::BiosBoot => gpt::partition_types::BIOS,
            PartKind::Esp => gpt::partition_types::EFI,
            PartKind::Root => gpt::partition_types::LINUX_FS,
        };
        g.add_partition_at(p.name, p.number, p.start_lba, p.length_lba, ty, 0)
            .with_context(|| format!("adding partition {} ({}) to the GPT of {dev}", p.number, p.name))?;
    }
    let f = g.write().with_context(|| format!("writing GPT to {dev}"))?;
    f.sync_all().with_context(|| format!("syncing {dev}"))?;
    Ok(())
}

/// Asks the kernel to re-read the partition table (BLKRRPART), retrying
/// while the device is busy.
// BLKRRPART is an ioctl: nix wraps it only as an unsafe fn
#[allow(unsafe_code)]
pub fn reread_partition_table(dev: &str) -> Result<()> {
    let f = OpenOptions::new().read(true).open(dev).with_context(|| format!("opening {dev}"))?;
    use std::os::fd::AsRawFd;
    let mut last = None;
    for _ in 0..20 {
        // SAFETY: BLKRRPART takes no argument; the fd is a valid open block device.
        match unsafe { blkrrpart(f.as_raw_fd()) } {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    bail!("kernel would not re-read the partition table of {dev}: {}", last.map(|e| e.to_string()).unwrap_or_default())
}

/// Waits for `/dev/<disk><n>` of every partition to exist.
pub fn wait_for_partitions(disk: &str, parts: &[PartSpec]) -> Result<Vec<String>> {
    let names: Vec<String> = parts.iter().map(|p| format!("/dev/{}", partition_name(disk, p.number))).collect();
    let start = Instant::now();
    while !names.iter().all(|n| Path::new(n).exists()) {
        if start.elapsed() > Duration::from_secs(15) {
            bail!(
                "partitions did not appear: {}",
                names.iter().filter(|n| !Path::new(n).exists()).cloned().collect::<Vec<_>>().join(", ")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(names)
}

/// Partition devices mapped as loop devices at the partitions' offsets, for
/// installs onto loop devices on a kernel that does not scan partition tables
/// (the build machine's own kernel may lack GPT support), with the disk's
/// sector size, as the kernel's partitions would have. Detached on drop.
pub struct OffsetLoops {
    /// The loop devices, in partition order.
    pub devices: Vec<String>,
}

impl OffsetLoops {
    /// Maps every partition of `dev` to its own loop device.
    pub fn map(dev: &str, parts: &[PartSpec]) -> Result<OffsetLoops> {
        let losetup = tool(&["/usr/sbin/losetup", "/sbin/losetup"])?;
        let mut me = OffsetLoops { devices: Vec::new() };
        for p in parts {
            let args = offset_loop_args(dev, p);
            let out = run(&losetup, &args.iter().map(String::as_str).collect::<Vec<_>>())
                .with_context(|| format!("mapping partition {} of {dev}", p.number))?;
            me.devices.push(out.trim().to_string());
        }
        Ok(me)
    }
}

/// `losetup` arguments mapping partition `p` of `dev`: byte offsets, and the
/// partition's sector size.
fn offset_loop_args(dev: &str, p: &PartSpec) -> Vec<String> {
    let (off, len, sector) = (p.start_bytes().to_string(), p.bytes().to_string(), p.sector_bytes.to_string());
    ["--find", "--show", "--offset", &off, "--sizelimit", &len, "--sector-size", &sector, dev]
        .map(String::from)
        .to_vec()
}

impl Drop for OffsetLoops {
    fn drop(&mut self) {
        for d in &self.devices {
            let _ = std::process::Command::new("losetup").args(["-d", d]).status();
        }
    }
}

/// What is written at the start of a disk with logical sectors of
/// `sector_bytes`: a partition table (`gpt`, `dos`) or a filesystem/RAID
/// signature, as blkid sees it without udev.
pub fn existing_signature(dev: &str, sector_bytes: u64) -> Option<String> {
    let sector = usize::try_from(sector_bytes).unwrap_or(512).max(512);
    // LBA 0 (the MBR) and LBA 1 (the GPT header's signature)
    let mut head = vec![0u8; sector + 8];
    if let Ok(mut f) = std::fs::File::open(dev) {
        use std::io::Read;
        if f.read_exact(&mut head).is_ok() {
            if &head[sector..sector + 8] == b"EFI PART" {
                return Some("GPT partition table".into());
            }
            if head[510] == 0x55 && head[511] == 0xaa {
                return Some("MBR partition table or boot sector".into());
            }
        }
    }
    let blkid = tool(&["/usr/sbin/blkid", "/sbin/blkid"]).ok()?;
    let out = std::process::Command::new(blkid).args(["-p", "-o", "value", "-s", "TYPE", dev]).output().ok()?;
    let t = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!t.is_empty()).then(|| format!("{t} signature"))
}

/// After a failure past the first write: destroy the partition table so the
/// half-written disk can never boot, and tell the kernel.
pub fn make_unbootable(dev: &str, size: u64) -> Result<()> {
    zero_ends(dev, size)?;
    let _ = reread_partition_table(dev);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::layout::partition_layout;
    use metalboot_spec::Layout;

    /// `len` bytes at `offset` of the file at `path`.
    fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
        use std::io::Read;
        let mut f = std::fs::File::open(path).unwrap();
        f.seek(SeekFrom::Start(offset)).unwrap();
        let mut buf = vec![0; len];
        f.read_exact(&mut buf).unwrap();
        buf
    }

    /// Writes the default layout's GPT onto a sparse file of `size` bytes
    /// with `sector`-byte sectors and reads it back.
    fn write_and_read(size: u64, sector: u64) -> (tempfile::NamedTempFile, Vec<PartSpec>, Vec<(u64, u64)>) {
        let f = tempfile::NamedTempFile::new().unwrap();
        f.as_file().set_len(size).unwrap();
        let dev = f.path().to_str().unwrap();
        let parts = partition_layout(size, sector, &Layout::default()).unwrap();
        write_partition_table(dev, size, sector, &parts).unwrap();
        let g = gpt::GptConfig::new().logical_block_size(gpt_block_size(sector).unwrap()).open(dev).unwrap();
        let read = g.partitions().values().map(|p| (p.first_lba, p.last_lba)).collect();
        (f, parts, read)
    }

    #[test]
    fn gpt_on_a_4kn_disk_counts_4096_byte_sectors() {
        let size = 8 << 30;
        let (f, parts, read) = write_and_read(size, 4096);
        let want: Vec<(u64, u64)> = parts.iter().map(|p| (p.start_lba, p.start_lba + p.length_lba - 1)).collect();
        assert_eq!(read, want);
        assert_eq!(read[0], (256, 511), "1 MiB in, 1 MiB long");
        let raw = read_at(f.path(), 0, 8192);
        // the primary header at LBA 1, the backup at the last LBA, both in 4096-byte sectors
        assert_eq!(&raw[4096..4104], b"EFI PART");
        assert_eq!(&raw[512..520], [0; 8]);
        assert_eq!(read_at(f.path(), size - 4096, 8), b"EFI PART");
        // the protective MBR's partition covers LBA 1 to the end, counted in 4096-byte sectors
        assert_eq!(&raw[510..512], [0x55, 0xaa]);
        assert_eq!(raw[446 + 4], 0xee);
        let lbas = |o: usize| u32::from_le_bytes(raw[o..o + 4].try_into().unwrap());
        assert_eq!((lbas(446 + 8), lbas(446 + 12)), (1, (size / 4096 - 1) as u32));
        assert_eq!(existing_signature(f.path().to_str().unwrap(), 4096).as_deref(), Some("GPT partition table"));
    }

    #[test]
    fn gpt_on_a_512_byte_disk_is_unchanged() {
        let size = 8 << 30;
        let (f, _, read) = write_and_read(size, 512);
        assert_eq!(read[0], (2048, 4095));
        assert_eq!(read[2].1, (size - (1 << 20)) / 512 - 1);
        assert_eq!(read_at(f.path(), 512, 8), b"EFI PART");
        assert_eq!(read_at(f.path(), size - 512, 8), b"EFI PART");
        assert_eq!(existing_signature(f.path().to_str().unwrap(), 512).as_deref(), Some("GPT partition table"));
    }

    #[test]
    fn a_partition_table_in_other_sectors_than_the_disk_is_refused() {
        let f = tempfile::NamedTempFile::new().unwrap();
        f.as_file().set_len(8 << 30).unwrap();
        let dev = f.path().to_str().unwrap();
        let parts = partition_layout(8 << 30, 512, &Layout::default()).unwrap();
        let e = write_partition_table(dev, 8 << 30, 4096, &parts).unwrap_err();
        assert_eq!(e.to_string(), format!("partition 1 is laid out in 512-byte sectors, {dev} has 4096"));
        assert!(write_partition_table(dev, 8 << 30, 1024, &parts).unwrap_err().to_string().contains("1024-byte"));
        assert!(read_at(f.path(), 0, 1 << 20).iter().all(|b| *b == 0), "nothing written");
    }

    #[test]
    fn offset_loops_map_partitions_by_byte_offset_in_the_disks_sector_size() {
        let parts = partition_layout(8 << 30, 4096, &Layout::default()).unwrap();
        assert_eq!(
            offset_loop_args("/dev/loop3", &parts[1]),
            [
                "--find",
                "--show",
                "--offset",
                "2097152",
                "--sizelimit",
                "536870912",
                "--sector-size",
                "4096",
                "/dev/loop3"
            ]
        );
    }

    #[test]
    fn in_use_detection_matches_whole_disks_and_their_partitions() {
        let mounts = "/dev/sda1 / ext4 rw 0 0\n/dev/nvme0n1p2 /boot vfat rw 0 0\ntmpfs /run tmpfs rw 0 0\n";
        let disks: Vec<String> = ["sda", "sdb", "nvme0n1", "nvme0n10", "sda1x"].iter().map(|s| s.to_string()).collect();
        assert_eq!(disks_in_use(mounts, &disks), ["sda", "nvme0n1"]);
    }
}
