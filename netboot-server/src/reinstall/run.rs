//! `metalboot reinstall root@HOST --as NAME`: discover over SSH, show and
//! confirm, ask the server for the installer and its command line (static
//! network matched by MAC, the confirmed disk, a fresh token), upload kernel
//! and initramfs over the same SSH session, kexec, then follow the host
//! through the server until it phones home.
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
use super::ssh::{shell_quote, Ssh, Target};
use crate::client::ApiClient;
use crate::http::api_types::{ReinstallBoot, ReinstallRequest};
use crate::state::HostState;
use anyhow::{bail, Context, Result};
use metalboot_spec::{DiskSelector, NetworkSpec};
use sha2::Digest;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Options of `metalboot reinstall`.
#[derive(Debug, Clone)]
pub struct Options {
    /// `user@host[:port]`.
    pub target: Target,
    /// Inventory host it becomes.
    pub name: String,
    /// SSH private key.
    pub identity: Option<PathBuf>,
    /// Skip typing the host name.
    pub yes: bool,
    /// Stop after showing what would happen.
    pub dry_run: bool,
    /// Print an inventory entry from discovery instead of reinstalling.
    pub print_host: bool,
    /// How long the installer may take to report after kexec.
    pub installer_timeout: Duration,
    /// How long the whole install may take, to first boot.
    pub install_timeout: Duration,
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
    let host = client.show(&o.name).with_context(|| {
        format!(
            "looking up host {:?} on the server (for a server the inventory does not know yet, \
             --print-host prints an entry to add)",
            o.name
        )
    })?;
    clock.phase("discovered the target over SSH");

    // 2. show and confirm
    print!("{}", summary(&o.target.to_string(), &o.name, &d, &disk, &net));
    println!("host:     {} is {} on the server (method {:?})", o.name, host.host.record.state, host.host.method);
    if o.dry_run {
        println!("dry run: nothing was changed");
        return Ok(());
    }
    if !o.yes {
        confirm(&o.name, &disk)?;
    }
    let via = ensure_kexec(&ssh, &d)?;

    // 3. the installer, its command line and token
    let req = ReinstallRequest { mac, network: net.clone(), disk: disk_selector(&disk, &d.disks), via: via.into() };
    let boot = client.reinstall(&o.name, &req)?;
    clock.phase("server issued the installer and token");
    if let Err(e) = boot_installer(client, &ssh, &session, &boot) {
        let msg = format!("{e:#}");
        let _ = client.fail(&o.name, "kexec", &msg);
        return Err(e.context("starting the installer (the old system is still running)"));
    }
    clock.phase("installer uploaded and kexec started");

    // 4. follow
    follow(client, &ssh, o, &boot, d.boot_id.as_deref(), host.timeline.len(), &mut clock)
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

const ENSURE_KEXEC: &str = r#"set -u
[ "$(id -u)" = 0 ] || { echo "not root: kexec and a reinstall need root" >&2; exit 3; }
command -v kexec >/dev/null 2>&1 && exit 0
if command -v apt-get >/dev/null 2>&1; then DEBIAN_FRONTEND=noninteractive apt-get install -y -q kexec-tools >&2
elif command -v dnf >/dev/null 2>&1; then dnf install -y kexec-tools >&2
elif command -v yum >/dev/null 2>&1; then yum install -y kexec-tools >&2
elif command -v apk >/dev/null 2>&1; then apk add kexec-tools >&2
fi
command -v kexec >/dev/null 2>&1 || { echo "kexec is not installed and the package manager could not install kexec-tools" >&2; exit 4; }
"#;

fn ensure_kexec(ssh: &Ssh, d: &Discovered) -> Result<&'static str> {
    if d.kexec.is_none() {
        println!("kexec not found on the target: installing kexec-tools with its package manager");
    }
    ssh.check("preparing kexec", &["sh", "-s"], ENSURE_KEXEC.as_bytes())?;
    Ok("kexec")
}

fn sha256_file(p: &std::path::Path) -> Result<String> {
    let mut f = std::fs::File::open(p)?;
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

fn boot_installer(client: &ApiClient, ssh: &Ssh, session: &std::path::Path, boot: &ReinstallBoot) -> Result<()> {
    let dir = "/run/metalboot";
    ssh.check("creating /run/metalboot", &["mkdir", "-p", dir], b"")?;
    let mut sums = Vec::new();
    for (url, name) in [(&boot.kernel_url, "vmlinuz"), (&boot.initramfs_url, "initramfs.img")] {
        let local = session.join(name);
        let mut f = std::fs::File::create(&local)?;
        let n = client.download(url, &mut f)?;
        drop(f);
        ssh.upload(&local, &format!("{dir}/{name}"))?;
        println!("  sent {name}: {n} bytes");
        sums.push(format!("{}  {dir}/{name}\n", sha256_file(&local)?));
    }
    ssh.check(
        "checking the uploaded files (sha256sum -c)",
        &["sha256sum", "-c", "--quiet", "-"],
        sums.concat().as_bytes(),
    )?;
    let load =
        format!("kexec -l {dir}/vmlinuz --initrd={dir}/initramfs.img --command-line={}", shell_quote(&boot.cmdline));
    ssh.check("loading the installer (kexec -l)", &["sh", "-c", &shell_quote(&load)], b"")?;
    // detached, so the SSH session ends cleanly before the system goes
    let exec = "nohup sh -c 'sleep 2; sync; systemctl kexec 2>/dev/null || kexec -e' </dev/null >/dev/null 2>&1 &";
    ssh.check("starting kexec", &["sh", "-c", &shell_quote(exec)], b"")?;
    Ok(())
}

fn follow(
    client: &ApiClient,
    ssh: &Ssh,
    o: &Options,
    boot: &ReinstallBoot,
    old_boot_id: Option<&str>,
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
                    match ssh.pinned_boot_id(Duration::from_secs(5)) {
                        Some(id) if old_boot_id.is_some_and(|old| old != id) => {
                            return stranded(client, o, boot, "the target rebooted into its old system, untouched");
                        }
                        Some(_) if kexec_at.elapsed() > Duration::from_secs(180) => {
                            let msg =
                                "kexec did not happen: the old system is still running (same boot id after 180 s)";
                            return give_up(client, o, "kexec", msg);
                        }
                        _ => {}
                    }
                }
                if kexec_at.elapsed() > o.installer_timeout {
                    let what = format!("the installer did not report within {:?}", o.installer_timeout);
                    return stranded(client, o, boot, &what);
                }
            }
            HostState::Installed => {
                drop(shown);
                println!("{} is installed; new host keys:", o.name);
                for k in &h.host.record.host_keys {
                    println!("  {}", fingerprint(k).unwrap_or_else(|_| k.clone()));
                }
                let ip = h.host.record.addresses.first().map(|a| crate::handoff::keys::bare_address(a).to_string());
                println!(
                    "connect:  metalboot known-hosts >> ~/.ssh/known_hosts && ssh root@{}",
                    ip.unwrap_or_else(|| o.target.host.clone())
                );
                return Ok(());
            }
            HostState::Failed => bail!(
                "{} failed at step {}: {}",
                o.name,
                h.host.record.failed_step.as_deref().unwrap_or("?"),
                h.host.record.failed_error.as_deref().unwrap_or("?")
            ),
            HostState::Installing | HostState::Rebooting => {}
            other => bail!("{} went to {other} while installing (re-armed or disarmed by someone?)", o.name),
        }
        if kexec_at.elapsed() > o.install_timeout {
            bail!("{} did not phone home within {:?} (state {state})", o.name, o.install_timeout);
        }
    }
}

fn stranded(client: &ApiClient, o: &Options, boot: &ReinstallBoot, what: &str) -> Result<()> {
    let tried: Vec<&str> = boot
        .cmdline
        .split_whitespace()
        .filter(|w| w.starts_with("ip=") || w.starts_with("BOOTIF=") || w.starts_with("metalboot.url="))
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
    let k = crate::handoff::keys::parse_key(line)?;
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
    fn fingerprints_match_ssh_keygen() {
        // as `ssh-keygen -lf` prints this key's fingerprint
        let k = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFwC0mL6IcgzOB9v98a03pAs+6hA9ahGvVbMAoDTHuCF e2e";
        assert_eq!(fingerprint(k).unwrap(), "ssh-ed25519 SHA256:yxQuxSwHIiMqEfKF79t/eJmBIq3DGUkCrCf2h0enPSI");
    }
}
