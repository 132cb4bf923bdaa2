//! A read-only TFTP server for the iPXE binaries. Files are looked up in a
//! whitelist by name — a request never becomes a path, so `../` cannot
//! escape. Concurrent transfers are bounded, in total and per client
//! address; each runs on its own port (RFC 1350 TID) with retransmission on
//! timeout and RFC 7440 windows.
//!
//! A read request is one UDP packet and its source address can be forged, so
//! a transfer the client has not yet acknowledged is cheap to ask for and must
//! be cheap to drop: the option ack (RFC 2347 OACK), or the first block of a
//! plain request, is sent on a short schedule ([`FIRST_REPLY_WAITS`]) and the
//! transfer gives up after it. The client's `timeout` option (RFC 2349) is
//! accepted only up to `max_timeout_secs`; RFC 2349 lets the server either
//! accept the value or leave the option out of the OACK, so a larger value is
//! left out and the default of 1 s applies.

pub mod packet;

use crate::limit::Slots;
use anyhow::{Context, Result};
use packet::{encode, negotiate, parse, Packet};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

/// `[tftp]` in metalboot.toml.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct TftpConfig {
    /// Serve TFTP (default: when DHCP is on).
    pub enabled: Option<bool>,
    /// Listen address.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Name → file. Default: iPXE's binaries from Debian's `ipxe` package.
    #[serde(default = "default_files")]
    pub files: BTreeMap<String, PathBuf>,
    /// Concurrent transfers.
    #[serde(default = "default_max")]
    pub max_transfers: usize,
    /// Concurrent transfers to one client IP address (IPv6: one /64, see [`crate::limit`]).
    #[serde(default = "default_max_per_client")]
    pub max_transfers_per_client: usize,
    /// Largest `timeout` option (seconds) acknowledged; a larger one is left out of the OACK.
    #[serde(default = "default_max_timeout")]
    pub max_timeout_secs: u64,
}

/// How long to wait after each sending of the first reply (the OACK, or block
/// 1 of a plain request) before sending it again; after the last wait the
/// transfer is dropped. 5 s in all: the client's own timeout (RFC 2349) is
/// not yet agreed while the OACK is unacknowledged.
pub const FIRST_REPLY_WAITS: [Duration; 3] = [Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(2)];

fn default_listen() -> SocketAddr {
    "0.0.0.0:69".parse().expect("constant")
}
fn default_max() -> usize {
    64
}
fn default_max_per_client() -> usize {
    8
}
fn default_max_timeout() -> u64 {
    5
}

/// iPXE binaries as Debian's `ipxe` package installs them.
pub fn default_files() -> BTreeMap<String, PathBuf> {
    ["undionly.kpxe", "ipxe.efi", "snponly.efi", "ipxe.pxe"]
        .iter()
        .map(|n| (n.to_string(), PathBuf::from("/usr/lib/ipxe").join(n)))
        .collect()
}

impl Default for TftpConfig {
    fn default() -> Self {
        TftpConfig {
            enabled: None,
            listen: default_listen(),
            files: default_files(),
            max_transfers: default_max(),
            max_transfers_per_client: default_max_per_client(),
            max_timeout_secs: default_max_timeout(),
        }
    }
}

impl TftpConfig {
    /// Checks the limits, naming the field at fault.
    pub fn validate(&self) -> Result<()> {
        anyhow::ensure!(self.max_transfers >= 1, "field `tftp.max_transfers`: must be at least 1");
        anyhow::ensure!(
            (1..=self.max_transfers).contains(&self.max_transfers_per_client),
            "field `tftp.max_transfers_per_client`: {} is not within 1..=tftp.max_transfers ({})",
            self.max_transfers_per_client,
            self.max_transfers
        );
        anyhow::ensure!(
            (1..=255).contains(&self.max_timeout_secs),
            "field `tftp.max_timeout_secs`: {} is not within 1..=255 (RFC 2349)",
            self.max_timeout_secs
        );
        Ok(())
    }
}

/// What a read request resolves to.
pub fn lookup<'a>(files: &'a BTreeMap<String, PathBuf>, requested: &str) -> Option<&'a PathBuf> {
    // clients send "undionly.kpxe" or "/undionly.kpxe"; nothing else maps
    files.get(requested.strip_prefix('/').unwrap_or(requested))
}

async fn send_error(sock: &UdpSocket, to: SocketAddr, code: u16, message: &str) {
    let _ = sock.send_to(&encode(&Packet::Error { code, message: message.into() }), to).await;
}

/// Serves until dropped, counting each request's outcome in `metrics`.
pub async fn serve(sock: UdpSocket, cfg: Arc<TftpConfig>, metrics: Arc<crate::metrics::Metrics>) -> Result<()> {
    let slots = Slots::new(cfg.max_transfers, cfg.max_transfers_per_client);
    let local_ip = sock.local_addr()?.ip();
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, peer) = sock.recv_from(&mut buf).await.context("receiving TFTP")?;
        let req = match parse(&buf[..n]) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "ignoring TFTP packet");
                continue;
            }
        };
        let (filename, mode, options) = match req {
            Packet::Rrq { filename, mode, options } => (filename, mode, options),
            Packet::Wrq => {
                metrics.tftp("write_refused", 0);
                send_error(&sock, peer, 2, "read-only server").await;
                continue;
            }
            _ => continue,
        };
        let Some(path) = lookup(&cfg.files, &filename).cloned() else {
            tracing::info!(%peer, file = %filename.escape_debug(), "TFTP: not served");
            metrics.tftp("not_found", 0);
            send_error(&sock, peer, 1, "file not found").await;
            continue;
        };
        if mode != "octet" && mode != "netascii" {
            metrics.tftp("bad_mode", 0);
            send_error(&sock, peer, 4, "unsupported mode").await;
            continue;
        }
        let permit = match slots.admit(peer.ip()) {
            Ok(p) => p,
            Err(why) => {
                tracing::debug!(%peer, ?why, "TFTP: refused, server busy");
                metrics.tftp("busy", 0);
                send_error(&sock, peer, 0, "server busy").await;
                continue;
            }
        };
        let max_timeout = cfg.max_timeout_secs;
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match transfer(local_ip, peer, &path, &options, max_timeout).await {
                Ok(None) => {
                    metrics.tftp("size_probe", 0);
                    tracing::info!(%peer, file = %filename, "TFTP: client ended after the option ack (size probe)")
                }
                Ok(Some((bytes, blksize, windowsize))) => {
                    metrics.tftp("sent", bytes as u64);
                    tracing::info!(%peer, file = %filename, bytes, blksize, windowsize, "TFTP: sent")
                }
                Err(e) => {
                    metrics.tftp("failed", 0);
                    tracing::info!(%peer, file = %filename, error = format!("{e:#}"), "TFTP: transfer ended")
                }
            }
        });
    }
}

async fn transfer(
    local_ip: std::net::IpAddr,
    peer: SocketAddr,
    path: &PathBuf,
    options: &[(String, String)],
    max_timeout: u64,
) -> Result<Option<(usize, usize, u16)>> {
    let data = tokio::fs::read(path).await.with_context(|| format!("reading {}", path.display()))?;
    let sock = UdpSocket::bind(SocketAddr::new(local_ip, 0)).await?;
    sock.connect(peer).await?;
    let neg = negotiate(options, data.len() as u64, 65464, max_timeout);
    let timeout = Duration::from_secs(neg.timeout);
    let mut buf = vec![0u8; 2048];
    if !neg.oack.is_empty() {
        let oack = encode(&Packet::Oack(neg.oack.clone()));
        let mut ok = false;
        for wait in FIRST_REPLY_WAITS {
            sock.send(&oack).await?;
            match tokio::time::timeout(wait, sock.recv(&mut buf)).await {
                Ok(Ok(n)) => match parse(&buf[..n]) {
                    Ok(Packet::Ack(0)) => {
                        ok = true;
                        break;
                    }
                    // OVMF asks for tsize, then aborts and asks again
                    Ok(Packet::Error { .. }) => return Ok(None),
                    _ => continue,
                },
                _ => continue,
            }
        }
        anyhow::ensure!(ok, "no ACK for OACK");
    }
    // a plain request is confirmed by the ACK of block 1, and until then
    // block 1 goes on the same short schedule as an OACK
    let mut first_waits = neg.oack.is_empty().then_some(FIRST_REPLY_WAITS.iter());
    let bs = neg.blksize;
    let nblocks = data.len() / bs + 1; // the last block is short (maybe empty)
    let mut acked = 0usize; // blocks acknowledged, counted from 1
    let mut retries = 0;
    while acked < nblocks {
        let wait = match first_waits.as_mut() {
            Some(waits) => *waits.next().context("no ACK for block 1")?,
            None => timeout,
        };
        let end = (acked + neg.windowsize as usize).min(nblocks);
        for i in acked..end {
            let s = (i * bs).min(data.len());
            let e = ((i + 1) * bs).min(data.len());
            let block = ((i + 1) % 65536) as u16;
            sock.send(&encode(&Packet::Data { block, data: data[s..e].to_vec() })).await?;
        }
        let deadline = tokio::time::Instant::now() + wait;
        let mut progressed = false;
        loop {
            let r = tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await;
            let Ok(Ok(n)) = r else { break };
            match parse(&buf[..n]) {
                Ok(Packet::Ack(b)) => {
                    // map the 16-bit block number into the current window
                    let base = acked;
                    let cand = (acked..=end).find(|i| (*i % 65536) as u16 == b);
                    if let Some(c) = cand {
                        if c > base {
                            acked = c;
                            progressed = true;
                        }
                        if acked == end || c <= base {
                            break;
                        }
                    }
                }
                Ok(Packet::Error { code, message }) => anyhow::bail!("client aborted: {code} {message}"),
                _ => {}
            }
        }
        if progressed {
            first_waits = None;
            retries = 0;
        } else {
            retries += 1;
            anyhow::ensure!(retries <= 8, "client stopped acknowledging at block {acked}");
        }
    }
    Ok(Some((data.len(), bs, neg.windowsize)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_a_whitelist_not_a_path() {
        let f = default_files();
        assert!(lookup(&f, "undionly.kpxe").is_some());
        assert!(lookup(&f, "/snponly.efi").is_some());
        for bad in ["../etc/passwd", "/usr/lib/ipxe/undionly.kpxe", "undionly.kpxe/..", "", "//undionly.kpxe"] {
            assert!(lookup(&f, bad).is_none(), "{bad}");
        }
    }
}
