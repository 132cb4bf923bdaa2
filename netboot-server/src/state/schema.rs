//! Schema migrations for the state database, applied in order and recorded in
//! SQLite's `user_version`, each in its own transaction.

use anyhow::{Context, Result};
use rusqlite::Connection;

pub(super) const MIGRATIONS: &[&str] = &[
    // 1: hosts and their timeline.
    "CREATE TABLE hosts (
        name TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        token_hash TEXT,
        token_issued_ms INTEGER,
        failed_step TEXT,
        failed_error TEXT,
        host_keys TEXT NOT NULL DEFAULT '[]',
        addresses TEXT NOT NULL DEFAULT '[]',
        method TEXT,
        installed_ms INTEGER,
        updated_ms INTEGER NOT NULL
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        host TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        state TEXT,
        step TEXT,
        percent INTEGER,
        bytes INTEGER,
        message TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX events_host ON events(host, id);",
    // 2: DHCP leases.
    "CREATE TABLE leases (
        ip TEXT PRIMARY KEY,
        mac TEXT NOT NULL,
        hold TEXT NOT NULL,
        expires_ms INTEGER NOT NULL
    );
    CREATE INDEX leases_mac ON leases(mac);",
    // 3: what a reinstall in place discovered (network, disk), as JSON; it
    // replaces the inventory's for that one install.
    "ALTER TABLE hosts ADD COLUMN install_override TEXT;",
    // 4: a re-PXE mid-install gets a pending token beside the current one
    // (the current stays valid until the pending is first used), and the
    // re-issues of one install are counted to bound them.
    "ALTER TABLE hosts ADD COLUMN pending_token_hash TEXT;
    ALTER TABLE hosts ADD COLUMN token_reissues INTEGER NOT NULL DEFAULT 0;",
    // 5: the installer's console log, the last lines per host.
    "CREATE TABLE logs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        host TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        line TEXT NOT NULL
    );
    CREATE INDEX logs_host ON logs(host, id);",
    // 6: the key a host logs in to its backup targets with, from the
    // installer's report; the host's last signed status report (JSON) and
    // its time, for replays.
    "ALTER TABLE hosts ADD COLUMN backup_key TEXT;
    ALTER TABLE hosts ADD COLUMN status TEXT;
    ALTER TABLE hosts ADD COLUMN status_at INTEGER NOT NULL DEFAULT 0;",
    // 7: the hash of the token a first boot phoned home with: its retry
    // (the answer was lost) gets the same answer, not a refusal that would
    // make a new system on trial roll back.
    "ALTER TABLE hosts ADD COLUMN installed_token_hash TEXT;",
    // 8: the DHCP server (its address) that handed a lease out: servers
    // sharing one database each load and purge their own.
    "ALTER TABLE leases ADD COLUMN server TEXT NOT NULL DEFAULT '';",
];

/// Brings the database schema up to date.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let current: usize =
        conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)).context("reading schema version")? as usize;
    if current > MIGRATIONS.len() {
        anyhow::bail!(
            "state database has schema version {current}, newer than this metalboot knows ({}); refusing to touch it",
            MIGRATIONS.len()
        );
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction().context("starting migration")?;
        tx.execute_batch(sql).with_context(|| format!("applying schema migration {}", i + 1))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit().with_context(|| format!("committing schema migration {}", i + 1))?;
    }
    Ok(())
}

/// The same schema in PostgreSQL, whose first version is SQLite's seventh
/// (the second, SQLite's eighth); a later migration goes on both lists. Recorded in `metalboot_schema`.
pub(super) const PG_MIGRATIONS: &[&str] = &[
    "CREATE TABLE hosts (
        name TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        token_hash TEXT,
        token_issued_ms BIGINT,
        failed_step TEXT,
        failed_error TEXT,
        host_keys TEXT NOT NULL DEFAULT '[]',
        addresses TEXT NOT NULL DEFAULT '[]',
        method TEXT,
        installed_ms BIGINT,
        updated_ms BIGINT NOT NULL,
        install_override TEXT,
        pending_token_hash TEXT,
        token_reissues BIGINT NOT NULL DEFAULT 0,
        backup_key TEXT,
        status TEXT,
        status_at BIGINT NOT NULL DEFAULT 0,
        installed_token_hash TEXT
    );
    CREATE TABLE events (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        host TEXT NOT NULL,
        at_ms BIGINT NOT NULL,
        kind TEXT NOT NULL,
        state TEXT,
        step TEXT,
        percent BIGINT,
        bytes BIGINT,
        message TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX events_host ON events(host, id);
    CREATE TABLE leases (
        ip TEXT PRIMARY KEY,
        mac TEXT NOT NULL,
        hold TEXT NOT NULL,
        expires_ms BIGINT NOT NULL
    );
    CREATE INDEX leases_mac ON leases(mac);
    CREATE TABLE logs (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        host TEXT NOT NULL,
        at_ms BIGINT NOT NULL,
        line TEXT NOT NULL
    );
    CREATE INDEX logs_host ON logs(host, id);",
    "ALTER TABLE leases ADD COLUMN server TEXT NOT NULL DEFAULT '';",
];

/// Brings a PostgreSQL state database up to date; one server at a time
/// (an advisory lock), so servers started together do not race.
pub fn migrate_pg(client: &mut postgres::Client) -> Result<()> {
    let mut t = client.transaction().context("starting migration")?;
    t.execute("SELECT pg_advisory_xact_lock(7243024)", &[])?;
    t.batch_execute("CREATE TABLE IF NOT EXISTS metalboot_schema (version BIGINT NOT NULL)")?;
    let current = t.query_opt("SELECT version FROM metalboot_schema", &[])?.map_or(0, |r| r.get::<_, i64>(0)) as usize;
    if current > PG_MIGRATIONS.len() {
        anyhow::bail!(
            "state database has schema version {current}, newer than this metalboot knows ({}); refusing to touch it",
            PG_MIGRATIONS.len()
        );
    }
    for (i, sql) in PG_MIGRATIONS.iter().enumerate().skip(current) {
        t.batch_execute(sql).with_context(|| format!("applying schema migration {}", i + 1))?;
    }
    t.execute("DELETE FROM metalboot_schema", &[])?;
    t.execute("INSERT INTO metalboot_schema (version) VALUES ($1)", &[&(PG_MIGRATIONS.len() as i64)])?;
    t.commit().context("committing schema migrations")?;
    Ok(())
}
