//! Handing an installed host to the config layer: the Ansible inventory,
//! known_hosts and SSHFP from the host keys the host reported, hooks on
//! `installed`/`failed`, and the watch that fails hosts whose first boot
//! never phoned home.

pub mod ansible;
pub mod hooks;
pub mod keys;

use crate::http::AppState;
use serde::Deserialize;
use std::sync::Arc;
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

/// Runs the hooks for `event` on host `name` in the background.
pub fn fire(state: &Arc<AppState>, event: &'static str, name: &str) {
    let hooks = &state.config.handoff.hooks;
    let Some(spec) = state.inventory.get(name).cloned() else { return };
    if !hooks.iter().any(|h| h.matches(event, &spec)) {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        let st = state.store.clone();
        let n = spec.name.clone();
        let rec = match tokio::task::spawn_blocking(move || st.get(&n)).await {
            Ok(Ok(r)) => r,
            _ => return,
        };
        let facts = hooks::HookFacts::new(event, &spec, &rec);
        let dir = state.config.data_dir.join("known_hosts");
        hooks::run_all(&state.config.handoff.hooks, &state.store, &dir, &spec, facts).await;
    });
}

/// Every `every`, fails the hosts whose first boot is overdue and fires
/// their `failed` hooks.
pub async fn watch_first_boot(state: Arc<AppState>, every: Duration) {
    let timeout_ms = state.config.handoff.first_boot_timeout_secs as i64 * 1000;
    loop {
        tokio::time::sleep(every).await;
        let st = state.store.clone();
        match tokio::task::spawn_blocking(move || st.expire_first_boot(timeout_ms)).await {
            Ok(Ok(names)) => {
                for n in names {
                    tracing::warn!(host = %n, "no first boot: host marked failed");
                    fire(&state, "failed", &n);
                }
            }
            Ok(Err(e)) => tracing::error!(error = format!("{e:#}"), "checking first boots"),
            Err(_) => {}
        }
    }
}
