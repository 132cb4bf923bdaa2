//! Scenario 2: a rented server's two disks as one BTRFS raid1, installed
//! under UEFI (OVMF's PXE → iPXE → our installer, all through a DHCP relay) onto an NVMe disk with
//! 4096-byte sectors and a virtio disk with 512-byte sectors; checked like
//! every installed host. Then the NVMe disk is taken out and the host boots
//! from the other disk alone, first under UEFI (the ESP copy), then under
//! BIOS (GRUB in that disk's BIOS boot partition): each time the root is
//! mounted degraded by itself, the other subvolumes follow, and the host
//! answers SSH with the host key the server recorded. Before that, the
//! server's `/metrics` is checked against the install, and, while
//! both disks are in, `metalboot reinstall --dry-run` of the running host
//! shows both disks of its root chosen by the inventory's two selectors,
//! and `--print-host` makes a raid1 entry of them.

use crate::harness::Scenario;
use crate::reinstall::reinstall_command;
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

/// `metalboot reinstall --dry-run` and `--print-host` of the running raid1
/// host: both disks holding its root are chosen (lsblk shows the root's
/// mounts on one of them only; it is kept for the unit tests' fixture).
fn reinstall_dry_run(s: &mut Scenario, ip: &str, kh: &std::path::Path) -> Result<()> {
    let lsblk = s.ssh(ip, kh, "lsblk -J -b -o NAME,PATH,SIZE,TYPE,SERIAL,MODEL,WWN,RM,RO,FSTYPE,UUID,MOUNTPOINTS")?;
    std::fs::write(s.dir.join("lsblk-raid1.json"), lsblk)?;
    let run = |args: &[&str], name: &str| -> Result<(bool, String)> {
        let out = reinstall_command(s, ip, name, args)?.output()?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        std::fs::write(s.dir.join(format!("reinstall{}.log", args[0])), &text)?;
        Ok((out.status.success(), text))
    };
    let (ok, text) = run(&["--dry-run"], "vm1")?;
    ensure!(ok, "dry run:\n{text}");
    for want in [
        "WIPES:    /dev/nvme0n1 8.0 GiB",
        "WIPES:    /dev/vda 8.0 GiB",
        "model=QEMU NVMe Ctrl: chosen by the host's disk 1 of 2 (serial=E2E-DISK)\n",
        "/dev/vda 8.0 GiB serial=E2E-DISK2: chosen by the host's disk 2 of 2 (serial=E2E-DISK2)\n",
        "nothing was changed",
    ] {
        ensure!(text.contains(want), "dry run lacks {want:?}:\n{text}");
    }
    let (ok, text) = run(&["--print-host"], "newbox")?;
    ensure!(ok, "--print-host:\n{text}");
    for want in ["serial = \"E2E-DISK\"", "serial = \"E2E-DISK2\"", "raid = \"raid1\""] {
        ensure!(text.contains(want), "--print-host lacks {want:?}:\n{text}");
    }
    s.phase("reinstall --dry-run of the running host: WIPES both disks of its raid1 root; --print-host: a raid1 entry");
    Ok(())
}

/// Runs the scenario; returns it (timeline, logs).
pub fn raid1(name: &str) -> Result<Scenario> {
    // the VM is on a subnet of its own behind a DHCP relay, as a rack behind
    // its top-of-rack switch: OVMF, iPXE, the installer and the installed
    // system all get their addresses through it, from that subnet's pool
    let mut i = install(Firmware::Uefi, name, Dhcp::FullBehindRelay, TEST_IMAGE, Disks::Raid1)?;
    ensure!(i.ip.starts_with("10.98.1."), "the host got {}, not an address of the relayed subnet", i.ip);
    check_installed(&mut i)?;
    let console = i.vm.serial();
    let from = last_uefi_boot(&console);
    ensure!(from.contains("NVMe Ctrl E2E-DISK"), "OVMF started {from}, not the 4Kn NVMe disk");
    i.s.phase("OVMF booted the installed system from the 4Kn NVMe disk's ESP");
    let Installed { mut s, mut vm, ip, known_hosts: kh, .. } = i;
    crate::metrics::check_after_install(&mut s, &console)?;
    reinstall_dry_run(&mut s, &ip, &kh)?;
    vm.stop();
    let second = Disk::virtio(s.dir.join("disk2.img"), "E2E-DISK2");
    boot_without_the_nvme(&mut s, &ip, &kh, Firmware::Uefi, &second)?;
    boot_without_the_nvme(&mut s, &ip, &kh, Firmware::Bios, &second)?;
    s.finish();
    Ok(s)
}
