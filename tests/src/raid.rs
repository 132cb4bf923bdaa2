//! Scenario 2: a rented server's two disks as one BTRFS raid1, installed
//! under UEFI (OVMF's PXE → iPXE → our installer) onto an NVMe disk with
//! 4096-byte sectors and a virtio disk with 512-byte sectors; checked like
//! every installed host. Then the NVMe disk is taken out and the host boots
//! from the other disk alone, first under UEFI (the ESP copy), then under
//! BIOS (GRUB in that disk's BIOS boot partition): each time the root is
//! mounted degraded by itself, the other subvolumes follow, and the host
//! answers SSH with the host key the server recorded.

use crate::harness::Scenario;
use crate::scenarios::{check_installed, install, Dhcp, Disks, Installed, MAC, TEST_IMAGE};
use crate::vm::{accel, Disk, Firmware, Vm};
use anyhow::{ensure, Result};
use std::time::Duration;

/// The last boot option OVMF started, as its console says.
fn last_uefi_boot(console: &str) -> String {
    console.lines().filter_map(|l| l.split("BdsDxe: starting ").nth(1)).next_back().unwrap_or("none").to_string()
}

/// Boots the VM from `disk` alone under `fw` and checks the degraded root.
fn boot_without_the_nvme(s: &mut Scenario, ip: &str, kh: &std::path::Path, fw: Firmware, disk: &Disk) -> Result<()> {
    let dir = s.dir.join(format!("without-nvme-{}", if fw == Firmware::Uefi { "uefi" } else { "bios" }));
    std::fs::create_dir_all(&dir)?;
    let mut vm = match fw {
        Firmware::Uefi => Vm::start(&s.ns, &dir, accel(), fw, "tap0", MAC, std::slice::from_ref(disk))?,
        Firmware::Bios => Vm::start_from_disk(&s.ns, &dir, accel(), "tap0", MAC, std::slice::from_ref(disk))?,
    };
    s.phase(&format!("{fw:?}: booting from the virtio disk alone"));
    s.wait_ssh(ip, kh, Duration::from_secs(900))?;
    let facts = s.ssh(
        ip,
        kh,
        "test -e /run/metalboot/btrfs-degraded && echo flag; findmnt -n -o OPTIONS /; findmnt -n -o FSTYPE /home; \
         findmnt -n -o FSTYPE /var/log; btrfs filesystem show / | grep -ci missing; \
         test -d /sys/firmware/efi && echo efi || echo bios",
    )?;
    let lines: Vec<&str> = facts.lines().collect();
    ensure!(lines.first() == Some(&"flag"), "the initramfs did not mount the root degraded:\n{facts}");
    ensure!(lines.get(1).is_some_and(|o| o.contains("degraded")), "root not mounted degraded:\n{facts}");
    ensure!(lines.get(2) == Some(&"btrfs") && lines.get(3) == Some(&"btrfs"), "subvolumes not mounted:\n{facts}");
    ensure!(lines.get(4).is_some_and(|n| n.trim() != "0"), "btrfs does not report a missing device:\n{facts}");
    let booted = if fw == Firmware::Uefi { "efi" } else { "bios" };
    ensure!(lines.get(5) == Some(&booted), "booted by {:?}, not {booted}:\n{facts}", lines.get(5));
    if fw == Firmware::Uefi {
        let from = last_uefi_boot(&vm.serial());
        ensure!(from.contains("Misc Device"), "OVMF started {from}, not the virtio disk");
    }
    s.phase(&format!(
        "{fw:?} without the NVMe disk: root mounted degraded by itself, /home and /var/log mounted, SSH with the \
         recorded host key"
    ));
    vm.stop();
    Ok(())
}

/// Runs the scenario; returns it (timeline, logs).
pub fn raid1(name: &str) -> Result<Scenario> {
    let mut i = install(Firmware::Uefi, name, Dhcp::Full, TEST_IMAGE, Disks::Raid1)?;
    check_installed(&mut i)?;
    let from = last_uefi_boot(&i.vm.serial());
    ensure!(from.contains("NVMe Ctrl E2E-DISK"), "OVMF started {from}, not the 4Kn NVMe disk");
    i.s.phase("OVMF booted the installed system from the 4Kn NVMe disk's ESP");
    let Installed { mut s, mut vm, ip, known_hosts: kh, .. } = i;
    vm.stop();
    let second = Disk::virtio(s.dir.join("disk2.img"), "E2E-DISK2");
    boot_without_the_nvme(&mut s, &ip, &kh, Firmware::Uefi, &second)?;
    boot_without_the_nvme(&mut s, &ip, &kh, Firmware::Bios, &second)?;
    s.finish();
    Ok(s)
}
