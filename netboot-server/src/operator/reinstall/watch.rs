//! The follow loops of `metalboot reinstall`: they observe (the server, the
//! new system's SSH, the old system's SSH), hand each observation to the
//! pure [`Follow`] and carry out what it decides: wait, look again, print,
//! clean the old system, record a failure on the server, report for a
//! standalone host. Every decision, and every message a failure ends
//! with, comes from [`super::follow`].

use super::follow::{Action, Follow, Observation, OldAnswer, Outcome, Policy, Watch, SSH_POLL};
use super::progress::{Clock, Progress};
use super::ssh::{Ssh, Target};
use super::standalone::{self, Carried};
use super::start::{clean_old_system, Boot};
use crate::api::{HostDetail, HostState, ReinstallBoot};
use crate::operator::client::ApiClient;
use crate::sshkey::typed_fingerprint as fingerprint;
use anyhow::{bail, Context, Result};
use metalboot_spec::{EventStatus, HostReport, ProgressEvent, Step};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The system being replaced, as the follow loops watch for it.
pub struct OldSystem<'a> {
    /// SSH pinned to its host key.
    pub ssh: &'a Ssh,
    /// Its boot id before the installer was started.
    pub boot_id: Option<&'a str>,
    /// How the installer was started.
    pub method: &'a Boot,
    /// Whether a standalone payload was put on it.
    pub standalone: bool,
}

impl OldSystem<'_> {
    /// Whether it answers SSH, and with which boot.
    fn answer(&self) -> OldAnswer {
        match self.ssh.pinned_boot_id(Duration::from_secs(5)) {
            None => OldAnswer::Silent,
            Some(id) if self.boot_id.is_some_and(|old| old != id) => OldAnswer::Rebooted,
            Some(_) => OldAnswer::SameBoot,
        }
    }

    /// A pinned installer came back: which key the server's HTTPS address
    /// presents from here (see [`super::keyprobe`]).
    fn key_seen(&self, cmdline: &str) -> Option<String> {
        let (address, pins) = super::keyprobe::pinned(cmdline)?;
        let out = self.ssh.run_script(false, &super::keyprobe::script(&address)).ok()?;
        Some(super::keyprobe::verdict(&address, &pins, &String::from_utf8_lossy(&out.stdout)))
    }

    /// Takes off it what was set up to start the installer.
    fn clean(&self) {
        if let Err(e) = clean_old_system(self.ssh, self.method, self.standalone) {
            println!("  could not clean up the old system: {e:#}");
        }
    }
}

/// How a failure names the way the installer was started.
pub fn started_by(method: &Boot) -> &'static str {
    match method {
        Boot::Kexec => "kexec",
        Boot::Grub(_) => "the reboot into the one-shot GRUB entry",
    }
}

/// One reinstall being followed.
pub struct Watcher<'a> {
    /// The server.
    pub client: &'a ApiClient,
    /// The system being replaced.
    pub old: OldSystem<'a>,
    /// Where the target is reached.
    pub target: &'a Target,
    /// What the server issued (the token).
    pub boot: &'a ReinstallBoot,
    /// The follow's facts and limits.
    pub policy: Policy,
}

impl Watcher<'_> {
    /// Networked: the installer reports to the server; follows the host
    /// there (showing its events after the first `seen`) until it phones
    /// home or the follow gives up.
    pub fn networked(&self, mut seen: usize, clock: &mut Clock) -> Result<()> {
        let name = &self.policy.name;
        let started = Instant::now();
        let mut shown = Progress::new(std::io::stdout(), std::io::stdout().is_terminal());
        let mut last_state = HostState::Booting;
        let mut host: Option<HostDetail> = None;
        let mut follow = Follow::new(self.policy.clone());
        let mut action = follow.start();
        loop {
            let obs = match action {
                Action::Observe { after, what: Watch::Server } => {
                    std::thread::sleep(after);
                    match self.client.show(name) {
                        Ok(h) => {
                            for e in h.timeline.iter().skip(seen) {
                                shown.event(e);
                            }
                            seen = h.timeline.len();
                            let state = h.host.record.state;
                            if state != last_state {
                                shown.line(&clock.stamp(&format!("host {name} -> {state}")));
                                last_state = state;
                            }
                            let r = &h.host.record;
                            let obs = Observation::Host {
                                state,
                                failed_step: r.failed_step.clone(),
                                failed_error: r.failed_error.clone(),
                            };
                            host = Some(h);
                            obs
                        }
                        Err(e) => {
                            shown.line(&format!("  (server: {e:#})"));
                            Observation::ServerDown
                        }
                    }
                }
                Action::Observe { after, what: Watch::OldSystem | Watch::NewSystem } => {
                    std::thread::sleep(after);
                    Observation::OldSystem(self.old.answer())
                }
                Action::AwaitOldSystem(msg) => {
                    shown.line(&format!("  {msg}"));
                    shown.line("  nothing was written; waiting for the target to come back on its old system");
                    std::thread::sleep(SSH_POLL);
                    Observation::OldSystem(self.old.answer())
                }
                Action::Done(Outcome::Installed) => {
                    drop(shown);
                    let h = host.context("installed before the server was asked")?;
                    println!("{name} is installed; new host keys:");
                    print_keys(&h.host.record.host_keys);
                    let ip = h.host.record.addresses.first().map(|a| crate::sshkey::bare_address(a).to_string());
                    println!(
                        "connect:  metalboot known-hosts >> ~/.ssh/known_hosts && ssh {}@{}",
                        h.host.login,
                        ip.unwrap_or_else(|| self.target.host.clone())
                    );
                    return Ok(());
                }
                Action::Done(outcome) => {
                    drop(shown);
                    return self.fail(outcome);
                }
            };
            action = follow.next(started.elapsed(), obs);
        }
    }

    /// Standalone: the installer reports nothing, so this watches the
    /// target's SSH: the old host key with a new boot id means it rebooted
    /// into the old system (the carried network failed); the pinned new
    /// key means the new system is up, and this reports for it.
    pub fn standalone(
        &self,
        c: &Carried,
        login: &str,
        identity: Option<PathBuf>,
        session: &Path,
        clock: &mut Clock,
    ) -> Result<()> {
        let (name, token) = (&self.policy.name, &self.boot.token);
        let started = Instant::now();
        let ev = ProgressEvent::new(
            Step::Kexec,
            EventStatus::Running,
            format!(
                "standalone installer started from RAM ({}); it reports nothing until the new system answers SSH",
                self.old.method.name()
            ),
        );
        if let Err(e) = self.client.event(name, token, &ev) {
            println!("  (server: {e:#})");
        }
        let pins = session.join("known_hosts.new");
        std::fs::write(&pins, standalone::pins(&self.target.host, self.target.port, &c.host_keys))
            .with_context(|| format!("writing {}", pins.display()))?;
        // the new system lets in the host's keys for its own login (root,
        // or the admin user), whoever logged in to the old one
        let root = Target { user: login.into(), ..self.target.clone() };
        let new = Ssh::new(root.clone(), identity, &pins);
        println!("  waiting for the new system to answer SSH with its pinned host key");
        let mut follow = Follow::new(self.policy.clone());
        let mut action = follow.start();
        loop {
            let obs = match action {
                Action::Observe { after, what: Watch::NewSystem } => {
                    std::thread::sleep(after);
                    Observation::NewSystem { up: new_system_answers(&new) }
                }
                Action::Observe { after, .. } => {
                    std::thread::sleep(after);
                    Observation::OldSystem(self.old.answer())
                }
                Action::AwaitOldSystem(_) => bail!("a standalone install has no server to report a failure to"),
                Action::Done(Outcome::Installed) => break,
                Action::Done(outcome) => return self.fail(outcome),
            };
            action = follow.next(started.elapsed(), obs);
        }
        clock.phase("the new system answers SSH with the pinned host key");
        // the key the installer made for send targets, if any (root's own)
        let cat = format!(
            "f={}.pub; [ -e $f ] || exit 0; sudo -n cat $f 2>/dev/null || cat $f",
            metalboot_spec::send::BACKUP_IDENTITY
        );
        let backup_key = new
            .run(false, &["sh", "-c", &super::ssh::shell_quote(&cat)], b"", 10)
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|k| metalboot_spec::safe::check_ssh_public_key(k).is_ok());
        let rep = HostReport {
            host_keys: c.host_keys.clone(),
            addresses: vec![self.target.host.clone()],
            backup_key,
            rolled_back: None,
        };
        self.client.host_report(name, token, "report", &rep).context("reporting the host keys")?;
        self.client.host_report(name, token, "installed", &rep).context("recording the host as installed")?;
        clock.phase(&format!("host {name} -> installed (reported by this command)"));
        println!("{name} is installed; new host keys:");
        print_keys(&c.host_keys);
        println!("connect:  metalboot known-hosts >> ~/.ssh/known_hosts && ssh {root}");
        Ok(())
    }

    /// Carries out an outcome other than `Installed`: cleans the old
    /// system where the follow says it is back, records the failure where
    /// the installer could not, and returns the error.
    fn fail(&self, outcome: Outcome) -> Result<()> {
        match outcome {
            Outcome::Installed => Ok(()),
            Outcome::Stranded { back, mut message } => {
                if back {
                    // the old system is back: take off it what was set up
                    self.old.clean();
                    if let Some(seen) = self.old.key_seen(&self.policy.cmdline) {
                        message = format!("{message}; {seen}");
                    }
                }
                self.give_up(Step::Network, &message)
            }
            Outcome::NeverLeft(message) => {
                self.old.clean();
                self.give_up(self.old.method.step(), &message)
            }
            Outcome::BackAfterFailure(message) => {
                self.old.clean();
                bail!(message)
            }
            // the installer recorded its failure; nothing comes back to clean
            Outcome::NoWayBack(message) => bail!(message),
            Outcome::TimedOut { record: Some(step), message } => self.give_up(step, &message),
            Outcome::LostAfterFailure(message)
            | Outcome::FailedAfterWrite(message)
            | Outcome::TimedOut { record: None, message }
            | Outcome::Interrupted(message) => bail!(message),
        }
    }

    fn give_up(&self, step: Step, msg: &str) -> Result<()> {
        self.client.fail(&self.policy.name, step, msg).context("recording the failure on the server")?;
        bail!("failed: {msg}")
    }
}

/// Whether the new system answers SSH with a pinned key.
fn new_system_answers(new: &Ssh) -> bool {
    match new.run(false, &["true"], b"", 5) {
        Ok(out) if out.code == Some(0) => true,
        // the host key is checked before authentication: a refusal after
        // it still proves this is the new system
        Ok(out) if out.stderr.contains("Permission denied") => {
            println!("  the new system answers with its pinned key but refuses our SSH key: {}", out.stderr);
            true
        }
        _ => false,
    }
}

fn print_keys(keys: &[String]) {
    for k in keys {
        println!("  {}", fingerprint(k).unwrap_or_else(|_| k.clone()));
    }
}
