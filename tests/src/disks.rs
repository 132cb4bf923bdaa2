//! The disks of the scenarios' VMs: which buses and sector sizes, how the
//! inventory selects them, and the checks that the install went to exactly
//! those disks.

use crate::harness::Scenario;
use crate::vm::{Bus, Disk};
use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};

/// The disks of a scenario's VM. The inventory selects serial `E2E-DISK`;
/// any other disk is a spare that must stay all zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disks {
    /// One virtio disk, as on a VPS.
    One,
    /// A blank SATA disk first in the firmware's boot order, the target on
    /// NVMe second: a rented server whose BIOS drive 0x80 is not the disk
    /// installed to.
    SataThenNvme,
    /// Two targets, BTRFS raid1: a 4Kn NVMe disk (`E2E-DISK`) and a virtio
    /// disk with 512-byte sectors (`E2E-DISK2`).
    Raid1,
}

impl Disks {
    /// The host's disk lines in the inventory.
    pub(crate) fn inventory_lines(self) -> &'static str {
        match self {
            Disks::Raid1 => {
                "disks = [{ serial = \"E2E-DISK\" }, { serial = \"E2E-DISK2\" }]\nlayout = { raid = \"raid1\" }\n"
            }
            // the BIOS scenario's host also takes snapshots and sends them
            // (`crate::scenarios::install_watched` adds them)
            _ => "disk = { serial = \"E2E-DISK\" }\n",
        }
    }

    /// Creates the images; returns the disks in the order they are
    /// attached, and the spare's image if there is one.
    pub fn create(self, s: &Scenario) -> Result<(Vec<Disk>, Option<PathBuf>)> {
        let target = blank_disk(s, "disk.img", "E2E-DISK", 8 << 30)?;
        let spare = || blank_disk(s, "spare.img", "E2E-SPARE", 1 << 30);
        Ok(match self {
            Disks::One => (vec![target], None),
            Disks::SataThenNvme => {
                let spare = spare()?;
                let path = spare.path.clone();
                (vec![Disk { bus: Bus::Sata, ..spare }, Disk { bus: Bus::Nvme, ..target }], Some(path))
            }
            Disks::Raid1 => {
                let second = blank_disk(s, "disk2.img", "E2E-DISK2", 8 << 30)?;
                (vec![Disk { bus: Bus::Nvme, sector: 4096, ..target }, second], None)
            }
        })
    }
}

/// Whether the file holds nothing but zero bytes.
fn all_zeros(p: &std::path::Path) -> Result<bool> {
    use std::io::Read;
    let mut f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(true);
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
    }
}

/// The root filesystem is on the selected disk(s), each partitioned in its
/// own sector size; a raid1 root has both disks, data and metadata RAID1;
/// the spare disk is still all zeros.
pub(crate) fn check_disks(s: &mut Scenario, ip: &str, kh: &Path, disks: Disks, spare: Option<&Path>) -> Result<()> {
    let devs: &[(&str, u32)] = match disks {
        Disks::One => &[("vda", 512)],
        Disks::SataThenNvme => &[("nvme0n1", 512)],
        Disks::Raid1 => &[("nvme0n1", 4096), ("vda", 512)],
    };
    for &(dev, sector) in devs {
        let lbs = s.ssh(ip, kh, &format!("cat /sys/block/{dev}/queue/logical_block_size"))?;
        ensure!(lbs.trim() == sector.to_string(), "{dev} has {lbs}-byte sectors, not {sector}");
        // the GPT header is in logical block 1, whatever the block's size
        let hdr = s.ssh(ip, kh, &format!("dd if=/dev/{dev} bs={sector} skip=1 count=1 status=none | head -c 8"))?;
        ensure!(hdr == "EFI PART", "no GPT header in {sector}-byte block 1 of {dev}: {hdr:?}");
    }
    let members = s.ssh(ip, kh, "btrfs filesystem show / | grep -o '/dev/[a-z0-9]*' | sort")?;
    let want: Vec<String> =
        devs.iter().map(|(d, _)| format!("/dev/{d}{}3", if d.starts_with("nvme") { "p" } else { "" })).collect();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    ensure!(members.lines().collect::<Vec<_>>() == want_sorted, "the root's devices are {members:?}, not {want:?}");
    if disks == Disks::Raid1 {
        let df = s.ssh(ip, kh, "btrfs filesystem df /")?;
        ensure!(df.contains("Data, RAID1") && df.contains("Metadata, RAID1"), "not raid1:\n{df}");
    }
    if let Some(spare) = spare {
        ensure!(all_zeros(spare)?, "the spare disk {} was written to", spare.display());
    }
    let spare = if spare.is_some() { "; the spare disk is all zeros" } else { "" };
    let each: Vec<String> = devs.iter().map(|(d, s)| format!("{d} (GPT in {s}-byte blocks)")).collect();
    let raid = if disks == Disks::Raid1 { ", data and metadata RAID1" } else { "" };
    s.phase(&format!("root on {}{raid}{spare}", each.join(" + ")));
    Ok(())
}

pub(crate) fn blank_disk(s: &Scenario, name: &str, serial: &str, size: u64) -> Result<Disk> {
    let path = s.dir.join(name);
    std::fs::File::create(&path)?.set_len(size)?;
    Ok(Disk::virtio(path, serial))
}
