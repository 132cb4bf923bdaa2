//! Scenario 9: `metalboot reinstall` of a provider's rescue system on a
//! server with two disks for a raid1 and a third, smaller one: the rescue
//! system runs from RAM (its root is the kernel's rootfs) with no system on
//! disk. Refused without `--rescue-ok` (nothing to fall back to) and
//! nothing written; with it, the inventory's two disk selectors pick the
//! two blank disks, the host is installed as btrfs raid1 across them, and
//! when the rescue system's reboot ends the VM the harness powers it on from
//! its disks (the provider boots them once rescue is no longer active),
//! where the new system answers with the host keys the server recorded; the
//! third disk was never written.

use crate::disks::Disks;
use crate::harness::{assets, Scenario};
use crate::reinstall::{reinstall_command, IP};
use crate::scenarios::{blank_disk, known_hosts, MAC, TEST_IMAGE};
use crate::vm::Vm;
use anyhow::{bail, ensure, Context, Result};
use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Builds the rescue system's kernel and initramfs; returns their paths
/// and a known_hosts file with the rescue system's host keys.
fn rescue_system(s: &Scenario) -> Result<(PathBuf, PathBuf, PathBuf)> {
    let out_dir = s.dir.join("rescue");
    let image = assets().join(TEST_IMAGE.asset());
    let keys = s.ssh_key.with_extension("pub");
    let args: [&OsStr; 6] =
        [out_dir.as_ref(), image.as_ref(), MAC.as_ref(), IP.as_ref(), "10.99.0.1".as_ref(), keys.as_ref()];
    let p = crate::image_builder::run(s, "rescue-initrd.sh", &args, &[], "the rescue system", IP, "rescue")?;
    Ok((out_dir.join("vmlinuz"), out_dir.join("rescue.cpio.zst"), p))
}

/// Nothing was ever written to the (sparse) disk image.
fn never_written(p: &Path) -> Result<bool> {
    Ok(std::fs::metadata(p).with_context(|| format!("stat {}", p.display()))?.blocks() == 0)
}

/// Runs the scenario; returns it (timeline, logs).
pub fn reinstall_rescue(name: &str) -> Result<Scenario> {
    let (mut s, accel) = crate::reinstall::static_host_without_dhcp(name, Disks::Raid1.inventory_lines())?;
    let disks = [
        blank_disk(&s, "disk.img", "E2E-DISK", 4 << 30)?,
        blank_disk(&s, "disk2.img", "E2E-DISK2", 4 << 30)?,
        blank_disk(&s, "spare.img", "E2E-SPARE", 1 << 30)?,
    ];
    let (kernel, initrd, rescue_kh) = rescue_system(&s)?;
    s.phase("rescue system built (the root filesystem image as one initramfs)");
    let mut vm = Vm::start_kernel(
        &s.ns,
        &s.dir,
        accel,
        "tap0",
        MAC,
        &disks,
        &kernel,
        &initrd,
        "console=ttyS0,115200 rdinit=/sbin/init",
    )?;
    s.wait_ssh(IP, &rescue_kh, Duration::from_secs(900))?;
    let root = s.ssh(IP, &rescue_kh, "findmnt -n -o FSTYPE /")?;
    ensure!(root.trim() == "rootfs", "the rescue system's root is {root:?}, not the kernel's rootfs");
    s.phase("rescue system up from RAM (root on rootfs), three blank disks");

    // without the acknowledgement: refused, and the disk never written
    let out = reinstall_command(&s, IP, "vm1", &["--yes"])?.output().context("running metalboot reinstall")?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    std::fs::write(s.dir.join("reinstall-refused.log"), &text)?;
    ensure!(!out.status.success(), "a rescue system was reinstalled without --rescue-ok:\n{text}");
    ensure!(text.contains("runs from RAM") && text.contains("--rescue-ok"), "refusal:\n{text}");
    ensure!(text.contains("nothing was changed"), "refusal:\n{text}");
    for d in &disks {
        ensure!(never_written(&d.path)?, "{} was written to by a refused reinstall", d.path.display());
    }
    s.phase("without --rescue-ok: refused (runs from RAM), no disk written");

    // the dry run shows both disks of the raid and passes over the third
    let out = reinstall_command(&s, IP, "vm1", &["--dry-run", "--rescue-ok"])?.output()?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    std::fs::write(s.dir.join("reinstall-dry-run.log"), &text)?;
    ensure!(out.status.success(), "dry run:\n{text}");
    for want in [
        "WIPES:    /dev/vda 4.0 GiB model=- serial=E2E-DISK\n",
        "WIPES:    /dev/vdb 4.0 GiB model=- serial=E2E-DISK2\n",
        "/dev/vda 4.0 GiB serial=E2E-DISK: chosen by the host's disk 1 of 2 (serial=E2E-DISK)",
        "/dev/vdb 4.0 GiB serial=E2E-DISK2: chosen by the host's disk 2 of 2 (serial=E2E-DISK2)",
        "/dev/vdc 1.0 GiB serial=E2E-SPARE: matches none of the host's disk selectors",
        "nothing was changed",
    ] {
        ensure!(text.contains(want), "dry run lacks {want:?}:\n{text}");
    }
    ensure!(!text.contains("WIPES:    /dev/vdc"), "dry run:\n{text}");
    s.phase("dry run: WIPES /dev/vda and /dev/vdb (disks 1 and 2 of the raid), /dev/vdc matches neither");

    // with it: installed; the rescue system's reboot ends the VM, which is
    // powered on again from its disk
    let log = std::fs::File::create(s.dir.join("reinstall.log"))?;
    let mut child = reinstall_command(&s, IP, "vm1", &["--yes", "--rescue-ok"])?
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("running metalboot reinstall --rescue-ok")?;
    let deadline = Instant::now() + Duration::from_secs(1500);
    let mut from_disk = None;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if from_disk.is_none() && !vm.running() {
            s.phase("the VM stopped at the reboot; powering it on from its disk");
            let dir = s.dir.join("from-disk");
            std::fs::create_dir_all(&dir)?;
            from_disk = Some(Vm::start_from_disk(&s.ns, &dir, accel, "tap0", MAC, &disks)?);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("reinstall --rescue-ok did not finish in time");
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    let text = std::fs::read_to_string(s.dir.join("reinstall.log"))?;
    ensure!(status.success(), "reinstall --rescue-ok failed:\n{text}");
    ensure!(text.contains("is installed; new host keys"), "reinstall output:\n{text}");
    ensure!(from_disk.is_some(), "the host was installed without the VM leaving the rescue system");
    for line in text.lines().filter(|l| l.starts_with('[')) {
        println!("  rescue: {line}");
    }
    s.phase("with --rescue-ok: installed; the host phoned home from its disk");
    let kh = known_hosts(&s, IP)?;
    s.wait_ssh(IP, &kh, Duration::from_secs(300))?;
    let members = s.ssh(IP, &kh, "btrfs filesystem show / | grep -o '/dev/[a-z0-9]*' | sort | tr '\\n' ' '")?;
    ensure!(members.trim() == "/dev/vda3 /dev/vdb3", "the new root's devices are {members:?}");
    let df = s.ssh(IP, &kh, "btrfs filesystem df /")?;
    ensure!(df.contains("Data, RAID1") && df.contains("Metadata, RAID1"), "not raid1:\n{df}");
    ensure!(never_written(&disks[2].path)?, "the third disk was written to");
    ensure!(s.ssh(IP, &rescue_kh, "true").is_err(), "the rescue system's host key still answers");
    s.phase(
        "new system on /dev/vda3 + /dev/vdb3 (btrfs, data and metadata RAID1), pinned host key; the third disk \
         never written; the rescue key no longer answers",
    );
    drop(vm);
    drop(from_disk);
    s.finish();
    Ok(s)
}
