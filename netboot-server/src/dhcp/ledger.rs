//! The running server's DHCP leases: the book in memory every decision
//! reads and changes (`pool::MemoryLeases`, loaded from the state database
//! at start), and the writer that makes changes durable with group commit.
//!
//! What a client can rely on: an ACK leaves only after the transaction that
//! holds its lease has committed, so a lease acknowledged to a client is in
//! the database when the client hears of it, and a restarted server (after
//! `kill -9` at any moment) loads it and never hands that address to
//! another client while the lease runs. Offers are not written (RFC 2131
//! §3.1: a server need not reserve an offered address): after a restart an
//! offer may be made again to someone else, and the REQUEST of the client it
//! was first offered to is then NAKed and that client starts over — what
//! RFC 2131 expects when two servers offer. Releases and declines are
//! written too, but nothing waits for them; losing one leaves an address
//! held longer, never given twice.
//!
//! Cost: exchanges arriving while a commit runs go into the next one, so
//! the database sees one transaction (one WAL sync) per batch, not per
//! exchange. The book in memory is always ahead of the database, never
//! behind: a decision made while a batch is in flight sees that batch's
//! leases.

use super::classify::ClientInfo;
use super::decide::{decide, unknown_relay, Decision};
use super::leases::{Journal, Lease, LeaseBook, LeaseChange};
use super::pool::MemoryLeases;
use super::DhcpSettings;
use crate::state::Store;
use anyhow::{Context, Result};
use metalboot_spec::MacAddr;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Most exchanges in one transaction.
const BATCH: usize = 1024;
/// Answers waiting for the writer before the receive loops wait too.
pub const QUEUE: usize = 4096;

/// Leases in memory, one book per pool, backed by the state database.
pub struct Ledger {
    books: Vec<Mutex<MemoryLeases>>,
    store: Store,
    /// Whose leases these are in a database several servers share: this
    /// server's DHCP address.
    server: String,
}

/// An answer that may leave only once its lease changes are durable.
pub struct Pending {
    /// What the decision changed (never empty).
    pub changes: Vec<LeaseChange>,
    /// The reply and where it goes, if the decision was to answer.
    pub reply: Option<(Vec<u8>, SocketAddr)>,
    /// The socket the request came in on.
    pub sock: Arc<UdpSocket>,
    /// The request's message type and outcome, counted once the changes
    /// are durable (`error` when they could not be written).
    pub counted: (&'static str, &'static str),
    /// Where it is counted.
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl Ledger {
    /// Loads the unexpired leases of `store` into a book for each pool of
    /// `s`, each lease into the pool whose subnet holds it. A lease in no
    /// pool's subnet (the subnet left the config) stays in the database
    /// until it expires, unused.
    pub fn open(store: Store, s: &DhcpSettings, now_ms: i64) -> Result<Ledger> {
        let mut split: Vec<Vec<Lease>> = vec![Vec::new(); s.pools.len()];
        let server = s.server_ip.to_string();
        for l in store.load_leases(now_ms, &server)? {
            match s.pools.iter().position(|p| p.holds(l.ip)) {
                Some(i) => split[i].push(l),
                None => tracing::debug!(ip = %l.ip, "lease outside every DHCP subnet left alone"),
            }
        }
        let books: Vec<MemoryLeases> = s
            .pools
            .iter()
            .zip(split)
            .map(|(p, leases)| MemoryLeases::with_leases(p.range_start, p.range_end, leases))
            .collect();
        tracing::debug!(leases = books.iter().map(MemoryLeases::len).sum::<usize>(), "DHCP leases loaded");
        Ok(Ledger { books: books.into_iter().map(Mutex::new).collect(), store, server })
    }

    /// Decides in full mode against the book of the client's pool; the
    /// changes to write before the answer leaves.
    pub fn decide(&self, c: &ClientInfo, s: &DhcpSettings, now_ms: i64) -> (Decision, Vec<LeaseChange>) {
        let Some(i) = super::subnets::pool_for(&s.pools, c.giaddr, c.ciaddr) else {
            return (unknown_relay(c.giaddr), Vec::new());
        };
        let Some(book) = self.books.get(i) else { return (unknown_relay(c.giaddr), Vec::new()) };
        let mut book = book.lock().unwrap_or_else(|p| p.into_inner());
        let mut journal = Journal::new(&mut *book);
        let d = decide(c, s, &mut journal, now_ms);
        (d, journal.changes)
    }

    /// Writes `changes` in one transaction; durable when this returns.
    pub fn commit(&self, changes: &[LeaseChange]) -> Result<()> {
        self.store.write_leases(changes, &self.server)
    }

    /// Forgets the leases that expired by `now_ms`, in the book and in the
    /// database; how many the book held. Only expired leases go, and an
    /// expired lease is already free to `decide`, so this changes no answer:
    /// it keeps the book and the table from growing with every client ever
    /// seen.
    pub fn purge_expired(&self, now_ms: i64) -> Result<usize> {
        let n = self.books.iter().map(|b| b.lock().unwrap_or_else(|p| p.into_inner()).purge_expired(now_ms)).sum();
        self.store.purge_leases(now_ms)?;
        Ok(n)
    }

    /// Leases in the book, expired or not.
    pub fn len(&self) -> usize {
        self.books.iter().map(|b| b.lock().unwrap_or_else(|p| p.into_inner()).len()).sum()
    }

    /// Whether the book holds no lease.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The unexpired lease of `mac` in the book.
    pub fn lease_of(&self, mac: &MacAddr, now_ms: i64) -> Option<Lease> {
        self.books.iter().find_map(|b| b.lock().unwrap_or_else(|p| p.into_inner()).by_mac(mac, now_ms))
    }
}

/// How often expired leases are purged.
pub const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Every `every`, purges expired leases ([`Ledger::purge_expired`]). A
/// failed purge is logged and tried again next time.
pub async fn purge_expired_every(ledger: Arc<Ledger>, every: std::time::Duration) -> Result<()> {
    loop {
        tokio::time::sleep(every).await;
        let l = ledger.clone();
        match tokio::task::spawn_blocking(move || l.purge_expired(super::leases::now_ms())).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::debug!(leases = n, "expired DHCP leases purged"),
            Ok(Err(e)) => tracing::warn!(error = format!("{e:#}"), "purging expired DHCP leases"),
            Err(e) => tracing::warn!(error = %e, "lease purge task"),
        }
    }
}

/// Group commit: takes every answer queued while the previous transaction
/// ran, writes all their changes in one transaction, then sends the answers
/// in the order they were decided. A failed commit sends none of them (the
/// clients retry; the book keeps the addresses held, which is safe).
pub async fn write_batches(ledger: Arc<Ledger>, mut rx: mpsc::Receiver<Pending>) -> Result<()> {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        if rx.recv_many(&mut batch, BATCH).await == 0 {
            return Ok(());
        }
        let changes: Vec<LeaseChange> = batch.iter().flat_map(|p| p.changes.iter().cloned()).collect();
        let l = ledger.clone();
        let done = tokio::task::spawn_blocking(move || l.commit(&changes)).await.context("lease writer task")?;
        match done {
            Ok(()) => {
                for p in batch.drain(..) {
                    p.metrics.dhcp(p.counted.0, p.counted.1);
                    if let Some((bytes, dest)) = p.reply {
                        if let Err(e) = p.sock.send_to(&bytes, dest).await {
                            tracing::warn!(%dest, error = %e, "sending DHCP reply");
                        }
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), exchanges = batch.len(), "lease database: answers dropped");
                for p in batch.drain(..) {
                    p.metrics.dhcp(p.counted.0, "error");
                }
            }
        }
    }
}
