//! The state in PostgreSQL, shared by several servers: the same tables and
//! statements as the embedded SQLite database (`db`), each change one
//! serializable transaction. Two servers racing for one host (both serving
//! it an installer, both taking its phone-home) are ordered by the database:
//! the loser's transaction fails with a serialization error and runs again
//! on what the winner committed, so install-once and the token checks hold
//! across servers as they do inside one. A lost connection is opened again
//! on the next change; until then every change fails and says why.

use super::db::Tx;
use anyhow::{bail, Context, Result};
use postgres::error::SqlState;
use postgres::{Client, IsolationLevel, NoTls};
use std::sync::Mutex;

/// Tries of one change that lost a race before it is given up.
const TRIES: u32 = 20;

/// The shared database cannot be reached: nothing that needs it is done
/// (no installer is served) until it is back.
#[derive(Debug, thiserror::Error)]
#[error("the state database {url} is unreachable: {why}")]
pub struct Unavailable {
    /// Which database (no password).
    pub url: String,
    /// The client's error.
    pub why: String,
}

/// A connection to the shared database, opened again when lost.
pub(super) struct Pg {
    url: String,
    client: Mutex<Option<Client>>,
}

/// The URL with any password left out, for messages.
fn shown(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}@{}", &url[..s + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// A transaction that failed to begin: nothing of it reached the database.
#[derive(Debug)]
struct NotBegun;

impl std::fmt::Display for NotBegun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("beginning a transaction")
    }
}

/// How long a connection attempt may take before the server says the
/// database is unreachable.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

fn open(url: &str) -> Result<Client> {
    let mut config: postgres::Config = url.parse().with_context(|| format!("state.url {}", shown(url)))?;
    config.connect_timeout(CONNECT_TIMEOUT).keepalives(true).keepalives_idle(std::time::Duration::from_secs(30));
    let mut c = config.connect(NoTls).with_context(|| format!("connecting to the state database {}", shown(url)))?;
    super::schema::migrate_pg(&mut c).with_context(|| format!("migrating the state database {}", shown(url)))?;
    Ok(c)
}

/// Whether the error is a lost race a new try may win.
fn lost_race(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<postgres::Error>().and_then(|p| p.code()).is_some_and(|code| {
            *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED
        })
    })
}

/// Whether the error says the connection is gone: closed, an I/O error,
/// or the server going away (SQLSTATE class 08, 57P01–57P03). A type or
/// conversion error is not: the connection stays.
fn connection_lost(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<std::io::Error>()
            || c.downcast_ref::<postgres::Error>().is_some_and(|p| {
                p.is_closed()
                    || std::error::Error::source(p).is_some_and(|s| s.is::<std::io::Error>())
                    || p.code().is_some_and(|code| {
                        let code = code.code();
                        code.starts_with("08") || ["57P01", "57P02", "57P03"].contains(&code)
                    })
            })
    })
}

/// Runs `f` on a thread of its own: the blocking client drives a runtime
/// of its own, which may not be started on a thread of the server's.
fn off_runtime<T: Send>(f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|sc| sc.spawn(f).join()).unwrap_or_else(|_| bail!("the state database thread panicked"))
}

impl Pg {
    /// Connects and migrates; an error says which database and why.
    pub(super) fn connect(url: &str) -> Result<Pg> {
        let client = off_runtime(|| open(url))?;
        Ok(Pg { url: url.to_string(), client: Mutex::new(Some(client)) })
    }

    /// Runs `f` in a serializable transaction and commits it, again (up to
    /// [`TRIES`] times) when it lost a race with another server.
    pub(super) fn transaction<T: Send>(&self, f: &mut (impl FnMut(&mut Tx) -> Result<T> + Send)) -> Result<T> {
        off_runtime(|| self.transaction_here(f))
    }

    fn transaction_here<T>(&self, f: &mut impl FnMut(&mut Tx) -> Result<T>) -> Result<T> {
        let mut guard = self.client.lock().unwrap_or_else(|p| p.into_inner());
        let mut tries = 0;
        loop {
            tries += 1;
            if guard.as_ref().is_none_or(Client::is_closed) {
                *guard = None;
                let c = open(&self.url).map_err(|e| Unavailable { url: shown(&self.url), why: format!("{e:#}") })?;
                *guard = Some(c);
            }
            let Some(client) = guard.as_mut() else { bail!("no connection to the state database") };
            let result = (|| {
                let t = client
                    .build_transaction()
                    .isolation_level(IsolationLevel::Serializable)
                    .start()
                    .map_err(|e| anyhow::Error::new(e).context(NotBegun))?;
                let mut tx = Tx::Pg(t);
                let out = f(&mut tx)?;
                let Tx::Pg(t) = tx else { bail!("a PostgreSQL transaction turned into another kind") };
                t.commit().context("committing state change")?;
                Ok(out)
            })();
            match result {
                Ok(out) => return Ok(out),
                Err(e) if lost_race(&e) && tries < TRIES => {
                    std::thread::sleep(std::time::Duration::from_millis(u64::from(tries) * 5));
                }
                Err(e) => {
                    let lost = connection_lost(&e) || guard.as_ref().is_some_and(Client::is_closed);
                    if !lost {
                        return Err(e);
                    }
                    *guard = None;
                    // the database restarted since the last change and the
                    // transaction never began: nothing was sent, so it runs
                    // on a new connection (once the commit may have been
                    // sent, it is not tried again)
                    if tries == 1 && e.downcast_ref::<NotBegun>().is_some() {
                        continue;
                    }
                    return Err(Unavailable { url: shown(&self.url), why: format!("{e:#}") }.into());
                }
            }
        }
    }
}

impl Drop for Pg {
    /// Closing the connection blocks on the client's own runtime: on a
    /// thread of its own, as every other use.
    fn drop(&mut self) {
        let client = match self.client.get_mut() {
            Ok(c) => c.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(c) = client {
            let _ = std::thread::spawn(move || drop(c)).join();
        }
    }
}
