//! A network boot's side of the store: issuing install tokens and checking
//! them.
//!
//! `GET /boot.ipxe?mac=…` carries no credential (iPXE has none to give on a
//! LAN), so whoever knows an armed host's MAC can ask for the installer. That
//! request must never take the install away from the installer already
//! running: a boot of a host that is `booting` or `installing` gets a
//! *pending* token next to the current one, and the current one stays valid
//! until the pending one is first used (a machine that really rebooted uses
//! the new one; the old installer is gone). At most two tokens are live, and
//! one install re-issues at most [`MAX_TOKEN_REISSUES`] times; the boot after
//! that fails the host ("too many boots") and revokes both.

use super::db::{vals, Tx};
use super::{hash_token, HostRecord, HostState};
use super::{load, now_ms, set_state, token, Recorded, Store, TokenError};
use anyhow::Result;

/// How many times one install may be served the installer again (each
/// time with a new pending token) after its first boot.
pub const MAX_TOKEN_REISSUES: u32 = 5;

/// The step a host that booted too often is failed at.
pub const TOO_MANY_BOOTS_STEP: &str = "network-boot";

/// What a network boot of a host did to its install.
#[derive(Debug, Clone, PartialEq)]
pub enum BootStart {
    /// The token given is now the host's current one (first boot of this
    /// install) or its pending one (a boot mid-install): serve the installer.
    Installer,
    /// The host does not want install (any more); nothing changed.
    NotWanted,
    /// The boot went over [`MAX_TOKEN_REISSUES`]: the host is `failed`, its
    /// tokens are revoked, serve the local disk.
    TooManyBoots(Box<Recorded>),
}

impl Store {
    /// For a host that wants install: records a freshly issued token (given
    /// as its hash, so the caller renders before anything is committed) and
    /// moves it to `booting`. The first boot of an install makes it the
    /// current token; a later one makes it the pending token and leaves the
    /// current one valid (see the module docs).
    pub fn start_boot(&self, name: &str, token_hash: &str, method: &str, detail: &str) -> Result<BootStart> {
        self.with_tx(|tx| {
            let Some(rec) = load(tx, name)? else { return Ok(BootStart::NotWanted) };
            if !rec.state.wants_install() {
                return Ok(BootStart::NotWanted);
            }
            let row = tx
                .row("SELECT token_hash, token_reissues FROM hosts WHERE name = ?1", vals![name])?
                .ok_or_else(|| anyhow::anyhow!("host {name} vanished mid-transaction"))?;
            let (current, reissues) = (row.opt_text(0)?, u32::try_from(row.int(1)?).unwrap_or(u32::MAX));
            let first = rec.state == HostState::Armed || current.is_none();
            if first {
                tx.exec(
                    "UPDATE hosts SET token_hash = ?2, pending_token_hash = NULL, token_reissues = 0,
                     token_issued_ms = ?3, method = ?4 WHERE name = ?1",
                    vals![name, token_hash, now_ms(), method],
                )?;
                set_state(tx, name, HostState::Booting, &format!("installer served ({detail}); new install token issued"))?;
                return Ok(BootStart::Installer);
            }
            if reissues >= MAX_TOKEN_REISSUES {
                let error = format!(
                    "too many boots: the installer was served {} times for this install; re-arm the host to retry",
                    reissues + 2
                );
                return Ok(BootStart::TooManyBoots(Box::new(super::fail_in(tx, name, TOO_MANY_BOOTS_STEP, &error)?)));
            }
            tx.exec(
                "UPDATE hosts SET pending_token_hash = ?2, token_reissues = token_reissues + 1, method = ?3
                 WHERE name = ?1",
                vals![name, token_hash, method],
            )?;
            set_state(
                tx,
                name,
                HostState::Booting,
                &format!(
                    "installer served again ({detail}); new install token pending ({} of {MAX_TOKEN_REISSUES} re-issues), \
                     the current one stays valid until it is used",
                    reissues + 1
                ),
            )?;
            Ok(BootStart::Installer)
        })
    }
}

/// Checks `token` against the host's current and pending tokens, in a
/// transaction that may write: the first use of the pending token makes it
/// the current one and revokes the old.
pub(super) fn check(tx: &mut Tx, name: &str, token: &str) -> Result<Result<HostRecord, TokenError>> {
    let row = tx.row("SELECT token_hash, pending_token_hash, state FROM hosts WHERE name = ?1", vals![name])?;
    let Some(row) = row else { return Ok(Err(TokenError::Invalid)) };
    let (current, pending, state) = (row.opt_text(0)?, row.opt_text(1)?, row.text(2)?);
    let state: HostState = state.parse().map_err(anyhow::Error::msg)?;
    if !state.token_live() {
        return Ok(Err(TokenError::Invalid));
    }
    let given = hash_token(token);
    let matches = |h: &Option<String>| h.as_deref().is_some_and(|h| token::hashes_equal(h, &given));
    if matches(&pending) {
        tx.exec(
            "UPDATE hosts SET token_hash = pending_token_hash, pending_token_hash = NULL WHERE name = ?1",
            vals![name],
        )?;
        tx.exec(
            "INSERT INTO events (host, at_ms, kind, message) VALUES (?1, ?2, 'token', ?3)",
            vals![name, now_ms(), "the new install token was used; the previous one is revoked"],
        )?;
    } else if !matches(&current) {
        return Ok(Err(TokenError::Invalid));
    }
    Ok(Ok(load(tx, name)?.ok_or_else(|| anyhow::anyhow!("host {name} vanished mid-transaction"))?))
}

/// [`check`] for the installer's own calls (events, the final report): a
/// `failed` host's install is over. Only its first boot may still speak (a
/// host that missed the first-boot deadline keeps its token for that).
pub(super) fn installer_check(tx: &mut Tx, name: &str, token: &str) -> Result<Result<HostRecord, TokenError>> {
    Ok(match check(tx, name, token)? {
        Ok(r) if r.state == HostState::Failed => Err(TokenError::Invalid),
        other => other,
    })
}
