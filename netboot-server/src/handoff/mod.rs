//! Handing an installed host to the config layer: the Ansible inventory,
//! known_hosts and SSHFP from the host keys the host reported, hooks on
//! `installed`/`failed`, and the watch that fails hosts whose first boot
//! never phoned home.

pub mod ansible;
pub mod hooks;

use crate::inventory::Inventory;
use crate::state::Store;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// `[handoff]` in metalboot.toml.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct HandoffConfig {
    /// A host that reported the end of its install and has not phoned home
    /// from its first boot after this long is `failed` (`first-boot`).
    #[serde(default = "default_first_boot_timeout")]
    pub first_boot_timeout_secs: u64,
    /// Hooks, run in order.
    #[serde(default)]
    pub hooks: Vec<hooks::HookConfig>,
}

fn default_first_boot_timeout() -> u64 {
    1800
}

impl Default for HandoffConfig {
    fn default() -> Self {
        HandoffConfig { first_boot_timeout_secs: default_first_boot_timeout(), hooks: Vec::new() }
    }
}

impl HandoffConfig {
    /// Checks the section.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(10..=7 * 86_400).contains(&self.first_boot_timeout_secs) {
            anyhow::bail!("field `handoff.first_boot_timeout_secs`: between 10 and 604800");
        }
        for (i, h) in self.hooks.iter().enumerate() {
            h.validate(&format!("handoff.hooks[{i}]"))?;
        }
        Ok(())
    }
}

/// What the handoff needs from the running server: its `[handoff]`
/// section, the inventory, the state store and the data directory (where
/// hooks write known_hosts files). Borrowed, so the server keeps owning it.
pub struct Handoff<'a> {
    /// `[handoff]`.
    pub config: &'a HandoffConfig,
    /// Validated inventory (the one current when the event happened).
    pub inventory: std::sync::Arc<Inventory>,
    /// State database.
    pub store: &'a Store,
    /// `server.data_dir`.
    pub data_dir: &'a Path,
}

/// Runs the hooks for `event` on host `name` in the background.
pub fn fire(h: &Handoff, event: &'static str, name: &str) {
    let Some(spec) = h.inventory.get(name).cloned() else { return };
    if !h.config.hooks.iter().any(|hook| hook.matches(event, &spec)) {
        return;
    }
    let (hooks, store, dir) = (h.config.hooks.clone(), h.store.clone(), h.data_dir.join("known_hosts"));
    tokio::spawn(async move {
        let st = store.clone();
        let n = spec.name.clone();
        let rec = match tokio::task::spawn_blocking(move || st.get(&n)).await {
            Ok(Ok(r)) => r,
            _ => return,
        };
        let facts = hooks::HookFacts::new(event, &spec, &rec);
        hooks::run_all(&hooks, &store, &dir, &spec, facts).await;
    });
}

/// Every `every`, fails the hosts whose first boot is overdue (`timeout`
/// after their install's end) and calls `on_failed` for each, to fire their
/// `failed` hooks.
pub async fn watch_first_boot(store: Store, timeout: Duration, every: Duration, on_failed: impl Fn(&str)) {
    let timeout_ms = timeout.as_millis() as i64;
    loop {
        tokio::time::sleep(every).await;
        let st = store.clone();
        match tokio::task::spawn_blocking(move || st.expire_first_boot(timeout_ms)).await {
            Ok(Ok(names)) => {
                for n in names {
                    tracing::warn!(host = %n, "no first boot: host marked failed");
                    on_failed(&n);
                }
            }
            Ok(Err(e)) => tracing::error!(error = format!("{e:#}"), "checking first boots"),
            Err(_) => {}
        }
    }
}
