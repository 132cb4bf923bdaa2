//! QEMU end-to-end scenarios (run as root by `make e2e`): a VM PXE-boots
//! from metalboot, is installed, reboots into its disk and is reached over
//! SSH with the enrolled key, the host key checked against what the server
//! recorded.

// a test may unwrap: a panic is its failure report
#![allow(clippy::unwrap_used)]

use metalboot_e2e::harness::Image;
use metalboot_e2e::refusal::refusal;
use metalboot_e2e::scenarios::{check_installed, debian_installer, install, install_watched, Dhcp, Disks, TEST_IMAGE};
use metalboot_e2e::timing::Timed;
use metalboot_e2e::vm::Firmware;

/// Scenario 1 (BIOS, full DHCP): installed from SATA-then-NVMe disks with
/// the generic image, snapshots and the .deb's service checked on it.
/// (Install once, a network boot of an installed host sent to its disk, is
/// the lab scenario's: its `--snapshot` restart boots the BIOS host so.)
#[test]
#[ignore = "QEMU end to end, as root: run by `make e2e`"]
fn bios_full_dhcp_install_boot_ssh_snapshots_and_service() {
    let _t = Timed::start("bios_full_dhcp_install_boot_ssh_snapshots_and_service");
    // the generic image here, so Debian's generic kernel is installed and booted too
    let mut i = install(Firmware::Bios, "bios", Dhcp::Full, Image::Generic, Disks::SataThenNvme).unwrap();
    check_installed(&mut i).unwrap();
    metalboot_e2e::snapshots::check_snapshots(&mut i).unwrap();
    metalboot_e2e::package::check_deb_service(&mut i).unwrap();
    i.vm.stop();
    i.s.finish();
}

/// Scenario 2: UEFI (OVMF's own PXE client → TFTP → iPXE), full DHCP, two
/// disks as BTRFS raid1 (a 4Kn NVMe and a virtio disk); then each firmware
/// boots the host from the virtio disk alone.
#[test]
#[ignore = "QEMU end to end, as root: run by `make e2e`"]
fn uefi_raid1_install_then_boots_with_a_disk_missing() {
    let _t = Timed::start("uefi_raid1_install_then_boots_with_a_disk_missing");
    metalboot_e2e::raid::raid1("uefi-raid1").unwrap();
}

/// `metalboot lab` from an inventory file: two hosts (BIOS and UEFI) up,
/// a playbook run against them with host keys checked, then down with
/// nothing left behind.
#[test]
#[ignore = "QEMU end to end, as root: run by `make e2e`"]
fn lab_up_two_hosts_run_a_playbook_then_down() {
    let _t = Timed::start("lab_up_two_hosts_run_a_playbook_then_down");
    metalboot_e2e::lab::lab_up_run_down().unwrap();
}

/// Scenario 4: dnsmasq on another host hands out the addresses; metalboot
/// in proxy mode gives boot information only.
#[test]
#[ignore = "QEMU end to end, as root: run by `make e2e`"]
fn proxy_dhcp_beside_dnsmasq_install_boot_and_ssh() {
    let _t = Timed::start("proxy_dhcp_beside_dnsmasq_install_boot_and_ssh");
    // the operator follows this one on the status page, in a real browser
    let (mut i, page) =
        install_watched(Firmware::Bios, "proxy", Dhcp::ProxyBesideDnsmasq, TEST_IMAGE, Disks::One, true).unwrap();
    check_installed(&mut i).unwrap();
    page.expect("watching").check_install(&mut i.s).unwrap();
    i.vm.stop();
    i.s.finish();
}

/// Scenario 5: two disks match the selector: nothing is written.
#[test]
#[ignore = "QEMU end to end, as root: run by `make e2e`"]
fn two_matching_disks_refused_and_left_unchanged() {
    let _t = Timed::start("two_matching_disks_refused_and_left_unchanged");
    refusal("refusal").unwrap();
}

/// Scenario 6: the Debian-installer path, as far as this network's mirror
/// allows (see `debian_installer`).
#[test]
#[ignore = "QEMU end to end, as root: run by `make e2e`"]
fn debian_installer_fetches_its_preseed_and_reports_started() {
    let _t = Timed::start("debian_installer_fetches_its_preseed_and_reports_started");
    debian_installer("debian-installer").unwrap();
}

/// The installer initramfs boots the Debian kernel under QEMU and the
/// installer reports its version and the disks it sees.
#[test]
#[ignore = "QEMU end to end: run by `make e2e`"]
fn initramfs_boots_and_installer_sees_disks() {
    let _t = Timed::start("initramfs_boots_and_installer_sees_disks");
    use metalboot_e2e::harness::{assets, workspace};
    let dir = workspace().join("target/e2e/initramfs-probe");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let disk = dir.join("disk.img");
    std::fs::File::create(&disk).unwrap().set_len(3 << 30).unwrap();
    let log = dir.join("serial.log");
    let status = std::process::Command::new("timeout")
        .args([
            "300",
            "qemu-system-x86_64",
            "-accel",
            "tcg",
            "-m",
            "1024",
            "-display",
            "none",
            "-monitor",
            "none",
            "-no-reboot",
        ])
        .arg("-kernel")
        .arg(assets().join("vmlinuz"))
        .arg("-initrd")
        .arg(assets().join("initramfs.img"))
        .args(["-append", "console=ttyS0 metalboot.action=probe", "-serial"])
        .arg(format!("file:{}", log.display()))
        .args(["-drive", &format!("file={},format=raw,if=none,id=d0", disk.display())])
        .args(["-device", "virtio-blk-pci,drive=d0,serial=PROBE-DISK"])
        .args(["-device", "virtio-rng-pci"])
        .status()
        .unwrap();
    let out = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
    assert!(status.success(), "QEMU did not power off by itself; console:\n{out}");
    let version = format!("metalboot-installer {} starting", env!("CARGO_PKG_VERSION"));
    let markers = [
        version.as_str(),
        "metalboot: 1 disk(s) seen",
        "metalboot: disk /dev/vda 3.0 GiB model=- serial=PROBE-DISK",
        "hardware source: virtio_rng.0",
        "metalboot: probe done",
    ];
    let mut at = 0;
    for m in markers {
        let i = out[at..].find(m).unwrap_or_else(|| panic!("{m:?} missing (in order) from the console:\n{out}"));
        at += i + m.len();
    }
}

/// Scenario 7: `metalboot reinstall` over SSH of a running host with a
/// static /32 address and no DHCP on its network; first with the server
/// unreachable from it (the old system must come back untouched), then for
/// real (same address, new host keys, old files gone).
#[test]
#[ignore = "QEMU end to end, as root: run by `make e2e`"]
fn reinstall_in_place_over_ssh_keeps_the_static_address_and_never_strands() {
    let _t = Timed::start("reinstall_in_place_over_ssh_keeps_the_static_address_and_never_strands");
    metalboot_e2e::reinstall::reinstall_in_place("reinstall").unwrap();
}

/// Scenario 8: `metalboot reinstall` of a classic ext4 + GRUB Debian with
/// no kexec to be had: the installer boots from a one-shot GRUB entry,
/// which GRUB clears, so a failed attempt comes back to the old system.
#[test]
#[ignore = "QEMU end to end, as root: run by `make e2e`"]
fn reinstall_without_kexec_boots_the_installer_once_from_grub() {
    let _t = Timed::start("reinstall_without_kexec_boots_the_installer_once_from_grub");
    metalboot_e2e::reinstall_grub::reinstall_via_grub("reinstall-grub").unwrap();
}

/// Scenario 9: `metalboot reinstall` of a rescue system running from RAM:
/// refused without `--rescue-ok`, installed with it.
#[test]
#[ignore = "QEMU end to end, as root: run by `make e2e`"]
fn reinstall_of_a_rescue_system_from_ram_needs_rescue_ok() {
    let _t = Timed::start("reinstall_of_a_rescue_system_from_ram_needs_rescue_ok");
    metalboot_e2e::rescue::reinstall_rescue("rescue").unwrap();
}

/// Scenario 10: two servers on one PostgreSQL database; the one serving is
/// killed mid-install and the install completes through the other.
#[test]
#[ignore = "QEMU end to end, as root: run by `make e2e`"]
fn two_servers_one_database_install_survives_a_kill() {
    let _t = Timed::start("two_servers_one_database_install_survives_a_kill");
    metalboot_e2e::two_servers::two_servers("two-servers").unwrap();
}
