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

fn open(url: &str) -> Result<Client> {
    let mut c =
        Client::connect(url, NoTls).with_context(|| format!("connecting to the state database {}", shown(url)))?;
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

/// Whether the error came from a connection that is gone.
fn connection_lost(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<postgres::Error>().is_some_and(|p| p.is_closed() || p.code().is_none()))
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
                *guard = Some(open(&self.url).context("the state database is unreachable")?);
            }
            let Some(client) = guard.as_mut() else { bail!("no connection to the state database") };
            let result = (|| {
                let t = client.build_transaction().isolation_level(IsolationLevel::Serializable).start()?;
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
                    if connection_lost(&e) {
                        *guard = None;
                        return Err(e.context(format!("the state database {} is unreachable", shown(&self.url))));
                    }
                    return Err(e);
                }
            }
        }
    }
}

impl Drop for Pg {
    /// Closing the connection blocks on the client's own runtime: on a
    /// thread of its own, as every other use.
    fn drop(&mut self) {
        let client = self.client.get_mut().map_or(None, Option::take);
        if let Some(c) = client {
            let _ = std::thread::spawn(move || drop(c)).join();
        }
    }
}
