//! Following a target after the installer was started, as a pure state
//! machine: [`Follow::next`] takes what was just observed (the server's
//! view of the host, the new system's SSH, the old system's SSH) and the
//! time since the start, and says what to do next: observe again (what,
//! after how long), or stop with an [`Outcome`]. The loop in
//! [`super::watch`] only observes and carries the actions out, so every
//! outcome is tested here without a target.
//!
//! The facts it relies on: the installer is started with
//! `metalboot.fallback=reboot`, so when it cannot reach the server, or
//! fails before its first write, it reboots, and after a kexec or a
//! one-shot GRUB entry a reboot is the old system. The old system is told
//! apart by its pinned host key, and a reboot by its boot id. A standalone
//! installer reports nothing: its new system is known by the host keys
//! carried to it. From a rescue system ([`super::rescue`]) that reboot goes
//! wherever the provider boots next: a failure before the first write is
//! not waited out, and every message says there is no way back.

use super::rescue::NO_WAY_BACK;
use crate::api::HostState;
use std::time::Duration;

/// The old system still running its old boot this long after the installer
/// was started means the start did not happen.
pub const NEVER_LEFT_AFTER: Duration = Duration::from_secs(180);
/// How long the old system may take to come back after the installer
/// failed before its first write.
pub const FALLBACK_WAIT: Duration = Duration::from_secs(300);
/// Between two looks at the server (networked).
pub const SERVER_POLL: Duration = Duration::from_secs(2);
/// Between two SSH probes (the new system, the old one after a failure).
pub const SSH_POLL: Duration = Duration::from_secs(10);
/// The first look at the old system while the host is `booting`
/// (networked), then every [`SSH_POLL`].
pub const FIRST_OLD_PROBE: Duration = Duration::from_secs(20);

/// What the follow knows before it starts.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The inventory host.
    pub name: String,
    /// How the installer was started, as a failure names it: `kexec`, or
    /// `the reboot into the one-shot GRUB entry`.
    pub started_by: &'static str,
    /// The installer's command line (the network it tried, for a failure).
    pub cmdline: String,
    /// The installer reported nothing this long after it was started.
    pub installer_timeout: Duration,
    /// The whole install, to the new system.
    pub install_timeout: Duration,
    /// The installer reports nothing; the new system is watched over SSH.
    pub standalone: bool,
    /// The target ran a rescue system (from RAM or the network): a reboot
    /// does not bring back the system the installer was started from.
    pub rescue: bool,
}

/// What the follow loop looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// The host on the server (networked).
    Server,
    /// SSH to the target, pinned to the new host keys (standalone).
    NewSystem,
    /// SSH to the target, pinned to the old host key: its boot id.
    OldSystem,
}

/// How the old system answered SSH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OldAnswer {
    /// It answers with another boot id: it rebooted into the old system.
    Rebooted,
    /// Still the boot the installer was started from.
    SameBoot,
    /// No answer (down, or another system on the address).
    Silent,
}

/// One observation, with what it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// The host as the server has it.
    Host {
        /// Its state.
        state: HostState,
        /// The step it failed at, when `failed`.
        failed_step: Option<String>,
        /// Why, when `failed`.
        failed_error: Option<String>,
    },
    /// The server did not answer.
    ServerDown,
    /// SSH with the new host keys: `up` when it answered (a refusal of our
    /// key still proves the host key, checked first).
    NewSystem {
        /// It answered with a pinned key.
        up: bool,
    },
    /// SSH with the old host key.
    OldSystem(OldAnswer),
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Wait `after`, then observe `what`.
    Observe {
        /// How long to wait first.
        after: Duration,
        /// What to look at.
        what: Watch,
    },
    /// The installer failed before its first write (this message): say so,
    /// then wait for the old system (observe it after [`SSH_POLL`]).
    AwaitOldSystem(String),
    /// Stop.
    Done(Outcome),
}

/// How a follow ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The new system is up: it phoned home (networked) or answers with
    /// its pinned host keys (standalone, reported for it).
    Installed,
    /// The installer never reached anyone: the old system came back
    /// (`back`: take the set-up off it), or nothing reported in time.
    /// Recorded as failed at step `network`.
    Stranded {
        /// The old system is back.
        back: bool,
        /// The failure, with the network that was tried.
        message: String,
    },
    /// The start never happened: the old system still runs the same boot.
    /// The set-up is taken off it; recorded as failed at the method's step.
    NeverLeft(String),
    /// The installer failed before its first write and the old system came
    /// back: the set-up is taken off it; the host stays failed.
    BackAfterFailure(String),
    /// The same, but the old system did not answer within
    /// [`FALLBACK_WAIT`].
    LostAfterFailure(String),
    /// The installer failed before its first write on a rescue system: it
    /// reboots to whatever the provider boots next, nothing to wait for;
    /// the host stays failed.
    NoWayBack(String),
    /// The installer failed after its first write.
    FailedAfterWrite(String),
    /// The install took too long; `record`: the step to record it at (the
    /// standalone installer cannot).
    TimedOut {
        /// Record the failure at this step first.
        record: Option<metalboot_spec::Step>,
        /// Why.
        message: String,
    },
    /// The host left the install (re-armed or disarmed by someone).
    Interrupted(String),
}

/// The follow's state.
#[derive(Debug, Clone)]
pub struct Follow {
    policy: Policy,
    next_probe: Duration,
    /// After a failure before the first write: its message, and until when
    /// the old system may take to come back.
    fallback: Option<(String, Duration)>,
}

impl Follow {
    /// A follow starting now (time 0 is the installer's start).
    pub fn new(policy: Policy) -> Follow {
        Follow { policy, next_probe: FIRST_OLD_PROBE, fallback: None }
    }

    /// The first thing to do.
    pub fn start(&self) -> Action {
        self.poll()
    }

    fn poll(&self) -> Action {
        if self.policy.standalone {
            Action::Observe { after: SSH_POLL, what: Watch::NewSystem }
        } else {
            Action::Observe { after: SERVER_POLL, what: Watch::Server }
        }
    }

    /// What to do after seeing `obs`, `at` after the installer's start.
    pub fn next(&mut self, at: Duration, obs: Observation) -> Action {
        if let Some((msg, until)) = &self.fallback {
            return match obs {
                Observation::OldSystem(OldAnswer::Rebooted) => Action::Done(Outcome::BackAfterFailure(format!(
                    "{msg}; nothing was written, and the old system is back"
                ))),
                _ if at >= *until => Action::Done(Outcome::LostAfterFailure(format!(
                    "{msg}; nothing was written, but the old system did not answer SSH within {} s",
                    FALLBACK_WAIT.as_secs()
                ))),
                _ => Action::Observe { after: SSH_POLL, what: Watch::OldSystem },
            };
        }
        match obs {
            Observation::ServerDown => self.poll(),
            Observation::Host { state, failed_step, failed_error } => {
                self.host(at, state, failed_step.as_deref(), failed_error.as_deref())
            }
            Observation::NewSystem { up: true } => Action::Done(Outcome::Installed),
            Observation::NewSystem { up: false } => Action::Observe { after: Duration::ZERO, what: Watch::OldSystem },
            Observation::OldSystem(OldAnswer::Rebooted) => Action::Done(Outcome::Stranded {
                back: true,
                message: super::policy::no_network(
                    &self.policy.cmdline,
                    if self.policy.rescue {
                        "the target rebooted and the rescue system answers again, untouched"
                    } else {
                        "the target rebooted into its old system, untouched"
                    },
                ),
            }),
            Observation::OldSystem(OldAnswer::SameBoot) if at > NEVER_LEFT_AFTER => {
                Action::Done(Outcome::NeverLeft(format!(
                    "{} did not happen: {} is still running (same boot id after {} s)",
                    self.policy.started_by,
                    if self.policy.rescue { "the rescue system" } else { "the old system" },
                    NEVER_LEFT_AFTER.as_secs()
                )))
            }
            Observation::OldSystem(_) if self.policy.standalone => self.standalone_timeout(at),
            Observation::OldSystem(_) => self.booting_timeouts(at),
        }
    }

    fn host(&mut self, at: Duration, state: HostState, step: Option<&str>, error: Option<&str>) -> Action {
        match state {
            HostState::Booting if at >= self.next_probe => {
                self.next_probe = at + SSH_POLL;
                Action::Observe { after: Duration::ZERO, what: Watch::OldSystem }
            }
            HostState::Booting => self.booting_timeouts(at),
            HostState::Installed => Action::Done(Outcome::Installed),
            HostState::Failed => {
                let step = step.unwrap_or("?");
                let msg = format!("{} failed at step {step}: {}", self.policy.name, error.unwrap_or("?"));
                if !step.parse::<metalboot_spec::Step>().is_ok_and(metalboot_spec::Step::before_first_write) {
                    return Action::Done(Outcome::FailedAfterWrite(msg));
                }
                if self.policy.rescue {
                    return Action::Done(Outcome::NoWayBack(format!("{msg}; nothing was written; {NO_WAY_BACK}")));
                }
                self.fallback = Some((msg.clone(), at + FALLBACK_WAIT));
                Action::AwaitOldSystem(msg)
            }
            HostState::Installing | HostState::Rebooting => self.install_timeout(at, state),
            other => Action::Done(Outcome::Interrupted(format!(
                "{} went to {other} while installing (re-armed or disarmed by someone?)",
                self.policy.name
            ))),
        }
    }

    /// Networked, the host still `booting`: the installer has not reported.
    fn booting_timeouts(&self, at: Duration) -> Action {
        if at > self.policy.installer_timeout {
            let mut what = format!("the installer did not report within {:?}", self.policy.installer_timeout);
            if self.policy.rescue {
                what.push_str(&format!(" ({NO_WAY_BACK})"));
            }
            return Action::Done(Outcome::Stranded {
                back: false,
                message: super::policy::no_network(&self.policy.cmdline, &what),
            });
        }
        self.install_timeout(at, HostState::Booting)
    }

    fn install_timeout(&self, at: Duration, state: HostState) -> Action {
        if at > self.policy.install_timeout {
            let message = format!(
                "{} did not phone home within {:?} (state {state})",
                self.policy.name, self.policy.install_timeout
            );
            return Action::Done(Outcome::TimedOut { record: None, message });
        }
        self.poll()
    }

    fn standalone_timeout(&self, at: Duration) -> Action {
        if at > self.policy.install_timeout {
            let message = format!(
                "the new system did not answer SSH with its pinned key within {:?}",
                self.policy.install_timeout
            );
            return Action::Done(Outcome::TimedOut { record: Some(metalboot_spec::Step::Install), message });
        }
        self.poll()
    }
}

#[cfg(test)]
mod tests;
