//! The lease book `decide` works against: who holds which address until
//! when. The server keeps it in SQLite (a restart never hands an address out
//! twice); tests use the in-memory book.

use metalboot_spec::MacAddr;
use std::collections::HashMap;
use std::net::Ipv4Addr;

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
}

/// A lease book in memory.
#[derive(Default, Debug)]
pub struct MemoryLeases {
    by_ip: HashMap<Ipv4Addr, Lease>,
}

impl LeaseBook for MemoryLeases {
    fn by_mac(&self, mac: &MacAddr, now_ms: i64) -> Option<Lease> {
        self.by_ip.values().find(|l| l.mac == *mac && l.expires_ms > now_ms && l.hold != Hold::Declined).cloned()
    }
    fn by_ip(&self, ip: Ipv4Addr, now_ms: i64) -> Option<Lease> {
        self.by_ip.get(&ip).filter(|l| l.expires_ms > now_ms).cloned()
    }
    fn put(&mut self, lease: Lease) {
        if lease.hold != Hold::Declined {
            self.by_ip.retain(|_, l| l.mac != lease.mac || l.hold == Hold::Declined);
        }
        self.by_ip.insert(lease.ip, lease);
    }
    fn remove(&mut self, mac: &MacAddr, ip: Ipv4Addr) {
        if self.by_ip.get(&ip).is_some_and(|l| l.mac == *mac) {
            self.by_ip.remove(&ip);
        }
    }
}
