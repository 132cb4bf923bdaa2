//! Ethernet MAC addresses, parsed from the spellings operators and firmware use
//! (`52:54:00:12:34:56`, `52-54-00-12-34-56`) and always printed lower-case with
//! colons, which is also how iPXE expands `${net0/mac}`.

use crate::error::quote;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A 48-bit MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// True for a group (multicast/broadcast) address, which no NIC boots with.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl FromStr for MacAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(format!("{} is not a MAC address (want six hex pairs like 52:54:00:12:34:56)", quote(s)));
        }
        let mut out = [0u8; 6];
        for (i, p) in parts.iter().enumerate() {
            if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("{} is not a MAC address (bad byte {})", quote(s), quote(p)));
            }
            out[i] = u8::from_str_radix(p, 16).map_err(|e| e.to_string())?;
        }
        let mac = MacAddr(out);
        if mac.is_multicast() {
            return Err(format!("{} is a multicast address, not a NIC's MAC", quote(s)));
        }
        if out == [0; 6] {
            return Err(format!("{} is the all-zero address", quote(s)));
        }
        Ok(mac)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_colon_and_dash_forms_and_prints_lowercase() {
        let a: MacAddr = "52:54:00:AB:cd:01".parse().unwrap();
        let b: MacAddr = "52-54-00-ab-CD-01".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "52:54:00:ab:cd:01");
    }

    #[test]
    fn rejects_garbage_multicast_and_zero() {
        for bad in [
            "",
            "52:54:00:12:34",
            "52:54:00:12:34:5g",
            "52:54:00:12:34:56:78",
            "01:00:5e:00:00:01",
            "00:00:00:00:00:00",
            "52:54:00:12:34:56\n",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad:?} accepted");
        }
    }
}
