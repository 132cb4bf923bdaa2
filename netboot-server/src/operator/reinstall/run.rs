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

use super::discover::DiskFacts;
use super::progress::Progress;
use super::remote::{summary, Discovered, DISCOVER_SCRIPT};
use super::ssh::{Ssh, Target};
use super::standalone::{self, Carried};
use super::start::{boot_installer, boots_via, choose_boot, clean_old_system, probe_grub, Boot, BootVia};
use crate::api::{HostState, ReinstallBoot, ReinstallRequest};
use crate::operator::client::ApiClient;
use anyhow::{bail, Context, Result};
use metalboot_spec::{DiskSelector, NetworkSpec};
use sha2::Digest;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Options of `metalboot reinstall` (its command-line arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// `user@host[:port]` (`[v6addr]:port` for IPv6); the user must be root.
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
    /// Seconds the installer may take to reach the server after kexec.
    #[arg(long, default_value = "600", value_parser = seconds)]
    pub installer_timeout: Duration,
    /// Seconds the whole install may take, to first boot.
    #[arg(long, default_value = "3600", value_parser = seconds)]
    pub install_timeout: Duration,
}

fn seconds(s: &str) -> Result<Duration, String> {
    s.parse::<u64>().map(Duration::from_secs).map_err(|e| format!("{s:?} is not a number of seconds: {e}"))
}

/// The disk rule for the installer: the confirmed disk and only it.
pub fn disk_selector(disk: &DiskFacts, all: &[DiskFacts]) -> DiskSelector {
    let unique_serial =
        disk.serial.as_ref().filter(|s| all.iter().filter(|d| d.serial.as_ref() == Some(s)).count() == 1);
    let mut sel = DiskSelector { wipe: true, ..Default::default() };
    match unique_serial {
        Some(s) => sel.serial = Some(s.clone()),
        None => {
            // no serial (many VPS disks): same kernel name and exact size
            sel.path = Some(disk.path.clone());
            sel.min_size = Some(metalboot_spec::ByteSize(disk.size));
            sel.max_size = Some(metalboot_spec::ByteSize(disk.size));
        }
    }
    sel
}

/// The installer would refuse a disk its layout does not fit on, after the
/// target had been left for it: refuse it here, before anything changes.
pub fn disk_fits(disk: &DiskFacts, need: u64) -> Result<()> {
    if disk.size < need {
        bail!(
            "{} ({}) is too small for the host's layout, which needs at least {} (BIOS boot partition, ESP and a \
             root of {}); nothing was changed",
            disk.path,
            super::remote::gib(disk.size),
            super::remote::gib(need),
            super::remote::gib(metalboot_spec::MIN_ROOT_BYTES)
        );
    }
    Ok(())
}

/// The installer keeps the target's IPv4 (`ip=`) and IPv6
/// (`metalboot.ip6=`), but reaches the server over IPv4 only: an IPv6-only
/// target can only be reinstalled standalone, and is refused otherwise,
/// before anything changes (it would only fall back to its old system).
pub fn installer_can_carry(net: &NetworkSpec, standalone: bool) -> Result<()> {
    if net.mode == metalboot_spec::NetMode::Static && net.ipv4().is_none() && !standalone {
        let addrs: Vec<String> = net.addresses.iter().map(|a| a.to_string()).collect();
        bail!(
            "the target has no IPv4 address ({}): the installer reaches the server over IPv4 only, so an \
             IPv6-only host is reinstalled with --standalone (the installer keeps its IPv6 and needs no server); \
             nothing was changed",
            addrs.join(" ")
        );
    }
    Ok(())
}

struct Clock(Instant, Instant);

impl Clock {
    /// `[ 12.3s] what (4.5s)`: since the start, and since the last phase.
    fn stamp(&mut self, what: &str) -> String {
        let now = Instant::now();
        let s = format!(
            "[{:>6.1}s] {what} ({:.1}s)",
            now.duration_since(self.0).as_secs_f64(),
            now.duration_since(self.1).as_secs_f64()
        );
        self.1 = now;
        s
    }

    fn phase(&mut self, what: &str) {
        println!("{}", self.stamp(what));
    }
}

/// Runs the whole reinstall; returns when the host phoned home (or failed).
pub fn run(client: &ApiClient, o: &Options) -> Result<()> {
    let start = Instant::now();
    let mut clock = Clock(start, start);
    let session = tempfile_dir()?;
    let ssh = Ssh::new(o.target.clone(), o.identity.clone(), &session.join("known_hosts"));

    // 1. discover
    let out = ssh.run_script(true, DISCOVER_SCRIPT)?;
    if out.code.is_none() {
        bail!("cannot log in to {} over SSH: {}", o.target, out.stderr);
    }
    let d = Discovered::parse(&String::from_utf8_lossy(&out.stdout))
        .with_context(|| format!("discovering {} (stderr: {})", o.target, out.stderr))?;
    let disk = d.root_disk()?.clone();
    let net: NetworkSpec = d.net.network_spec().context("deriving the static network to keep")?;
    let mac = net.mac.context("the kept interface has no MAC")?;
    if o.print_host {
        return print_host(o, &d, &net);
    }
    installer_can_carry(&net, o.standalone)?;
    let grub = match (o.boot_via, &d.kexec) {
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
    disk_fits(&disk, host.host.min_disk_bytes)?;
    clock.phase("discovered the target over SSH");

    // 2. show and confirm
    let via_text = boots_via(o.boot_via, &d, grub.as_ref());
    print!("{}", summary(&o.target.to_string(), &o.name, &d, &disk, &net, &via_text));
    println!("host:     {} is {} on the server (method {:?})", o.name, host.host.record.state, host.host.method);
    if o.dry_run {
        println!("dry run: nothing was changed");
        return Ok(());
    }
    if !o.yes {
        confirm(&o.name, &disk)?;
    }
    let method = choose_boot(&ssh, &d, o.boot_via, grub)?;

    // 3. the installer, its command line and token
    let req =
        ReinstallRequest { mac, network: net.clone(), disk: disk_selector(&disk, &d.disks), via: method.name().into() };
    let boot = client.reinstall(&o.name, &req)?;
    clock.phase("server issued the installer and token");
    let carried = match o.standalone.then(|| carry(client, &ssh, &session, &o.name, &boot)).transpose() {
        Ok(c) => c,
        Err(e) => {
            let _ = client.fail(&o.name, "standalone", &format!("{e:#}"));
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
    if let Err(e) = boot_installer(client, &ssh, &session, &boot, &method, carried.as_ref()) {
        let msg = format!("{e:#}");
        let _ = client.fail(&o.name, method.name(), &msg);
        return Err(e.context("starting the installer (the old system is still running)"));
    }
    clock.phase(match method {
        Boot::Kexec => "installer uploaded and kexec started",
        Boot::Grub(_) => "installer uploaded, one-shot GRUB entry set, reboot started",
    });

    // 4. follow
    let old = OldSystem { ssh: &ssh, boot_id: d.boot_id.as_deref(), method: &method, standalone: carried.is_some() };
    match &carried {
        Some(c) => follow_standalone(client, &old, o, &boot, c, &session, &mut clock),
        None => follow(client, &old, o, &boot, host.timeline.len(), &mut clock),
    }
}

fn carry(
    client: &ApiClient,
    ssh: &Ssh,
    session: &std::path::Path,
    name: &str,
    boot: &ReinstallBoot,
) -> Result<Carried> {
    let c = standalone::prepare(client, session, name, boot)?;
    standalone::check_memory(ssh, &c)?;
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

/// The session's scratch directory (pinned host key, downloaded images),
/// removed when the command ends.
struct SessionDir(PathBuf);

impl std::ops::Deref for SessionDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for SessionDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempfile_dir() -> Result<SessionDir> {
    let d = std::env::temp_dir().join(format!("metalboot-reinstall-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    Ok(SessionDir(d))
}

fn confirm(name: &str, disk: &DiskFacts) -> Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "refusing to wipe {} without confirmation: run in a terminal and type the host name, or pass --yes",
            disk.path
        );
    }
    print!("type the host name ({name}) to wipe {} and reinstall: ", disk.path);
    std::io::stdout().flush()?;
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    if line.trim() != name {
        bail!("confirmation {:?} is not {name:?}: nothing was changed", line.trim());
    }
    Ok(())
}

/// The system being replaced, as the follow loops watch for it.
struct OldSystem<'a> {
    /// SSH pinned to its host key.
    ssh: &'a Ssh,
    /// Its boot id before the installer was started.
    boot_id: Option<&'a str>,
    method: &'a Boot,
    standalone: bool,
}

impl OldSystem<'_> {
    /// `Some(true)`: it answers with a new boot id (it rebooted into the
    /// old system); `Some(false)`: still the same boot; `None`: no answer.
    fn came_back(&self) -> Option<bool> {
        let id = self.ssh.pinned_boot_id(Duration::from_secs(5))?;
        Some(self.boot_id.is_some_and(|old| old != id))
    }

    fn clean(&self) {
        if let Err(e) = clean_old_system(self.ssh, self.method, self.standalone) {
            println!("  could not clean up the old system: {e:#}");
        }
    }

    /// The installer failed before its first write and reboots into the
    /// system on disk (`metalboot.fallback=reboot`): wait for it, then take
    /// off it what was set up. The host stays `failed` with the installer's
    /// reason.
    fn back_after_failure(&self, msg: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(300);
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_secs(10));
            if self.came_back() == Some(true) {
                self.clean();
                bail!("{msg}; nothing was written, and the old system is back");
            }
        }
        bail!("{msg}; nothing was written, but the old system did not answer SSH within 300 s")
    }

    /// The old system never went away: take back what was set up.
    fn never_left(&self, client: &ApiClient, o: &Options) -> Result<()> {
        self.clean();
        let msg = format!(
            "{} did not happen: the old system is still running (same boot id after 180 s)",
            match self.method {
                Boot::Kexec => "kexec",
                Boot::Grub(_) => "the reboot into the one-shot GRUB entry",
            }
        );
        give_up(client, o, self.method.name(), &msg)
    }
}

/// Standalone: the installer reports nothing, so this command watches the
/// target's SSH: the old host key with a new boot id means it rebooted
/// into the old system (the carried network failed); the pinned new key
/// means the new system is up, and this command reports for it.
fn follow_standalone(
    client: &ApiClient,
    old: &OldSystem,
    o: &Options,
    boot: &ReinstallBoot,
    c: &Carried,
    session: &std::path::Path,
    clock: &mut Clock,
) -> Result<()> {
    let kexec_at = Instant::now();
    let ev = crate::state::ProgressEvent {
        step: "kexec".into(),
        message: format!(
            "standalone installer started from RAM ({}); it reports nothing until the new system answers SSH",
            old.method.name()
        ),
        ..Default::default()
    };
    if let Err(e) = client.event(&o.name, &boot.token, &ev) {
        println!("  (server: {e:#})");
    }
    let pins = session.join("known_hosts.new");
    std::fs::write(&pins, standalone::pins(&o.target.host, o.target.port, &c.host_keys))?;
    let new = Ssh::new(o.target.clone(), o.identity.clone(), &pins);
    println!("  waiting for the new system to answer SSH with its pinned host key");
    loop {
        std::thread::sleep(Duration::from_secs(10));
        match new.run(false, &["true"], b"", 5) {
            Ok(out) if out.code == Some(0) => break,
            // the host key is checked before authentication: a refusal
            // after it still proves this is the new system
            Ok(out) if out.stderr.contains("Permission denied") => {
                println!("  the new system answers with its pinned key but refuses our SSH key: {}", out.stderr);
                break;
            }
            _ => {}
        }
        match old.came_back() {
            Some(true) => {
                // the old system is back: take the payload off its disk
                old.clean();
                return stranded(client, o, &c.cmdline, "the target rebooted into its old system, untouched");
            }
            Some(false) if kexec_at.elapsed() > Duration::from_secs(180) => return old.never_left(client, o),
            _ => {}
        }
        if kexec_at.elapsed() > o.install_timeout {
            let msg = format!("the new system did not answer SSH with its pinned key within {:?}", o.install_timeout);
            return give_up(client, o, "install", &msg);
        }
    }
    clock.phase("the new system answers SSH with the pinned host key");
    let rep = crate::state::HostReport { host_keys: c.host_keys.clone(), addresses: vec![o.target.host.clone()] };
    client.host_report(&o.name, &boot.token, "report", &rep).context("reporting the host keys")?;
    client.host_report(&o.name, &boot.token, "installed", &rep).context("recording the host as installed")?;
    clock.phase(&format!("host {} -> installed (reported by this command)", o.name));
    println!("{} is installed; new host keys:", o.name);
    for k in &c.host_keys {
        println!("  {}", fingerprint(k).unwrap_or_else(|_| k.clone()));
    }
    println!("connect:  metalboot known-hosts >> ~/.ssh/known_hosts && ssh {}", o.target);
    Ok(())
}

fn follow(
    client: &ApiClient,
    old: &OldSystem,
    o: &Options,
    boot: &ReinstallBoot,
    mut seen: usize,
    clock: &mut Clock,
) -> Result<()> {
    let kexec_at = Instant::now();
    let mut shown = Progress::new(std::io::stdout(), std::io::stdout().is_terminal());
    let mut last_state = HostState::Booting;
    let mut next_probe = Instant::now() + Duration::from_secs(20);
    loop {
        std::thread::sleep(Duration::from_secs(2));
        let h = match client.show(&o.name) {
            Ok(h) => h,
            Err(e) => {
                shown.line(&format!("  (server: {e:#})"));
                continue;
            }
        };
        for e in h.timeline.iter().skip(seen) {
            shown.event(e);
        }
        seen = h.timeline.len();
        let state = h.host.record.state;
        if state != last_state {
            shown.line(&clock.stamp(&format!("host {} -> {state}", o.name)));
            last_state = state;
        }
        match state {
            HostState::Booting => {
                if Instant::now() >= next_probe {
                    next_probe = Instant::now() + Duration::from_secs(10);
                    match old.came_back() {
                        Some(true) => {
                            old.clean();
                            let what = "the target rebooted into its old system, untouched";
                            return stranded(client, o, &boot.cmdline, what);
                        }
                        Some(false) if kexec_at.elapsed() > Duration::from_secs(180) => {
                            return old.never_left(client, o);
                        }
                        _ => {}
                    }
                }
                if kexec_at.elapsed() > o.installer_timeout {
                    let what = format!("the installer did not report within {:?}", o.installer_timeout);
                    return stranded(client, o, &boot.cmdline, &what);
                }
            }
            HostState::Installed => {
                drop(shown);
                println!("{} is installed; new host keys:", o.name);
                for k in &h.host.record.host_keys {
                    println!("  {}", fingerprint(k).unwrap_or_else(|_| k.clone()));
                }
                let ip = h.host.record.addresses.first().map(|a| crate::sshkey::bare_address(a).to_string());
                println!(
                    "connect:  metalboot known-hosts >> ~/.ssh/known_hosts && ssh root@{}",
                    ip.unwrap_or_else(|| o.target.host.clone())
                );
                return Ok(());
            }
            HostState::Failed => {
                let step = h.host.record.failed_step.as_deref().unwrap_or("?");
                let msg = format!(
                    "{} failed at step {step}: {}",
                    o.name,
                    h.host.record.failed_error.as_deref().unwrap_or("?")
                );
                if !metalboot_spec::STEPS_BEFORE_FIRST_WRITE.contains(&step) {
                    bail!(msg);
                }
                shown.line(&format!("  {msg}"));
                shown.line("  nothing was written; waiting for the target to come back on its old system");
                drop(shown);
                return old.back_after_failure(&msg);
            }
            HostState::Installing | HostState::Rebooting => {}
            other => bail!("{} went to {other} while installing (re-armed or disarmed by someone?)", o.name),
        }
        if kexec_at.elapsed() > o.install_timeout {
            bail!("{} did not phone home within {:?} (state {state})", o.name, o.install_timeout);
        }
    }
}

fn stranded(client: &ApiClient, o: &Options, cmdline: &str, what: &str) -> Result<()> {
    let tried: Vec<&str> = cmdline
        .split_whitespace()
        .filter(|w| {
            w.starts_with("ip=")
                || w.starts_with("BOOTIF=")
                || w.starts_with("metalboot.url=")
                || *w == "metalboot.standalone"
        })
        .collect();
    let msg = format!("no network in installer: {what}; it tried {}", tried.join(" "));
    give_up(client, o, "network", &msg)
}

fn give_up(client: &ApiClient, o: &Options, step: &str, msg: &str) -> Result<()> {
    client.fail(&o.name, step, msg).context("recording the failure on the server")?;
    bail!("failed: {msg}")
}

/// `SHA256:…` as `ssh-keygen -l` prints it, with the key type.
pub fn fingerprint(line: &str) -> Result<String> {
    use base64::Engine;
    let k = crate::sshkey::parse_key(line)?;
    let d = sha2::Sha256::digest(&k.blob);
    Ok(format!("{} SHA256:{}", k.kind, base64::engine::general_purpose::STANDARD_NO_PAD.encode(d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(path: &str, serial: Option<&str>, size: u64) -> DiskFacts {
        DiskFacts {
            path: path.into(),
            size,
            serial: serial.map(Into::into),
            model: None,
            partitions: vec![],
            holds_root: false,
        }
    }

    #[test]
    fn the_confirmed_disk_is_pinned_by_unique_serial_else_by_path_and_exact_size() {
        let all = [disk("/dev/sda", Some("S1"), 100), disk("/dev/sdb", Some("S2"), 200)];
        let s = disk_selector(&all[0], &all);
        assert_eq!((s.serial.as_deref(), s.path.as_deref(), s.wipe), (Some("S1"), None, true));
        let clones = [disk("/dev/vda", Some("X"), 100), disk("/dev/vdb", Some("X"), 100)];
        let s = disk_selector(&clones[1], &clones);
        assert_eq!((s.serial, s.path.as_deref()), (None, Some("/dev/vdb")));
        let bare = [disk("/dev/vda", None, 42)];
        let s = disk_selector(&bare[0], &bare);
        assert_eq!((s.min_size.map(|b| b.0), s.max_size.map(|b| b.0)), (Some(42), Some(42)));
    }

    #[test]
    fn a_disk_the_layout_does_not_fit_is_refused_before_anything_changes() {
        let need = metalboot_spec::Layout::default().min_disk_bytes();
        assert!(disk_fits(&disk("/dev/vda", None, need), need).is_ok());
        let e = disk_fits(&disk("/dev/vda", None, 2 << 30), need).unwrap_err().to_string();
        assert_eq!(
            e,
            "/dev/vda (2.0 GiB) is too small for the host's layout, which needs at least 2.5 GiB (BIOS boot \
             partition, ESP and a root of 2.0 GiB); nothing was changed"
        );
        // a server that does not say (0) is not second-guessed
        assert!(disk_fits(&disk("/dev/vda", None, 1), 0).is_ok());
    }

    #[test]
    fn fingerprints_match_ssh_keygen() {
        // as `ssh-keygen -lf` prints this key's fingerprint
        let k = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFwC0mL6IcgzOB9v98a03pAs+6hA9ahGvVbMAoDTHuCF e2e";
        assert_eq!(fingerprint(k).unwrap(), "ssh-ed25519 SHA256:yxQuxSwHIiMqEfKF79t/eJmBIq3DGUkCrCf2h0enPSI");
    }
}
