//! Building the reply packet for a decision (RFC 2131 §4.3.1 table 3), with
//! iPXE's encapsulated option 175.176 (`no-pxedhcp`) so iPXE does not wait
//! for proxyDHCP offers when we gave it everything.

use super::decide::{BootInfo, Decision};
use super::DhcpSettings;
use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode, UnknownOption};
use std::net::Ipv4Addr;

/// The reply message for `req`, or None when the decision is to ignore.
pub fn reply(req: &Message, d: &Decision, s: &DhcpSettings, guid: Option<&[u8]>, proxy: bool) -> Option<Message> {
    let Decision::Reply { msg_type, yiaddr, lease_secs, boot } = d else { return None };
    let mut m = Message::default();
    m.set_opcode(Opcode::BootReply)
        .set_htype(req.htype())
        .set_xid(req.xid())
        .set_flags(req.flags())
        .set_chaddr(req.chaddr())
        .set_giaddr(req.giaddr())
        .set_yiaddr(*yiaddr);
    if *msg_type == MessageType::Ack && req.opts().has_msg_type(MessageType::Inform) {
        m.set_ciaddr(req.ciaddr());
    }
    let o = m.opts_mut();
    o.insert(DhcpOption::MessageType(*msg_type));
    o.insert(DhcpOption::ServerIdentifier(s.server_ip));
    if *msg_type == MessageType::Nak {
        // RFC 2131 §4.3.2: a NAK through a relay asks it to broadcast (the
        // client may have no usable address)
        if !req.giaddr().is_unspecified() {
            m.set_flags(req.flags().set_broadcast());
        }
        return Some(m);
    }
    // the pool `decide` answered from: the relay's subnet, or our own
    if let (false, Some(p)) = (proxy, s.pool_for(req.giaddr(), req.ciaddr())) {
        o.insert(DhcpOption::SubnetMask(p.subnet.netmask_v4().unwrap_or(Ipv4Addr::new(255, 255, 255, 0))));
        if let Some(r) = p.router {
            o.insert(DhcpOption::Router(vec![r]));
        }
        if !p.dns.is_empty() {
            o.insert(DhcpOption::DomainNameServer(p.dns.clone()));
        }
        if let Some(secs) = lease_secs {
            o.insert(DhcpOption::AddressLeaseTime(*secs));
            o.insert(DhcpOption::Renewal(secs / 2));
            o.insert(DhcpOption::Rebinding(secs / 8 * 7));
        }
    }
    if let Some(BootInfo { filename, next_server, vendor_class }) = boot {
        m.set_siaddr(*next_server);
        if filename.len() < 128 {
            m.set_fname_str(filename);
        }
        let o = m.opts_mut();
        o.insert(DhcpOption::BootfileName(filename.as_bytes().to_vec()));
        if let Some(vc) = vendor_class {
            o.insert(DhcpOption::ClassIdentifier(vc.as_bytes().to_vec()));
        }
        if let Some(g) = guid {
            o.insert(DhcpOption::ClientMachineIdentifier(g.to_vec()));
        }
        // iPXE: encapsulated 175.176 no-pxedhcp = 1 (we gave it everything;
        // not on proxy answers, which must leave ProxyDHCP on)
        if !proxy {
            o.insert(DhcpOption::Unknown(UnknownOption::new(OptionCode::Unknown(175), vec![176, 1, 1])));
        }
    }
    Some(m)
}
