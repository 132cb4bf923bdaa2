//! The store's install-time side: what an installer holding the host's
//! current token may record (progress, the final report, the first boot's
//! phone-home). Every call checks the token inside the transaction that
//! uses it.

use super::boot::installer_check;
use super::db::{vals, Tx};
use super::{absent, check, load, now_ms, set_state, Recorded, Store, TokenError};
use super::{EventStatus, HostRecord, HostReport, HostState, ProgressEvent};
use anyhow::Result;
use metalboot_spec::status::HostStatus;

impl Store {
    /// Checks `token` against the host's current (or pending) token for a
    /// fetch of the install's plan, preseed or scripts: a `failed` host's
    /// install is over, so it gets nothing.
    pub fn check_token(&self, name: &str, token: &str) -> Result<Result<HostRecord, TokenError>> {
        self.with_tx(|tx| installer_check(tx, name, token))
    }

    /// Records a progress event. `booting → installing` on the first one;
    /// a `failed` event moves the host to `failed` with the step and error
    /// and revokes the token: nothing more is taken from that install, so
    /// the failure happens once and only the call that made it says
    /// `became_failed` (its hooks fire on that).
    pub fn record_event(&self, name: &str, token: &str, ev: &ProgressEvent) -> Result<Result<Recorded, TokenError>> {
        self.with_tx(|tx| {
            let rec = match installer_check(tx, name, token)? {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            tx.exec(
                "INSERT INTO events (host, at_ms, kind, step, percent, bytes, message) VALUES (?1, ?2, 'progress', ?3, ?4, ?5, ?6)",
                vals![
                    name,
                    now_ms(),
                    ev.step.as_str(),
                    ev.percent.map(i64::from),
                    ev.bytes.map(|b| b as i64),
                    format!("{}{}", match ev.status { EventStatus::Running => "", EventStatus::Done => "done: ", EventStatus::Failed => "failed: " }, ev.message)
                ],
            )?;
            let became_failed = ev.status == EventStatus::Failed && rec.state != HostState::Failed;
            if became_failed {
                set_state(tx, name, HostState::Failed, &format!("failed at step {}: {}", ev.step, ev.message))?;
                tx.exec(
                    "UPDATE hosts SET token_hash = NULL, pending_token_hash = NULL, failed_step = ?2, failed_error = ?3
                     WHERE name = ?1",
                    vals![name, ev.step.as_str(), &ev.message],
                )?;
                super::log::tail_to_timeline(tx, name)?;
            } else if rec.state == HostState::Booting {
                set_state(tx, name, HostState::Installing, &format!("installer started ({})", ev.step))?;
            }
            Ok(Ok(Recorded { record: load(tx, name)?.unwrap_or_else(|| absent(name)), became_failed }))
        })
    }

    /// The installer's final report: host keys recorded, `→ rebooting`; a
    /// pending token dies.
    pub fn record_report(&self, name: &str, token: &str, rep: &HostReport) -> Result<Result<HostRecord, TokenError>> {
        self.with_tx(|tx| {
            if let Err(e) = installer_check(tx, name, token)? {
                return Ok(Err(e));
            }
            store_report(tx, name, rep)?;
            // the installer's report is the whole truth of this install: a
            // backup key only if this install made one, no status before
            // the new system reports (the time stays: no replays)
            tx.exec(
                "UPDATE hosts SET backup_key = ?2, status = NULL WHERE name = ?1",
                vals![name, rep.backup_key.as_deref()],
            )?;
            // the install that finished used this token: a pending one dies
            tx.exec("UPDATE hosts SET pending_token_hash = NULL WHERE name = ?1", vals![name])?;
            set_state(
                tx,
                name,
                HostState::Rebooting,
                &format!("installer finished; {} host key(s) reported", rep.host_keys.len()),
            )?;
            Ok(Ok(load(tx, name)?.unwrap_or_else(|| absent(name))))
        })
    }

    /// First boot phoned home: `→ installed`, the token dies (install once).
    /// The same call again with the same token (its answer was lost) is
    /// answered the same, and changes nothing: `false` beside the record.
    pub fn record_installed(
        &self,
        name: &str,
        token: &str,
        rep: &HostReport,
    ) -> Result<Result<(HostRecord, bool), TokenError>> {
        self.with_tx(|tx| {
            if let Err(e) = check(tx, name, token)? {
                let (state, used) =
                    match tx.row("SELECT state, installed_token_hash FROM hosts WHERE name = ?1", vals![name])? {
                        Some(r) => (r.text(0)?, r.opt_text(1)?),
                        None => (String::new(), None),
                    };
                let again = state == HostState::Installed.to_string()
                    && used.is_some_and(|h| super::hashes_equal(&h, &super::hash_token(token)));
                return Ok(if again { Ok((load(tx, name)?.unwrap_or_else(|| absent(name)), false)) } else { Err(e) });
            }
            store_report(tx, name, rep)?;
            tx.exec(
                "UPDATE hosts SET token_hash = NULL, pending_token_hash = NULL, installed_ms = ?2,
                 installed_token_hash = ?3 WHERE name = ?1",
                vals![name, now_ms(), super::hash_token(token)],
            )?;
            set_state(tx, name, HostState::Installed, "first boot phoned home; host disarmed, token revoked")?;
            Ok(Ok((load(tx, name)?.unwrap_or_else(|| absent(name)), true)))
        })
    }
}

impl Store {
    /// A keeping reinstall's previous system is back (the new one did not
    /// phone home in time, or did not boot): its host keys and addresses are
    /// the host's again, and the host is `failed` at `first-boot` with why;
    /// the token dies.
    pub fn record_rolled_back(
        &self,
        name: &str,
        token: &str,
        rep: &HostReport,
    ) -> Result<Result<Recorded, TokenError>> {
        self.with_tx(|tx| {
            let rec = match check(tx, name, token)? {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            if !matches!(rec.state, HostState::Rebooting | HostState::Failed) {
                return Ok(Err(TokenError::Invalid));
            }
            store_report(tx, name, rep)?;
            let why = rep.rolled_back.as_deref().filter(|w| !w.is_empty()).unwrap_or("no phone-home (did it boot?)");
            let error = format!(
                "the new system's trial failed: {why}; the host rolled back by itself and runs its previous system, \
                 with its old host keys"
            );
            Ok(Ok(super::fail_in(tx, name, "first-boot", &error)?))
        })
    }

    /// An installed host's signed status report: kept if newer than the
    /// last one (`Err` with why otherwise, nothing changed).
    pub fn record_status(&self, name: &str, status: &HostStatus) -> Result<Result<HostRecord, String>> {
        self.with_tx(|tx| {
            let row = tx
                .row("SELECT state, status_at FROM hosts WHERE name = ?1", vals![name])?
                .ok_or_else(|| anyhow::anyhow!("no host {name}"))?;
            let (state, last) = (row.text(0)?, row.int(1)?);
            if state != HostState::Installed.to_string() {
                return Ok(Err(format!("{name} is {state}, not installed: no status reports")));
            }
            let now = now_ms() / 1000;
            if status.at > (now + 600) as u64 {
                return Ok(Err(format!(
                    "the report's time {} is more than 10 minutes ahead of the server's ({now}): the host's clock is \
                     wrong; its reports are refused until it is right",
                    status.at
                )));
            }
            if status.at as i64 <= last {
                return Ok(Err(format!("a report of {} is not newer than the last one ({last})", status.at)));
            }
            tx.exec(
                "UPDATE hosts SET status = ?2, status_at = ?3 WHERE name = ?1",
                vals![name, serde_json::to_string(status)?, status.at as i64],
            )?;
            Ok(Ok(load(tx, name)?.unwrap_or_else(|| absent(name))))
        })
    }
}

fn store_report(tx: &mut Tx, name: &str, rep: &HostReport) -> Result<()> {
    tx.exec(
        "UPDATE hosts SET host_keys = ?2, addresses = ?3 WHERE name = ?1",
        vals![name, serde_json::to_string(&rep.host_keys)?, serde_json::to_string(&rep.addresses)?],
    )?;
    Ok(())
}
