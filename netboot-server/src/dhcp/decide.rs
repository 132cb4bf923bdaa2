//! What to answer (RFC 2131 §4.3): given the classified request, the DHCP
//! settings and the lease book, an address decision and the boot
//! information for the client's firmware. The only I/O is through the
//! `LeaseBook` trait; a new client's address comes from the book's free list
//! (`LeaseBook::free_address`), so deciding costs the same whatever the
//! number of leases.

use super::classify::{ClientInfo, Firmware};
use super::leases::{Hold, Lease, LeaseBook};
use super::{DhcpSettings, Pool};
use dhcproto::v4::MessageType;
use metalboot_spec::MacAddr;
use std::net::Ipv4Addr;

/// Boot information for a PXE/iPXE/HTTP-boot client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootInfo {
    /// Boot file: a TFTP file name or an HTTP URL.
    pub filename: String,
    /// Next server (TFTP), siaddr.
    pub next_server: Ipv4Addr,
    /// Option 60 to echo (`PXEClient` / `HTTPClient`), if the client sent one.
    pub vendor_class: Option<&'static str>,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send a reply.
    Reply {
        /// OFFER, ACK or NAK.
        msg_type: MessageType,
        /// Address for the client (0.0.0.0 for NAK/INFORM/proxy).
        yiaddr: Ipv4Addr,
        /// Lease time to announce (None for INFORM, NAK, proxy).
        lease_secs: Option<u32>,
        /// Boot info, for network-boot clients.
        boot: Option<BootInfo>,
    },
    /// Say nothing, and why (logged at debug).
    Ignore(String),
}

const OFFER_HOLD_MS: i64 = 30_000;
const DECLINE_HOLD_MS: i64 = 10 * 60_000;

/// The boot file for this client: iPXE gets the HTTP script (that breaks
/// the chainload loop), a plain PXE ROM gets an iPXE binary over TFTP, a
/// UEFI HTTP Boot client gets iPXE over HTTP.
pub fn boot_info(c: &ClientInfo, s: &DhcpSettings) -> Option<BootInfo> {
    if c.ipxe {
        return Some(BootInfo {
            filename: format!("{}/boot.ipxe", s.http_base),
            next_server: s.server_ip,
            vendor_class: None,
        });
    }
    match c.firmware {
        Firmware::None => None,
        Firmware::BiosPxe => {
            Some(BootInfo { filename: s.bios_file.clone(), next_server: s.server_ip, vendor_class: Some("PXEClient") })
        }
        Firmware::EfiPxe(_) => {
            Some(BootInfo { filename: s.efi_file.clone(), next_server: s.server_ip, vendor_class: Some("PXEClient") })
        }
        Firmware::EfiHttp(_) => Some(BootInfo {
            filename: format!("{}/assets/{}", s.http_base, s.efi_file),
            next_server: s.server_ip,
            vendor_class: Some("HTTPClient"),
        }),
    }
}

/// The address reserved for `mac` in the inventory, if it lies in `p`: a
/// host reserved in another subnet gets a pool address where it is now.
fn reserved(mac: &MacAddr, s: &DhcpSettings, p: &Pool) -> Option<Ipv4Addr> {
    s.reservations.iter().find(|(m, ip)| m == mac && p.holds(*ip)).map(|(_, ip)| *ip)
}

fn usable_for(ip: Ipv4Addr, mac: &MacAddr, s: &DhcpSettings, p: &Pool, book: &dyn LeaseBook, now: i64) -> bool {
    if ip == s.server_ip || !p.holds(ip) {
        return false;
    }
    if let Some(owner) = s.reservations.iter().find(|(_, rip)| *rip == ip).map(|(m, _)| m) {
        if owner != mac {
            return false;
        }
    }
    match book.by_ip(ip, now) {
        Some(l) => l.mac == *mac && l.hold != Hold::Declined,
        None => true,
    }
}

fn choose_address(c: &ClientInfo, s: &DhcpSettings, p: &Pool, book: &mut dyn LeaseBook, now: i64) -> Option<Ipv4Addr> {
    if let Some(ip) = reserved(&c.mac, s, p) {
        return Some(ip);
    }
    if let Some(l) = book.by_mac(&c.mac, now) {
        if p.in_range(l.ip) {
            return Some(l.ip);
        }
    }
    if let Some(req) = c.requested_ip {
        if p.in_range(req) && usable_for(req, &c.mac, s, p, book, now) {
            return Some(req);
        }
    }
    book.free_address(now, &|ip| poolable(ip, s, p))
}

/// Whether a pool address may go to a client without a reservation: never
/// the server's own, one outside the subnet, or one reserved for a host.
fn poolable(ip: Ipv4Addr, s: &DhcpSettings, p: &Pool) -> bool {
    ip != s.server_ip && p.holds(ip) && !s.reservations.iter().any(|(_, rip)| *rip == ip)
}

/// The answer to a request relayed from a subnet no pool holds: none.
pub fn unknown_relay(giaddr: Ipv4Addr) -> Decision {
    Decision::Ignore(format!("relayed by {giaddr}, which is in no subnet of [dhcp] or [[dhcp.subnets]]"))
}

/// Full-mode decision, from the pool of the client's subnet (`book` is that
/// pool's lease book; see `subnets::pool_for`).
pub fn decide(c: &ClientInfo, s: &DhcpSettings, book: &mut dyn LeaseBook, now: i64) -> Decision {
    let Some(p) = s.pool_for(c.giaddr, c.ciaddr) else { return unknown_relay(c.giaddr) };
    let boot = boot_info(c, s);
    match c.msg_type {
        MessageType::Discover => match choose_address(c, s, p, book, now) {
            Some(ip) => {
                // a bound client asking again keeps its lease; anyone else
                // gets a short hold, in memory only (see `LeaseChange`)
                if book.by_ip(ip, now).is_none_or(|l| l.mac != c.mac || l.hold != Hold::Bound) {
                    book.put(Lease { ip, mac: c.mac, hold: Hold::Offered, expires_ms: now + OFFER_HOLD_MS });
                }
                Decision::Reply { msg_type: MessageType::Offer, yiaddr: ip, lease_secs: Some(p.lease_secs), boot }
            }
            None => Decision::Ignore("address pool exhausted".into()),
        },
        MessageType::Request => {
            if let Some(sid) = c.server_id {
                if sid != s.server_ip {
                    if let Some(l) = book.by_mac(&c.mac, now) {
                        if l.hold == Hold::Offered {
                            book.remove(&c.mac, l.ip);
                        }
                    }
                    return Decision::Ignore(format!("client chose server {sid}"));
                }
            }
            let wanted = c.requested_ip.or((!c.ciaddr.is_unspecified()).then_some(c.ciaddr));
            let Some(ip) = wanted else { return Decision::Ignore("REQUEST without an address".into()) };
            let nak = Decision::Reply {
                msg_type: MessageType::Nak,
                yiaddr: Ipv4Addr::UNSPECIFIED,
                lease_secs: None,
                boot: None,
            };
            if let Some(rip) = reserved(&c.mac, s, p) {
                if rip != ip {
                    return nak;
                }
            } else if !p.in_range(ip) {
                return nak;
            }
            if !usable_for(ip, &c.mac, s, p, book, now) {
                return nak;
            }
            book.put(Lease { ip, mac: c.mac, hold: Hold::Bound, expires_ms: now + i64::from(p.lease_secs) * 1000 });
            Decision::Reply { msg_type: MessageType::Ack, yiaddr: ip, lease_secs: Some(p.lease_secs), boot }
        }
        MessageType::Release => {
            book.remove(&c.mac, c.ciaddr);
            Decision::Ignore("released".into())
        }
        MessageType::Decline => decline(c, s, p, book, now),
        MessageType::Inform => {
            Decision::Reply { msg_type: MessageType::Ack, yiaddr: Ipv4Addr::UNSPECIFIED, lease_secs: None, boot }
        }
        other => Decision::Ignore(format!("{other:?} is not a client message we answer")),
    }
}

/// DHCPDECLINE (RFC 2131 §4.3.3): the client found its address in use, so
/// the address is set aside for a while. Only the client holding the address
/// (leases are keyed by chaddr) may decline it, and only a pool address: a
/// DECLINE names an address, not a lease, and anyone on the segment can send
/// one, so otherwise any host could take another's bound lease away or fill
/// the lease table with addresses that are not ours.
fn decline(c: &ClientInfo, s: &DhcpSettings, p: &Pool, book: &mut dyn LeaseBook, now: i64) -> Decision {
    let Some(ip) = c.requested_ip else { return Decision::Ignore("DECLINE without an address".into()) };
    if let Some(sid) = c.server_id.filter(|sid| *sid != s.server_ip) {
        return Decision::Ignore(format!("DECLINE of {ip} for server {sid}"));
    }
    if !p.in_range(ip) {
        return Decision::Ignore(format!("DECLINE of {ip}, outside the pool: ignored"));
    }
    match book.by_ip(ip, now) {
        Some(l) if l.mac == c.mac && l.hold != Hold::Declined => {
            book.remove(&c.mac, ip);
            book.put(Lease { ip, mac: MacAddr([0; 6]), hold: Hold::Declined, expires_ms: now + DECLINE_HOLD_MS });
            Decision::Ignore(format!("declined; {ip} quarantined"))
        }
        _ => Decision::Ignore(format!("DECLINE of {ip} from a client that does not hold it: ignored")),
    }
}

/// Proxy-mode decision (PXE spec): boot information only, never an address,
/// and only for network-boot clients. `boot_server_port`: the packet came
/// to 4011, where ProxyDHCPREQUESTs go; on 67 a REQUEST belongs to the DHCP
/// server that offered the address. Every answer says `PXEClient` (option
/// 60): without it PXE ROMs and iPXE do not take it as a ProxyDHCP answer.
pub fn decide_proxy(c: &ClientInfo, s: &DhcpSettings, boot_server_port: bool) -> Decision {
    let Some(mut boot) = boot_info(c, s) else { return Decision::Ignore("not a PXE client".into()) };
    if c.msg_type == MessageType::Request && !boot_server_port {
        return Decision::Ignore("REQUEST on port 67 is for the DHCP server".into());
    }
    boot.vendor_class.get_or_insert("PXEClient");
    match c.msg_type {
        MessageType::Discover => Decision::Reply {
            msg_type: MessageType::Offer,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            lease_secs: None,
            boot: Some(boot),
        },
        MessageType::Request | MessageType::Inform => Decision::Reply {
            msg_type: MessageType::Ack,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            lease_secs: None,
            boot: Some(boot),
        },
        other => Decision::Ignore(format!("{other:?} ignored in proxy mode")),
    }
}
