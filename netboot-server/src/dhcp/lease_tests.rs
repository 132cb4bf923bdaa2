//! The lease book against the state database, through the ledger the
//! server runs: what is written (ACKs, not offers), which DECLINEs count
//! (RFC 2131 §4.3.3: the holder's, for a pool address) and the purge of
//! expired leases.

use super::classify::classify;
use super::decide::Decision;
use super::ledger::Ledger;
use super::tests::{msg, settings, yi, A, B};
use super::DhcpSettings;
use dhcproto::v4::{DhcpOption, MessageType};
use std::net::Ipv4Addr;

/// An offer is a reservation in memory only; an ACK is written before it is
/// answered, and a restarted server (a new ledger on the same database)
/// knows the acknowledged lease but not the offer.
#[test]
fn only_acknowledged_leases_are_written_and_survive_a_restart() {
    use super::leases::LeaseChange;
    let dir = tempfile::tempdir().unwrap();
    let s = settings();
    let ledger = Ledger::open(crate::state::Store::open(dir.path()).unwrap(), &s, 0).unwrap();
    let (offer, changes) = ledger.decide(&classify(&msg(A, MessageType::Discover, |_| {})).unwrap(), &s, 0);
    assert!(changes.is_empty(), "an offer was written: {changes:?}");
    let ip = yi(&offer);
    let (_, b_changes) = ledger.decide(&classify(&msg(B, MessageType::Discover, |_| {})).unwrap(), &s, 0);
    assert!(b_changes.is_empty());
    let req = msg(A, MessageType::Request, |m| {
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
        m.opts_mut().insert(DhcpOption::ServerIdentifier(s.server_ip));
    });
    let (ack, changes) = ledger.decide(&classify(&req).unwrap(), &s, 1);
    assert!(matches!(ack, Decision::Reply { msg_type: MessageType::Ack, .. }));
    assert!(matches!(&changes[..], [LeaseChange::Put(l)] if l.ip == ip), "{changes:?}");
    ledger.commit(&changes).unwrap();
    drop(ledger);

    let again = Ledger::open(crate::state::Store::open(dir.path()).unwrap(), &s, 2).unwrap();
    assert_eq!(again.lease_of(&metalboot_spec::MacAddr(A), 2).map(|l| l.ip), Some(ip));
    assert_eq!(again.lease_of(&metalboot_spec::MacAddr(B), 2), None, "B's offer outlived the restart");
    let steal = msg(B, MessageType::Request, |m| {
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
    });
    assert!(matches!(
        again.decide(&classify(&steal).unwrap(), &s, 3).0,
        Decision::Reply { msg_type: MessageType::Nak, .. }
    ));
}

fn bind_a(ledger: &Ledger, s: &DhcpSettings, now: i64) -> Ipv4Addr {
    let ip = yi(&ledger.decide(&classify(&msg(A, MessageType::Discover, |_| {})).unwrap(), s, now).0);
    let req = msg(A, MessageType::Request, |m| {
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
        m.opts_mut().insert(DhcpOption::ServerIdentifier(s.server_ip));
    });
    let (ack, changes) = ledger.decide(&classify(&req).unwrap(), s, now);
    assert!(matches!(ack, Decision::Reply { msg_type: MessageType::Ack, .. }));
    ledger.commit(&changes).unwrap();
    ip
}

fn decline_of(mac: [u8; 6], ip: Ipv4Addr) -> super::classify::ClientInfo {
    classify(&msg(mac, MessageType::Decline, |m| {
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
    }))
    .unwrap()
}

/// A DECLINE names an address, not a lease: one from a client that does not
/// hold the address changes nothing, in memory or in the database, and the
/// owner keeps (and renews) its lease across a restart.
#[test]
fn foreign_decline_leaves_the_owners_lease_bound() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings();
    let ledger = Ledger::open(crate::state::Store::open(dir.path()).unwrap(), &s, 0).unwrap();
    let ip = bind_a(&ledger, &s, 0);
    let (d, changes) = ledger.decide(&decline_of(B, ip), &s, 1);
    assert!(matches!(&d, Decision::Ignore(w) if w.contains("does not hold it")), "{d:?}");
    assert!(changes.is_empty(), "{changes:?}");
    let lease = ledger.lease_of(&metalboot_spec::MacAddr(A), 2).expect("A's lease survives");
    assert_eq!((lease.ip, lease.hold), (ip, super::leases::Hold::Bound));
    // B is not given A's address, and A renews it, before and after a restart
    assert_ne!(yi(&ledger.decide(&classify(&msg(B, MessageType::Discover, |_| {})).unwrap(), &s, 3).0), ip);
    drop(ledger);
    let ledger = Ledger::open(crate::state::Store::open(dir.path()).unwrap(), &s, 4).unwrap();
    let renew = msg(A, MessageType::Request, |m| {
        m.set_ciaddr(ip);
    });
    assert_eq!(yi(&ledger.decide(&classify(&renew).unwrap(), &s, 5).0), ip);
    // the owner's own DECLINE still quarantines the address
    let (d, changes) = ledger.decide(&decline_of(A, ip), &s, 6);
    assert!(matches!(&d, Decision::Ignore(w) if w.contains("quarantined")), "{d:?}");
    assert_eq!(changes.len(), 2, "{changes:?}");
}

/// DECLINEs of addresses outside the pool (another subnet, a reserved
/// address outside the range, the server's own) and DECLINEs meant for
/// another server store nothing.
#[test]
fn off_pool_decline_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings();
    let ledger = Ledger::open(crate::state::Store::open(dir.path()).unwrap(), &s, 0).unwrap();
    for ip in [Ipv4Addr::new(192, 0, 2, 7), Ipv4Addr::new(10, 99, 0, 9), s.server_ip, Ipv4Addr::new(10, 99, 0, 103)] {
        let (d, changes) = ledger.decide(&decline_of(A, ip), &s, 1);
        assert!(matches!(&d, Decision::Ignore(w) if w.contains("outside the pool")), "{ip}: {d:?}");
        assert!(changes.is_empty(), "{ip}: {changes:?}");
    }
    let ip = bind_a(&ledger, &s, 2);
    let elsewhere = classify(&msg(A, MessageType::Decline, |m| {
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
        m.opts_mut().insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 99, 0, 2)));
    }))
    .unwrap();
    assert!(ledger.decide(&elsewhere, &s, 3).1.is_empty());
    assert_eq!(ledger.len(), 1, "only A's lease is held");
    drop(ledger);
    let ledger = Ledger::open(crate::state::Store::open(dir.path()).unwrap(), &s, 4).unwrap();
    assert_eq!(ledger.len(), 1, "only A's lease is stored");
}

/// Expired leases (bound, declined, offered) leave the book and the
/// database; one that is still running stays, and its address is not
/// handed to anyone else.
#[test]
fn expired_leases_are_purged() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(); // three pool addresses, 600 s leases
    let ledger = Ledger::open(crate::state::Store::open(dir.path()).unwrap(), &s, 0).unwrap();
    let a = bind_a(&ledger, &s, 0);
    // B binds at 1 s, then declines: its address is quarantined for 10 minutes
    let b = yi(&ledger.decide(&classify(&msg(B, MessageType::Discover, |_| {})).unwrap(), &s, 1000).0);
    let req = msg(B, MessageType::Request, |m| {
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(b));
        m.opts_mut().insert(DhcpOption::ServerIdentifier(s.server_ip));
    });
    ledger.commit(&ledger.decide(&classify(&req).unwrap(), &s, 1000).1).unwrap();
    ledger.commit(&ledger.decide(&decline_of(B, b), &s, 2000).1).unwrap();
    // C is offered the third address
    let c = [0x52, 0x54, 0, 0, 0, 3];
    let offered = yi(&ledger.decide(&classify(&msg(c, MessageType::Discover, |_| {})).unwrap(), &s, 3000).0);
    assert_eq!(ledger.len(), 3);

    // A's lease runs to 600 s: at 599.999 s it is kept, the offer is gone
    assert_eq!(ledger.purge_expired(599_999).unwrap(), 1, "only the 30 s offer expired");
    assert_eq!(ledger.lease_of(&metalboot_spec::MacAddr(A), 599_999).map(|l| l.ip), Some(a));
    assert_eq!(ledger.len(), 2);
    // a new client then gets the offered address back, never A's or the declined one
    let d = [0x52, 0x54, 0, 0, 0, 4];
    assert_eq!(yi(&ledger.decide(&classify(&msg(d, MessageType::Discover, |_| {})).unwrap(), &s, 599_999).0), offered);

    // past both: the book and the table are empty
    assert_eq!(ledger.purge_expired(630_000).unwrap(), 3);
    assert!(ledger.is_empty());
    drop(ledger);
    // reopened as of time 0, nothing comes back: the rows are gone
    let ledger = Ledger::open(crate::state::Store::open(dir.path()).unwrap(), &s, 0).unwrap();
    assert!(ledger.is_empty(), "expired rows are still in the database");
}
