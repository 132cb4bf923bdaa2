//! `metalboot-installer`: parse the command, run.

use anyhow::{bail, Context, Result};
use metalboot_installer::install::{self, Options};
use metalboot_installer::report::Reporter;
use metalboot_installer::{cmdline, entropy, fetch, net, probe, sysinit};
use metalboot_spec::{InstallPlan, OnFailure};
use std::path::{Path, PathBuf};
use std::time::Duration;

const USAGE: &str = "usage:
  metalboot-installer init                       run as the initramfs's installer (reads /proc/cmdline)
  metalboot-installer probe [--json]             print the disks this machine has
  metalboot-installer plan --dry-run --plan FILE [--loop-only]
                                                 print what an install would do; touch nothing
  metalboot-installer install --plan FILE [--token T] [--loop-only] [--no-bootloader] [--no-report]
                              [--host-keys DIR] [--no-phone-home]
                                                 install from a local plan file
  metalboot-installer --version";

fn flag(args: &[String], name: &str) -> bool {
    args.iter().any(|a| a == name)
}

fn value(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("init") => init(),
        Some("probe") => probe_cmd(flag(&args, "--json")),
        Some("plan") if flag(&args, "--dry-run") => plan_cmd(&args),
        Some("install") => install_cmd(&args),
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

fn read_plan(path: &str) -> Result<InstallPlan> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading plan {path}"))?;
    let plan: InstallPlan = serde_json::from_str(&text).with_context(|| format!("parsing plan {path}"))?;
    plan.validate().with_context(|| format!("validating plan {path}"))?;
    Ok(plan)
}

fn options(args: &[String], token: &str) -> Options {
    Options {
        sys: PathBuf::from("/sys"),
        loop_only: flag(args, "--loop-only"),
        target: value(args, "--target").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/target")),
        scratch: value(args, "--scratch").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/mnt/metalboot-top")),
        token: token.to_string(),
        bootloader: !flag(args, "--no-bootloader"),
        host_keys: value(args, "--host-keys").map(PathBuf::from),
        phone_home: !flag(args, "--no-phone-home"),
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

fn plan_cmd(args: &[String]) -> Result<()> {
    let plan = read_plan(&value(args, "--plan").context("--plan FILE is required")?)?;
    let dry = install::dry_run(&plan, &options(args, ""))?;
    println!("{}", serde_json::to_string_pretty(&dry)?);
    Ok(())
}

fn install_cmd(args: &[String]) -> Result<()> {
    let plan = read_plan(&value(args, "--plan").context("--plan FILE is required")?)?;
    let token = value(args, "--token").unwrap_or_default();
    let events = (!flag(args, "--no-report")).then(|| plan.endpoints.events.clone());
    let mut rep = Reporter::new(events, &token);
    let keys = install::install(&plan, &options(args, &token), &mut rep)?;
    println!("metalboot: installed; host keys:");
    for k in keys {
        println!("  {k}");
    }
    Ok(())
}

/// PID 1's work inside the installer initramfs.
fn init() -> Result<()> {
    println!("metalboot-installer {} starting", env!("CARGO_PKG_VERSION"));
    let raw = std::fs::read_to_string("/proc/cmdline").context("reading /proc/cmdline")?;
    println!("metalboot: kernel command line: {}", cmdline::redact(raw.trim()));
    let args = cmdline::parse(&raw)?;
    let n = sysinit::load_drivers(&["btrfs", "vfat", "nls_cp437", "nls_iso8859_1", "nls_ascii", "af_packet"])?;
    println!("metalboot: loaded drivers for {n} device aliases");
    sysinit::wait_for_block_devices(Duration::from_millis(1500), Duration::from_secs(15));
    let disks = probe::probe_disks(Path::new("/sys")).context("reading /sys/block")?;
    println!("metalboot: {} disk(s) seen", disks.len());
    for d in &disks {
        println!("metalboot: disk {}", probe::describe(d));
    }
    println!(
        "metalboot: random number generator: {}; hardware source: {}",
        if entropy::seeded() { "seeded" } else { "not seeded yet" },
        entropy::hardware_source(Path::new("/sys")).as_deref().unwrap_or("none")
    );
    if args.action.as_deref() == Some("probe") {
        println!("metalboot: probe done, powering off");
        power_off();
    }
    let token = args.token.clone().unwrap_or_default();
    let mut rep = Reporter::new(None, &token);
    let plan = match (&args.plan, &args.url, &args.host) {
        (Some(p), _, _) if args.standalone => {
            // nothing to fetch, but the network the new system keeps must
            // work before anything is written
            let proved = (|| {
                let iface = net::find_interface(args.bootif.as_ref(), Duration::from_secs(20))?;
                let summary = bring_up(&iface, &args)?;
                println!("metalboot: network: {summary}");
                let proof = net::prove_gateway(&iface, &args.net, args.ip6.as_ref())
                    .with_context(|| format!("with {summary}"))?;
                rep.step("network", &format!("{summary}; {proof}"));
                read_plan(p)
            })();
            match proved {
                Ok(p) => p,
                Err(e) => no_network(e, args.fallback_reboot)?,
            }
        }
        (Some(p), _, _) => read_plan(p)?,
        (None, Some(url), Some(host)) => {
            rep.set_endpoint(&format!("{url}/v1/hosts/{host}/events"));
            // nothing is written to any disk before the plan is here
            let reached = (|| {
                let iface = net::find_interface(args.bootif.as_ref(), Duration::from_secs(20))?;
                let summary = bring_up(&iface, &args)?;
                println!("metalboot: network: {summary}");
                rep.step("network", &summary);
                fetch::fetch_plan(url, host, &token, Duration::from_secs(120))
                    .with_context(|| format!("with {summary}"))
            })();
            match reached {
                Ok(p) => p,
                Err(e) => no_network(e, args.fallback_reboot)?,
            }
        }
        _ => bail!(
            "nothing to do: the kernel command line has neither metalboot.url + metalboot.host nor metalboot.plan"
        ),
    };
    if !args.standalone {
        rep.set_endpoint(&plan.endpoints.events);
    }
    let carried_keys = Path::new(CARRIED_HOST_KEYS);
    let opts = Options {
        sys: PathBuf::from("/sys"),
        loop_only: false,
        target: PathBuf::from("/target"),
        scratch: PathBuf::from("/mnt/metalboot-top"),
        token: token.clone(),
        bootloader: true,
        host_keys: (args.standalone && carried_keys.is_dir()).then(|| carried_keys.to_path_buf()),
        phone_home: !args.standalone,
    };
    match install::install(&plan, &opts, &mut rep) {
        Ok(keys) => {
            rep.step("report", &format!("{} host keys", keys.len()));
            let body = serde_json::json!({ "host_keys": keys });
            if args.standalone {
                println!("metalboot: standalone: the host keys were chosen by whoever started this install");
            } else if let Err(e) = fetch::post_json(&plan.endpoints.report, &token, &body) {
                println!("metalboot: could not report host keys: {e:#}");
            }
            println!("metalboot: install finished in {:.1}s; rebooting", rep.elapsed());
            reboot();
        }
        Err(e) => {
            println!("metalboot: install failed: {e:#}");
            if args.fallback_reboot && e.is::<install::NothingWritten>() {
                back_to_system_on_disk();
            }
            if plan.on_failure == OnFailure::Reboot {
                println!("metalboot: rebooting (on_failure = reboot)");
                reboot();
            }
            Err(e)
        }
    }
}

/// `ip=` and, if given, `metalboot.ip6` on `iface`.
fn bring_up(iface: &str, args: &cmdline::BootArgs) -> Result<String> {
    let mut summary = net::bring_up(iface, &args.net)?;
    if let Some(six) = &args.ip6 {
        summary = format!("{summary}; {}", net::bring_up_ip6(iface, six)?);
    }
    Ok(summary)
}

/// Where a standalone reinstall puts the new system's SSH host keys.
const CARRIED_HOST_KEYS: &str = "/metalboot/ssh";

/// The network or the server could not be reached; nothing was written.
fn no_network(e: anyhow::Error, reboot_back: bool) -> Result<InstallPlan> {
    if !reboot_back {
        return Err(e.context("no network in installer"));
    }
    println!("metalboot: failed: no network in installer: {e:#}");
    back_to_system_on_disk();
}

/// `metalboot.fallback=reboot` after a failure before the first write: a
/// kexec'd installer, or one a one-shot GRUB entry started, reboots into
/// the old system.
fn back_to_system_on_disk() -> ! {
    println!("metalboot: nothing was written; rebooting into the system on disk (metalboot.fallback=reboot)");
    std::thread::sleep(Duration::from_secs(3));
    reboot();
}

fn power_off() -> ! {
    nix::unistd::sync();
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

fn reboot() -> ! {
    nix::unistd::sync();
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT);
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}
