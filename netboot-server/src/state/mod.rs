//! The state store: an embedded SQLite database in WAL mode holding each
//! host's state, its per-install token (hashed) and its timeline. Every change
//! is one transaction, so the store survives `kill -9` at any point.

mod boot;
pub(crate) mod db;
mod install;
mod leases;
mod log;
mod model;
mod pg;
mod rows;
mod schema;
mod token;

pub use boot::{BootStart, MAX_TOKEN_REISSUES, TOO_MANY_BOOTS_STEP};
pub use model::{EventStatus, HostRecord, HostReport, HostState, ProgressEvent, TimelineEntry};
pub use pg::Unavailable;
pub use token::{hash_token, hashes_equal, new_token};

use anyhow::{Context, Result};
use boot::check;
use db::{vals, Tx};
use rows::{absent, load, row_to_record, set_state, timeline_entry, COLS};
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Why an install-time call with a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// No record for the host, or the token does not match its current token.
    #[error("token is not valid for this host")]
    Invalid,
}

/// A recorded change and whether it moved the host into `failed`: its
/// failure hooks fire on that transition, once, never on a later call that
/// finds the host failed already.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// The host's record after the change.
    pub record: HostRecord,
    /// The host was not `failed` before this change and is now.
    pub became_failed: bool,
}

/// Where the state lives.
enum Backend {
    /// `data_dir/state.db`, embedded (one server).
    Lite(Mutex<Connection>),
    /// A PostgreSQL database shared by several servers (see `pg`).
    Pg(Box<pg::Pg>),
}

/// Handle to the state database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Arc<Backend>,
    /// Counts committed changes, for watchers (the status page).
    changes: Arc<tokio::sync::watch::Sender<u64>>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Formats unix milliseconds as RFC 3339 UTC.
pub fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&f).unwrap_or_default()
}

impl Store {
    /// Opens (creating if needed) `data_dir/state.db` and migrates it.
    pub fn open(data_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(data_dir).with_context(|| format!("creating data dir {}", data_dir.display()))?;
        let path = data_dir.join("state.db");
        let mut conn = Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL").context("enabling WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        schema::migrate(&mut conn).with_context(|| format!("migrating {}", path.display()))?;
        Ok(Store::with(Backend::Lite(Mutex::new(conn))))
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://…`) and
    /// migrates it: the state several servers share.
    pub fn connect(url: &str) -> Result<Store> {
        Ok(Store::with(Backend::Pg(Box::new(pg::Pg::connect(url)?))))
    }

    fn with(backend: Backend) -> Store {
        Store { backend: Arc::new(backend), changes: Arc::new(tokio::sync::watch::Sender::new(0)) }
    }

    /// Runs `f` as one transaction: SQLite's immediate (one writer), or
    /// PostgreSQL's serializable, tried again when it lost a race.
    fn with_tx<T: Send>(&self, mut f: impl FnMut(&mut Tx) -> Result<T> + Send) -> Result<T> {
        let out = match &*self.backend {
            Backend::Lite(conn) => {
                let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let mut t = Tx::Lite(&tx);
                let out = f(&mut t)?;
                drop(t);
                tx.commit().context("committing state change")?;
                out
            }
            Backend::Pg(pg) => pg.transaction(&mut f)?,
        };
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        Ok(out)
    }

    /// Wakes on every committed change.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The DHCP leases `server` (its address) handed out that have not
    /// expired by `now_ms` (expired ones are dropped from the table).
    pub fn load_leases(&self, now_ms: i64, server: &str) -> Result<Vec<crate::dhcp::leases::Lease>> {
        self.with_tx(|tx| leases::load(tx, now_ms, server).context("loading DHCP leases"))
    }

    /// Drops the DHCP leases that expired by `now_ms`; how many. A lease
    /// renewed in memory but not yet written is written by its own change
    /// (an upsert), before or after this: it is never lost.
    pub fn purge_leases(&self, now_ms: i64) -> Result<usize> {
        self.with_tx(|tx| leases::purge(tx, now_ms).context("purging expired DHCP leases"))
    }

    /// Writes `server`'s DHCP lease changes, in order, in one transaction:
    /// durable when this returns.
    pub fn write_leases(&self, changes: &[crate::dhcp::leases::LeaseChange], server: &str) -> Result<()> {
        self.with_tx(|tx| leases::write(tx, changes, server).context("writing DHCP leases"))
    }

    /// Records hosts that the inventory arms on first sight (`arm = true`) and
    /// that the store has never seen. Returns the names armed.
    pub fn arm_new_hosts<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Result<Vec<String>> {
        let names: Vec<&str> = names.into_iter().collect();
        self.with_tx(|tx| {
            let mut armed = Vec::new();
            for &name in &names {
                if load(tx, name)?.is_none() {
                    set_state(tx, name, HostState::Armed, "armed by inventory (arm = true)")?;
                    armed.push(name.to_string());
                }
            }
            Ok(armed)
        })
    }

    /// Runs reads (on PostgreSQL, in a transaction of their own).
    fn read<T: Send>(&self, mut f: impl FnMut(&mut Tx) -> Result<T> + Send) -> Result<T> {
        match &*self.backend {
            Backend::Lite(conn) => {
                let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                let mut t = Tx::Lite(&conn);
                f(&mut t)
            }
            Backend::Pg(pg) => pg.transaction(&mut f),
        }
    }

    /// The host's record; a host the store never saw is `absent`.
    pub fn get(&self, name: &str) -> Result<HostRecord> {
        self.read(|tx| Ok(load(tx, name)?.unwrap_or_else(|| absent(name))))
    }

    /// Every host the store knows.
    pub fn list(&self) -> Result<Vec<HostRecord>> {
        self.read(|tx| {
            tx.rows(&format!("SELECT {COLS} FROM hosts ORDER BY name"), &[])?.iter().map(row_to_record).collect()
        })
        .context("listing hosts")
    }

    /// The host's timeline, oldest first.
    pub fn timeline(&self, name: &str) -> Result<Vec<TimelineEntry>> {
        self.read(|tx| {
            let sql =
                "SELECT at_ms, kind, state, step, percent, bytes, message FROM events WHERE host = ?1 ORDER BY id";
            tx.rows(sql, vals![name])?.iter().map(timeline_entry).collect()
        })
        .context("reading timeline")
    }

    /// The newest `n` entries of the host's timeline, newest first.
    pub fn timeline_newest(&self, name: &str, n: usize) -> Result<Vec<TimelineEntry>> {
        self.read(|tx| {
            let sql = "SELECT at_ms, kind, state, step, percent, bytes, message FROM events WHERE host = ?1 \
                       ORDER BY id DESC LIMIT ?2";
            tx.rows(sql, vals![name, n as i64])?.iter().map(timeline_entry).collect()
        })
        .context("reading timeline")
    }

    /// Notes on the host's timeline that a boot script was served that does
    /// not change its state (a local boot, with the reason).
    pub fn note_boot(&self, name: &str, message: &str) -> Result<()> {
        self.note(name, "boot", message)
    }

    /// Adds an entry of `kind` (`boot`, `hook`) to the host's timeline
    /// without changing its state.
    pub fn note(&self, name: &str, kind: &str, message: &str) -> Result<()> {
        self.with_tx(|tx| {
            tx.exec(
                "INSERT INTO events (host, at_ms, kind, message) VALUES (?1, ?2, ?3, ?4)",
                vals![name, now_ms(), kind, message],
            )?;
            Ok(())
        })
    }

    /// Hosts that reported the end of their install more than `timeout_ms`
    /// ago and never phoned home from their first boot become `failed` (step
    /// `first-boot`). Their token stays live, so a late first boot still
    /// completes them. Returns their names.
    pub fn expire_first_boot(&self, timeout_ms: i64) -> Result<Vec<String>> {
        self.with_tx(|tx| {
            let cutoff = now_ms() - timeout_ms;
            let names = tx
                .rows("SELECT name FROM hosts WHERE state = 'rebooting' AND updated_ms < ?1", vals![cutoff])?
                .iter()
                .map(|r| r.text(0))
                .collect::<Result<Vec<String>>>()?;
            let secs = timeout_ms / 1000;
            for n in &names {
                let why = format!("no first boot within {secs} s of the end of the install");
                set_state(tx, n, HostState::Failed, &why)?;
                tx.exec(
                    "UPDATE hosts SET pending_token_hash = NULL, failed_step = 'first-boot', failed_error = ?2
                     WHERE name = ?1",
                    vals![n, why],
                )?;
            }
            Ok(names)
        })
    }

    /// Arms the host for (re)install: any state → armed; the old token dies,
    /// and so does what a reinstall in place discovered.
    pub fn arm(&self, name: &str, why: &str) -> Result<HostRecord> {
        self.with_tx(|tx| {
            set_state(tx, name, HostState::Armed, why)?;
            tx.exec(
                "UPDATE hosts SET token_hash = NULL, pending_token_hash = NULL, token_reissues = 0, failed_step = NULL,
                 failed_error = NULL, install_override = NULL, installed_token_hash = NULL WHERE name = ?1",
                vals![name],
            )?;
            Ok(load(tx, name)?.unwrap_or_else(|| absent(name)))
        })
    }

    /// Disarms the host: it boots its local disk; the token dies.
    pub fn disarm(&self, name: &str, why: &str) -> Result<HostRecord> {
        self.with_tx(|tx| {
            let cur = load(tx, name)?.map(|r| r.state).unwrap_or(HostState::Absent);
            if cur != HostState::Installed {
                set_state(tx, name, HostState::Disarmed, why)?;
            }
            tx.exec("UPDATE hosts SET token_hash = NULL, pending_token_hash = NULL WHERE name = ?1", vals![name])?;
            Ok(load(tx, name)?.unwrap_or_else(|| absent(name)))
        })
    }

    /// A reinstall in place: from any state, the host is armed and at once
    /// `booting` with a fresh token (given as its hash) and `override_json`
    /// (network and disk found on the running system) for this install.
    pub fn start_reinstall(
        &self,
        name: &str,
        token_hash: &str,
        override_json: &str,
        detail: &str,
    ) -> Result<HostRecord> {
        self.with_tx(|tx| {
            set_state(tx, name, HostState::Armed, "reinstall in place requested by operator")?;
            tx.exec(
                "UPDATE hosts SET token_hash = ?2, pending_token_hash = NULL, token_reissues = 0, token_issued_ms = ?3,
                 method = 'image', install_override = ?4, failed_step = NULL, failed_error = NULL WHERE name = ?1",
                vals![name, token_hash, now_ms(), override_json],
            )?;
            set_state(
                tx,
                name,
                HostState::Booting,
                &format!("installer sent over SSH ({detail}); new install token issued"),
            )?;
            Ok(load(tx, name)?.unwrap_or_else(|| absent(name)))
        })
    }

    /// The network and disk a reinstall in place discovered, as JSON.
    pub fn install_override(&self, name: &str) -> Result<Option<String>> {
        self.read(|tx| match tx.row("SELECT install_override FROM hosts WHERE name = ?1", vals![name])? {
            Some(r) => r.opt_text(0),
            None => Ok(None),
        })
    }

    /// The operator (or `metalboot reinstall`) records a failure the
    /// installer could not report itself; the token dies. A host failed
    /// already gets the new step and error on its timeline, but
    /// `became_failed` is false: its failure was announced once.
    pub fn fail(&self, name: &str, step: &str, error: &str) -> Result<Recorded> {
        self.with_tx(|tx| fail_in(tx, name, step, error))
    }
}

/// [`Store::fail`] inside a transaction: `failed` at `step` with `error`,
/// both tokens revoked.
pub(crate) fn fail_in(tx: &mut Tx, name: &str, step: &str, error: &str) -> Result<Recorded> {
    let was_failed = load(tx, name)?.is_some_and(|r| r.state == HostState::Failed);
    set_state(tx, name, HostState::Failed, &format!("failed at step {step}: {error}"))?;
    tx.exec(
        "UPDATE hosts SET token_hash = NULL, pending_token_hash = NULL, failed_step = ?2, failed_error = ?3
         WHERE name = ?1",
        vals![name, step, error],
    )?;
    Ok(Recorded { record: load(tx, name)?.unwrap_or_else(|| absent(name)), became_failed: !was_failed })
}

#[cfg(test)]
mod log_tests;
#[cfg(test)]
mod pg_tests;
#[cfg(test)]
mod tests;
