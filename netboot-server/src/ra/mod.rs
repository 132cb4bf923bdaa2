//! Router advertisements that announce nothing, on the provisioning
//! interface.
//!
//! iPXE's `dhcp`/`ifconf` (and the autoboot of the iPXE ROMs in QEMU and in
//! Debian 12) waits for IPv6 router discovery as well as DHCP, about 16 s per
//! network boot when no router answers its solicitations; Linux hosts keep
//! soliciting too. An advertisement with router lifetime 0, no prefix and
//! the M and O flags clear (RFC 4861 §4.2, §6.2.3) ends the wait and
//! configures nothing. The pure core is `packet` (parse, build) and
//! `decide` (when to send, when to stop); only `socket` touches the network.

pub mod decide;
pub mod packet;
pub mod socket;

use std::net::Ipv6Addr;

const SCOPE_LINK: u8 = 0x20;
const IFA_F_DADFAILED: u8 = 0x08;
const IFA_F_TENTATIVE: u8 = 0x40;

/// One IPv6 address of an interface, from `/proc/net/if_inet6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inet6Addr {
    /// The address.
    pub addr: Ipv6Addr,
    /// Scope (0x20: link).
    pub scope: u8,
    /// `IFA_F_*` flags (low byte).
    pub flags: u8,
}

impl Inet6Addr {
    /// A link-local address that finished duplicate address detection: one
    /// we can send from. A tentative address (DAD still running, e.g. on a
    /// bridge with no port up yet) cannot be a source.
    pub fn usable_link_local(&self) -> bool {
        self.scope == SCOPE_LINK
            && packet::is_link_local(self.addr)
            && self.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED) == 0
    }
}

/// The addresses of `iface` in `/proc/net/if_inet6` text: per line the
/// address (32 hex digits), interface index, prefix length, scope, flags and
/// name.
pub fn interface_addrs6(text: &str, iface: &str) -> Vec<Inet6Addr> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() != 6 || f[5] != iface {
                return None;
            }
            let addr = u128::from_str_radix(f[0], 16).ok()?;
            Some(Inet6Addr {
                addr: Ipv6Addr::from(addr),
                scope: u8::from_str_radix(f[3], 16).ok()?,
                flags: u8::from_str_radix(f[4], 16).ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // read on a bridge a moment after `ip link set br0 up` (tentative), and
    // two seconds after a port joined it
    const IF_INET6: &str = "00000000000000000000000000000001 01 80 10 80       lo\n\
        fe80000000000000b8b614fffe795530 02 40 20 c0      br0\n\
        20010db8000000000000000000000001 02 40 00 80      br0\n\
        fe8000000000000028ea94fffefe2c4f 04 40 20 80       v1\n";

    #[test]
    fn finds_the_interfaces_addresses_and_waits_out_dad() {
        let a = interface_addrs6(IF_INET6, "br0");
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].addr, "fe80::b8b6:14ff:fe79:5530".parse::<Ipv6Addr>().unwrap());
        assert!(!a[0].usable_link_local(), "tentative");
        assert!(!a[1].usable_link_local(), "global");
        let after_dad = IF_INET6.replace("02 40 20 c0", "02 40 20 80");
        assert!(interface_addrs6(&after_dad, "br0")[0].usable_link_local());
        assert!(interface_addrs6(IF_INET6, "br1").is_empty());
    }
}
