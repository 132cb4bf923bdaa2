//! `make bench`, the VM side: power-on to the installer's first console
//! line over PXE (SeaBIOS + iPXE, and OVMF's own PXE → iPXE), with and
//! without metalboot's router advertisements; and the installer's step
//! times in the demo's VM, for both root filesystem images. One VM at a
//! time, each in a scenario of its own (`target/e2e/bench-*`).

use crate::harness::{Image, Scenario};
use crate::scenarios::{blank_disk, dhcp_config, inventory, Dhcp, MAC};
use crate::vm::{accel, Firmware, Vm};
use anyhow::{bail, Result};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// What the installer prints first on the console.
const FIRST_LINE: &str = "metalboot-installer";

fn scenario(name: &str, ra: bool, image: Image) -> Result<Scenario> {
    let mut s = Scenario::new(name, 1)?;
    let inv = inventory(&s, "{ serial = \"E2E-DISK\" }", image)?;
    let mut cfg = dhcp_config(Dhcp::Full).to_string();
    if !ra {
        cfg.push_str("router_advertisements = false\n");
    }
    s.start_server(&inv, &cfg)?;
    Ok(s)
}

/// Seconds from QEMU's start to `marker` on the console (polled every 100 ms).
fn until(vm: &mut Vm, marker: &str, limit: Duration) -> Result<f64> {
    let t = Instant::now();
    while !vm.serial().contains(marker) {
        vm.check_running()?;
        if t.elapsed() > limit {
            bail!("{marker:?} not on the console within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(t.elapsed().as_secs_f64())
}

fn pxe_to_installer(fw: Firmware, ra: bool) -> Result<f64> {
    let name =
        format!("bench-pxe-{}-{}", if fw == Firmware::Bios { "bios" } else { "uefi" }, if ra { "ra" } else { "nora" });
    let s = scenario(&name, ra, Image::Cloud)?;
    let disk = blank_disk(&s, "disk.img", "E2E-DISK", 8 << 30)?;
    let mut vm = Vm::start(&s.ns, &s.dir, accel(), fw, "tap0", MAC, &[disk])?;
    let secs = until(&mut vm, FIRST_LINE, Duration::from_secs(300));
    vm.stop();
    if secs.is_ok() {
        s.finish();
    }
    secs
}

/// (step, seconds from its start line to its `done` line) from the
/// installer's console lines `metalboot: [  12.3s] STEP: ...`, and the time
/// of the last such line.
pub fn step_times(console: &str) -> (Vec<(String, f64)>, f64) {
    let mut started: Vec<(String, f64)> = Vec::new();
    let mut done = Vec::new();
    let mut last = 0.0;
    for line in console.lines() {
        let Some(rest) = line.trim_end_matches('\r').strip_prefix("metalboot: [") else { continue };
        let Some((t, rest)) = rest.split_once("s] ") else { continue };
        let Ok(t) = t.trim().parse::<f64>() else { continue };
        let Some((step, what)) = rest.split_once(": ") else { continue };
        last = t;
        if what.starts_with("done") {
            if let Some(i) = started.iter().rposition(|(s, _)| s == step) {
                let (s, t0) = started.remove(i);
                done.push((s, t - t0));
            }
        } else if !started.iter().any(|(s, _)| s == step) {
            started.push((step.to_string(), t));
        }
    }
    (done, last)
}

fn install_steps(image: Image) -> Result<(Vec<(String, f64)>, f64)> {
    let name = format!("bench-install-{}", image.asset().trim_end_matches(".tar.zst"));
    let mut s = scenario(&name, true, image)?;
    let disk = blank_disk(&s, "disk.img", "E2E-DISK", 8 << 30)?;
    let mut vm = Vm::start(&s.ns, &s.dir, accel(), Firmware::Bios, "tap0", MAC, &[disk])?;
    s.wait_state("vm1", "rebooting", &mut vm, Duration::from_secs(900))?;
    let console = vm.serial();
    vm.stop();
    s.finish();
    Ok(step_times(&console))
}

/// The report's VM sections.
pub fn section() -> Result<String> {
    let mut r = String::new();
    writeln!(r, "\n## PXE: power-on to the installer's first console line ({}, s)\n", accel())?;
    writeln!(r, "| firmware | router advertisements on | off | saved |\n|---|---|---|---|")?;
    for (fw, label) in [(Firmware::Bios, "SeaBIOS + iPXE"), (Firmware::Uefi, "OVMF PXE → TFTP → iPXE")] {
        let on = pxe_to_installer(fw, true)?;
        let off = pxe_to_installer(fw, false)?;
        let line = format!("| {label} | {on:.1} | {off:.1} | {:.1} |", off - on);
        println!("{line}");
        writeln!(r, "{line}")?;
    }
    for image in [Image::Cloud, Image::Generic] {
        let (steps, total) = install_steps(image)?;
        writeln!(r, "\n## The installer in the demo VM, {} (s, from its own console)\n", image.asset())?;
        writeln!(r, "| step | s |\n|---|---|")?;
        for (step, secs) in &steps {
            writeln!(r, "| {step} | {secs:.1} |")?;
        }
        writeln!(r, "| **start to last line before the reboot** | **{total:.1}** |")?;
        println!("installer, {}: {total:.1} s", image.asset());
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::step_times;

    #[test]
    fn steps_are_timed_from_start_to_done() {
        let console = "metalboot-installer 0.1.0 starting\r\n\
            metalboot: [   0.2s] network: eth0: DHCP\n\
            metalboot: [   0.8s] select-disk: looking for serial=E2E-DISK\n\
            metalboot: [   0.9s] select-disk: done /dev/vda\n\
            metalboot: [   1.7s] unpack: http://x/rootfs.tar.zst (205.6 MiB)\n\
            metalboot: [  20.0s] unpack: 40% 80.0 MiB\n\
            metalboot: [  51.7s] unpack: done in 50.0s\n\
            metalboot: [  80.1s] report: 3 host keys\n";
        let (steps, last) = step_times(console);
        let got: Vec<(&str, String)> = steps.iter().map(|(s, t)| (s.as_str(), format!("{t:.1}"))).collect();
        assert_eq!(got, vec![("select-disk", "0.1".to_string()), ("unpack", "50.0".to_string())]);
        assert_eq!(last, 80.1);
    }
}
