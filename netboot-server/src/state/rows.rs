//! Reading a host's row and timeline entries, and the one way a host's
//! state changes (with its timeline entry).

use super::db::{vals, Row, Tx};
use super::{now_ms, rfc3339, HostRecord, HostState, TimelineEntry};
use anyhow::{Context, Result};

pub(super) const COLS: &str =
    "name, state, failed_step, failed_error, host_keys, addresses, installed_ms, updated_ms, backup_key, status";

pub(super) fn row_to_record(r: &Row) -> Result<HostRecord> {
    let name = r.text(0)?;
    let bad = |what: &str| format!("host {name}: bad {what} in the state database");
    Ok(HostRecord {
        state: r.text(1)?.parse().map_err(anyhow::Error::msg).with_context(|| bad("state"))?,
        failed_step: r.opt_text(2)?,
        failed_error: r.opt_text(3)?,
        host_keys: serde_json::from_str(&r.text(4)?).with_context(|| bad("host keys"))?,
        addresses: serde_json::from_str(&r.text(5)?).with_context(|| bad("addresses"))?,
        installed_at: r.opt_int(6)?.map(rfc3339),
        updated_at: rfc3339(r.int(7)?),
        progress: None,
        backup_key: r.opt_text(8)?,
        status: r.opt_text(9)?.and_then(|s| serde_json::from_str(&s).ok()),
        name,
    })
}

/// A row of `SELECT at_ms, kind, state, step, percent, bytes, message FROM events`.
pub(super) fn timeline_entry(r: &Row) -> Result<TimelineEntry> {
    Ok(TimelineEntry {
        at: rfc3339(r.int(0)?),
        kind: r.text(1)?,
        state: r.opt_text(2)?,
        step: r.opt_text(3)?,
        percent: r.opt_int(4)?,
        bytes: r.opt_int(5)?,
        message: r.text(6)?,
    })
}

pub(super) fn absent(name: &str) -> HostRecord {
    HostRecord {
        name: name.to_string(),
        state: HostState::Absent,
        failed_step: None,
        failed_error: None,
        host_keys: vec![],
        addresses: vec![],
        backup_key: None,
        status: None,
        installed_at: None,
        updated_at: rfc3339(0),
        progress: None,
    }
}

pub(super) fn load(tx: &mut Tx, name: &str) -> Result<Option<HostRecord>> {
    let row = tx.row(&format!("SELECT {COLS} FROM hosts WHERE name = ?1"), vals![name]);
    let Some(mut rec) =
        row.and_then(|r| r.as_ref().map(row_to_record).transpose()).with_context(|| format!("reading host {name}"))?
    else {
        return Ok(None);
    };
    if matches!(rec.state, HostState::Booting | HostState::Installing | HostState::Rebooting) {
        rec.progress = last_progress(tx, name)?;
    }
    Ok(Some(rec))
}

/// The latest installer step entry of the host's current install (since
/// it last went `booting`).
fn last_progress(tx: &mut Tx, name: &str) -> Result<Option<TimelineEntry>> {
    tx.row(
        "SELECT at_ms, step, percent, bytes, message FROM events WHERE host = ?1 AND kind = 'progress'
         AND id > COALESCE((SELECT MAX(id) FROM events WHERE host = ?1 AND kind = 'state' AND state = 'booting'), 0)
         ORDER BY id DESC LIMIT 1",
        vals![name],
    )
    .and_then(|r| {
        r.map(|r| {
            Ok(TimelineEntry {
                at: rfc3339(r.int(0)?),
                kind: "progress".into(),
                state: None,
                step: r.opt_text(1)?,
                percent: r.opt_int(2)?,
                bytes: r.opt_int(3)?,
                message: r.text(4)?,
            })
        })
        .transpose()
    })
    .with_context(|| format!("reading host {name}'s progress"))
}

pub(super) fn set_state(tx: &mut Tx, name: &str, state: HostState, message: &str) -> Result<()> {
    let now = now_ms();
    tx.exec(
        "INSERT INTO hosts (name, state, updated_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(name) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms",
        vals![name, state.as_str(), now],
    )?;
    tx.exec(
        "INSERT INTO events (host, at_ms, kind, state, message) VALUES (?1, ?2, 'state', ?3, ?4)",
        vals![name, now, state.as_str(), message],
    )?;
    Ok(())
}
