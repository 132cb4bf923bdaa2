//! ICMPv6 Router Solicitation and Router Advertisement messages (RFC 4861
//! §4.1, §4.2), validated as §6.1.1 and §6.1.2 require, and the one
//! advertisement we send: one that announces nothing.
//!
//! Bytes start at the ICMPv6 header (a raw ICMPv6 socket delivers no IPv6
//! header). The checksum is left to the kernel: it fills it in on send and
//! drops packets with a bad one before a raw ICMPv6 socket sees them
//! (RFC 3542 §3.1), so it is neither computed nor checked here.

use std::net::Ipv6Addr;

/// ICMPv6 type of a Router Solicitation.
pub const ROUTER_SOLICITATION: u8 = 133;
/// ICMPv6 type of a Router Advertisement.
pub const ROUTER_ADVERTISEMENT: u8 = 134;
const OPT_SOURCE_LINK_ADDR: u8 = 1;
const OPT_PREFIX_INFORMATION: u8 = 3;
const RS_LEN: usize = 8;
const RA_LEN: usize = 16;

/// A validated message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A host asks routers to advertise now.
    Solicitation {
        /// Its link-layer address, if it sent one.
        source_link_addr: Option<Vec<u8>>,
    },
    /// A router advertises.
    Advertisement(Advertisement),
}

/// The fields of a Router Advertisement we look at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Advertisement {
    /// Hop limit hosts should use (0: unspecified).
    pub cur_hop_limit: u8,
    /// M: addresses from DHCPv6.
    pub managed: bool,
    /// O: other configuration from DHCPv6.
    pub other: bool,
    /// Seconds the sender is a default router (0: not one).
    pub router_lifetime: u16,
    /// Reachable time in ms (0: unspecified).
    pub reachable_ms: u32,
    /// Retransmission timer in ms (0: unspecified).
    pub retrans_ms: u32,
    /// Prefix Information options: prefix and length.
    pub prefixes: Vec<(Ipv6Addr, u8)>,
    /// The sender's link-layer address, if it sent one.
    pub source_link_addr: Option<Vec<u8>>,
}

impl Advertisement {
    /// True for an advertisement that tells hosts nothing: not a default
    /// router, no prefix, no DHCPv6. Hosts stop soliciting and configure
    /// nothing from it.
    pub fn announces_nothing(&self) -> bool {
        self.router_lifetime == 0 && self.prefixes.is_empty() && !self.managed && !self.other
    }
}

/// Why a packet is not a valid solicitation or advertisement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Hop limit below 255: forwarded by a router, so not from this link.
    #[error("hop limit {0}, not 255: not sent on this link (RFC 4861 6.1)")]
    HopLimit(u8),
    /// A code other than 0.
    #[error("ICMPv6 code {0}, not 0")]
    Code(u8),
    /// Another ICMPv6 type.
    #[error("ICMPv6 type {0} is neither a router solicitation nor an advertisement")]
    Type(u8),
    /// Shorter than the fixed part.
    #[error("{len} bytes, shorter than the {min} of a {what}")]
    TooShort {
        /// Bytes received.
        len: usize,
        /// Bytes needed.
        min: usize,
        /// Message kind.
        what: &'static str,
    },
    /// An option of length 0 or running past the end.
    #[error("malformed option at byte {0}")]
    BadOption(usize),
    /// A solicitation from `::` may not carry a link-layer address.
    #[error("solicitation from the unspecified address carries a source link-layer address")]
    UnspecifiedWithLinkAddr,
    /// Advertisements come from link-local addresses only.
    #[error("advertisement from {0}, which is not link-local")]
    NotLinkLocal(Ipv6Addr),
}

/// Parses and validates `bytes` received from `src` with IPv6 hop limit
/// `hop_limit`.
pub fn parse(bytes: &[u8], src: Ipv6Addr, hop_limit: u8) -> Result<Message, ParseError> {
    let Some(&kind) = bytes.first() else {
        return Err(ParseError::TooShort { len: 0, min: RS_LEN, what: "router solicitation" });
    };
    let (min, what) = match kind {
        ROUTER_SOLICITATION => (RS_LEN, "router solicitation"),
        ROUTER_ADVERTISEMENT => (RA_LEN, "router advertisement"),
        other => return Err(ParseError::Type(other)),
    };
    if hop_limit != 255 {
        return Err(ParseError::HopLimit(hop_limit));
    }
    if bytes.len() < min {
        return Err(ParseError::TooShort { len: bytes.len(), min, what });
    }
    if bytes[1] != 0 {
        return Err(ParseError::Code(bytes[1]));
    }
    let options = options(bytes, min)?;
    let source_link_addr =
        options.iter().find(|(t, _)| *t == OPT_SOURCE_LINK_ADDR).map(|(_, body)| trim_link_addr(body));
    if kind == ROUTER_SOLICITATION {
        if src.is_unspecified() && source_link_addr.is_some() {
            return Err(ParseError::UnspecifiedWithLinkAddr);
        }
        return Ok(Message::Solicitation { source_link_addr });
    }
    if !is_link_local(src) {
        return Err(ParseError::NotLinkLocal(src));
    }
    let prefixes = options
        .iter()
        .filter(|(t, body)| *t == OPT_PREFIX_INFORMATION && body.len() >= 30)
        .map(|(_, body)| {
            let mut p = [0u8; 16];
            p.copy_from_slice(&body[14..30]);
            (Ipv6Addr::from(p), body[0])
        })
        .collect();
    Ok(Message::Advertisement(Advertisement {
        cur_hop_limit: bytes[4],
        managed: bytes[5] & 0x80 != 0,
        other: bytes[5] & 0x40 != 0,
        router_lifetime: u16::from_be_bytes([bytes[6], bytes[7]]),
        reachable_ms: u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
        retrans_ms: u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]),
        prefixes,
        source_link_addr,
    }))
}

/// fe80::/10.
pub fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// Options after the fixed part: (type, bytes after type and length).
/// Every option must have a non-zero length and end inside the packet.
fn options(bytes: &[u8], start: usize) -> Result<Vec<(u8, &[u8])>, ParseError> {
    let mut out = Vec::new();
    let mut at = start;
    while at < bytes.len() {
        let len = usize::from(*bytes.get(at + 1).ok_or(ParseError::BadOption(at))?) * 8;
        if len == 0 || at + len > bytes.len() {
            return Err(ParseError::BadOption(at));
        }
        out.push((bytes[at], &bytes[at + 2..at + len]));
        at += len;
    }
    Ok(out)
}

/// An Ethernet address option is padded to 8 bytes: keep the 6 that count.
fn trim_link_addr(body: &[u8]) -> Vec<u8> {
    body[..body.len().min(6)].to_vec()
}

/// Our advertisement: cur hop limit 0 (unspecified), M and O clear, router
/// lifetime 0 (not a default router), reachable time and retrans timer 0
/// (unspecified), no prefix; with our link-layer address when we know it,
/// so a host need not resolve us. Checksum 0: the kernel fills it in.
pub fn build_advertisement(source_link_addr: Option<[u8; 6]>) -> Vec<u8> {
    let mut b = vec![0u8; RA_LEN];
    b[0] = ROUTER_ADVERTISEMENT;
    if let Some(mac) = source_link_addr {
        b.extend_from_slice(&[OPT_SOURCE_LINK_ADDR, 1]);
        b.extend_from_slice(&mac);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x5054, 0xff, 0xfe12, 0x3456);

    /// A solicitation as iPXE sends it: type 133, code 0, checksum, reserved,
    /// source link-layer address 52:54:00:12:34:56.
    const IPXE_RS: [u8; 16] = [133, 0, 0x12, 0x34, 0, 0, 0, 0, 1, 1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

    /// An advertisement as radvd sends one for 2001:db8:1::/64: cur hop
    /// limit 64, router lifetime 1800, source link-layer address, MTU 1500,
    /// and the prefix (valid 86400, preferred 14400, L and A set).
    fn radvd_ra() -> Vec<u8> {
        let mut b = vec![134, 0, 0xab, 0xcd, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&[1, 1, 0x02, 0, 0, 0, 0, 1]);
        b.extend_from_slice(&[5, 1, 0, 0, 0, 0, 0x05, 0xdc]);
        b.extend_from_slice(&[3, 4, 64, 0xc0, 0, 1, 0x51, 0x80, 0, 0, 0x38, 0x40, 0, 0, 0, 0]);
        b.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0).octets());
        b
    }

    #[test]
    fn parses_ipxe_solicitation() {
        let m = parse(&IPXE_RS, HOST, 255).unwrap();
        assert_eq!(m, Message::Solicitation { source_link_addr: Some(vec![0x52, 0x54, 0, 0x12, 0x34, 0x56]) });
        let bare = parse(&IPXE_RS[..8], Ipv6Addr::UNSPECIFIED, 255).unwrap();
        assert_eq!(bare, Message::Solicitation { source_link_addr: None });
    }

    #[test]
    fn parses_radvd_advertisement() {
        let Message::Advertisement(a) = parse(&radvd_ra(), HOST, 255).unwrap() else { panic!("not an RA") };
        assert_eq!((a.cur_hop_limit, a.router_lifetime, a.managed, a.other), (64, 1800, false, false));
        assert_eq!(a.prefixes, vec![(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0), 64)]);
        assert_eq!(a.source_link_addr, Some(vec![2, 0, 0, 0, 0, 1]));
        assert!(!a.announces_nothing());
    }

    #[test]
    fn rejects_what_rfc4861_section_6_1_rejects() {
        assert_eq!(parse(&IPXE_RS, HOST, 64), Err(ParseError::HopLimit(64)));
        let mut coded = IPXE_RS;
        coded[1] = 1;
        assert_eq!(parse(&coded, HOST, 255), Err(ParseError::Code(1)));
        assert!(matches!(parse(&IPXE_RS[..6], HOST, 255), Err(ParseError::TooShort { len: 6, .. })));
        assert!(matches!(parse(&radvd_ra()[..12], HOST, 255), Err(ParseError::TooShort { min: 16, .. })));
        assert_eq!(parse(&IPXE_RS, Ipv6Addr::UNSPECIFIED, 255), Err(ParseError::UnspecifiedWithLinkAddr));
        let mut zero_len = IPXE_RS;
        zero_len[9] = 0;
        assert_eq!(parse(&zero_len, HOST, 255), Err(ParseError::BadOption(8)));
        assert_eq!(parse(&IPXE_RS[..12], HOST, 255), Err(ParseError::BadOption(8)));
        let global: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(parse(&radvd_ra(), global, 255), Err(ParseError::NotLinkLocal(global)));
        assert_eq!(parse(&[128, 0, 0, 0, 0, 1, 0, 1], HOST, 64), Err(ParseError::Type(128)));
    }

    #[test]
    fn our_advertisement_announces_nothing() {
        let b = build_advertisement(Some([2, 0xdc, 0, 0, 0, 1]));
        assert_eq!(b, [134, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 0xdc, 0, 0, 0, 1]);
        let Message::Advertisement(a) = parse(&b, HOST, 255).unwrap() else { panic!("not an RA") };
        assert!(a.announces_nothing());
        assert_eq!((a.cur_hop_limit, a.reachable_ms, a.retrans_ms), (0, 0, 0));
        assert_eq!(build_advertisement(None).len(), 16);
    }
}
