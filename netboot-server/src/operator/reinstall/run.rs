//! `metalboot reinstall root@HOST --as NAME`: discover over SSH, show and
//! confirm, ask the server for the installer and its command line (static
//! network matched by MAC, the confirmed disk, a fresh token), upload kernel
//! and initramfs over the same SSH session, kexec, then follow the host
//! through the server until it phones home.
//!
//! Where kexec cannot be used (not installable, or refused by the kernel),
//! the installer is booted once by a one-shot GRUB entry instead (see
//! [`super::oneshot`]), where GRUB can be trusted to clear it.
//!
//! Never strand the host: the installer is started with
//! `metalboot.fallback=reboot`, so if it cannot reach the server with the
//! carried network it reboots before writing anything, and after a kexec a
//! reboot is the old system. We notice that when the target answers SSH
//! again with its old (pinned) host key, and record `failed: no network in
//! installer` with what was tried.
//!
//! A target that runs from RAM or the network (a rescue system) has no old
//! system to come back to: it is refused without `--rescue-ok`, and with it
//! the host's inventory disk selector chooses the disk and only kexec
//! starts the installer (see [`super::rescue`]).
//!
//! This file is the sequence; the decisions are in [`super::policy`] and
//! [`super::rescue`] (before anything changes) and [`super::follow`] (after
//! the installer started), the loops that follow the target in
//! [`super::watch`].

use super::choose::{choose, choose_all, disk_lines, From};
use super::discover::DiskFacts;
use super::follow::Policy;
use super::policy::{disk_fits, disk_selector, gate, installer_can_carry, Gate};
use super::progress::Clock;
use super::remote::{summary, Discovered, DISCOVER_SCRIPT};
use super::rescue;
use super::ssh::{Ssh, Target};
use super::standalone::{self, Carried};
use super::start::{boot_installer, boots_via, choose_boot, probe_grub, Boot, BootVia};
use super::watch::{started_by, OldSystem, Watcher};
use crate::api::{HostView, ReinstallBoot, ReinstallRequest};
use crate::operator::client::ApiClient;
use anyhow::{bail, Context, Result};
use metalboot_spec::quote;
use metalboot_spec::{DiskSelector, NetworkSpec};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Options of `metalboot reinstall` (its command-line arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// `user@host[:port]` (`[v6addr]:port` for IPv6): root, or a user with
    /// passwordless sudo (checked first with `sudo -n true`; every command
    /// that needs root then runs through `sudo -n`).
    pub target: Target,
    /// The inventory host it becomes.
    #[arg(long = "as", value_name = "NAME")]
    pub name: String,
    /// SSH private key (default: ssh's own choice: agent, ~/.ssh/config).
    #[arg(long, short = 'i')]
    pub identity: Option<PathBuf>,
    /// Do not ask to type the host name before wiping.
    #[arg(long)]
    pub yes: bool,
    /// Discover and show what would happen, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// For a server the inventory does not know yet: print a `[[host]]`
    /// entry for NAME made from discovery (disk, MAC, static network,
    /// today's authorized_keys), change nothing.
    #[arg(long, conflicts_with_all = ["yes", "dry_run"])]
    pub print_host: bool,
    /// The target cannot reach the server: carry the plan, the image and
    /// new host keys to it in RAM through this SSH session, and report
    /// for it when the new system answers SSH with the pinned key.
    #[arg(long)]
    pub standalone: bool,
    /// How the installer starts: `kexec` (installing kexec-tools if it is
    /// missing); `grub`, a one-shot GRUB entry and a reboot (for a kernel
    /// that refuses kexec, e.g. under Secure Boot lockdown); `auto`: kexec,
    /// else the GRUB entry where that is safe.
    #[arg(long, value_enum, default_value_t = BootVia::Auto)]
    pub boot_via: BootVia,
    /// Seconds the installer keeps trying to reach the server for its plan
    /// before it reboots into the old system (5 to 3600; default: the
    /// installer's 120).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(5..=3600))]
    pub server_wait: Option<u32>,
    /// The target runs from RAM or the network (a provider's rescue system,
    /// a live or diskless system): reinstall it anyway. There is no old
    /// system to come back to if the install fails (a failure leaves the
    /// host in the installer or at the provider's next boot); the host's
    /// inventory disk selector chooses the disk, which must not match one
    /// with a mounted filesystem; only kexec starts the installer.
    #[arg(long)]
    pub rescue_ok: bool,
    /// Keep these subvolumes of a host metalboot installed (BTRFS, its
    /// layout), e.g. `--keep @home,@data`: nothing is repartitioned; the
    /// old root is kept read-only as `@snapshots/@.replaced.<time>`, a new
    /// one is written beside it, the kept ones stay mounted where they
    /// were. A subvolume that is not there refuses the whole reinstall.
    #[arg(long, value_delimiter = ',', value_name = "SUBVOLUME")]
    pub keep: Vec<String>,
    /// With `--keep`: the old root stays bootable, the new system boots
    /// once, and if it has not phoned home this many seconds after that boot
    /// (or does not boot) the host boots its old system again by itself and
    /// is `failed` (30 to 86400; default 600).
    #[arg(long, value_name = "SECONDS", requires = "keep", value_parser = clap::value_parser!(u32).range(30..=86_400))]
    pub rollback_after: Option<u32>,
    /// Seconds the installer may take to reach the server after kexec.
    #[arg(long, default_value = "600", value_parser = seconds)]
    pub installer_timeout: Duration,
    /// Seconds the whole install may take, to first boot.
    #[arg(long, default_value = "3600", value_parser = seconds)]
    pub install_timeout: Duration,
}

fn seconds(s: &str) -> Result<Duration, String> {
    s.parse::<u64>().map(Duration::from_secs).map_err(|e| format!("{} is not a number of seconds: {e}", quote(s)))
}

/// Runs the whole reinstall; returns when the host phoned home (or failed).
pub fn run(client: &ApiClient, o: &Options) -> Result<()> {
    let mut clock = Clock::start();
    // the session's scratch directory (pinned host key, downloaded
    // images), removed when the command ends
    let session = tempfile::Builder::new()
        .prefix("metalboot-reinstall-")
        .tempdir()
        .context("creating the session's temporary directory")?;
    let session = session.path();
    let mut ssh = Ssh::new(o.target.clone(), o.identity.clone(), &session.join("known_hosts"));

    // 0. root on the target: a login that is not root needs sudo without a
    // password, checked before anything else
    let privilege = ssh.settle_privilege()?;

    // 1. discover
    let out = ssh.run_script(true, DISCOVER_SCRIPT)?;
    if out.code.is_none() {
        bail!("cannot log in to {} over SSH: {}", o.target, out.stderr);
    }
    let d = Discovered::parse(&String::from_utf8_lossy(&out.stdout))
        .with_context(|| format!("discovering {} (stderr: {})", o.target, out.stderr))?;
    let net: NetworkSpec = d.net.network_spec().context("deriving the static network to keep")?;
    let mac = net.mac.context("the kept interface has no MAC")?;
    if o.print_host {
        return print_host(o, &d, &net);
    }
    let rescue = rescue::allowed(&o.target.to_string(), &d.root, o.rescue_ok)?;
    let boot_via = if rescue { rescue::boot_via(o.boot_via)? } else { o.boot_via };
    installer_can_carry(&net, o.standalone)?;
    let grub = match (boot_via, &d.kexec) {
        (BootVia::Kexec, _) | (BootVia::Auto, Some(_)) => None,
        _ => Some(probe_grub(&ssh)?),
    };
    let host = client.show(&o.name).with_context(|| {
        format!(
            "looking up host {:?} on the server (for a server the inventory does not know yet, \
             --print-host prints an entry to add)",
            o.name
        )
    })?;
    let keep_lines = super::keep::check_target(&ssh, &o.keep, rescue)?;
    let from = if rescue { From::Rescue } else { From::OldSystem };
    let chosen = chosen_disks(&d, &host.host, from)?;
    let disks: Vec<&DiskFacts> = chosen.iter().map(|(d, _)| d).collect();
    for disk in &disks {
        disk_fits(disk, host.host.min_disk_bytes)?;
    }
    clock.phase("discovered the target over SSH");

    // 2. show and confirm
    let via_text = boots_via(boot_via, &d, grub.as_ref());
    print!("{}", summary(&o.target.to_string(), &o.name, &d, &disks, &net, &via_text, keep_lines.is_some()));
    print!("{}", keep_lines.as_deref().unwrap_or_default());
    if keep_lines.is_some() {
        print!("{}", super::keep::rollback_line(o.standalone, o.rollback_after));
    }
    let sels = host.host.selectors();
    if rescue {
        print!("{}", rescue::summary_lines(&d.root, &sels, &disks, &d.disks, &d.disk_links));
    } else if sels.len() > 1 {
        print!("{}", disk_lines(&sels, &disks, &d.disks, &d.disk_links, from));
    }
    if let Some(line) = privilege.summary_line(&o.target.user) {
        print!("{line}");
    }
    println!("host:     {} is {} on the server (method {:?})", o.name, host.host.record.state, host.host.method);
    match gate(o.dry_run, o.yes, std::io::stdin().is_terminal()) {
        Gate::DryRun => {
            println!("dry run: nothing was changed");
            return Ok(());
        }
        Gate::Go => {}
        Gate::Ask => confirm(&o.name, &paths(&disks))?,
        Gate::Refuse => bail!(
            "refusing to wipe {} without confirmation: run in a terminal and type the host name, or pass --yes",
            paths(&disks)
        ),
    }
    let method = choose_boot(&ssh, &d, boot_via, grub)?;

    // 3. the installer, its command line and token
    let req = ReinstallRequest {
        mac,
        network: net.clone(),
        disk: chosen[0].1.clone(),
        disks: if chosen.len() > 1 { chosen.iter().map(|(_, s)| s.clone()).collect() } else { Vec::new() },
        via: method.name().into(),
        server_wait: o.server_wait,
        keep: o.keep.clone(),
        rollback_after: o.rollback_after,
    };
    let boot = client.reinstall(&o.name, &req)?;
    clock.phase("server issued the installer and token");
    let carried = match o.standalone.then(|| carry(client, &ssh, session, &o.name, &boot, rescue)).transpose() {
        Ok(c) => c,
        Err(e) => {
            let _ = client.fail(&o.name, metalboot_spec::Step::Standalone, &format!("{e:#}"));
            return Err(e.context("preparing the standalone payload (nothing was changed on the target)"));
        }
    };
    if let Some(c) = &carried {
        clock.phase(&format!(
            "standalone payload ready: plan, image and {} host keys, {:.1} MiB",
            c.host_keys.len(),
            c.payload_bytes as f64 / 1048576.0
        ));
    }
    if let Err(e) = boot_installer(client, &ssh, session, &boot, &method, carried.as_ref()) {
        let msg = format!("{e:#}");
        let _ = client.fail(&o.name, method.step(), &msg);
        let running = if rescue { "the rescue system" } else { "the old system" };
        return Err(e.context(format!("starting the installer ({running} is still running)")));
    }
    clock.phase(&format!(
        "{}{}",
        match method {
            Boot::Kexec => "installer uploaded and kexec started",
            Boot::Grub(_) => "installer uploaded, one-shot GRUB entry set, reboot started",
        },
        privilege.suffix()
    ));

    // 4. follow
    let policy = Policy {
        name: o.name.clone(),
        started_by: started_by(&method),
        cmdline: carried.as_ref().map_or(&boot.cmdline, |c| &c.cmdline).clone(),
        installer_timeout: o.installer_timeout,
        install_timeout: o.install_timeout,
        standalone: carried.is_some(),
        rescue,
    };
    let old = OldSystem { ssh: &ssh, boot_id: d.boot_id.as_deref(), method: &method, standalone: carried.is_some() };
    let w = Watcher { client, old, target: &o.target, boot: &boot, policy };
    match &carried {
        Some(c) => w.standalone(c, &host.host.login, o.identity.clone(), session, &mut clock),
        None => w.networked(host.timeline.len(), &mut clock),
    }
}

fn carry(
    client: &ApiClient,
    ssh: &Ssh,
    session: &Path,
    name: &str,
    boot: &ReinstallBoot,
    rescue: bool,
) -> Result<Carried> {
    let c = standalone::prepare(client, session, name, boot)?;
    // on a rescue system the uploaded payload sits in RAM too
    standalone::check_memory(ssh, &c, rescue)?;
    Ok(c)
}

fn print_host(o: &Options, d: &Discovered, net: &NetworkSpec) -> Result<()> {
    let mut keys = Vec::new();
    if let Some(id) = &o.identity {
        let mut p = id.clone().into_os_string();
        p.push(".pub");
        if let Ok(k) = std::fs::read_to_string(&p) {
            keys.push(k.trim().to_string());
        }
    }
    let text = super::entry::host_entry(&o.target.to_string(), &o.name, d, net, &keys)?;
    print!("{text}");
    eprintln!(
        "nothing was changed. Add this entry to the inventory, restart `metalboot serve`, then run:\n  \
         metalboot reinstall {} --as {}",
        o.target, o.name
    );
    Ok(())
}

/// The disks' paths in words: `/dev/vda and /dev/vdb`.
fn paths(disks: &[&DiskFacts]) -> String {
    disks.iter().map(|d| d.path.as_str()).collect::<Vec<_>>().join(" and ")
}

/// The disks the reinstall writes, each with the selector the installer
/// gets for it: the disk the old system runs from; on a rescue system the
/// one the host's own selector picks (and the installer is given that
/// selector); for a host on several disks, the disks its selectors pick,
/// each pinned to the disk found (see [`super::choose`]).
fn chosen_disks(d: &Discovered, host: &HostView, from: From) -> Result<Vec<(DiskFacts, DiskSelector)>> {
    if host.disks.len() > 1 {
        let chosen = choose_all(&host.disks, &d.disks, &d.disk_links, from)?;
        return Ok(chosen.into_iter().map(|c| (c.clone(), disk_selector(c, &d.disks))).collect());
    }
    if from == From::OldSystem {
        let disk = d.root_disk()?;
        return Ok(vec![(disk.clone(), disk_selector(disk, &d.disks))]);
    }
    let sel = host.disk_selector.clone().context(
        "the server does not say the host's disk selector (a metalboot serve older than this command?), which \
         chooses the disk on a rescue system; nothing was changed",
    )?;
    Ok(vec![(choose(&sel, &d.disks, &d.disk_links, from)?.clone(), sel)])
}

/// Asks the operator, on the terminal, to type the host name.
fn confirm(name: &str, disks: &str) -> Result<()> {
    let stdin = std::io::stdin();
    print!("type the host name ({name}) to wipe {disks} and reinstall: ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    if line.trim() != name {
        bail!("confirmation {:?} is not {name:?}: nothing was changed", line.trim());
    }
    Ok(())
}
