use super::*;

fn store() -> (tempfile::TempDir, Store) {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    (d, s)
}

fn ev(step: &str, status: EventStatus) -> ProgressEvent {
    ProgressEvent::new(step.parse().expect("a known step"), status, "")
}

#[test]
fn install_once_lifecycle() {
    let (_d, s) = store();
    lifecycle_on(&s, "web1");
}

/// The install-once lifecycle of host `web1` on `s` (also run on PostgreSQL).
pub(super) fn lifecycle_on(s: &Store, name: &str) {
    assert_eq!(s.get(name).unwrap().state, HostState::Absent);
    s.arm(name, "test").unwrap();
    let tok = new_token();
    assert_eq!(s.start_boot(name, &hash_token(&tok), "image", "bios").unwrap(), BootStart::Installer);
    assert_eq!(s.get(name).unwrap().state, HostState::Booting);
    let r = s.record_event(name, &tok, &ev("partition", EventStatus::Running)).unwrap().unwrap();
    assert_eq!((r.record.state, r.became_failed), (HostState::Installing, false));
    let rep = HostReport { host_keys: vec!["ssh-ed25519 AAAA".into()], addresses: vec![], ..Default::default() };
    assert_eq!(s.record_report(name, &tok, &rep).unwrap().unwrap().state, HostState::Rebooting);
    assert_eq!(s.record_installed(name, &tok, &rep).unwrap().unwrap().0.state, HostState::Installed);
    // its answer lost, the host asks again: the same answer, nothing changes
    let before = s.timeline(name).unwrap();
    let (again, first) = s.record_installed(name, &tok, &rep).unwrap().unwrap();
    assert_eq!((again.state, first, s.timeline(name).unwrap()), (HostState::Installed, false, before));
    assert_eq!(s.record_installed(name, &new_token(), &rep).unwrap(), Err(TokenError::Invalid));
    // token is dead now, and the host no longer wants install
    assert_eq!(s.record_event(name, &tok, &ev("mkfs", EventStatus::Running)).unwrap(), Err(TokenError::Invalid));
    assert_eq!(s.start_boot(name, &hash_token(&new_token()), "image", "bios").unwrap(), BootStart::NotWanted);
    let states: Vec<_> = s.timeline(name).unwrap().into_iter().filter_map(|e| e.state).collect();
    assert_eq!(states, ["armed", "booting", "installing", "rebooting", "installed"]);
    // armed again, that install's token answers nothing
    s.arm(name, "again").unwrap();
    assert_eq!(s.record_installed(name, &tok, &rep).unwrap(), Err(TokenError::Invalid));
}

#[test]
fn the_backup_key_is_the_installers_and_survives_the_phone_home() {
    let (_d, s) = store();
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl btrbk@web1";
    let install = |backup_key: Option<&str>| {
        s.arm("web1", "test").unwrap();
        let tok = new_token();
        s.start_boot("web1", &hash_token(&tok), "image", "bios").unwrap();
        let rep = HostReport { backup_key: backup_key.map(str::to_string), ..Default::default() };
        s.record_report("web1", &tok, &rep).unwrap().unwrap();
        // the first boot's phone-home does not carry it
        s.record_installed("web1", &tok, &HostReport::default()).unwrap().unwrap().0
    };
    assert_eq!(install(Some(key)).backup_key.as_deref(), Some(key));
    assert_eq!(s.get("web1").unwrap().backup_key.as_deref(), Some(key));
    // a reinstall without send targets forgets it
    assert_eq!(install(None).backup_key, None);
}

#[test]
fn wrong_or_old_token_changes_nothing() {
    let (_d, s) = store();
    s.arm("a", "t").unwrap();
    let old = new_token();
    s.start_boot("a", &hash_token(&old), "image", "bios").unwrap();
    let new = new_token();
    s.start_boot("a", &hash_token(&new), "image", "bios").unwrap();
    // the new token's first use revokes the old one
    assert!(s.record_event("a", &new, &ev("network", EventStatus::Running)).unwrap().is_ok());
    let before = (s.get("a").unwrap(), s.timeline("a").unwrap());
    assert_eq!(s.record_event("a", &old, &ev("mkfs", EventStatus::Failed)).unwrap(), Err(TokenError::Invalid));
    assert_eq!(s.record_event("a", "", &ev("mkfs", EventStatus::Failed)).unwrap(), Err(TokenError::Invalid));
    assert_eq!(s.record_installed("b", &new, &HostReport::default()).unwrap(), Err(TokenError::Invalid));
    assert_eq!(before, (s.get("a").unwrap(), s.timeline("a").unwrap()));
    assert!(s.record_event("a", &new, &ev("mkfs", EventStatus::Running)).unwrap().is_ok());
}

#[test]
fn a_boot_mid_install_leaves_the_running_token_valid_until_the_new_one_is_used() {
    let (_d, s) = store();
    s.arm("a", "t").unwrap();
    let first = new_token();
    s.start_boot("a", &hash_token(&first), "image", "bios").unwrap();
    s.record_event("a", &first, &ev("partition", EventStatus::Running)).unwrap().unwrap();
    // two more boots: each replaces the pending token, never the current one
    let (second, third) = (new_token(), new_token());
    s.start_boot("a", &hash_token(&second), "image", "bios").unwrap();
    s.start_boot("a", &hash_token(&third), "image", "bios").unwrap();
    assert!(s.check_token("a", &first).unwrap().is_ok());
    assert!(s.record_event("a", &first, &ev("mkfs", EventStatus::Running)).unwrap().is_ok());
    assert_eq!(s.check_token("a", &second).unwrap(), Err(TokenError::Invalid), "a replaced pending token dies");
    // the machine really rebooted: its new installer's first call takes over
    assert!(s.check_token("a", &third).unwrap().is_ok());
    assert_eq!(s.check_token("a", &first).unwrap(), Err(TokenError::Invalid));
    let rep = HostReport { host_keys: vec!["ssh-ed25519 AAAA".into()], addresses: vec![], ..Default::default() };
    assert_eq!(s.record_report("a", &third, &rep).unwrap().unwrap().state, HostState::Rebooting);
    let kinds: Vec<_> = s.timeline("a").unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "token").count(), 1, "{kinds:?}");
}

#[test]
fn too_many_boots_fail_the_host_and_revoke_both_tokens() {
    let (_d, s) = store();
    s.arm("a", "t").unwrap();
    let current = new_token();
    s.start_boot("a", &hash_token(&current), "image", "bios").unwrap();
    let mut pending = String::new();
    for _ in 0..MAX_TOKEN_REISSUES {
        pending = new_token();
        assert_eq!(s.start_boot("a", &hash_token(&pending), "image", "bios").unwrap(), BootStart::Installer);
    }
    let BootStart::TooManyBoots(r) = s.start_boot("a", &hash_token(&new_token()), "image", "bios").unwrap() else {
        panic!("the boot after the last re-issue fails the host");
    };
    assert!(r.became_failed);
    assert_eq!(r.record.state, HostState::Failed);
    assert_eq!(r.record.failed_step.as_deref(), Some(TOO_MANY_BOOTS_STEP));
    assert!(r.record.failed_error.unwrap().starts_with("too many boots"));
    for t in [&current, &pending] {
        assert_eq!(s.check_token("a", t).unwrap(), Err(TokenError::Invalid));
    }
    assert_eq!(s.start_boot("a", &hash_token(&new_token()), "image", "bios").unwrap(), BootStart::NotWanted);
    // re-arming starts a new install with a fresh count
    s.arm("a", "retry").unwrap();
    s.start_boot("a", &hash_token(&new_token()), "image", "bios").unwrap();
    for _ in 0..MAX_TOKEN_REISSUES {
        assert_eq!(s.start_boot("a", &hash_token(&new_token()), "image", "bios").unwrap(), BootStart::Installer);
    }
}

#[test]
fn a_failed_host_fetches_nothing_with_its_token() {
    let (_d, s) = store();
    s.arm("a", "t").unwrap();
    let t = new_token();
    s.start_boot("a", &hash_token(&t), "image", "bios").unwrap();
    let rep = HostReport { host_keys: vec!["ssh-ed25519 AAAA".into()], addresses: vec![], ..Default::default() };
    s.record_report("a", &t, &rep).unwrap().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(s.expire_first_boot(10).unwrap(), ["a"]);
    // past the first-boot deadline only the phone-home is still taken
    assert_eq!(s.check_token("a", &t).unwrap(), Err(TokenError::Invalid));
    assert_eq!(s.record_report("a", &t, &rep).unwrap(), Err(TokenError::Invalid));
    assert_eq!(s.record_installed("a", &t, &rep).unwrap().unwrap().0.state, HostState::Installed);
}

#[test]
fn migrating_a_version_3_database_keeps_its_rows() {
    let d = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(d.path().join("state.db")).unwrap();
        for (i, sql) in schema::MIGRATIONS[..3].iter().enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", (i + 1) as i64).unwrap();
        }
        let h = hash_token("tok");
        conn.execute("INSERT INTO hosts (name, state, token_hash, updated_ms) VALUES ('a', 'installing', ?1, 1)", [h])
            .unwrap();
        conn.execute("INSERT INTO events (host, at_ms, kind, message) VALUES ('a', 1, 'state', 'x')", []).unwrap();
    }
    let s = Store::open(d.path()).unwrap();
    assert_eq!(s.get("a").unwrap().state, HostState::Installing);
    assert_eq!(s.timeline("a").unwrap().len(), 1);
    assert!(s.check_token("a", "tok").unwrap().is_ok(), "the running install keeps its token");
    // and it counts its re-issues from zero
    assert_eq!(s.start_boot("a", &hash_token(&new_token()), "image", "bios").unwrap(), BootStart::Installer);
    assert!(s.check_token("a", "tok").unwrap().is_ok());
}

#[test]
fn failure_records_step_and_error() {
    let (_d, s) = store();
    s.arm("a", "t").unwrap();
    let t = new_token();
    s.start_boot("a", &hash_token(&t), "image", "bios").unwrap();
    let mut e = ev("select-disk", EventStatus::Failed);
    e.message = "2 disks match".into();
    let Recorded { record: r, became_failed } = s.record_event("a", &t, &e).unwrap().unwrap();
    assert!(became_failed);
    assert_eq!(r.state, HostState::Failed);
    assert_eq!(r.failed_step.as_deref(), Some("select-disk"));
    assert_eq!(r.failed_error.as_deref(), Some("2 disks match"));
    // the install is over: its token takes no more events or reports, so a
    // failure is recorded (and its hooks fired) once
    let again = s.record_event("a", &t, &e).unwrap();
    assert_eq!(again, Err(TokenError::Invalid));
    let rep = HostReport { host_keys: vec!["ssh-ed25519 AAAA".into()], addresses: vec![], ..Default::default() };
    assert_eq!(s.record_report("a", &t, &rep).unwrap(), Err(TokenError::Invalid));
    assert_eq!(s.record_installed("a", &t, &rep).unwrap(), Err(TokenError::Invalid));
    assert_eq!(s.get("a").unwrap().state, HostState::Failed);
    assert!(!r.state.wants_install());
    // re-arming clears the failure and kills the token
    assert_eq!(s.arm("a", "retry").unwrap().failed_step, None);
    assert_eq!(s.check_token("a", &t).unwrap(), Err(TokenError::Invalid));
}

#[test]
fn inventory_arms_only_unseen_hosts() {
    let (_d, s) = store();
    assert_eq!(s.arm_new_hosts(["a", "b"]).unwrap(), ["a", "b"]);
    s.disarm("a", "op").unwrap();
    assert!(s.arm_new_hosts(["a", "b"]).unwrap().is_empty());
    assert_eq!(s.get("a").unwrap().state, HostState::Disarmed);
}

#[test]
fn state_survives_reopen() {
    let d = tempfile::tempdir().unwrap();
    {
        let s = Store::open(d.path()).unwrap();
        s.arm("a", "t").unwrap();
    }
    let s = Store::open(d.path()).unwrap();
    assert_eq!(s.get("a").unwrap().state, HostState::Armed);
    assert_eq!(s.timeline("a").unwrap().len(), 1);
}

#[test]
fn no_first_boot_fails_the_host_and_a_late_first_boot_still_completes_it() {
    let (_d, s) = store();
    s.arm("a", "t").unwrap();
    s.arm("b", "t").unwrap();
    let tok = new_token();
    s.start_boot("a", &hash_token(&tok), "image", "bios").unwrap();
    let rep = HostReport { host_keys: vec!["ssh-ed25519 AAAA".into()], addresses: vec![], ..Default::default() };
    s.record_report("a", &tok, &rep).unwrap().unwrap();
    // not yet stale
    assert!(s.expire_first_boot(60_000).unwrap().is_empty());
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(s.expire_first_boot(10).unwrap(), ["a"], "only the rebooting host expires");
    let r = s.get("a").unwrap();
    assert_eq!(r.state, HostState::Failed);
    assert_eq!(r.failed_step.as_deref(), Some("first-boot"));
    assert!(r.failed_error.unwrap().contains("no first boot"));
    assert_eq!(s.get("b").unwrap().state, HostState::Armed);
    assert!(s.expire_first_boot(10).unwrap().is_empty(), "expires once");
    assert_eq!(s.record_installed("a", &tok, &rep).unwrap().unwrap().0.state, HostState::Installed);
}

#[test]
fn reinstall_in_place_carries_its_override_until_rearmed_and_fail_kills_the_token() {
    let (_d, s) = store();
    s.arm("vps", "t").unwrap();
    let old = new_token();
    s.start_boot("vps", &hash_token(&old), "image", "bios").unwrap();
    assert_eq!(s.install_override("vps").unwrap(), None);
    let t = new_token();
    let r = s.start_reinstall("vps", &hash_token(&t), "{\"x\":1}", "kexec").unwrap();
    assert_eq!(r.state, HostState::Booting);
    assert_eq!(s.install_override("vps").unwrap().as_deref(), Some("{\"x\":1}"));
    assert_eq!(s.check_token("vps", &old).unwrap(), Err(TokenError::Invalid));
    assert!(s.check_token("vps", &t).unwrap().is_ok());
    let r = s.fail("vps", "network", "no network in installer").unwrap();
    assert!(r.became_failed);
    assert_eq!((r.record.state, r.record.failed_step.as_deref()), (HostState::Failed, Some("network")));
    assert_eq!(s.check_token("vps", &t).unwrap(), Err(TokenError::Invalid));
    // recorded again, but the host was failed already: no second announcement
    let again = s.fail("vps", "kexec", "operator retried the report").unwrap();
    assert!(!again.became_failed);
    assert_eq!(again.record.failed_step.as_deref(), Some("kexec"));
    s.arm("vps", "pxe this time").unwrap();
    assert_eq!(s.install_override("vps").unwrap(), None);
    let states: Vec<_> = s.timeline("vps").unwrap().into_iter().filter_map(|e| e.state).collect();
    assert_eq!(states, ["armed", "booting", "armed", "booting", "failed", "failed", "armed"]);
}

/// Fifty `failed` events with the install's token (a looping installer, or
/// someone replaying its URL): the first fails the host, once; the other 49
/// are refused and change nothing.
#[test]
fn fifty_failed_events_fail_the_host_once() {
    let (_d, s) = store();
    s.arm("a", "t").unwrap();
    let t = new_token();
    s.start_boot("a", &hash_token(&t), "image", "bios").unwrap();
    let e = ev("unpack", EventStatus::Failed);
    let results: Vec<_> = (0..50).map(|_| s.record_event("a", &t, &e).unwrap()).collect();
    let became: Vec<usize> =
        results.iter().enumerate().filter(|(_, r)| r.as_ref().is_ok_and(|r| r.became_failed)).map(|(i, _)| i).collect();
    assert_eq!(became, [0]);
    assert!(results[1..].iter().all(|r| *r == Err(TokenError::Invalid)));
    let states: Vec<_> = s.timeline("a").unwrap().into_iter().filter_map(|e| e.state).collect();
    assert_eq!(states, ["armed", "booting", "failed"]);
}
