//! Scenario 8: `metalboot reinstall` of a Debian system installed the
//! classic way (ext4 root, GRUB, no kexec-tools, and no package mirror to
//! install it from): the installer is booted by a one-shot GRUB entry
//! instead of kexec. Steps 1 to 3 run on BIOS (GRUB in the MBR gap), step 4
//! on UEFI (OVMF, GRUB at the ESP's removable-media path).
//!
//! 1. `--dry-run` says so, and changes nothing;
//! 2. the server unreachable from the target: GRUB boots the installer
//!    once, the installer cannot reach the server and reboots, and GRUB's
//!    default entry brings the old system back untouched (marker present,
//!    no pending `next_entry`, `custom.cfg` and `/boot/metalboot` gone);
//!    the host is `failed` with the reason;
//! 3. `--standalone` with the server still unreachable: GRUB loads the
//!    carried payload (plan, image, host keys) and the installer initramfs
//!    as two initrds; the new system answers with the pinned keys;
//! 4. on a fresh old system, booted by UEFI, reachable: wiped, installed,
//!    phoned home, back (by UEFI) on the same /32 with new host keys;
//! 5. the result is a metalboot host (btrfs `/boot`), where GRUB cannot
//!    clear a one-shot entry: `--boot-via grub` is refused by name, before
//!    anything changes.

use crate::harness::Scenario;
use crate::reinstall::{new_standalone_system, new_system, reinstall_to, with_server_blocked, IP, MARKER};
use crate::scenarios::MAC;
use crate::vm::{Firmware, Vm};
use anyhow::{ensure, Result};
use std::time::Duration;

fn reinstall(s: &Scenario, log: &str, extra: &[&str]) -> Result<(bool, String)> {
    let (ok, stdout, stderr) = reinstall_to(s, log, IP, "vm1", extra)?;
    Ok((ok, format!("{stdout}{stderr}")))
}

/// How the running system at `kh` was booted, as it sees it.
fn booted_by(s: &Scenario, kh: &std::path::Path) -> Result<String> {
    Ok(s.ssh(IP, kh, "test -d /sys/firmware/efi && echo uefi || echo bios")?.trim().to_string())
}

/// Builds the old system's disk for `fw` and boots it; returns the VM and
/// its pinned known_hosts once the marker is written.
fn boot_old_system(s: &mut Scenario, accel: &str, fw: Firmware) -> Result<(Vm, std::path::PathBuf)> {
    let (disk, old_kh) = crate::old_system::ext4_debian(s, fw, IP, &[])?;
    let name = crate::old_system::firmware_name(fw);
    s.phase(&format!("ext4 Debian disk built (GRUB for {name}, static /32, no kexec-tools)"));
    let vm = match fw {
        Firmware::Bios => Vm::start_from_disk(&s.ns, &s.dir, accel, "tap0", MAC, &[disk])?,
        // OVMF tries the disk before the network
        Firmware::Uefi => Vm::start(&s.ns, &s.dir, accel, fw, "tap0", MAC, &[disk])?,
    };
    s.wait_ssh(IP, &old_kh, Duration::from_secs(900))?;
    s.ssh(IP, &old_kh, &format!("echo old-system > {MARKER} && sync"))?;
    let fs = s.ssh(IP, &old_kh, "findmnt -n -o FSTYPE /; command -v kexec || echo no-kexec")?;
    ensure!(fs.contains("ext4") && fs.contains("no-kexec"), "the old system: {fs}");
    let booted = booted_by(s, &old_kh)?;
    ensure!(booted == name, "the old system was booted by {booted}, not {name}");
    s.phase(&format!("old system up by {name} from its ext4 disk, static address, no kexec; marker written"));
    Ok((vm, old_kh))
}

/// Runs the whole scenario.
pub fn reinstall_via_grub(name: &str) -> Result<Scenario> {
    let (mut s, accel) = crate::reinstall::static_host_without_dhcp(name, crate::disks::Disks::One.inventory_lines())?;
    let (mut vm, old_kh) = boot_old_system(&mut s, accel, Firmware::Bios)?;
    let old_keys = s.host("vm1")?["host_keys"].clone();

    // 1. the summary says how it will boot; nothing changes
    let before = s.host("vm1")?;
    let (ok, out) = reinstall(&s, "reinstall-grub-dry-run.log", &["--dry-run"])?;
    ensure!(ok && out.contains("nothing was changed"), "dry run:\n{out}");
    ensure!(out.contains("else a one-shot GRUB entry (/boot/grub on ext2)"), "dry run boot method:\n{out}");
    ensure!(s.host("vm1")?["timeline"] == before["timeline"], "the dry run changed the host");
    s.phase("--dry-run: kexec to be installed, else a one-shot GRUB entry; host unchanged");

    // 2. the server unreachable: the one-shot entry runs once, then the
    // default entry is the old system again
    let (ok, out) = with_server_blocked(&s, || reinstall(&s, "reinstall-grub-unreachable.log", &["--yes"]))?;
    ensure!(!ok && out.contains("no network in installer"), "reinstall with the server unreachable:\n{out}");
    ensure!(out.contains("one-shot GRUB entry"), "the command did not fall back to GRUB:\n{out}");
    let h = s.host("vm1")?;
    ensure!(h["state"] == "failed", "host is {} not failed", h["state"]);
    let err = h["failed_error"].as_str().unwrap_or("");
    ensure!(err.contains("no network in installer") && err.contains("ip="), "failed_error: {err}");
    let marker = s.ssh(IP, &old_kh, &format!("cat {MARKER}"))?;
    ensure!(marker.trim() == "old-system", "marker: {marker:?}");
    let env = s.ssh(IP, &old_kh, "grub-editenv list")?;
    ensure!(!env.contains("next_entry=metalboot"), "a one-shot entry is still pending: {env}");
    let left = s.ssh(
        IP,
        &old_kh,
        "ls -d /boot/metalboot /boot/grub/custom.cfg /boot/grub/custom.cfg.metalboot-created 2>/dev/null || true",
    )?;
    ensure!(left.trim().is_empty(), "left on the old system: {left}");
    let timeline = h["timeline"].to_string();
    ensure!(timeline.contains("grub-reboot"), "the timeline does not say how the installer was started: {timeline}");
    s.phase("unreachable: GRUB booted the installer once, the old system came back untouched and clean");

    // 3. standalone, the server still unreachable: two initrds from /boot
    let (ok, out) =
        with_server_blocked(&s, || reinstall(&s, "reinstall-grub-standalone.log", &["--yes", "--standalone"]))?;
    ensure!(ok, "standalone reinstall through the one-shot GRUB entry failed:\n{out}");
    ensure!(out.contains("sent payload.cpio"), "no payload was carried:\n{out}");
    for line in out.lines().filter(|l| l.starts_with('[')) {
        println!("  grub standalone: {line}");
    }
    new_standalone_system(&mut s, &old_keys, &old_kh, "the standalone reinstall through GRUB")?;
    s.phase("standalone through the one-shot GRUB entry: installed with the server unreachable; pinned keys");

    // 4. a fresh old system booted by UEFI, reachable: installed through the
    // one-shot entry
    let old_keys = s.host("vm1")?["host_keys"].clone();
    vm.stop();
    let _ = std::fs::rename(s.dir.join("serial.log"), s.dir.join("serial.1.log"));
    let (new_vm, old_kh) = boot_old_system(&mut s, accel, Firmware::Uefi)?;
    vm = new_vm;
    let (ok, out) = reinstall(&s, "reinstall-grub.log", &["--yes"])?;
    ensure!(ok, "reinstall through the one-shot GRUB entry failed:\n{out}");
    for line in out.lines().filter(|l| l.starts_with('[')) {
        println!("  grub: {line}");
    }
    let (_, kh) = new_system(&mut s, &old_keys, &old_kh, "the reinstall through GRUB")?;
    let fs = s.ssh(IP, &kh, "findmnt -n -o FSTYPE /")?;
    ensure!(fs.trim() == "btrfs", "the new root filesystem is {fs}");
    let booted = booted_by(&s, &kh)?;
    ensure!(booted == "uefi", "the new system was booted by {booted}, not uefi");
    s.phase("installed through the UEFI GRUB's one-shot entry: same /32, new host keys, btrfs, marker gone, UEFI");

    // 5. a btrfs /boot: refused by name, nothing changed
    let before = s.host("vm1")?;
    let (ok, out) = reinstall(&s, "reinstall-grub-btrfs.log", &["--yes", "--boot-via", "grub"])?;
    ensure!(!ok && out.contains("is on btrfs") && out.contains("nothing was changed"), "grub on btrfs:\n{out}");
    ensure!(s.host("vm1")?["timeline"] == before["timeline"], "the refusal changed the host");
    s.ssh(IP, &kh, "true")?;
    s.phase("--boot-via grub on a btrfs /boot: refused by name, host unchanged");
    vm.stop();
    s.finish();
    Ok(s)
}
