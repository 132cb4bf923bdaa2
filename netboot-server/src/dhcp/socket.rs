//! The DHCP sockets: UDP 67 and the PXE boot server port 4011, bound to the
//! provisioning interface (SO_BINDTODEVICE), replies broadcast to clients
//! without an address, unicast to relays (giaddr) and renewing clients.
//! Each datagram is decided in memory as it arrives; answers that depend on
//! a lease change wait for the group commit (`ledger`).

use super::classify::classify;
use super::decide::{decide_proxy, Decision};
use super::leases::{now_ms, LeaseChange};
use super::ledger::{Ledger, Pending};
use super::reply::reply;
use super::subnets::{append_option, raw_option};
use super::{DhcpMode, DhcpSettings};
use anyhow::{Context, Result};
use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Binds UDP `port` on `iface`.
pub fn bind(iface: &str, port: u16) -> Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_broadcast(true)?;
    s.bind_device(Some(iface.as_bytes())).with_context(|| format!("binding DHCP to interface {iface}"))?;
    s.bind(&SocketAddr::from(([0, 0, 0, 0], port)).into())
        .with_context(|| format!("binding UDP port {port} on {iface}"))?;
    s.set_nonblocking(true)?;
    Ok(UdpSocket::from_std(s.into())?)
}

/// What a datagram calls for: a reply (and where to send it), and the lease
/// changes that must be durable before it leaves (see `ledger`).
#[derive(Debug)]
pub struct Prepared {
    /// The reply bytes and destination, if we answer.
    pub reply: Option<(Vec<u8>, SocketAddr)>,
    /// Lease changes to commit first (empty: send at once).
    pub changes: Vec<LeaseChange>,
    /// The datagram's message type, for the metrics (`invalid`: not one
    /// we could read).
    pub message: &'static str,
    /// What came of it, for the metrics: the reply's type (`offer`, `ack`,
    /// `nak`; `proxy` for proxyDHCP and boot-server answers), `ignored` or
    /// `error`.
    pub outcome: &'static str,
}

impl Default for Prepared {
    fn default() -> Prepared {
        Prepared { reply: None, changes: Vec::new(), message: "invalid", outcome: "ignored" }
    }
}

/// A DHCP message type in the metrics' words.
fn message_name(t: &MessageType) -> &'static str {
    match t {
        MessageType::Discover => "discover",
        MessageType::Request => "request",
        MessageType::Decline => "decline",
        MessageType::Release => "release",
        MessageType::Inform => "inform",
        _ => "other",
    }
}

/// Handles one datagram, writing its lease changes before it returns; the
/// reply and where to send it.
pub fn handle(
    buf: &[u8],
    src: SocketAddr,
    local_port: u16,
    mode: DhcpMode,
    s: &DhcpSettings,
    ledger: &Ledger,
) -> Option<(Vec<u8>, SocketAddr)> {
    let p = prepare(buf, src, local_port, mode, s, ledger, now_ms());
    if !p.changes.is_empty() {
        if let Err(e) = ledger.commit(&p.changes) {
            tracing::error!(error = format!("{e:#}"), "lease database");
            return None;
        }
    }
    p.reply
}

/// Decides on one datagram against the book in memory; writes nothing.
pub fn prepare(
    buf: &[u8],
    src: SocketAddr,
    local_port: u16,
    mode: DhcpMode,
    s: &DhcpSettings,
    ledger: &Ledger,
    now_ms: i64,
) -> Prepared {
    let msg = match Message::decode(&mut Decoder::new(buf)) {
        Ok(m) => m,
        Err(e) => {
            tracing::debug!(%src, error = %e, "ignoring undecodable DHCP packet");
            return Prepared::default();
        }
    };
    let info = match classify(&msg) {
        Ok(i) => i,
        Err(e) => {
            tracing::debug!(%src, reason = %e, "ignoring DHCP packet");
            return Prepared::default();
        }
    };
    let span = tracing::debug_span!("dhcp", mac = %info.mac, msg = ?info.msg_type);
    let _g = span.enter();
    let message = message_name(&info.msg_type);
    let ignored = |changes| Prepared { reply: None, changes, message, outcome: "ignored" };
    // Port 4011 is the PXE boot server: boot information only, whatever the
    // mode (EDK2 asks there again after an offer carrying `PXEClient`).
    let boot_server = local_port == 4011;
    let proxy = mode == DhcpMode::Proxy || boot_server;
    if !proxy && s.pool_for(info.giaddr, info.ciaddr).is_none() {
        tracing::warn!(relay = %info.giaddr, mac = %info.mac, "DHCP request relayed from a subnet of no pool ([dhcp] subnet or [[dhcp.subnets]]): not answered");
    }
    let (decision, changes) =
        if proxy { (decide_proxy(&info, s, boot_server), Vec::new()) } else { ledger.decide(&info, s, now_ms) };
    if info.msg_type == MessageType::Decline {
        // A client that declines found its address in use or did not like
        // the answer; firmware says which in option 56 (EDK2 does).
        let said = match msg.opts().get(OptionCode::Message) {
            Some(DhcpOption::Message(m)) => m.as_str(),
            _ => "-",
        };
        tracing::warn!(mac = %info.mac, ip = ?info.requested_ip, client_says = said, outcome = ?decision, "DHCP DECLINE");
    }
    if let Decision::Ignore(why) = &decision {
        tracing::debug!(reason = %why, "not answering");
        return ignored(changes);
    }
    let Some(out) = reply(&msg, &decision, s, info.guid.as_deref(), proxy) else {
        return ignored(changes);
    };
    let bytes = match out.to_vec() {
        Ok(mut b) => {
            // RFC 3046 §2.2: option 82 goes back to the relay as it came,
            // byte for byte, as the last option
            if let Some(agent) = raw_option(buf, u8::from(OptionCode::RelayAgentInformation)) {
                if append_option(&mut b, u8::from(OptionCode::RelayAgentInformation), agent) {
                    let hex: String = agent.iter().map(|x| format!("{x:02x}")).collect();
                    tracing::debug!(relay = %info.giaddr, agent = %hex, "option 82 echoed");
                }
            }
            b
        }
        Err(e) => {
            tracing::error!(error = %e, "encoding DHCP reply");
            return Prepared { outcome: "error", ..ignored(changes) };
        }
    };
    let outcome = match &decision {
        _ if proxy => "proxy",
        Decision::Reply { msg_type: MessageType::Offer, .. } => "offer",
        Decision::Reply { msg_type: MessageType::Ack, .. } => "ack",
        Decision::Reply { msg_type: MessageType::Nak, .. } => "nak",
        _ => "other",
    };
    if let Decision::Reply { msg_type, yiaddr, boot, .. } = &decision {
        tracing::info!(mac = %info.mac, reply = ?msg_type, ip = %yiaddr, boot = boot.as_ref().map(|b| b.filename.as_str()).unwrap_or("-"), "dhcp");
    }
    let dest = if !info.giaddr.is_unspecified() {
        SocketAddr::V4(SocketAddrV4::new(info.giaddr, 67))
    } else if boot_server || src.port() == 4011 || (proxy && src.port() != 68) {
        src
    } else if !info.ciaddr.is_unspecified() && !matches!(decision, Decision::Reply { msg_type: MessageType::Nak, .. }) {
        SocketAddr::V4(SocketAddrV4::new(info.ciaddr, 68))
    } else {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::BROADCAST, 68))
    };
    Prepared { reply: Some((bytes, dest)), changes, message, outcome }
}

/// Serves until the task is dropped. Decisions are made here, in memory;
/// an answer whose lease changes must be durable goes to the lease writer
/// (`ledger::write_batches`), every other answer leaves at once.
pub async fn serve(
    sock: UdpSocket,
    mode: DhcpMode,
    settings: Arc<crate::live::Live<DhcpSettings>>,
    ledger: Arc<Ledger>,
    writer: mpsc::Sender<Pending>,
    metrics: Arc<crate::metrics::Metrics>,
) -> Result<()> {
    let sock = Arc::new(sock);
    let local_port = sock.local_addr()?.port();
    let mut buf = vec![0u8; 1500];
    loop {
        let (n, src) = sock.recv_from(&mut buf).await.context("receiving DHCP")?;
        // the reservations current now: a reload swaps them between datagrams
        let p = prepare(&buf[..n], src, local_port, mode, &settings.load(), &ledger, now_ms());
        if !p.changes.is_empty() {
            // counted by the lease writer, once the changes are durable
            let pending = Pending {
                changes: p.changes,
                reply: p.reply,
                sock: sock.clone(),
                counted: (p.message, p.outcome),
                metrics: metrics.clone(),
            };
            writer.send(pending).await.map_err(|_| anyhow::anyhow!("the lease writer stopped"))?;
        } else {
            metrics.dhcp(p.message, p.outcome);
            if let Some((bytes, dest)) = p.reply {
                if let Err(e) = sock.send_to(&bytes, dest).await {
                    tracing::warn!(%dest, error = %e, "sending DHCP reply");
                }
            }
        }
    }
}
