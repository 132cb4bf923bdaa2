//! The scenarios, shared by the e2e tests and `make demo`.

use crate::harness::{assets, Scenario};
use crate::vm::{accel, Disk, Firmware, Vm};
use anyhow::{Context, Result};
use std::time::Duration;

/// MAC of the test VM.
pub const MAC: &str = "52:54:00:e2:e0:01";

fn full_dhcp() -> &'static str {
    "[dhcp]\nmode = \"full\"\ninterface = \"br0\"\nsubnet = \"10.99.0.0/24\"\nrange = [\"10.99.0.100\", \"10.99.0.150\"]\n"
}

fn inventory(s: &Scenario, arm: bool) -> Result<String> {
    Ok(format!(
        "[[host]]\nname = \"vm1\"\nmacs = [\"{MAC}\"]\nlabels = [\"e2e\"]\narm = {arm}\ndisk = {{ serial = \"E2E-DISK\" }}\nssh_authorized_keys = [\"{}\"]\n",
        s.public_key()?
    ))
}

fn blank_disk(s: &Scenario, name: &str, serial: &str) -> Result<Disk> {
    let path = s.dir.join(name);
    std::fs::File::create(&path)?.set_len(8 << 30)?;
    Ok(Disk { path, serial: serial.into() })
}

/// Writes the host keys the server recorded as a known_hosts file.
fn known_hosts(s: &Scenario, host: &serde_json::Value, ip: &str) -> Result<std::path::PathBuf> {
    let mut text = String::new();
    for k in host["host_keys"].as_array().context("host_keys")? {
        text.push_str(&format!("{ip} {}\n", k.as_str().unwrap_or_default()));
    }
    let p = s.dir.join("known_hosts");
    std::fs::write(&p, text)?;
    Ok(p)
}

/// Scenario 1/2: PXE install on `fw`, reboot into the disk, SSH with the
/// enrolled key against the recorded host keys, check the BTRFS layout.
/// Returns the scenario (timeline, logs) and the facts printed by the host.
pub fn pxe_install(fw: Firmware, name: &str) -> Result<(Scenario, String)> {
    let mut s = Scenario::new(name, 1)?;
    let accel = accel(&assets(), &s.dir.join(".."));
    s.phase(&format!("accelerator {accel}"));
    let inv = inventory(&s, true)?;
    s.start_server(&inv, full_dhcp())?;
    let disk = blank_disk(&s, "disk.img", "E2E-DISK")?;
    let mut vm = Vm::start(&s.ns, &s.dir, accel, fw, "tap0", MAC, &[disk])?;
    s.phase("vm started");
    let limit = Duration::from_secs(if accel == "kvm" { 600 } else { 1800 });
    s.wait_serial(&mut vm, "metalboot-installer", Duration::from_secs(600))?;
    s.wait_state("vm1", "installing", &mut vm, limit)?;
    s.wait_state("vm1", "rebooting", &mut vm, limit)?;
    let host = s.wait_state("vm1", "installed", &mut vm, limit)?;
    let ip = host["addresses"][0].as_str().context("no address reported")?.split('/').next().unwrap_or("").to_string();
    let kh = known_hosts(&s, &host, &ip)?;
    s.wait_ssh(&ip, &kh, Duration::from_secs(120))?;
    let root = s.ssh(&ip, &kh, "findmnt -n -o FSTYPE,OPTIONS /")?;
    assert!(root.starts_with("btrfs") && root.contains("subvol=/@"), "root mount: {root}");
    let subs = s.ssh(&ip, &kh, "btrfs subvolume list /")?;
    for sv in ["@", "@home", "@var_log", "@snapshots"] {
        assert!(subs.lines().any(|l| l.ends_with(&format!("path {sv}"))), "{sv} missing: {subs}");
    }
    assert_eq!(s.ssh(&ip, &kh, "hostname")?.trim(), "vm1");
    // a key other than the recorded one is refused (no trust on first use)
    let wrong = s.dir.join("known_hosts.wrong");
    std::fs::write(
        &wrong,
        format!("{ip} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"),
    )?;
    assert!(s.ssh(&ip, &wrong, "true").is_err(), "ssh accepted an unrecorded host key");
    let facts = s.ssh(
        &ip,
        &kh,
        "hostnamectl 2>/dev/null | sed -n '1,9p'; echo; ip -br addr; echo; findmnt -n /; btrfs subvolume list /",
    )?;
    s.phase("checks passed");
    vm.stop();
    s.finish();
    Ok((s, facts))
}
