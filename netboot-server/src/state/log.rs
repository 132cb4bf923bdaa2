//! The installer's console log, kept per host: lines arrive in batches from
//! an installer holding the host's current token; the last
//! [`LOG_LINES_KEPT`] per host are kept. When an install fails, the tail
//! goes on the timeline.

use super::boot::installer_check;
use super::db::{vals, Tx};
use super::{now_ms, rfc3339, Store, TokenError};
use anyhow::{Context, Result};
use metalboot_spec::log::{clean_line, LogBatch, LogLine, LogPage, LOG_LINES_KEPT};

/// Lines of the log's tail put on the timeline when an install fails.
pub const TAIL_ON_FAILURE: usize = 25;

impl Store {
    /// Appends an installer's batch (after a note of lines it dropped);
    /// how many lines were stored.
    pub fn append_log(&self, name: &str, token: &str, batch: &LogBatch) -> Result<Result<usize, TokenError>> {
        self.with_tx(|tx| {
            if let Err(e) = installer_check(tx, name, token)? {
                return Ok(Err(e));
            }
            let at = now_ms();
            let insert = "INSERT INTO logs (host, at_ms, line) VALUES (?1, ?2, ?3)";
            if batch.dropped > 0 {
                let note = format!("[metalboot: {} earlier line(s) could not be sent and were dropped]", batch.dropped);
                tx.exec(insert, vals![name, at, note])?;
            }
            for line in &batch.lines {
                tx.exec(insert, vals![name, at, clean_line(line)])?;
            }
            tx.exec(
                "DELETE FROM logs WHERE host = ?1 AND id <= (SELECT id FROM logs WHERE host = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                vals![name, LOG_LINES_KEPT as i64],
            )?;
            Ok(Ok(batch.lines.len()))
        })
    }

    /// Up to `limit` lines of the host's log after id `after`, oldest first.
    pub fn log(&self, name: &str, after: i64, limit: usize) -> Result<LogPage> {
        let lines = self
            .read(|tx| {
                let sql = "SELECT id, at_ms, line FROM logs WHERE host = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
                tx.rows(sql, vals![name, after, limit as i64])?
                    .iter()
                    .map(|r| Ok(LogLine { id: r.int(0)?, at: rfc3339(r.int(1)?), line: r.text(2)? }))
                    .collect::<Result<Vec<_>>>()
            })
            .context("reading the host's log")?;
        let next = lines.last().map_or(after, |l| l.id);
        Ok(LogPage { lines, next })
    }

    /// The last `n` lines of the host's current install's log, oldest first.
    pub fn log_tail(&self, name: &str, n: usize) -> Result<Vec<LogLine>> {
        self.read(|tx| tail(tx, name, n))
            .map(|v| v.into_iter().map(|(id, at, line)| LogLine { id, at: rfc3339(at), line }).collect())
    }
}

/// The last `n` lines of the current install's log (since the host last
/// went `booting`): never lines of an earlier install.
fn tail(tx: &mut Tx, name: &str, n: usize) -> Result<Vec<(i64, i64, String)>> {
    let rows = tx.rows(
        "SELECT id, at_ms, line FROM logs WHERE host = ?1
         AND at_ms >= COALESCE((SELECT MAX(at_ms) FROM events WHERE host = ?1 AND kind = 'state' AND state = 'booting'), 0)
         ORDER BY id DESC LIMIT ?2",
        vals![name, n as i64],
    );
    let mut v = rows
        .and_then(|rows| rows.iter().map(|r| Ok((r.int(0)?, r.int(1)?, r.text(2)?))).collect::<Result<Vec<_>>>())
        .context("reading the host's log")?;
    v.reverse();
    Ok(v)
}

/// Puts the log's tail on the timeline (an install just failed); nothing
/// when the installer sent no log.
pub(super) fn tail_to_timeline(tx: &mut Tx, name: &str) -> Result<()> {
    let lines = tail(tx, name, TAIL_ON_FAILURE)?;
    if lines.is_empty() {
        return Ok(());
    }
    let text: Vec<&str> = lines.iter().map(|(_, _, l)| l.as_str()).collect();
    tx.exec(
        "INSERT INTO events (host, at_ms, kind, message) VALUES (?1, ?2, 'log', ?3)",
        vals![name, now_ms(), format!("installer log, last {} line(s):\n{}", text.len(), text.join("\n"))],
    )?;
    Ok(())
}
