//! An interface address with its prefix length (`192.0.2.10/24`,
//! `2001:db8::10/64`), the form `ip addr` and systemd-networkd use.

use crate::error::quote;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

/// An address plus prefix length.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct IpCidr {
    /// The host's own address.
    pub addr: IpAddr,
    /// Prefix length: 0..=32 for IPv4, 0..=128 for IPv6.
    pub prefix: u8,
}

impl IpCidr {
    /// True when `other` lies inside this address's subnet.
    pub fn contains(&self, other: IpAddr) -> bool {
        match (self.addr, other) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) };
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - self.prefix) };
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }

    /// The dotted netmask of an IPv4 prefix (for d-i and the kernel's `ip=`).
    pub fn netmask_v4(&self) -> Option<Ipv4Addr> {
        match self.addr {
            IpAddr::V4(_) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) };
                Some(Ipv4Addr::from(mask))
            }
            IpAddr::V6(_) => None,
        }
    }
}

impl FromStr for IpCidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, p) =
            s.split_once('/').ok_or_else(|| format!("{} has no prefix length (want e.g. 192.0.2.10/24)", quote(s)))?;
        let addr: IpAddr = a.parse().map_err(|_| format!("{}: {} is not an IP address", quote(s), quote(a)))?;
        let prefix: u8 = p.parse().map_err(|_| format!("{}: bad prefix length {}", quote(s), quote(p)))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(format!("{}: prefix length {prefix} is over {max}", quote(s)));
        }
        Ok(IpCidr { addr, prefix })
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for IpCidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpCidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v4_v6_and_checks_membership() {
        let c: IpCidr = "192.0.2.10/24".parse().unwrap();
        assert!(c.contains("192.0.2.1".parse().unwrap()));
        assert!(!c.contains("192.0.3.1".parse().unwrap()));
        assert_eq!(c.netmask_v4().unwrap().to_string(), "255.255.255.0");
        let h: IpCidr = "203.0.113.7/32".parse().unwrap();
        assert!(!h.contains("203.0.113.1".parse().unwrap()));
        let v6: IpCidr = "2001:db8::10/64".parse().unwrap();
        assert!(v6.contains("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn rejects_bad_cidrs() {
        for bad in ["192.0.2.10", "192.0.2.10/33", "2001:db8::1/129", "x/24", "192.0.2.10/24\n"] {
            assert!(bad.parse::<IpCidr>().is_err(), "{bad:?} accepted");
        }
    }
}
