//! The HTTP accept loop, with limits that keep idle or slow clients from
//! using up the process's file descriptors and locking everyone else out:
//!
//! - hyper's HTTP/1 header-read timeout. hyper starts it when a connection
//!   opens and again whenever the connection goes idle after a response, so
//!   it closes connections that never send a request, requests whose headers
//!   trickle in, and idle keep-alive connections alike.
//! - a cap on open connections in total and per client IP address
//!   ([`crate::limit::Slots`]); a connection over the cap is closed as soon as
//!   it is accepted. The total is lowered at start-up to what the
//!   file-descriptor limit leaves room for ([`fit_to_fd_limit`]).
//!
//! - over HTTPS, a TLS handshake that must finish within the header-read
//!   timeout before the connection is served; until then it holds its slot,
//!   so stalled handshakes count against the same caps.
//!
//! HTTP and HTTPS share one loop, one set of caps and one router.
//!
//! Shutdown stops accepting, asks every connection to finish its response
//! and close, and waits for them (hyper-util's graceful shutdown) up to
//! [`SHUTDOWN_GRACE`], so a client that stopped reading cannot hold it up.

use crate::limit::Slots;
use anyhow::{bail, Result};
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// Limits on HTTP connections, from `[server]`: what keeps idle or slow
/// clients from using up the process's file descriptors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    /// A connection must deliver a request's headers within this time, counted
    /// from when it opens or from the end of the previous response (so this is
    /// also how long an idle keep-alive connection stays open).
    pub header_read_timeout: Duration,
    /// Open connections in total; start-up lowers it to fit the file-descriptor limit.
    pub max_connections: usize,
    /// Open connections from one client IP address (IPv6: one /64, see [`crate::limit`]).
    pub max_connections_per_ip: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits { header_read_timeout: Duration::from_secs(10), max_connections: 1024, max_connections_per_ip: 64 }
    }
}

impl HttpLimits {
    /// Checks the `[server]` values, naming the field at fault.
    pub fn new(header_read_timeout_secs: u64, max_connections: usize, max_connections_per_ip: usize) -> Result<Self> {
        if !(1..=3600).contains(&header_read_timeout_secs) {
            bail!("field `server.header_read_timeout_secs`: {header_read_timeout_secs} is not within 1..=3600");
        }
        if max_connections == 0 {
            bail!("field `server.max_connections`: must be at least 1");
        }
        if !(1..=max_connections).contains(&max_connections_per_ip) {
            bail!(
                "field `server.max_connections_per_ip`: {max_connections_per_ip} is not within \
                 1..=server.max_connections ({max_connections})"
            );
        }
        Ok(HttpLimits {
            header_read_timeout: Duration::from_secs(header_read_timeout_secs),
            max_connections,
            max_connections_per_ip,
        })
    }
}

/// How long shutdown waits for responses under way.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// File descriptors kept for everything but HTTP connections: the state
/// database, DHCP and TFTP sockets and transfers, logs, hooks.
pub const FD_RESERVE: u64 = 256;

/// The total connection cap that fits `fd_limit` descriptors: each connection
/// may hold two (its socket and an asset file it streams), after [`FD_RESERVE`].
pub fn fit_to_fd_limit(max_connections: usize, fd_limit: u64) -> usize {
    let room = fd_limit.saturating_sub(FD_RESERVE) / 2;
    max_connections.min(usize::try_from(room).unwrap_or(usize::MAX)).max(1)
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns (soft before, soft now).
pub fn raise_fd_limit() -> Result<(u64, u64)> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok((soft, getrlimit(Resource::RLIMIT_NOFILE)?.0))
}

/// Marks a request that came over HTTPS (the status page's cookie is
/// `Secure` then).
#[derive(Clone, Copy, Debug)]
pub struct OverHttps;

/// The sockets to serve: plain HTTP, and HTTPS if configured.
pub struct Listeners {
    /// Plain HTTP.
    pub http: TcpListener,
    /// HTTPS: the socket and the TLS settings to accept with.
    pub tls: Option<(TcpListener, TlsAcceptor)>,
}

/// Accepts on the HTTPS socket; never completes when there is none.
async fn accept_tls(tls: &Option<(TcpListener, TlsAcceptor)>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match tls {
        Some((l, _)) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Serves `router` on `listeners` within `limits` until `shutdown`
/// completes, then lets open connections finish.
pub async fn serve(
    listeners: Listeners,
    router: Router,
    limits: &HttpLimits,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let slots = Slots::new(limits.max_connections, limits.max_connections_per_ip);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let graceful = GracefulShutdown::new();
    // a request that came over HTTPS says so (the status page's cookie is `Secure` then)
    let https = router.clone().layer(axum::Extension(OverHttps));
    tokio::pin!(shutdown);
    loop {
        let (accepted, tls) = tokio::select! {
            r = listeners.http.accept() => (r, None),
            r = accept_tls(&listeners.tls) => (r, listeners.tls.as_ref().map(|(_, a)| a.clone())),
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // out of descriptors (EMFILE) or a connection reset before
                // accept: wait a little rather than spin
                tracing::warn!(error = %e, tls = tls.is_some(), "accepting an HTTP connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let slot = match slots.admit(peer.ip()) {
            Ok(s) => s,
            Err(why) => {
                tracing::debug!(%peer, ?why, "closing HTTP connection over the limit");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(if tls.is_some() { https.clone() } else { router.clone() });
        let (builder, watcher, handshake_timeout) = (http.clone(), graceful.watcher(), limits.header_read_timeout);
        tokio::spawn(async move {
            let _slot = slot;
            let ended = match tls {
                None => watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await,
                Some(acceptor) => match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                },
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, error = %e, "HTTP connection ended");
            }
        });
    }
    drop(listeners);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!(held = slots.held_total(), "HTTP connections still open after the shutdown grace; leaving them");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_cap_fits_the_descriptor_limit() {
        assert_eq!(fit_to_fd_limit(1024, 1024), 384);
        assert_eq!(fit_to_fd_limit(1024, 1_048_576), 1024);
        assert_eq!(fit_to_fd_limit(1024, 100), 1, "never zero");
        assert_eq!(fit_to_fd_limit(10, u64::MAX), 10);
    }
}
