//! PID 1's work inside the installer initramfs: read the kernel command
//! line (the contract in `metalboot_spec::bootargs`), load drivers, find the
//! plan (carried in RAM, or fetched from the server with the install token),
//! install, report the new host keys and reboot. Any failure before the
//! first write with `metalboot.fallback=reboot` reboots into the system on
//! disk (reinstall in place never strands a host). A server whose HTTPS key
//! is not the pinned one (`metalboot.pin`) is such a failure: the message
//! names both pins, and nothing is sent to that server.

use crate::console_log::ConsoleLog;
use crate::install::{self, Options};
use crate::report::Reporter;
use crate::{entropy, fetch, https, net, probe, sysinit};
use anyhow::{bail, Context, Result};
use metalboot_spec::bootargs::{self, Action, BootArgs, Fallback};
use metalboot_spec::{InstallPlan, OnFailure, Step};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where a standalone reinstall puts the new system's SSH host keys.
pub const CARRIED_HOST_KEYS: &str = "/metalboot/ssh";

/// Where the plan comes from, decided from the command line alone.
#[derive(Debug, PartialEq, Eq)]
pub enum Source<'a> {
    /// Carried in the initramfs; the network must reach its gateway first.
    Standalone(&'a str),
    /// A local plan file; no network needed.
    Local(&'a str),
    /// Fetched from the server.
    Server {
        /// Server base URL.
        url: &'a str,
        /// Host name.
        host: &'a str,
    },
}

/// Which [`Source`] a command line asks for.
pub fn source(args: &BootArgs) -> Result<Source<'_>> {
    Ok(match (&args.plan, &args.url, &args.host) {
        (Some(p), _, _) if args.standalone => Source::Standalone(p),
        (Some(p), _, _) => Source::Local(p),
        (None, Some(url), Some(host)) => Source::Server { url, host },
        _ => bail!(
            "nothing to do: the kernel command line has neither metalboot.url + metalboot.host nor metalboot.plan"
        ),
    })
}

/// Reads and validates a plan file.
pub fn read_plan(path: &Path) -> Result<InstallPlan> {
    let p = path.display();
    let text = std::fs::read_to_string(path).with_context(|| format!("reading plan {p}"))?;
    let plan: InstallPlan = serde_json::from_str(&text).with_context(|| format!("parsing plan {p}"))?;
    plan.validate().with_context(|| format!("validating plan {p}"))?;
    Ok(plan)
}

/// Runs the installer as the initramfs's PID 1 (well, its child).
pub fn run() -> Result<()> {
    // from the first line on: the server gets them once it is known
    let log = ConsoleLog::capture();
    println!("metalboot-installer {} starting", env!("CARGO_PKG_VERSION"));
    let raw = std::fs::read_to_string("/proc/cmdline").context("reading /proc/cmdline")?;
    println!("metalboot: kernel command line: {}", bootargs::redact(raw.trim()));
    // an unknown metalboot.* key stops here, before anything is written
    let args = BootArgs::parse(&raw)?;
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
    if args.action == Action::Probe {
        println!("metalboot: probe done, powering off");
        power_off();
    }
    let reboot_back = args.fallback == Fallback::Reboot;
    let token = args.token.clone().unwrap_or_default();
    // the one agent: HTTPS only to the pinned key, for every request below
    let mut rep = Reporter::new(None, &token, https::agent(args.pin.as_ref()));
    match log {
        Ok(log) if !args.standalone => rep.set_log(log),
        Ok(_) => {}
        Err(e) => println!("metalboot: the console will not be sent to the server: {e:#}"),
    }
    let plan = match source(&args)? {
        Source::Standalone(p) => {
            // nothing to fetch, but the network the new system keeps must
            // work before anything is written
            let proved = (|| {
                let iface = net::find_interface(args.bootif.as_ref(), Duration::from_secs(20))?;
                let summary = bring_up(&iface, &args)?;
                println!("metalboot: network: {summary}");
                let proof = net::prove_gateway(&iface, &args.net, args.ip6.as_ref())
                    .with_context(|| format!("with {summary}"))?;
                rep.step(Step::Network, &format!("{summary}; {proof}"));
                read_plan(Path::new(p))
            })();
            match proved {
                Ok(p) => p,
                Err(e) => no_network(e, reboot_back)?,
            }
        }
        Source::Local(p) => read_plan(Path::new(p))?,
        Source::Server { url, host } => {
            rep.set_endpoint(&format!("{url}/v1/hosts/{host}/events"));
            // nothing is written to any disk before the plan is here
            let reached = (|| {
                let iface = net::find_interface(args.bootif.as_ref(), Duration::from_secs(20))?;
                let summary = bring_up(&iface, &args)?;
                println!("metalboot: network: {summary}");
                rep.step(Step::Network, &summary);
                fetch::fetch_plan(rep.http(), url, host, &token, args.wait()).with_context(|| format!("with {summary}"))
            })();
            match reached {
                Ok(p) => p,
                Err(e) => no_network(e, reboot_back)?,
            }
        }
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
        pins: args.pin.clone(),
    };
    match install::install(&plan, &opts, &mut rep) {
        Ok(body) => {
            let backup = if body.backup_key.is_some() { " and the backup key" } else { "" };
            rep.step(Step::Report, &format!("{} host keys{backup}", body.host_keys.len()));
            if args.standalone {
                println!("metalboot: standalone: the host keys were chosen by whoever started this install");
            } else if let Err(e) = fetch::post_json(rep.http(), &plan.endpoints.report, &token, &body) {
                println!("metalboot: could not report host keys: {e:#}");
            }
            println!("metalboot: install finished in {:.1}s; rebooting", rep.elapsed());
            rep.flush_log();
            reboot();
        }
        Err(e) => {
            println!("metalboot: install failed: {e:#}");
            if reboot_back && e.is::<install::NothingWritten>() {
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
fn bring_up(iface: &str, args: &BootArgs) -> Result<String> {
    let mut summary = net::bring_up(iface, &args.net)?;
    if let Some(six) = &args.ip6 {
        summary = format!("{summary}; {}", net::bring_up_ip6(iface, six)?);
    }
    Ok(summary)
}

/// The network or the server could not be reached, or the server is not
/// the pinned one; nothing was written.
fn no_network(e: anyhow::Error, reboot_back: bool) -> Result<InstallPlan> {
    let what = if https::refused_in(&e).is_some() { "not the pinned server" } else { "no network in installer" };
    if !reboot_back {
        return Err(e.context(what));
    }
    println!("metalboot: failed: {what}: {e:#}");
    back_to_system_on_disk();
}

/// `metalboot.fallback=reboot` after a failure before the first write: a
/// kexec'd installer, or one a one-shot GRUB entry started, reboots into
/// the old system; one kexec'd from a rescue system reboots into whatever
/// the provider boots next.
fn back_to_system_on_disk() -> ! {
    println!(
        "metalboot: nothing was written; rebooting (metalboot.fallback=reboot): into the system on disk after a \
         reinstall in place, or into whatever the provider boots next when it was started from a rescue system"
    );
    std::thread::sleep(Duration::from_secs(3));
    reboot();
}

fn power_off() -> ! {
    crate::console_log::finish(Duration::from_secs(3));
    nix::unistd::sync();
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

fn reboot() -> ! {
    crate::console_log::finish(Duration::from_secs(3));
    nix::unistd::sync();
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT);
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_source_follows_the_command_line() {
        let a = |s: &str| BootArgs::parse(s).unwrap();
        let net = a("metalboot.url=http://10.0.0.1:8080 metalboot.host=web1 metalboot.token=t");
        assert_eq!(source(&net).unwrap(), Source::Server { url: "http://10.0.0.1:8080", host: "web1" });
        let carried = a("metalboot.host=web1 metalboot.plan=/metalboot/plan.json metalboot.standalone");
        assert_eq!(source(&carried).unwrap(), Source::Standalone("/metalboot/plan.json"));
        assert_eq!(source(&a("metalboot.plan=/p.json")).unwrap(), Source::Local("/p.json"));
        let none = source(&a("metalboot.host=web1")).unwrap_err().to_string();
        assert!(none.contains("nothing to do"), "{none}");
    }
}
