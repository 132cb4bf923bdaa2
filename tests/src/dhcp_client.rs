//! A small DHCP client for tests and benchmarks: sends DISCOVERs (plain or
//! as a PXE ROM would) from port 68 on one interface and collects every
//! answer, or runs many full DISCOVER/OFFER/REQUEST/ACK exchanges for a
//! load figure. Runs inside a namespace of ours (`ip netns exec`).

use anyhow::{Context, Result};
use dhcproto::v4::{Architecture, DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// One answer seen on the wire.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Option 54, else the sender.
    pub server: Ipv4Addr,
    /// Message type.
    pub msg_type: String,
    /// yiaddr.
    pub yiaddr: Ipv4Addr,
    /// siaddr (next server).
    pub siaddr: Ipv4Addr,
    /// Option 67, else the `file` field.
    pub boot_file: String,
    /// Option 60.
    pub class: String,
    /// Lease time, if given.
    pub lease_secs: Option<u32>,
}

impl Answer {
    /// One line of JSON.
    pub fn json(&self) -> String {
        format!(
            "{{\"server\":\"{}\",\"type\":\"{}\",\"yiaddr\":\"{}\",\"siaddr\":\"{}\",\"boot_file\":{:?},\"class\":{:?},\"lease_secs\":{}}}",
            self.server,
            self.msg_type,
            self.yiaddr,
            self.siaddr,
            self.boot_file,
            self.class,
            self.lease_secs.map(|l| l.to_string()).unwrap_or_else(|| "null".into())
        )
    }
}

/// Binds 0.0.0.0:68 on `iface` with broadcast.
pub fn socket(iface: &str) -> Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_broadcast(true)?;
    s.bind_device(Some(iface.as_bytes())).with_context(|| format!("binding to {iface}"))?;
    s.bind(&SocketAddr::from(([0, 0, 0, 0], 68)).into()).context("binding UDP 68")?;
    Ok(s.into())
}

/// A MAC from a number (locally administered).
pub fn mac(n: u32) -> [u8; 6] {
    let b = n.to_be_bytes();
    [0x02, 0xdc, b[0], b[1], b[2], b[3]]
}

/// A DISCOVER (or REQUEST) from `mac`; `pxe_arch` makes it look like a PXE
/// ROM of that architecture (option 60 `PXEClient:Arch:…`, 93, 97).
pub fn message(mac: &[u8; 6], t: MessageType, xid: u32, pxe_arch: Option<u16>) -> Message {
    let mut m = Message::default();
    m.set_opcode(Opcode::BootRequest).set_xid(xid).set_flags(Flags::default().set_broadcast()).set_chaddr(mac);
    m.opts_mut().insert(DhcpOption::MessageType(t));
    m.opts_mut().insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::SubnetMask,
        OptionCode::Router,
        OptionCode::DomainNameServer,
        OptionCode::BootfileName,
        OptionCode::ClassIdentifier,
    ]));
    if let Some(arch) = pxe_arch {
        m.opts_mut().insert(DhcpOption::ClassIdentifier(format!("PXEClient:Arch:{arch:05}:UNDI:002001").into_bytes()));
        m.opts_mut().insert(DhcpOption::ClientSystemArchitecture(Architecture::from(arch)));
        let mut guid = vec![0u8];
        guid.extend_from_slice(&[0x4d; 10]);
        guid.extend_from_slice(mac);
        m.opts_mut().insert(DhcpOption::ClientMachineIdentifier(guid));
    }
    m
}

fn parse(buf: &[u8], from: SocketAddr) -> Option<(u32, [u8; 6], Answer)> {
    let m = Message::decode(&mut Decoder::new(buf)).ok()?;
    if m.opcode() != Opcode::BootReply {
        return None;
    }
    let o = m.opts();
    let server = match o.get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(ip)) => *ip,
        _ => match from {
            SocketAddr::V4(a) => *a.ip(),
            SocketAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        },
    };
    let boot_file = match o.get(OptionCode::BootfileName) {
        Some(DhcpOption::BootfileName(b)) => String::from_utf8_lossy(b).into_owned(),
        _ => m.fname_str().and_then(|r| r.ok()).unwrap_or("").trim_end_matches('\0').to_string(),
    };
    let class = match o.get(OptionCode::ClassIdentifier) {
        Some(DhcpOption::ClassIdentifier(b)) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    let lease_secs = match o.get(OptionCode::AddressLeaseTime) {
        Some(DhcpOption::AddressLeaseTime(s)) => Some(*s),
        _ => None,
    };
    let mut chaddr = [0u8; 6];
    chaddr.copy_from_slice(&m.chaddr()[..6]);
    let a = Answer {
        server,
        msg_type: o.msg_type().map(|t| format!("{t:?}")).unwrap_or_else(|| "BOOTP".into()),
        yiaddr: m.yiaddr(),
        siaddr: m.siaddr(),
        boot_file,
        class,
        lease_secs,
    };
    Some((m.xid(), chaddr, a))
}

/// Sends one DISCOVER and returns every answer to it within `wait`.
pub fn discover(sock: &UdpSocket, mac: &[u8; 6], pxe_arch: Option<u16>, wait: Duration) -> Result<Vec<Answer>> {
    let xid = u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]) ^ 0x5a5a_0000;
    let m = message(mac, MessageType::Discover, xid, pxe_arch);
    sock.send_to(&m.to_vec()?, (Ipv4Addr::BROADCAST, 67))?;
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    let mut buf = [0u8; 1500];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                if let Some((x, ch, a)) = parse(&buf[..n], from) {
                    if x == xid && &ch == mac {
                        out.push(a);
                    }
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// Result of a load run.
#[derive(Debug)]
pub struct Load {
    /// Completed DISCOVER→ACK exchanges.
    pub done: usize,
    /// Clients that got no ACK in time.
    pub failed: usize,
    /// Wall time.
    pub secs: f64,
    /// Distinct addresses acknowledged.
    pub distinct: usize,
}

/// `clients` distinct MACs each do DISCOVER → OFFER → REQUEST → ACK, with at
/// most `window` exchanges in flight; bounded by `limit`.
pub fn load(sock: &UdpSocket, clients: u32, window: usize, limit: Duration) -> Result<Load> {
    #[derive(Clone, Copy)]
    enum St {
        Discovering(Instant),
        Requesting(Instant, Ipv4Addr, Ipv4Addr),
    }
    let start = Instant::now();
    let mut next = 0u32;
    let mut live: HashMap<u32, St> = HashMap::new();
    let mut acked: HashMap<u32, Ipv4Addr> = HashMap::new();
    let mut failed = 0usize;
    let mut buf = [0u8; 1500];
    sock.set_read_timeout(Some(Duration::from_millis(20)))?;
    let send = |xid: u32, t: MessageType, req: Option<(Ipv4Addr, Ipv4Addr)>| -> Result<()> {
        let mut m = message(&mac(xid), t, xid, None);
        if let Some((ip, server)) = req {
            m.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
            m.opts_mut().insert(DhcpOption::ServerIdentifier(server));
        }
        sock.send_to(&m.to_vec()?, (Ipv4Addr::BROADCAST, 67))?;
        Ok(())
    };
    while start.elapsed() < limit && (next < clients || !live.is_empty()) {
        while live.len() < window && next < clients {
            next += 1;
            send(next, MessageType::Discover, None)?;
            live.insert(next, St::Discovering(Instant::now()));
        }
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                if let Some((xid, _, a)) = parse(&buf[..n], from) {
                    match (live.get(&xid).copied(), a.msg_type.as_str()) {
                        (Some(St::Discovering(_)), "Offer") => {
                            send(xid, MessageType::Request, Some((a.yiaddr, a.server)))?;
                            live.insert(xid, St::Requesting(Instant::now(), a.yiaddr, a.server));
                        }
                        (Some(St::Requesting(..)), "Ack") => {
                            live.remove(&xid);
                            acked.insert(xid, a.yiaddr);
                        }
                        (Some(St::Requesting(..)), "Nak") => {
                            live.remove(&xid);
                            failed += 1;
                        }
                        _ => {}
                    }
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(e.into()),
        }
        // retransmit after 2 s, give up after 8 s
        let now = Instant::now();
        let mut dead = Vec::new();
        for (xid, st) in live.iter_mut() {
            let (since, again) = match *st {
                St::Discovering(t) => (t, None),
                St::Requesting(t, ip, sv) => (t, Some((ip, sv))),
            };
            if now - since > Duration::from_secs(8) {
                dead.push(*xid);
            } else if now - since > Duration::from_secs(2) && (now - since).as_millis() % 2000 < 25 {
                let t = if again.is_some() { MessageType::Request } else { MessageType::Discover };
                send(*xid, t, again)?;
            }
        }
        for x in dead {
            live.remove(&x);
            failed += 1;
        }
    }
    failed += live.len();
    let mut ips: Vec<Ipv4Addr> = acked.values().copied().collect();
    ips.sort();
    ips.dedup();
    Ok(Load { done: acked.len(), failed, secs: start.elapsed().as_secs_f64(), distinct: ips.len() })
}
