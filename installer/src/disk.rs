//! Writing to the chosen disk: checks before the first write (not mounted,
//! exclusive access), wiping old signatures, the GPT (with the `gpt` crate),
//! the kernel re-reading the table, waiting for partition nodes, and making a
//! half-written disk unbootable after a failure.

use crate::cmd::{run, tool};
use crate::layout::{PartKind, PartSpec, LBA};
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

/// Writes a protective MBR and a fresh GPT with `parts`.
pub fn write_partition_table(dev: &str, size: u64, parts: &[PartSpec]) -> Result<()> {
    let mut f = OpenOptions::new().read(true).write(true).open(dev).with_context(|| format!("opening {dev}"))?;
    let lbas = size / LBA;
    let mbr = gpt::mbr::ProtectiveMBR::with_lb_size(u32::try_from(lbas - 1).unwrap_or(0xFFFF_FFFF));
    mbr.overwrite_lba0(&mut f).with_context(|| format!("writing protective MBR to {dev}"))?;
    let mut g = gpt::GptConfig::new()
        .writable(true)
        .logical_block_size(gpt::disk::LogicalBlockSize::Lb512)
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
/// (the build machine's own kernel may lack GPT support). Detached on drop.
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
            let off = (p.start_lba * LBA).to_string();
            let len = p.bytes().to_string();
            let out = run(&losetup, &["--find", "--show", "--offset", &off, "--sizelimit", &len, dev])
                .with_context(|| format!("mapping partition {} of {dev}", p.number))?;
            me.devices.push(out.trim().to_string());
        }
        Ok(me)
    }
}

impl Drop for OffsetLoops {
    fn drop(&mut self) {
        for d in &self.devices {
            let _ = std::process::Command::new("losetup").args(["-d", d]).status();
        }
    }
}

/// What is written at the start of a disk: a partition table (`gpt`, `dos`)
/// or a filesystem/RAID signature, as blkid sees it without udev.
pub fn existing_signature(dev: &str) -> Option<String> {
    let mut head = vec![0u8; 1024];
    if let Ok(mut f) = std::fs::File::open(dev) {
        use std::io::Read;
        if f.read_exact(&mut head).is_ok() {
            if &head[512..520] == b"EFI PART" {
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

    #[test]
    fn in_use_detection_matches_whole_disks_and_their_partitions() {
        let mounts = "/dev/sda1 / ext4 rw 0 0\n/dev/nvme0n1p2 /boot vfat rw 0 0\ntmpfs /run tmpfs rw 0 0\n";
        let disks: Vec<String> = ["sda", "sdb", "nvme0n1", "nvme0n10", "sda1x"].iter().map(|s| s.to_string()).collect();
        assert_eq!(disks_in_use(mounts, &disks), ["sda", "nvme0n1"]);
    }
}
