//! The lease book in memory, with the pool's free addresses kept apart so
//! that choosing one for a new client costs the same with ten leases as with
//! sixty thousand: O(log n) per allocation, amortized — never a scan of the
//! pool or of the leases.
//!
//! Free addresses are, in the order they are handed out: addresses given
//! back (released, declined offers, a client's old address when it moves;
//! lowest first), then addresses never handed out since start (a cursor
//! moving up the pool), then the lease that expired longest ago (RFC 2131
//! §4.3.1 lets a server reuse an expired lease; an index by expiry finds it).

use super::leases::{Hold, Lease, LeaseBook};
use metalboot_spec::MacAddr;
use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;

/// Leases of one pool, in memory.
#[derive(Debug)]
pub struct MemoryLeases {
    first: u32,
    last: u32,
    by_ip: HashMap<Ipv4Addr, Lease>,
    /// The one lease (not declined) of each holder.
    by_mac: HashMap<MacAddr, Ipv4Addr>,
    by_expiry: BTreeSet<(i64, u32)>,
    /// Pool addresses below `fresh` that have no lease.
    returned: BTreeSet<u32>,
    /// Addresses from here to `last` were never looked at by `free_address`.
    fresh: u64,
    probes: u64,
}

impl MemoryLeases {
    /// An empty book for the pool `first..=last`.
    pub fn new(first: Ipv4Addr, last: Ipv4Addr) -> MemoryLeases {
        MemoryLeases {
            first: first.into(),
            last: last.into(),
            by_ip: HashMap::new(),
            by_mac: HashMap::new(),
            by_expiry: BTreeSet::new(),
            returned: BTreeSet::new(),
            fresh: u64::from(u32::from(first)),
            probes: 0,
        }
    }

    /// A book for the pool holding `leases` (as loaded at start): one pass
    /// up to the highest leased pool address finds the free ones below it.
    pub fn with_leases(first: Ipv4Addr, last: Ipv4Addr, leases: impl IntoIterator<Item = Lease>) -> MemoryLeases {
        let mut book = MemoryLeases::new(first, last);
        for l in leases {
            book.put(l);
        }
        let (lo, hi) = (book.first, book.last);
        if let Some(top) = book.by_ip.keys().map(|ip| u32::from(*ip)).filter(|a| (lo..=hi).contains(a)).max() {
            book.returned = (lo..top).filter(|a| !book.by_ip.contains_key(&Ipv4Addr::from(*a))).collect();
            book.fresh = u64::from(top) + 1;
        }
        book
    }

    /// Addresses `free_address` has looked at so far: what allocation costs,
    /// counted rather than timed.
    pub fn probes(&self) -> u64 {
        self.probes
    }

    /// Leases held, expired or not (expired ones are dropped when reused).
    pub fn len(&self) -> usize {
        self.by_ip.len()
    }

    /// Whether the book holds no lease.
    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }

    /// Forgets every lease that expired by `now_ms` (offers, bound and
    /// declined alike); their pool addresses become free. Returns how many.
    /// Costs O(log n) per lease dropped: the expiry index is in order.
    pub fn purge_expired(&mut self, now_ms: i64) -> usize {
        let mut n = 0;
        while let Some(&(expires, a)) = self.by_expiry.first() {
            if expires > now_ms {
                break;
            }
            self.drop_lease(a.into(), true);
            n += 1;
        }
        n
    }

    fn in_pool(&self, a: u32) -> bool {
        (self.first..=self.last).contains(&a)
    }

    /// Forgets the lease on `ip`; `give_back`: its address becomes free.
    fn drop_lease(&mut self, ip: Ipv4Addr, give_back: bool) {
        let Some(old) = self.by_ip.remove(&ip) else { return };
        let a = u32::from(ip);
        self.by_expiry.remove(&(old.expires_ms, a));
        if self.by_mac.get(&old.mac) == Some(&ip) {
            self.by_mac.remove(&old.mac);
        }
        if give_back && self.in_pool(a) && u64::from(a) < self.fresh {
            self.returned.insert(a);
        }
    }
}

impl LeaseBook for MemoryLeases {
    fn by_mac(&self, mac: &MacAddr, now_ms: i64) -> Option<Lease> {
        let ip = self.by_mac.get(mac)?;
        self.by_ip.get(ip).filter(|l| l.mac == *mac && l.expires_ms > now_ms && l.hold != Hold::Declined).cloned()
    }

    fn by_ip(&self, ip: Ipv4Addr, now_ms: i64) -> Option<Lease> {
        self.by_ip.get(&ip).filter(|l| l.expires_ms > now_ms).cloned()
    }

    fn put(&mut self, lease: Lease) {
        if lease.hold != Hold::Declined {
            if let Some(old) = self.by_mac.get(&lease.mac).copied() {
                if old != lease.ip {
                    self.drop_lease(old, true);
                }
            }
        }
        self.drop_lease(lease.ip, false);
        let a = u32::from(lease.ip);
        self.returned.remove(&a);
        self.by_expiry.insert((lease.expires_ms, a));
        if lease.hold != Hold::Declined {
            self.by_mac.insert(lease.mac, lease.ip);
        }
        self.by_ip.insert(lease.ip, lease);
    }

    fn remove(&mut self, mac: &MacAddr, ip: Ipv4Addr) {
        if self.by_ip.get(&ip).is_some_and(|l| l.mac == *mac) {
            self.drop_lease(ip, true);
        }
    }

    fn free_address(&mut self, now_ms: i64, usable: &dyn Fn(Ipv4Addr) -> bool) -> Option<Ipv4Addr> {
        while let Some(a) = self.returned.pop_first() {
            self.probes += 1;
            if usable(a.into()) {
                return Some(a.into());
            }
        }
        // each address is passed once in the book's life: amortized O(1)
        while self.fresh <= u64::from(self.last) {
            let a = self.fresh as u32;
            self.fresh += 1;
            self.probes += 1;
            if !self.by_ip.contains_key(&a.into()) && usable(a.into()) {
                return Some(a.into());
            }
        }
        while let Some(&(expires, a)) = self.by_expiry.first() {
            if expires > now_ms {
                break;
            }
            self.probes += 1;
            self.drop_lease(a.into(), false);
            if self.in_pool(a) && usable(a.into()) {
                return Some(a.into());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(i: u32) -> MacAddr {
        let b = i.to_be_bytes();
        MacAddr([2, 0, b[0], b[1], b[2], b[3]])
    }

    const FIRST: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 0);
    const LAST: Ipv4Addr = Ipv4Addr::new(10, 1, 255, 255);
    const HOUR: i64 = 3_600_000;

    fn bind(book: &mut MemoryLeases, i: u32, now: i64) -> Ipv4Addr {
        let ip = book.free_address(now, &|_| true).expect("pool not exhausted");
        book.put(Lease { ip, mac: mac(i), hold: Hold::Bound, expires_ms: now + HOUR });
        ip
    }

    /// Probes (addresses looked at) for `n` more allocations after `held` leases.
    fn probes_after(held: u32, n: u32, restart: bool) -> u64 {
        let mut book = MemoryLeases::new(FIRST, LAST);
        for i in 0..held {
            bind(&mut book, i, 0);
        }
        // give a few back in the middle: released addresses are reused first
        for i in (0..held).step_by(97) {
            let ip = book.by_mac(&mac(i), 0).expect("bound").ip;
            book.remove(&mac(i), ip);
        }
        if restart {
            let leases: Vec<Lease> = book.by_ip.values().cloned().collect();
            book = MemoryLeases::with_leases(FIRST, LAST, leases);
        }
        let before = book.probes();
        for i in 0..n {
            bind(&mut book, held + i, 0);
        }
        book.probes() - before
    }

    #[test]
    fn allocation_cost_does_not_grow_with_leases() {
        for restart in [false, true] {
            let small = probes_after(100, 1000, restart);
            let large = probes_after(60_000, 1000, restart);
            assert_eq!(small, 1000, "one address looked at per allocation (restart: {restart})");
            assert_eq!(large, small, "60,000 leases cost more than 100 (restart: {restart})");
        }
    }

    #[test]
    fn expired_leases_are_reused_without_a_scan() {
        let mut book = MemoryLeases::new(FIRST, Ipv4Addr::new(10, 1, 0, 99));
        for i in 0..100 {
            bind(&mut book, i, i64::from(i));
        }
        assert_eq!(book.free_address(HOUR - 1, &|_| true), None, "nothing expired yet");
        let before = book.probes();
        // the oldest lease expires first and is the one reused
        assert_eq!(book.free_address(HOUR + 1, &|_| true), Some(FIRST));
        assert_eq!(book.probes() - before, 1);
    }

    #[test]
    fn a_client_that_moves_gives_its_old_address_back() {
        let mut book = MemoryLeases::new(FIRST, LAST);
        let a = bind(&mut book, 1, 0);
        let b = Ipv4Addr::new(10, 1, 9, 9);
        book.put(Lease { ip: b, mac: mac(1), hold: Hold::Bound, expires_ms: HOUR });
        assert_eq!(book.by_mac(&mac(1), 0).map(|l| l.ip), Some(b));
        assert_eq!(book.by_ip(a, 0), None);
        assert_eq!(book.free_address(0, &|_| true), Some(a));
    }

    #[test]
    fn refused_and_leased_addresses_are_never_offered() {
        let mut book = MemoryLeases::with_leases(
            FIRST,
            Ipv4Addr::new(10, 1, 0, 4),
            [Lease { ip: Ipv4Addr::new(10, 1, 0, 2), mac: mac(7), hold: Hold::Bound, expires_ms: HOUR }],
        );
        let server = Ipv4Addr::new(10, 1, 0, 0);
        let mut got = Vec::new();
        while let Some(ip) = book.free_address(0, &|ip| ip != server) {
            book.put(Lease { ip, mac: mac(got.len() as u32), hold: Hold::Offered, expires_ms: 30_000 });
            got.push(ip);
        }
        got.sort();
        assert_eq!(got, [Ipv4Addr::new(10, 1, 0, 1), Ipv4Addr::new(10, 1, 0, 3), Ipv4Addr::new(10, 1, 0, 4)]);
    }
}
