//! The DHCP sockets: UDP 67 and the PXE boot server port 4011, bound to the
//! provisioning interface (SO_BINDTODEVICE), replies broadcast to clients
//! without an address, unicast to relays (giaddr) and renewing clients.

use super::classify::classify;
use super::decide::{decide, decide_proxy, Decision};
use super::reply::reply;
use super::{DhcpMode, DhcpSettings};
use crate::state::Store;
use anyhow::{Context, Result};
use dhcproto::v4::{Message, MessageType};
use dhcproto::{Decodable, Decoder, Encodable};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use tokio::net::UdpSocket;

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

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Handles one datagram; returns the reply and where to send it.
pub fn handle(
    buf: &[u8],
    src: SocketAddr,
    local_port: u16,
    mode: DhcpMode,
    s: &DhcpSettings,
    store: &Store,
) -> Option<(Vec<u8>, SocketAddr)> {
    let msg = match Message::decode(&mut Decoder::new(buf)) {
        Ok(m) => m,
        Err(e) => {
            tracing::debug!(%src, error = %e, "ignoring undecodable DHCP packet");
            return None;
        }
    };
    let info = match classify(&msg) {
        Ok(i) => i,
        Err(e) => {
            tracing::debug!(%src, reason = %e, "ignoring DHCP packet");
            return None;
        }
    };
    let span = tracing::debug_span!("dhcp", mac = %info.mac, msg = ?info.msg_type);
    let _g = span.enter();
    // Port 4011 is the PXE boot server: boot information only, whatever the
    // mode (EDK2 asks there again after an offer carrying `PXEClient`).
    let boot_server = local_port == 4011;
    let proxy = mode == DhcpMode::Proxy || boot_server;
    let decision = if proxy {
        decide_proxy(&info, s, boot_server)
    } else {
        match store.with_leases(|book| decide(&info, s, book, now_ms())) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "lease database");
                return None;
            }
        }
    };
    if let Decision::Ignore(why) = &decision {
        tracing::debug!(reason = %why, "not answering");
        return None;
    }
    let out = reply(&msg, &decision, s, info.guid.as_deref(), proxy)?;
    let bytes = match out.to_vec() {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "encoding DHCP reply");
            return None;
        }
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
    Some((bytes, dest))
}

/// Serves until the task is dropped.
pub async fn serve(sock: UdpSocket, mode: DhcpMode, settings: Arc<DhcpSettings>, store: Store) -> Result<()> {
    let local_port = sock.local_addr()?.port();
    let mut buf = vec![0u8; 1500];
    loop {
        let (n, src) = sock.recv_from(&mut buf).await.context("receiving DHCP")?;
        let packet = buf[..n].to_vec();
        let (s, st) = (settings.clone(), store.clone());
        let out =
            tokio::task::spawn_blocking(move || handle(&packet, src, local_port, mode, &s, &st)).await.ok().flatten();
        if let Some((bytes, dest)) = out {
            if let Err(e) = sock.send_to(&bytes, dest).await {
                tracing::warn!(%dest, error = %e, "sending DHCP reply");
            }
        }
    }
}
