//! The store on a real PostgreSQL: a cluster made for the test in a
//! temporary directory (`tests/src/postgres.rs`, shared with the QEMU
//! scenarios). Root only (it runs `initdb` as another user): `make unit`
//! runs it.

use super::*;

#[path = "../../../tests/src/postgres.rs"]
#[allow(dead_code)]
mod cluster;
use cluster::Cluster;

fn cluster() -> (tempfile::TempDir, Cluster) {
    let d = tempfile::tempdir().unwrap();
    let c = Cluster::start(&d.path().join("pg")).unwrap();
    (d, c)
}

fn rep() -> HostReport {
    HostReport {
        host_keys: vec!["ssh-ed25519 AAAA".into()],
        addresses: vec!["10.98.1.100/24".into()],
        ..Default::default()
    }
}

/// Two servers on one database: a host booted by both at once ends up with
/// one install, and its phone-home is taken once.
fn one_install_across_servers(a: &Store, b: &Store) {
    a.arm("web1", "test").unwrap();
    let (ta, tb) = (new_token(), new_token());
    std::thread::scope(|sc| {
        let one = sc.spawn(|| a.start_boot("web1", &hash_token(&ta), "image", "server a").unwrap());
        let two = sc.spawn(|| b.start_boot("web1", &hash_token(&tb), "image", "server b").unwrap());
        assert_eq!((one.join().unwrap(), two.join().unwrap()), (BootStart::Installer, BootStart::Installer));
    });
    // one token is current and the other pending (whichever boot came
    // second): once both installers have spoken, one token is left, the
    // other is dead for good (a pending token used revokes the current one)
    let ev = || ProgressEvent::new("partition".parse().unwrap(), EventStatus::Running, "");
    let _ = b.record_event("web1", &tb, &ev()).unwrap();
    let _ = a.record_event("web1", &ta, &ev()).unwrap();
    let live: Vec<&String> = [&ta, &tb].into_iter().filter(|t| a.check_token("web1", t).unwrap().is_ok()).collect();
    assert_eq!(live.len(), 1, "both installers may go on");
    let (tb, dead) = if live[0] == &ta { (&ta, &tb) } else { (&tb, &ta) };
    assert_eq!(b.record_event("web1", dead, &ev()).unwrap().unwrap_err(), TokenError::Invalid);
    assert_eq!(a.record_report("web1", tb, &rep()).unwrap().unwrap().state, HostState::Rebooting);
    let firsts: Vec<bool> = std::thread::scope(|sc| {
        let hs: Vec<_> =
            [a, b, a, b].into_iter().map(|s| sc.spawn(|| s.record_installed("web1", tb, &rep()))).collect();
        hs.into_iter().map(|h| h.join().unwrap().unwrap().unwrap().1).collect()
    });
    assert_eq!(firsts.iter().filter(|f| **f).count(), 1, "phone-home taken {firsts:?}");
    let states: Vec<_> = a.timeline("web1").unwrap().into_iter().filter_map(|e| e.state).collect();
    assert_eq!(states.iter().filter(|s| *s == "installed").count(), 1, "{states:?}");
    assert_eq!(b.get("web1").unwrap().state, HostState::Installed);
}

#[test]
#[ignore = "runs a PostgreSQL cluster as nobody: root only, run by `make unit`"]
fn postgres_two_servers_one_install() {
    let (_d, c) = cluster();
    let (a, b) = (Store::connect(&c.url).unwrap(), Store::connect(&c.url).unwrap());
    one_install_across_servers(&a, &b);
    // and everything else the store does, on PostgreSQL
    super::tests::lifecycle_on(&Store::connect(&c.url).unwrap(), "web2");
    leases_stay_with_their_server(&a, &b);
}

/// Each server loads and purges the leases it handed out, not another's.
fn leases_stay_with_their_server(a: &Store, b: &Store) {
    use crate::dhcp::leases::{Hold, Lease, LeaseChange};
    let lease = |ip: [u8; 4], mac: &str, expires_ms| Lease {
        ip: ip.into(),
        mac: mac.parse().unwrap(),
        hold: Hold::Bound,
        expires_ms,
    };
    a.write_leases(&[LeaseChange::Put(lease([10, 99, 0, 100], "52:54:00:00:00:01", 5000))], "10.99.0.1").unwrap();
    b.write_leases(&[LeaseChange::Put(lease([10, 98, 1, 100], "52:54:00:00:00:02", 9000))], "10.98.1.1").unwrap();
    assert_eq!(a.load_leases(0, "10.99.0.1").unwrap(), [lease([10, 99, 0, 100], "52:54:00:00:00:01", 5000)]);
    assert_eq!(b.load_leases(0, "10.98.1.1").unwrap(), [lease([10, 98, 1, 100], "52:54:00:00:00:02", 9000)]);
    // A purge drops expired leases only, whoever's
    assert_eq!(a.purge_leases(6000).unwrap(), 1);
    assert_eq!(b.load_leases(6000, "10.98.1.1").unwrap().len(), 1);
    // a server never takes over another's lease on an address (ranges that
    // overlap): the row stays B's
    a.write_leases(&[LeaseChange::Put(lease([10, 98, 1, 100], "52:54:00:00:00:03", 9000))], "10.99.0.1").unwrap();
    assert_eq!(b.load_leases(6000, "10.98.1.1").unwrap(), [lease([10, 98, 1, 100], "52:54:00:00:00:02", 9000)]);
}

#[test]
fn sqlite_two_handles_one_install() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (Store::open(d.path()).unwrap(), Store::open(d.path()).unwrap());
    one_install_across_servers(&a, &b);
    leases_stay_with_their_server(&a, &b);
}

#[test]
#[ignore = "runs a PostgreSQL cluster as nobody: root only, run by `make unit`"]
fn postgres_gone_and_back() {
    let (_d, c) = cluster();
    let s = Store::connect(&c.url).unwrap();
    s.arm("web1", "test").unwrap();
    c.stop().unwrap();
    let e = s.start_boot("web1", &hash_token(&new_token()), "image", "bios").unwrap_err();
    assert!(format!("{e:#}").contains("state database"), "{e:#}");
    c.start_again().unwrap();
    assert_eq!(s.start_boot("web1", &hash_token(&new_token()), "image", "bios").unwrap(), BootStart::Installer);
}
