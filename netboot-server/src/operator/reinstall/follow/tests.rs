//! Every way a reinstall the QEMU scenarios run can end (tests/src/reinstall.rs,
//! tests/src/reinstall_grub.rs), and the ones they cannot reach, as sequences
//! of observations.

use super::*;

const KEXEC: &str = "kexec";
const GRUB: &str = "the reboot into the one-shot GRUB entry";
const CMDLINE: &str = "console=ttyS0 ip=10.99.0.50::10.99.0.1:255.255.255.255:vm1:eth0:off \
                       BOOTIF=01-52-54-00-12-34-56 metalboot.url=http://10.99.0.1:8080 metalboot.token=T \
                       metalboot.fallback=reboot";
const TRIED: &str = "it tried ip=10.99.0.50::10.99.0.1:255.255.255.255:vm1:eth0:off BOOTIF=01-52-54-00-12-34-56 \
                     metalboot.url=http://10.99.0.1:8080";

fn policy(started_by: &'static str, standalone: bool, cmdline: &str) -> Policy {
    Policy {
        name: "vm1".into(),
        started_by,
        cmdline: cmdline.into(),
        installer_timeout: Duration::from_secs(600),
        install_timeout: Duration::from_secs(3600),
        standalone,
        rescue: false,
    }
}

fn rescue(p: Policy) -> Policy {
    Policy { rescue: true, ..p }
}

fn host(state: HostState) -> Observation {
    Observation::Host { state, failed_step: None, failed_error: None }
}

fn failed(step: &str, error: &str) -> Observation {
    Observation::Host { state: HostState::Failed, failed_step: Some(step.into()), failed_error: Some(error.into()) }
}

fn old(a: OldAnswer) -> Observation {
    Observation::OldSystem(a)
}

/// Feeds `steps` (seconds since the start, observation) and returns every
/// action, checking that the follow stops at the last one and not before.
fn run(p: Policy, steps: &[(u64, Observation)]) -> Vec<Action> {
    let mut f = Follow::new(p);
    let mut out = vec![f.start()];
    for (i, (at, obs)) in steps.iter().enumerate() {
        assert!(!matches!(out.last(), Some(Action::Done(_))), "stopped before step {i}: {out:?}");
        out.push(f.next(Duration::from_secs(*at), obs.clone()));
    }
    out
}

fn outcome(actions: &[Action]) -> &Outcome {
    match actions.last() {
        Some(Action::Done(o)) => o,
        other => panic!("did not stop: {other:?}"),
    }
}

const SERVER: Action = Action::Observe { after: SERVER_POLL, what: Watch::Server };
const NEW: Action = Action::Observe { after: SSH_POLL, what: Watch::NewSystem };
const PROBE_NOW: Action = Action::Observe { after: Duration::ZERO, what: Watch::OldSystem };

#[test]
fn networked_reinstall_follows_the_host_until_it_phones_home() {
    // scenario 7 step 3 (kexec) and scenario 8 step 4 (one-shot GRUB)
    for by in [KEXEC, GRUB] {
        let a = run(
            policy(by, false, CMDLINE),
            &[
                (2, host(HostState::Booting)),
                (20, host(HostState::Booting)),
                (21, old(OldAnswer::Silent)),
                (40, host(HostState::Installing)),
                (300, host(HostState::Rebooting)),
                (400, host(HostState::Installed)),
            ],
        );
        assert_eq!(a[..5], [SERVER, SERVER, PROBE_NOW, SERVER, SERVER]);
        assert_eq!(outcome(&a), &Outcome::Installed);
    }
}

#[test]
fn unreachable_server_the_old_system_back_is_stranded_and_cleaned() {
    // scenario 7 step 1: the installer cannot fetch its plan and reboots
    // (kexec: the old system answers with another boot id)
    let a = run(
        policy(KEXEC, false, CMDLINE),
        &[
            (20, host(HostState::Booting)),
            (21, old(OldAnswer::SameBoot)),
            (31, host(HostState::Booting)),
            (40, old(OldAnswer::Rebooted)),
        ],
    );
    let want = format!("no network in installer: the target rebooted into its old system, untouched; {TRIED}");
    assert_eq!(outcome(&a), &Outcome::Stranded { back: true, message: want });
}

#[test]
fn one_shot_grub_unreachable_waits_through_the_reboots_for_the_old_system() {
    // scenario 8 step 2: the GRUB reboot takes the old system off the
    // network for minutes; silence is not "never left", however long
    let mut steps = vec![];
    for t in (20..400).step_by(10) {
        steps.push((t, host(HostState::Booting)));
        steps.push((t + 1, old(OldAnswer::Silent)));
    }
    steps.push((400, host(HostState::Booting)));
    steps.push((401, old(OldAnswer::Rebooted)));
    let a = run(policy(GRUB, false, CMDLINE), &steps);
    assert!(matches!(outcome(&a), Outcome::Stranded { back: true, message } if message.contains(TRIED)));
}

#[test]
fn standalone_with_a_dead_gateway_is_stranded_naming_what_it_carried() {
    // scenario 7 step 2a: the carried network fails its proof, the
    // installer reboots into the old system
    let carried = "console=ttyS0 ip=10.99.0.50::10.99.0.254:255.255.255.255:vm1:eth0:off metalboot.standalone";
    let a = run(
        policy(KEXEC, true, carried),
        &[
            (10, Observation::NewSystem { up: false }),
            (11, old(OldAnswer::Silent)),
            (21, Observation::NewSystem { up: false }),
            (22, old(OldAnswer::Rebooted)),
        ],
    );
    assert_eq!(a[..4], [NEW, PROBE_NOW, NEW, PROBE_NOW]);
    match outcome(&a) {
        Outcome::Stranded { back: true, message } => {
            assert!(message.contains("10.99.0.254") && message.ends_with("metalboot.standalone"), "{message}")
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn standalone_is_installed_when_the_new_system_answers_with_its_pinned_key() {
    // scenario 7 steps 2b and 4 (IPv6 only: `ip=off metalboot.ip6=…`, the
    // same follow) and scenario 8 step 3 (one-shot GRUB, two initrds)
    for (by, cmdline) in [
        (KEXEC, "ip=10.99.0.50::10.99.0.1:255.255.255.255:vm1:eth0:off metalboot.standalone"),
        (KEXEC, "ip=off metalboot.ip6=fd00:99::50/64,fd00:99::1 metalboot.standalone"),
        (GRUB, "ip=10.99.0.50::10.99.0.1:255.255.255.255:vm1:eth0:off metalboot.standalone"),
    ] {
        let a = run(
            policy(by, true, cmdline),
            &[
                (10, Observation::NewSystem { up: false }),
                (11, old(OldAnswer::SameBoot)),
                (21, Observation::NewSystem { up: false }),
                (26, old(OldAnswer::Silent)),
                (300, Observation::NewSystem { up: true }),
            ],
        );
        assert_eq!(outcome(&a), &Outcome::Installed);
    }
}

#[test]
fn the_old_system_on_the_same_boot_after_180_s_never_left() {
    for (by, standalone) in [(KEXEC, false), (GRUB, false), (KEXEC, true)] {
        let first = if standalone { Observation::NewSystem { up: false } } else { host(HostState::Booting) };
        let a = run(
            policy(by, standalone, CMDLINE),
            &[(170, first.clone()), (171, old(OldAnswer::SameBoot)), (181, first), (182, old(OldAnswer::SameBoot))],
        );
        let want = format!("{by} did not happen: the old system is still running (same boot id after 180 s)");
        assert_eq!(outcome(&a), &Outcome::NeverLeft(want));
    }
}

#[test]
fn an_installer_that_never_reports_is_stranded_after_the_installer_timeout() {
    let a = run(
        policy(KEXEC, false, CMDLINE),
        &[(599, host(HostState::Booting)), (600, old(OldAnswer::Silent)), (601, host(HostState::Booting))],
    );
    assert_eq!(a[2], SERVER, "not before the timeout");
    let want = format!("no network in installer: the installer did not report within 600s; {TRIED}");
    assert_eq!(outcome(&a), &Outcome::Stranded { back: false, message: want });
}

#[test]
fn a_failure_before_the_first_write_waits_for_the_old_system_to_come_back() {
    // the refused-disk path (metalboot.fallback=reboot)
    let a = run(
        policy(KEXEC, false, CMDLINE),
        &[
            (30, host(HostState::Installing)),
            (40, failed("select-disk", "no disk matches")),
            (50, old(OldAnswer::Silent)),
            (60, old(OldAnswer::SameBoot)),
            (90, old(OldAnswer::Rebooted)),
        ],
    );
    let msg = "vm1 failed at step select-disk: no disk matches";
    assert_eq!(a[2], Action::AwaitOldSystem(msg.into()));
    let wait = Action::Observe { after: SSH_POLL, what: Watch::OldSystem };
    assert_eq!(a[3..5], [wait.clone(), wait]);
    assert_eq!(
        outcome(&a),
        &Outcome::BackAfterFailure(format!("{msg}; nothing was written, and the old system is back"))
    );
}

#[test]
fn a_failure_before_the_first_write_without_the_old_system_back_gives_up_after_300_s() {
    let a = run(
        policy(KEXEC, false, CMDLINE),
        &[(40, failed("network", "no route")), (339, old(OldAnswer::Silent)), (340, old(OldAnswer::Silent))],
    );
    assert_eq!(a[2], Action::Observe { after: SSH_POLL, what: Watch::OldSystem });
    assert_eq!(
        outcome(&a),
        &Outcome::LostAfterFailure(
            "vm1 failed at step network: no route; nothing was written, but the old system did not answer SSH within 300 s".into()
        )
    );
}

#[test]
fn a_failure_after_the_first_write_stops_at_once() {
    let a = run(policy(KEXEC, false, CMDLINE), &[(100, failed("unpack", "short read"))]);
    assert_eq!(outcome(&a), &Outcome::FailedAfterWrite("vm1 failed at step unpack: short read".into()));
    let a = run(policy(KEXEC, false, CMDLINE), &[(100, host(HostState::Failed))]);
    assert_eq!(outcome(&a), &Outcome::FailedAfterWrite("vm1 failed at step ?: ?".into()));
}

#[test]
fn an_install_that_does_not_finish_times_out() {
    let a =
        run(policy(KEXEC, false, CMDLINE), &[(3600, host(HostState::Installing)), (3601, host(HostState::Rebooting))]);
    let want = "vm1 did not phone home within 3600s (state rebooting)".to_string();
    assert_eq!(outcome(&a), &Outcome::TimedOut { record: None, message: want });
    // standalone: recorded for the installer, which cannot
    let a = run(
        policy(KEXEC, true, CMDLINE),
        &[(3601, Observation::NewSystem { up: false }), (3602, old(OldAnswer::Silent))],
    );
    let want = "the new system did not answer SSH with its pinned key within 3600s".to_string();
    assert_eq!(outcome(&a), &Outcome::TimedOut { record: Some(metalboot_spec::Step::Install), message: want });
}

#[test]
fn an_unreachable_server_is_waited_for_without_a_timeout() {
    let a = run(policy(KEXEC, false, CMDLINE), &[(5000, Observation::ServerDown)]);
    assert_eq!(a[1], SERVER);
}

#[test]
fn a_host_re_armed_or_disarmed_meanwhile_stops_the_follow() {
    for s in [HostState::Armed, HostState::Disarmed, HostState::Absent] {
        let a = run(policy(KEXEC, false, CMDLINE), &[(30, host(s))]);
        let want = format!("vm1 went to {s} while installing (re-armed or disarmed by someone?)");
        assert_eq!(outcome(&a), &Outcome::Interrupted(want));
    }
}

#[test]
fn on_a_rescue_system_a_failure_before_the_first_write_is_not_waited_out() {
    let a = run(
        rescue(policy(KEXEC, false, CMDLINE)),
        &[(30, host(HostState::Installing)), (40, failed("select-disk", "no disk matches"))],
    );
    assert_eq!(
        outcome(&a),
        &Outcome::NoWayBack(
            "vm1 failed at step select-disk: no disk matches; nothing was written; a rescue system does not come \
             back: a failed install leaves the host in the installer or, after its reboot, in whatever the provider \
             boots next (its disk, or the rescue system if it is activated again)"
                .into()
        )
    );
    // after the first write it is the same as anywhere
    let a = run(rescue(policy(KEXEC, false, CMDLINE)), &[(100, failed("unpack", "short read"))]);
    assert_eq!(outcome(&a), &Outcome::FailedAfterWrite("vm1 failed at step unpack: short read".into()));
}

#[test]
fn on_a_rescue_system_no_message_promises_the_old_system() {
    let a =
        run(rescue(policy(KEXEC, false, CMDLINE)), &[(20, host(HostState::Booting)), (21, old(OldAnswer::Rebooted))]);
    let want =
        format!("no network in installer: the target rebooted and the rescue system answers again, untouched; {TRIED}");
    assert_eq!(outcome(&a), &Outcome::Stranded { back: true, message: want });
    let a = run(
        rescue(policy(KEXEC, false, CMDLINE)),
        &[(599, host(HostState::Booting)), (600, old(OldAnswer::Silent)), (601, host(HostState::Booting))],
    );
    match outcome(&a) {
        Outcome::Stranded { back: false, message } => assert!(
            message.starts_with(
                "no network in installer: the installer did not report within 600s (a rescue system does not come back"
            ) && message.ends_with(TRIED),
            "{message}"
        ),
        o => panic!("{o:?}"),
    }
    let a =
        run(rescue(policy(KEXEC, false, CMDLINE)), &[(181, host(HostState::Booting)), (182, old(OldAnswer::SameBoot))]);
    assert_eq!(
        outcome(&a),
        &Outcome::NeverLeft(
            "kexec did not happen: the rescue system is still running (same boot id after 180 s)".into()
        )
    );
}
