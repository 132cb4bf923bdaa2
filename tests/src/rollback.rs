//! The reinstall scenario's trial that fails: `reinstall --keep @home
//! --rollback-after 30` of a host on metalboot's layout, with the server
//! made unreachable from the host once the installer has reported. The new
//! system boots once, cannot phone home, and 30 s after its boot reboots;
//! GRUB boots the previous root from `@snapshots`, which reports itself
//! back: the host is `failed` with why, its old host keys are the host's
//! again, and nobody did anything.

use crate::harness::Scenario;
use crate::vm::Vm;
use anyhow::{ensure, Context, Result};
use std::path::Path;
use std::time::{Duration, Instant};

/// Seconds the new system has to phone home.
const DEADLINE: u32 = 30;

/// The reinstall scenario's host, as this step needs it.
pub struct Host<'a> {
    /// Its address.
    pub ip: &'a str,
    /// A marker file's path.
    pub marker: &'a str,
    /// `metalboot reinstall` of it with these extra arguments.
    pub reinstall: &'a dyn Fn(&Scenario, &[&str]) -> Result<std::process::Command>,
    /// Makes the server unreachable from it (`true`), or reachable again.
    pub block: &'a dyn Fn(&Scenario, bool) -> Result<()>,
}

/// Runs the step on the running host `vm`, reached with `kh`, whose host
/// keys the server holds as `keys`.
pub fn failed_trial_rolls_back(
    s: &mut Scenario,
    vm: &mut Vm,
    host: &Host<'_>,
    kh: &Path,
    keys: &serde_json::Value,
) -> Result<()> {
    let (ip, marker) = (host.ip, host.marker);
    s.ssh(ip, kh, &format!("echo trial-previous > {marker} && echo before-trial > /home/kept && sync"))?;
    let deadline = DEADLINE.to_string();
    let args = ["--yes", "--keep", "@home", "--rollback-after", &deadline];
    let mut cmd = (host.reinstall)(s, &args)?;
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running metalboot reinstall")?;
    let started = Instant::now();
    let blocked = s.wait_state("vm1", "rebooting", vm, Duration::from_secs(600)).and_then(|_| {
        (host.block)(s, true)?;
        s.phase("installer reported; the server is now unreachable from the host");
        s.wait_serial(vm, "the new system did not phone home", Duration::from_secs(600))
    });
    let unblocked = (host.block)(s, false);
    let out = child.wait_with_output().context("waiting for metalboot reinstall")?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    std::fs::write(s.dir.join("reinstall-rollback.log"), &text)?;
    blocked?;
    unblocked?;
    ensure!(
        text.contains("ROLLBACK: the old root stays bootable"),
        "the confirmation says nothing of the trial:\n{text}"
    );
    let trial = vm.serial();
    let said = trial.lines().rev().find(|l| l.contains("the new system did not phone home")).unwrap_or_default();
    ensure!(said.contains(&format!("no phone-home within {DEADLINE} s of its boot")), "the trial said: {said}");
    s.phase(&format!("the new system booted on trial and gave up after {DEADLINE} s: {}", said.trim()));
    ensure!(!out.status.success(), "the reinstall succeeded although the new system never phoned home:\n{text}");
    ensure!(text.contains("failed at step first-boot: the new system's trial failed"), "the command said:\n{text}");
    // the previous system is back by itself, and says so
    s.wait_ssh(ip, kh, Duration::from_secs(600))?;
    let h = s.wait_state("vm1", "failed", vm, Duration::from_secs(300))?;
    let err = h["failed_error"].as_str().unwrap_or("");
    ensure!(h["failed_step"] == "first-boot", "failed at {}: {err}", h["failed_step"]);
    ensure!(err.contains(&format!("trial failed: no phone-home within {DEADLINE} s")), "failed_error: {err}");
    ensure!(&h["host_keys"] == keys, "the server does not hold the old host keys again: {}", h["host_keys"]);
    let facts =
        s.ssh(ip, kh, &format!("cat {marker} /home/kept; findmnt -n -o OPTIONS /; findmnt -n -o OPTIONS /var/log"))?;
    let lines: Vec<&str> = facts.lines().collect();
    ensure!(lines.first() == Some(&"trial-previous"), "not the previous system: {facts}");
    ensure!(lines.get(1) == Some(&"before-trial"), "/home was not kept: {facts}");
    ensure!(lines.get(2).is_some_and(|o| o.contains("subvol=/@snapshots/@.replaced.")), "root mount: {facts}");
    // its own /var/log, moved with it, not the new system's
    ensure!(lines.get(3).is_some_and(|o| o.contains("subvol=/@snapshots/@var_log.replaced.")), "/var/log: {facts}");
    let left = s.ssh(
        ip,
        kh,
        "for i in $(seq 30); do [ -e /etc/metalboot/rolled-back.env ] || break; sleep 1; done; \
         systemctl is-enabled metalboot-rolled-back.service || true; ls /etc/metalboot",
    )?;
    ensure!(left.trim_start().starts_with("disabled") && !left.contains("rolled-back.env"), "left: {left}");
    // keeping again from here would set the failed root aside as the previous one
    let mut again = (host.reinstall)(s, &["--yes", "--keep", "@home"])?;
    let out = again.output().context("running metalboot reinstall")?;
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    ensure!(!out.status.success() && said.contains("not a subvolume at the top"), "--keep again:\n{said}");
    ensure!(s.host("vm1")?["state"] == "failed", "the refused --keep changed the host");
    s.phase(&format!(
        "rolled back by itself in {:.0} s: old root from @snapshots, old host key, /home kept, its own /var/log; --keep from it refused; host failed: {err}",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}
