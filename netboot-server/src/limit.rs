//! Counting what clients hold open (HTTP connections, TFTP transfers), in
//! total and per client IP address, so that one address cannot take every
//! slot and lock the others out. A slot is held by an [`Admitted`] value and
//! freed when it is dropped, however the connection or transfer ends.
//!
//! An IPv6 client is counted by its /64: a site is given at least a /64
//! (RFC 6177) and picks addresses in it freely (RFC 4941), so one machine
//! could otherwise take a fresh share per address. An IPv4-mapped address
//! (a dual-stack socket) counts as the IPv4 address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Why a client was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every slot is taken.
    Full,
    /// This address holds its share already.
    PerAddress,
}

/// Slots in total and per address.
#[derive(Debug)]
pub struct Slots {
    max_total: usize,
    max_per_address: usize,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// One slot, freed on drop.
#[derive(Debug)]
pub struct Admitted {
    slots: Arc<Slots>,
    ip: IpAddr,
}

impl Slots {
    /// At most `max_total` slots, of which `max_per_address` for any one address.
    pub fn new(max_total: usize, max_per_address: usize) -> Arc<Slots> {
        Arc::new(Slots { max_total, max_per_address, held: Mutex::new(Held::default()) })
    }

    /// Takes a slot for `ip`, or says why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, Refused> {
        let ip = client_key(ip);
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let mine = held.by_address.get(&ip).copied().unwrap_or(0);
        if mine >= self.max_per_address {
            return Err(Refused::PerAddress);
        }
        if held.total >= self.max_total {
            return Err(Refused::Full);
        }
        held.total += 1;
        held.by_address.insert(ip, mine + 1);
        Ok(Admitted { slots: self.clone(), ip })
    }

    /// Slots held now in total.
    pub fn held_total(&self) -> usize {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).total
    }

    /// Slots held now: in total, and by `ip`.
    pub fn held(&self, ip: IpAddr) -> (usize, usize) {
        let ip = client_key(ip);
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        (held.total, held.by_address.get(&ip).copied().unwrap_or(0))
    }
}

/// What a client is counted by: its IPv4 address, or its IPv6 /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|e| e.into_inner());
        held.total -= 1;
        if let Some(n) = held.by_address.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                held.by_address.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_cannot_take_every_slot() {
        let slots = Slots::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let c: IpAddr = "192.0.2.3".parse().unwrap();
        let a1 = slots.admit(a).unwrap();
        let _a2 = slots.admit(a).unwrap();
        assert_eq!(slots.admit(a).unwrap_err(), Refused::PerAddress);
        let _b1 = slots.admit(b).unwrap();
        assert_eq!(slots.admit(c).unwrap_err(), Refused::Full);
        assert_eq!(slots.held(a), (3, 2));
        drop(a1);
        assert_eq!(slots.held(a), (2, 1));
        let _c1 = slots.admit(c).unwrap();
        assert_eq!(slots.admit(a).unwrap_err(), Refused::Full);
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let slots = Slots::new(10, 1);
        let _a = slots.admit("2001:db8:1:2::1".parse().unwrap()).unwrap();
        let other_in_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(slots.admit(other_in_64).unwrap_err(), Refused::PerAddress);
        let _b = slots.admit("2001:db8:1:3::1".parse().unwrap()).unwrap();
        let _c = slots.admit("192.0.2.7".parse().unwrap()).unwrap();
        assert_eq!(slots.admit("::ffff:192.0.2.7".parse().unwrap()).unwrap_err(), Refused::PerAddress);
    }

    #[test]
    fn dropping_every_slot_forgets_the_address() {
        let slots = Slots::new(2, 2);
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let held: Vec<_> = (0..2).map(|_| slots.admit(a).unwrap()).collect();
        drop(held);
        assert_eq!(slots.held(a), (0, 0));
        assert!(slots.held.lock().unwrap().by_address.is_empty());
    }
}
