//! The lease book `decide` works against: who holds which address until
//! when, and which pool address to offer next. The running server keeps the
//! book in memory (`pool::MemoryLeases`) and writes every change but an
//! offer to SQLite before it answers (see `ledger`), so a restart never
//! hands out an address that was acknowledged to someone else.

use metalboot_spec::MacAddr;
use std::net::Ipv4Addr;

/// Unix time in milliseconds, the clock leases expire by.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// How an address is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Offered, not yet requested (short).
    Offered,
    /// Bound by ACK.
    Bound,
    /// A client said it is in use by someone else (DHCPDECLINE).
    Declined,
}

/// One lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Address.
    pub ip: Ipv4Addr,
    /// Holder (all-zero for declined addresses).
    pub mac: MacAddr,
    /// How.
    pub hold: Hold,
    /// Expiry, unix ms.
    pub expires_ms: i64,
}

/// A change the state database must see before the answer that depends on
/// it leaves: everything but an offer. An offer is a reservation in memory
/// only — RFC 2131 §3.1 step 2: "servers need not reserve the offered
/// network address"; a REQUEST for an offer lost in a restart is checked
/// against the leases like any other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseChange {
    /// Record this lease (replacing the holder's other lease and any lease on its address).
    Put(Lease),
    /// Drop `mac`'s lease on `ip`.
    Remove {
        /// Holder.
        mac: MacAddr,
        /// Address.
        ip: Ipv4Addr,
    },
}

/// Lease storage.
pub trait LeaseBook {
    /// The unexpired lease of `mac`, if any.
    fn by_mac(&self, mac: &MacAddr, now_ms: i64) -> Option<Lease>;
    /// The unexpired lease on `ip`, if any.
    fn by_ip(&self, ip: Ipv4Addr, now_ms: i64) -> Option<Lease>;
    /// Records a lease (replacing any for that mac or ip).
    fn put(&mut self, lease: Lease);
    /// Drops `mac`'s lease on `ip`.
    fn remove(&mut self, mac: &MacAddr, ip: Ipv4Addr);
    /// A pool address nobody holds, found without scanning the leases; the
    /// caller puts a lease on it. Addresses `usable` refuses are set aside
    /// for good, so it must not change while the book lives (the server's
    /// own address, addresses reserved for inventory hosts).
    fn free_address(&mut self, now_ms: i64, usable: &dyn Fn(Ipv4Addr) -> bool) -> Option<Ipv4Addr>;
}

/// A lease book that notes the changes the database must see.
pub struct Journal<'a> {
    book: &'a mut dyn LeaseBook,
    /// Changes in the order they were made; offers left out.
    pub changes: Vec<LeaseChange>,
}

impl<'a> Journal<'a> {
    /// Notes the changes made to `book` through it.
    pub fn new(book: &'a mut dyn LeaseBook) -> Journal<'a> {
        Journal { book, changes: Vec::new() }
    }
}

impl LeaseBook for Journal<'_> {
    fn by_mac(&self, mac: &MacAddr, now_ms: i64) -> Option<Lease> {
        self.book.by_mac(mac, now_ms)
    }
    fn by_ip(&self, ip: Ipv4Addr, now_ms: i64) -> Option<Lease> {
        self.book.by_ip(ip, now_ms)
    }
    fn put(&mut self, lease: Lease) {
        if lease.hold != Hold::Offered {
            self.changes.push(LeaseChange::Put(lease.clone()));
        }
        self.book.put(lease);
    }
    fn remove(&mut self, mac: &MacAddr, ip: Ipv4Addr) {
        self.changes.push(LeaseChange::Remove { mac: *mac, ip });
        self.book.remove(mac, ip);
    }
    fn free_address(&mut self, now_ms: i64, usable: &dyn Fn(Ipv4Addr) -> bool) -> Option<Ipv4Addr> {
        self.book.free_address(now_ms, usable)
    }
}
