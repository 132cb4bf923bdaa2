//! DHCP leases in the state database, so a restart never hands out an
//! address that was acknowledged to another client. The server decides
//! against its book in memory (`dhcp::pool`); this table is where the book
//! comes from at start and where every change but an offer is written —
//! many exchanges' changes in one transaction (`dhcp::ledger`), committed
//! before any of their answers is sent.

use crate::dhcp::leases::{Hold, Lease, LeaseChange};
use metalboot_spec::MacAddr;
use rusqlite::{params, Connection};
use std::net::Ipv4Addr;

fn hold_str(h: Hold) -> &'static str {
    match h {
        Hold::Offered => "offered",
        Hold::Bound => "bound",
        Hold::Declined => "declined",
    }
}

fn row(r: &rusqlite::Row) -> rusqlite::Result<Lease> {
    let ip: String = r.get(0)?;
    let mac: String = r.get(1)?;
    let hold: String = r.get(2)?;
    Ok(Lease {
        ip: ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED),
        mac: mac.parse().unwrap_or(MacAddr([0; 6])),
        hold: match hold.as_str() {
            "offered" => Hold::Offered,
            "bound" => Hold::Bound,
            _ => Hold::Declined,
        },
        expires_ms: r.get(3)?,
    })
}

/// Drops the leases that expired by `now_ms`; how many.
pub(super) fn purge(conn: &Connection, now_ms: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM leases WHERE expires_ms <= ?1", [now_ms])
}

/// Drops the leases that expired by `now_ms` and returns the others.
pub(super) fn load(conn: &Connection, now_ms: i64) -> rusqlite::Result<Vec<Lease>> {
    purge(conn, now_ms)?;
    let mut stmt = conn.prepare("SELECT ip, mac, hold, expires_ms FROM leases")?;
    let rows = stmt.query_map([], row)?;
    rows.collect()
}

/// Applies `changes` in order (inside the caller's transaction).
pub(super) fn write(conn: &Connection, changes: &[LeaseChange]) -> rusqlite::Result<()> {
    for c in changes {
        match c {
            LeaseChange::Put(l) => {
                if l.hold != Hold::Declined {
                    conn.prepare_cached("DELETE FROM leases WHERE mac = ?1 AND hold != 'declined'")?
                        .execute([l.mac.to_string()])?;
                }
                conn.prepare_cached(
                    "INSERT OR REPLACE INTO leases (ip, mac, hold, expires_ms) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![
                    l.ip.to_string(),
                    l.mac.to_string(),
                    hold_str(l.hold),
                    l.expires_ms
                ])?;
            }
            LeaseChange::Remove { mac, ip } => {
                conn.prepare_cached("DELETE FROM leases WHERE ip = ?1 AND mac = ?2")?
                    .execute(params![ip.to_string(), mac.to_string()])?;
            }
        }
    }
    Ok(())
}
