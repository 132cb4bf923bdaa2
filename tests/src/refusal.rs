//! The refusal scenario: two disks match the host's selector, so the
//! installer stops before writing anything; the operator sees why without a
//! console (the installer's log, `hosts watch`).

use crate::harness::Scenario;
use crate::scenarios::{blank_disk, start, Dhcp, MAC, TEST_IMAGE};
use crate::vm::{Firmware, Vm};
use anyhow::{ensure, Result};
use std::time::Duration;

/// Scenario 5: two disks match the selector; the installer must stop before
/// writing, the server must show `failed` with the reason, and both disk
/// images must be byte-for-byte unchanged.
pub fn refusal(name: &str) -> Result<Scenario> {
    let (mut s, accel) = start(name, Dhcp::Full, "disk = { min_size = \"1G\" }\n", TEST_IMAGE)?;
    let mut disks = Vec::new();
    let mut sums = Vec::new();
    for (n, serial) in [("a.img", "E2E-A"), ("b.img", "E2E-B")] {
        let d = blank_disk(&s, n, serial, 2 << 30)?;
        // something recognisable at the start, middle and end
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&d.path)?;
        for off in [0u64, 1 << 30, (2 << 30) - 4096] {
            f.seek(SeekFrom::Start(off))?;
            f.write_all(format!("precious data of {serial} at {off}\n").as_bytes())?;
        }
        sums.push(sha256(&d.path)?);
        disks.push(d);
    }
    let mut vm = Vm::start(&s.ns, &s.dir, accel, Firmware::Bios, "tap0", MAC, &disks)?;
    s.phase("vm started with two matching disks");
    let limit = Duration::from_secs(if accel == "kvm" { 300 } else { 900 });
    let host = s.wait_state("vm1", "failed", &mut vm, limit)?;
    let err = host["failed_error"].as_str().unwrap_or_default().to_string();
    s.phase(&format!("failed at {}: {err}", host["failed_step"]));
    ensure!(err.contains("2 disks match"), "unexpected reason: {err}");
    ensure!(err.contains("/dev/vda") && err.contains("/dev/vdb"), "the reason does not name both disks: {err}");
    crate::oplog::check_failed_install_log(&mut s, "vm1", &host, "2 disks match")?;
    vm.stop();
    for (d, before) in disks.iter().zip(&sums) {
        ensure!(&sha256(&d.path)? == before, "{} changed", d.path.display());
    }
    s.phase("both disk images unchanged");
    s.finish();
    Ok(s)
}

fn sha256(p: &std::path::Path) -> Result<String> {
    let out = std::process::Command::new("sha256sum").arg(p).output()?;
    ensure!(out.status.success(), "sha256sum {}", p.display());
    Ok(String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or("").to_string())
}
