//! DHCP leases in the state database, so a restart never hands out an
//! address that was acknowledged to another client. The server decides
//! against its book in memory (`dhcp::pool`); this table is where the book
//! comes from at start and where every change but an offer is written —
//! many exchanges' changes in one transaction (`dhcp::ledger`), committed
//! before any of their answers is sent.

use super::db::{vals, Row, Tx};
use crate::dhcp::leases::{Hold, Lease, LeaseChange};
use anyhow::Result;
use metalboot_spec::MacAddr;
use std::net::Ipv4Addr;

fn hold_str(h: Hold) -> &'static str {
    match h {
        Hold::Offered => "offered",
        Hold::Bound => "bound",
        Hold::Declined => "declined",
    }
}

fn row(r: &Row) -> Result<Lease> {
    Ok(Lease {
        ip: r.text(0)?.parse().unwrap_or(Ipv4Addr::UNSPECIFIED),
        mac: r.text(1)?.parse().unwrap_or(MacAddr([0; 6])),
        hold: match r.text(2)?.as_str() {
            "offered" => Hold::Offered,
            "bound" => Hold::Bound,
            _ => Hold::Declined,
        },
        expires_ms: r.int(3)?,
    })
}

/// Drops the leases that expired by `now_ms`, whichever server's (an
/// expired lease holds nothing; one of a server since renamed goes too);
/// how many.
pub(super) fn purge(tx: &mut Tx, now_ms: i64) -> Result<usize> {
    tx.exec("DELETE FROM leases WHERE expires_ms <= ?1", vals![now_ms])
}

/// Drops the leases of `server` that expired by `now_ms` and returns its
/// others (with those written before leases had a server).
pub(super) fn load(tx: &mut Tx, now_ms: i64, server: &str) -> Result<Vec<Lease>> {
    purge(tx, now_ms)?;
    let sql = "SELECT ip, mac, hold, expires_ms FROM leases WHERE server IN (?1, '')";
    tx.rows(sql, vals![server])?.iter().map(row).collect()
}

/// Applies `server`'s `changes` in order (inside the caller's transaction).
pub(super) fn write(tx: &mut Tx, changes: &[LeaseChange], server: &str) -> Result<()> {
    for c in changes {
        match c {
            LeaseChange::Put(l) => {
                if l.hold != Hold::Declined {
                    tx.exec(
                        "DELETE FROM leases WHERE mac = ?1 AND hold != 'declined' AND server IN (?2, '')",
                        vals![l.mac.to_string(), server],
                    )?;
                }
                tx.exec(
                    "INSERT INTO leases (ip, mac, hold, expires_ms, server) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (ip) DO UPDATE SET mac = excluded.mac, hold = excluded.hold,
                     expires_ms = excluded.expires_ms, server = excluded.server
                     WHERE leases.server IN (excluded.server, '')",
                    vals![l.ip.to_string(), l.mac.to_string(), hold_str(l.hold), l.expires_ms, server],
                )?;
            }
            LeaseChange::Remove { mac, ip } => {
                tx.exec(
                    "DELETE FROM leases WHERE ip = ?1 AND mac = ?2 AND server IN (?3, '')",
                    vals![ip.to_string(), mac.to_string(), server],
                )?;
            }
        }
    }
    Ok(())
}
