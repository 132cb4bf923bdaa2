//! Reload without a restart: on SIGHUP (`systemctl reload metalboot`) the
//! server reads its config file and the inventory it names again, checks
//! them as a start would, and only then swaps the inventory (HTTP, hooks)
//! and the DHCP reservations made from it, whole. A file that does not load
//! is refused with the error logged, and the previous inventory keeps
//! serving. Nothing else is touched: installs in flight keep their tokens
//! and plans, TFTP transfers and DHCP leases go on, and the listeners stay
//! bound. A host added with `arm = true` is armed, so it installs at its
//! next network boot; a host may not leave the inventory while it is
//! installing (the reload is refused, naming it). The TLS certificate is
//! served anew when its files hold the same key (a renewal). Settings of
//! the config file other than the inventory take effect at the next start,
//! and the log says so when they changed.
//!
//! `POST /v1/reload` (operator token; `metalboot reload`, the unit's
//! `ExecReload=`) does the same and answers only when it is done, with what
//! changed or why it was refused: `systemctl reload` then fails when the
//! reload was refused.

use crate::config::Config;
use crate::dhcp::DhcpSettings;
use crate::inventory::Inventory;
use crate::live::Live;
use crate::state::Store;
use crate::tls::{CertSource, ServerCert};
use anyhow::{bail, Context, Result};
use metalboot_spec::api::HostState;
use metalboot_spec::quote;
use std::path::PathBuf;
use std::sync::Arc;

/// What a reload needs of the running server.
pub struct Reloader {
    /// `--config`, as given at the start.
    pub config_path: Option<PathBuf>,
    /// The configuration the server started with (`--listen` applied).
    pub started: Config,
    /// The DHCP settings in use, when DHCP is on.
    pub dhcp: Option<Arc<Live<DhcpSettings>>>,
    /// The HTTP port the DHCP settings point iPXE at.
    pub http_port: u16,
    /// The certificate served over HTTPS, when `[server.tls]` is on.
    pub tls: Option<(CertSource, ServerCert)>,
    /// Held while a reload runs: SIGHUP and the API never interleave.
    pub running: std::sync::Mutex<()>,
}

/// The settings DHCP serves for `inventory` (its reservations) under
/// `config`.
pub fn dhcp_settings(config: &Config, inventory: &Inventory, http_port: u16) -> Result<DhcpSettings> {
    let mut settings = config.dhcp.resolve(inventory, http_port).context("in [dhcp]")?;
    if let Some(u) = &config.public_url {
        settings.http_base = u.clone();
    }
    Ok(settings)
}

/// Hosts of `old` that `new` no longer has.
fn removed<'a>(old: &'a Inventory, new: &Inventory) -> Vec<&'a str> {
    old.hosts().iter().filter(|h| new.get(&h.name).is_none()).map(|h| h.name.as_str()).collect()
}

/// Hosts of `new` that `old` did not have.
fn added<'a>(old: &Inventory, new: &'a Inventory) -> Vec<&'a str> {
    new.hosts().iter().filter(|h| old.get(&h.name).is_none()).map(|h| h.name.as_str()).collect()
}

/// Whether the config file changed in more than its inventory path.
fn other_settings_changed(started: &Config, now: &Config) -> bool {
    let mut now = now.clone();
    now.inventory = started.inventory.clone();
    now.listen = started.listen;
    format!("{started:?}") != format!("{now:?}")
}

impl Reloader {
    /// Reads, checks and swaps `state`'s inventory; returns what changed,
    /// in words. On an error nothing was swapped. One at a time.
    pub fn reload(&self, inventory: &Live<Inventory>, store: &Store) -> Result<String> {
        let _one = self.running.lock().unwrap_or_else(|e| e.into_inner());
        crate::sdnotify::notify("RELOADING=1");
        self.reload_tls();
        let out = self.reload_inventory(inventory, store);
        match &out {
            Ok(said) => {
                tracing::info!("{said}");
                crate::sdnotify::notify(&format!("READY=1\nSTATUS={said}"));
            }
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "reload refused: still serving the previous inventory");
                crate::sdnotify::notify("READY=1");
            }
        }
        out
    }

    fn reload_inventory(&self, live: &Live<Inventory>, store: &Store) -> Result<String> {
        let (config, inventory, _) =
            crate::load::load_all(self.config_path.as_deref()).context("reload refused, nothing changed")?;
        // the server keeps the assets, DHCP range and addresses it started
        // with: the new inventory is checked against those
        crate::load::check_host_images(&self.started, &inventory)
            .context("reload refused, nothing changed (the assets are the ones the server started with)")?;
        let old = live.load();
        refuse_dropping_installs(store, &old, &inventory)?;
        // only the reservations change; the rest of the DHCP settings (pool,
        // server address) stay as the server started with them
        let settings = match &self.dhcp {
            Some(live) => {
                let made = dhcp_settings(&self.started, &inventory, self.http_port)
                    .context("reload refused, nothing changed")?;
                let mut s = (*live.load()).clone();
                s.reservations = made.reservations;
                Some(s)
            }
            None => None,
        };
        let mut said = format!("inventory reloaded: {} host(s)", inventory.hosts().len());
        for (what, names) in [("added", added(&old, &inventory)), ("removed", removed(&old, &inventory))] {
            if !names.is_empty() {
                said.push_str(&format!(", {what} {}", names.join(", ")));
            }
        }
        // the swap: HTTP and hooks see the new inventory from the next
        // request on, DHCP from the next datagram
        let new = std::sync::Arc::new(inventory);
        live.store_arc(new.clone());
        // a dropped host that started to boot between the check and the
        // swap: put the old inventory back
        if let Err(e) = refuse_dropping_installs(store, &old, &new) {
            live.store_arc(old);
            return Err(e);
        }
        if let (Some(live), Some(s)) = (&self.dhcp, settings) {
            live.store(s);
        }
        // armed once the new inventory holds, so a refused reload arms none
        let to_arm: Vec<&str> = new.hosts().iter().filter(|h| h.arm).map(|h| h.name.as_str()).collect();
        let armed = store.arm_new_hosts(to_arm).context("arming the new hosts")?;
        if !armed.is_empty() {
            said.push_str(&format!(", armed {}", armed.join(", ")));
        }
        if other_settings_changed(&self.started, &config) {
            tracing::warn!(
                "settings of the config file other than the inventory changed: they apply at the next start"
            );
        }
        for (host, image, path) in crate::load::hosts_missing_their_image(&self.started, &new) {
            tracing::warn!(%host, %image, path = %path.display(), "the host's image is missing: its installer gets no plan");
        }
        Ok(said)
    }
}

/// Refuses an inventory that drops a host mid-install.
fn refuse_dropping_installs(store: &Store, old: &Inventory, new: &Inventory) -> Result<()> {
    for name in removed(old, new) {
        let state = store.get(name)?.state;
        if matches!(state, HostState::Booting | HostState::Installing | HostState::Rebooting) {
            bail!(
                "reload refused, nothing changed: host {} is {state} and the new inventory drops it; disarm it \
                 or let the install finish first",
                quote(name)
            );
        }
    }
    Ok(())
}

impl Reloader {
    /// The certificate files read again, if HTTPS is on.
    fn reload_tls(&self) {
        if let Some((source, served)) = &self.tls {
            match crate::tls::reload(source, served) {
                Ok(()) => tracing::info!(pin = %served.pin, "reloaded the TLS certificate"),
                Err(e) => tracing::error!(error = format!("{e:#}"), "keeping the TLS certificate in use"),
            }
        }
    }
}
