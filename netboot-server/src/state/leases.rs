//! DHCP leases in the state database, so a restart never hands out an
//! address twice. Every decision runs in one transaction.

use crate::dhcp::leases::{Hold, Lease, LeaseBook};
use metalboot_spec::MacAddr;
use rusqlite::{params, Connection, OptionalExtension};
use std::net::Ipv4Addr;

/// A lease book over an open transaction.
pub struct SqlLeases<'a> {
    pub(crate) conn: &'a Connection,
    pub(crate) error: Option<rusqlite::Error>,
}

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

impl SqlLeases<'_> {
    fn note<T>(&mut self, r: rusqlite::Result<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.error.get_or_insert(e);
                None
            }
        }
    }
}

impl LeaseBook for SqlLeases<'_> {
    fn by_mac(&self, mac: &MacAddr, now_ms: i64) -> Option<Lease> {
        self.conn
            .query_row(
                "SELECT ip, mac, hold, expires_ms FROM leases WHERE mac = ?1 AND expires_ms > ?2 AND hold != 'declined'",
                params![mac.to_string(), now_ms],
                row,
            )
            .optional()
            .ok()
            .flatten()
    }
    fn by_ip(&self, ip: Ipv4Addr, now_ms: i64) -> Option<Lease> {
        self.conn
            .query_row(
                "SELECT ip, mac, hold, expires_ms FROM leases WHERE ip = ?1 AND expires_ms > ?2",
                params![ip.to_string(), now_ms],
                row,
            )
            .optional()
            .ok()
            .flatten()
    }
    fn put(&mut self, l: Lease) {
        if l.hold != Hold::Declined {
            let r = self.conn.execute("DELETE FROM leases WHERE mac = ?1 AND hold != 'declined'", [l.mac.to_string()]);
            self.note(r);
        }
        let r = self.conn.execute(
            "INSERT OR REPLACE INTO leases (ip, mac, hold, expires_ms) VALUES (?1, ?2, ?3, ?4)",
            params![l.ip.to_string(), l.mac.to_string(), hold_str(l.hold), l.expires_ms],
        );
        self.note(r);
    }
    fn remove(&mut self, mac: &MacAddr, ip: Ipv4Addr) {
        let r = self
            .conn
            .execute("DELETE FROM leases WHERE ip = ?1 AND mac = ?2", params![ip.to_string(), mac.to_string()]);
        self.note(r);
    }
}
