//! What kind of client sent a DHCP packet (RFC 2131/2132, RFC 4578): its MAC,
//! message type, and the PXE facts that decide what it boots — option 93
//! (client architecture), 60 (`PXEClient`/`HTTPClient` vendor class), 77
//! (user class `iPXE`), 97 (client GUID, echoed back).

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};
use metalboot_spec::MacAddr;
use std::net::Ipv4Addr;

/// Firmware family, from option 93 and friends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// Legacy BIOS PXE ROM (arch 0).
    BiosPxe,
    /// UEFI PXE (arch 6 IA32, 7/9 x86-64, 11 arm64).
    EfiPxe(u16),
    /// UEFI HTTP Boot (arch 15/16 x86, 19 arm64): wants an HTTP URL.
    EfiHttp(u16),
    /// Not a network-boot client (an OS's DHCP client).
    None,
}

/// The facts `decide` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// DHCP message type.
    pub msg_type: MessageType,
    /// Client hardware address.
    pub mac: MacAddr,
    /// Firmware family.
    pub firmware: Firmware,
    /// Option 93 value, if any.
    pub arch: Option<u16>,
    /// User class says iPXE: it is already running iPXE.
    pub ipxe: bool,
    /// Option 97, echoed in replies (PXE spec).
    pub guid: Option<Vec<u8>>,
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
    /// ciaddr.
    pub ciaddr: Ipv4Addr,
    /// giaddr (relay).
    pub giaddr: Ipv4Addr,
}

/// Why a packet was not classified.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClassifyError {
    /// Not a BOOTREQUEST.
    #[error("not a client request")]
    NotRequest,
    /// No option 53.
    #[error("no DHCP message type (BOOTP is not served)")]
    NoType,
    /// Hardware address not Ethernet.
    #[error("hardware address is not a 6-byte Ethernet MAC")]
    BadMac,
}

/// Classifies a decoded request.
pub fn classify(msg: &Message) -> Result<ClientInfo, ClassifyError> {
    if msg.opcode() != dhcproto::v4::Opcode::BootRequest {
        return Err(ClassifyError::NotRequest);
    }
    let msg_type = msg.opts().msg_type().ok_or(ClassifyError::NoType)?;
    // check hlen before chaddr(): dhcproto slices chaddr by it and panics
    // past 16 (found by the fuzz target)
    if msg.hlen() != 6 {
        return Err(ClassifyError::BadMac);
    }
    let ch = msg.chaddr();
    let mac = MacAddr([ch[0], ch[1], ch[2], ch[3], ch[4], ch[5]]);
    let opts = msg.opts();
    let arch = match opts.get(OptionCode::ClientSystemArchitecture) {
        Some(DhcpOption::ClientSystemArchitecture(a)) => Some(u16::from(*a)),
        _ => None,
    };
    let vendor = match opts.get(OptionCode::ClassIdentifier) {
        Some(DhcpOption::ClassIdentifier(v)) => String::from_utf8_lossy(v).into_owned(),
        _ => String::new(),
    };
    let ipxe = match opts.get(OptionCode::UserClass) {
        // RFC 3004 says length-prefixed entries; iPXE sends the bare string
        Some(DhcpOption::UserClass(v)) => v.windows(4).any(|w| w == b"iPXE"),
        _ => false,
    };
    let firmware = if vendor.starts_with("HTTPClient") {
        EfiHttpOr(arch)
    } else if vendor.starts_with("PXEClient") || arch.is_some() {
        match arch.unwrap_or(0) {
            0 => Firmware::BiosPxe,
            a => Firmware::EfiPxe(a),
        }
    } else {
        Firmware::None
    };
    let guid = match opts.get(OptionCode::ClientMachineIdentifier) {
        Some(DhcpOption::ClientMachineIdentifier(g)) => Some(g.clone()),
        _ => None,
    };
    let requested_ip = match opts.get(OptionCode::RequestedIpAddress) {
        Some(DhcpOption::RequestedIpAddress(ip)) => Some(*ip),
        _ => None,
    };
    let server_id = match opts.get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(ip)) => Some(*ip),
        _ => None,
    };
    Ok(ClientInfo {
        msg_type,
        mac,
        firmware,
        arch,
        ipxe,
        guid,
        requested_ip,
        server_id,
        ciaddr: msg.ciaddr(),
        giaddr: msg.giaddr(),
    })
}

#[allow(non_snake_case)]
fn EfiHttpOr(arch: Option<u16>) -> Firmware {
    Firmware::EfiHttp(arch.unwrap_or(16))
}
