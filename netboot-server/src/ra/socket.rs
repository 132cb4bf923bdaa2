//! The raw ICMPv6 socket on the provisioning interface: bound to it
//! (SO_BINDTODEVICE), member of ff02::2 (all routers, where solicitations
//! go), filtered to router solicitations and advertisements (ICMP6_FILTER,
//! RFC 3542 §3.2), hop limit 255 on what we send and the received hop limit
//! delivered with each packet (IPV6_RECVHOPLIMIT) so `packet::parse` can
//! check it (RFC 4861 §6.1). Advertisements are sent from the interface's
//! link-local address, which the kernel picks as source for link-scope
//! destinations; none can be sent before it exists and has passed duplicate
//! address detection, so the loop waits for that first.
// The ICMPv6 filter and the hop-limit control message have no safe wrapper in
// socket2 or nix: setsockopt/recvmsg through libc, each block with its SAFETY.
#![allow(unsafe_code)]

use super::decide::{Advertiser, Dest, Verdict};
use super::packet::{build_advertisement, ROUTER_ADVERTISEMENT, ROUTER_SOLICITATION};
use super::{interface_addrs6, Inet6Addr};
use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::time::Duration;
use tokio::io::unix::AsyncFd;

const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// `ICMP6_FILTER` from <netinet/icmp6.h> (not in the libc crate).
const ICMP6_FILTER: libc::c_int = 1;
/// How often to look for a usable link-local address.
const ADDRESS_POLL: Duration = Duration::from_millis(250);

/// An open socket and the interface it serves.
pub struct RaSocket {
    sock: Socket,
    iface: String,
    ifindex: u32,
}

/// Opens the socket on `iface` (needs CAP_NET_RAW).
pub fn open(iface: &str) -> Result<RaSocket> {
    let ifindex = nix::net::if_::if_nametoindex(iface).with_context(|| format!("looking up interface {iface}"))?;
    let sock = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
        .context("opening a raw ICMPv6 socket for router advertisements")?;
    sock.bind_device(Some(iface.as_bytes())).with_context(|| format!("binding ICMPv6 to interface {iface}"))?;
    sock.set_multicast_hops_v6(255).context("setting IPV6_MULTICAST_HOPS")?;
    sock.set_unicast_hops_v6(255).context("setting IPV6_UNICAST_HOPS")?;
    sock.set_multicast_loop_v6(false).context("setting IPV6_MULTICAST_LOOP")?;
    sock.set_multicast_if_v6(ifindex).context("setting IPV6_MULTICAST_IF")?;
    sock.join_multicast_v6(&ALL_ROUTERS, ifindex).with_context(|| format!("joining ff02::2 on {iface}"))?;
    sock.set_recv_hoplimit_v6(true).context("setting IPV6_RECVHOPLIMIT")?;
    set_filter(&sock, &[ROUTER_SOLICITATION, ROUTER_ADVERTISEMENT]).context("setting ICMP6_FILTER")?;
    sock.set_nonblocking(true)?;
    Ok(RaSocket { sock, iface: iface.to_string(), ifindex })
}

/// Passes only the ICMPv6 `types` (Linux: a set bit blocks its type).
fn set_filter(sock: &Socket, types: &[u8]) -> std::io::Result<()> {
    let mut filter = [u32::MAX; 8];
    for t in types {
        filter[usize::from(*t) >> 5] &= !(1u32 << (t & 31));
    }
    // SAFETY: `filter` is a live `struct icmp6_filter` (eight u32s).
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_ICMPV6,
            ICMP6_FILTER,
            filter.as_ptr().cast(),
            std::mem::size_of_val(&filter) as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// One datagram: bytes, source address and received hop limit (0 if the
/// kernel did not say).
fn recv(sock: &Socket, buf: &mut [u8]) -> std::io::Result<(usize, Ipv6Addr, u8)> {
    // SAFETY: msghdr points at live, correctly sized buffers for the whole
    // call; the cmsg walk stays inside `control` via CMSG_FIRSTHDR/NXTHDR.
    unsafe {
        let mut from: libc::sockaddr_in6 = std::mem::zeroed();
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        let mut control = [0u64; 16];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = (&mut from as *mut libc::sockaddr_in6).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, 0);
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut hop_limit = 0u8;
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::IPPROTO_IPV6 && (*c).cmsg_type == libc::IPV6_HOPLIMIT {
                let v = (libc::CMSG_DATA(c) as *const libc::c_int).read_unaligned();
                hop_limit = u8::try_from(v).unwrap_or(0);
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        Ok((n as usize, Ipv6Addr::from(from.sin6_addr.s6_addr), hop_limit))
    }
}

fn read_addrs(iface: &str) -> std::io::Result<Vec<Inet6Addr>> {
    Ok(interface_addrs6(&std::fs::read_to_string("/proc/net/if_inet6")?, iface))
}

/// Waits until `iface` has a link-local address we can send from; `None`
/// (with a warning) where IPv6 is off on it.
async fn wait_for_link_local(iface: &str) -> Option<(Ipv6Addr, Vec<Ipv6Addr>)> {
    let disabled = format!("/proc/sys/net/ipv6/conf/{iface}/disable_ipv6");
    let mut warned = false;
    loop {
        if std::fs::read_to_string(&disabled).map(|v| v.trim() == "1").unwrap_or(true) {
            tracing::warn!(interface = %iface, "IPv6 is off on this interface: no router advertisements");
            return None;
        }
        let addrs = match read_addrs(iface) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(interface = %iface, error = %e, "reading /proc/net/if_inet6: no router advertisements");
                return None;
            }
        };
        if let Some(ll) = addrs.iter().find(|a| a.usable_link_local()) {
            return Some((ll.addr, addrs.iter().map(|a| a.addr).collect()));
        }
        if !warned {
            let has_any = addrs.iter().any(|a| super::packet::is_link_local(a.addr));
            if has_any {
                tracing::info!(interface = %iface, "IPv6 link-local address still tentative (DAD, or no port up); router advertisements wait for it");
            } else {
                tracing::warn!(interface = %iface, "no IPv6 link-local address: router advertisements wait for one");
            }
            warned = true;
        }
        tokio::time::sleep(ADDRESS_POLL).await;
    }
}

/// The interface's Ethernet address, for the source link-layer option.
fn read_mac(iface: &str) -> Option<[u8; 6]> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{iface}/address")).ok()?;
    text.trim().parse::<metalboot_spec::MacAddr>().ok().map(|m| m.0)
}

impl RaSocket {
    /// Advertises until another router is seen on the link (then returns).
    pub async fn serve(self) -> Result<()> {
        let RaSocket { sock, iface, ifindex } = self;
        let Some((link_local, ours)) = wait_for_link_local(&iface).await else { return Ok(()) };
        let ra = build_advertisement(read_mac(&iface));
        // SAFETY: the AsyncFd owns the socket, so its descriptor stays open
        // and the same for as long as the AsyncFd lives.
        let fd = unsafe { AsyncFd::register(sock) }
            .map_err(std::io::Error::from)
            .context("registering the ICMPv6 socket")?;
        let start = tokio::time::Instant::now();
        let mut adv = Advertiser::new(link_local, ours, Duration::ZERO);
        let mut rng = StdRng::from_entropy();
        let mut buf = vec![0u8; 1500];
        tracing::info!(interface = %iface, from = %link_local, "router advertisements on (router lifetime 0, no prefix)");
        loop {
            for dest in adv.take_due(start.elapsed(), &mut rng) {
                let to = match dest {
                    Dest::AllNodes => ALL_NODES,
                    Dest::Host(a) => a,
                };
                let addr = SockAddr::from(SocketAddrV6::new(to, 0, 0, ifindex));
                match fd.get_ref().send_to(&ra, &addr) {
                    Ok(_) => tracing::debug!(interface = %iface, %to, "router advertisement sent"),
                    Err(e) => tracing::warn!(interface = %iface, %to, error = %e, "sending router advertisement"),
                }
            }
            let Some(next) = adv.next_wakeup() else {
                return Ok(());
            };
            tokio::select! {
                r = fd.readable() => {
                    let mut guard = r.context("waiting for ICMPv6")?;
                    loop {
                        match guard.try_io(|s| recv(s.get_ref(), &mut buf)) {
                            Ok(Ok((n, src, hop_limit))) => {
                                let v = adv.on_packet(&buf[..n], src, hop_limit, start.elapsed(), &mut rng);
                                log_verdict(&iface, src, buf[..n].first().copied().unwrap_or(0), v);
                            }
                            Ok(Err(e)) => return Err(e).context("receiving ICMPv6"),
                            Err(_would_block) => break,
                        }
                    }
                }
                _ = tokio::time::sleep_until(start + next) => {}
            }
        }
    }
}

fn log_verdict(iface: &str, src: Ipv6Addr, kind: u8, v: Verdict) {
    let kind = match kind {
        ROUTER_SOLICITATION => "router solicitation",
        ROUTER_ADVERTISEMENT => "router advertisement",
        _ => "ICMPv6",
    };
    match v {
        Verdict::Reply { to, at } => {
            tracing::debug!(interface = %iface, %src, ?to, at_ms = at.as_millis() as u64, "{kind}: advertisement scheduled")
        }
        Verdict::Silenced { router } => tracing::warn!(
            interface = %iface,
            %router,
            "another router advertises on this link: metalboot stops sending router advertisements here"
        ),
        Verdict::Ignore(reason) => tracing::debug!(interface = %iface, %src, %reason, "ignoring {kind}"),
    }
}
