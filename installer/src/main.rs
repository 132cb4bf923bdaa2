//! `metalboot-installer`: parse the command, run.

use anyhow::{Context, Result};
use metalboot_installer::{cmdline, probe, sysinit};
use std::path::Path;
use std::time::Duration;

const USAGE: &str = "usage: metalboot-installer init | probe [--json] | --version";

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("init") => init(),
        Some("probe") => probe_cmd(args.iter().any(|a| a == "--json")),
        Some("--version") | Some("version") => {
            println!("metalboot-installer {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        _ => {
            eprintln!("{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("metalboot: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn probe_cmd(json: bool) -> Result<()> {
    let disks = probe::probe_disks(Path::new("/sys")).context("reading /sys/block")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&disks)?);
    } else {
        for d in &disks {
            println!("{}", probe::describe(d));
        }
    }
    Ok(())
}

/// PID 1's work inside the installer initramfs.
fn init() -> Result<()> {
    println!("metalboot-installer {} starting", env!("CARGO_PKG_VERSION"));
    let raw = std::fs::read_to_string("/proc/cmdline").context("reading /proc/cmdline")?;
    println!("metalboot: kernel command line: {}", cmdline::redact(raw.trim()));
    let args = cmdline::parse(&raw)?;
    let n = sysinit::load_drivers(&["btrfs", "vfat", "nls_cp437", "nls_iso8859_1", "af_packet"])?;
    println!("metalboot: loaded drivers for {n} device aliases");
    sysinit::wait_for_block_devices(Duration::from_millis(1500), Duration::from_secs(15));
    let disks = probe::probe_disks(Path::new("/sys")).context("reading /sys/block")?;
    println!("metalboot: {} disk(s) seen", disks.len());
    for d in &disks {
        println!("metalboot: disk {}", probe::describe(d));
    }
    match args.action.as_deref() {
        Some("probe") => {
            println!("metalboot: probe done, powering off");
            power_off();
        }
        _ => anyhow::bail!("no install action available in this build"),
    }
}

fn power_off() -> ! {
    let _ = std::process::Command::new("/usr/bin/sync").status();
    let _ = std::process::Command::new("/usr/bin/busybox").args(["poweroff", "-f"]).status();
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}
