//! What the status page shows of a host, gathered from the inventory and
//! the store, and rendered with the `ui/` templates.

use crate::render::Renderer;
use crate::state::{HostRecord, HostState, Store, TimelineEntry};
use anyhow::Result;
use metalboot_spec::HostSpec;
use serde::Serialize;

/// Timeline entries shown per host (the newest).
const TIMELINE_SHOWN: usize = 15;
/// Log lines shown per host (the last).
const LOG_SHOWN: usize = 40;

/// A timeline entry as the page shows it (every field present).
#[derive(Serialize, Debug)]
pub struct UiEntry {
    /// When.
    pub at: String,
    /// `state`, `progress`, `log`, …
    pub kind: String,
    /// New state.
    pub state: Option<String>,
    /// Installer step.
    pub step: Option<String>,
    /// Percent of the step.
    pub percent: Option<i64>,
    /// Message.
    pub message: String,
}

impl From<TimelineEntry> for UiEntry {
    fn from(e: TimelineEntry) -> UiEntry {
        UiEntry { at: e.at, kind: e.kind, state: e.state, step: e.step, percent: e.percent, message: e.message }
    }
}

/// One host on the page.
#[derive(Serialize, Debug)]
pub struct UiHost {
    /// Inventory name.
    pub name: String,
    /// State name.
    pub state: String,
    /// The current step while installing.
    pub progress: Option<UiEntry>,
    /// Step that failed.
    pub failed_step: Option<String>,
    /// Why.
    pub failed_error: Option<String>,
    /// `TYPE SHA256:…` per reported host key.
    pub fingerprints: Vec<String>,
    /// Addresses reported by the first boot.
    pub addresses: Vec<String>,
    /// MACs from the inventory.
    pub macs: Vec<String>,
    /// The disk selector in words.
    pub disk: String,
    /// Last change.
    pub updated_at: String,
    /// The newest timeline entries, newest first.
    pub timeline: Vec<UiEntry>,
    /// The last lines of the installer's log.
    pub log: Vec<String>,
    /// Whether arming makes sense (not installing right now).
    pub can_arm: bool,
    /// Whether disarming makes sense (armed or on its way).
    pub can_disarm: bool,
    /// The host's last status report, as `hosts show` prints it.
    pub snapshots: Vec<String>,
    /// Whether that report's run failed.
    pub snapshots_failed: bool,
    /// The key it logs in to its backup targets with.
    pub backup_key: Option<String>,
}

/// Gathers one host.
pub fn host(spec: &HostSpec, store: &Store) -> Result<UiHost> {
    let rec: HostRecord = store.get(&spec.name)?;
    let timeline = store.timeline_newest(&spec.name, TIMELINE_SHOWN)?;
    let log = store.log_tail(&spec.name, LOG_SHOWN)?.into_iter().map(|l| l.line).collect();
    let fingerprints = rec
        .host_keys
        .iter()
        .map(|k| crate::sshkey::typed_fingerprint(k).unwrap_or_else(|e| format!("unreadable key: {e}")))
        .collect();
    let busy = matches!(rec.state, HostState::Booting | HostState::Installing | HostState::Rebooting);
    Ok(UiHost {
        name: spec.name.clone(),
        state: rec.state.to_string(),
        progress: rec.progress.clone().map(UiEntry::from),
        failed_step: rec.failed_step.clone(),
        failed_error: rec.failed_error.clone(),
        fingerprints,
        addresses: rec.addresses.clone(),
        macs: spec.macs.iter().map(|m| m.to_string()).collect(),
        disk: spec.describe_disks(),
        updated_at: rec.updated_at.clone(),
        timeline: timeline.into_iter().map(UiEntry::from).collect(),
        log,
        can_arm: !busy && rec.state != HostState::Armed,
        can_disarm: rec.state == HostState::Armed || busy,
        snapshots: rec.status.as_ref().map(crate::operator::status::lines).unwrap_or_default(),
        snapshots_failed: rec.status.as_ref().is_some_and(|s| !s.ok()),
        backup_key: rec.backup_key.clone(),
    })
}

/// Hosts per state, in the order states are listed.
pub fn counts(hosts: &[UiHost]) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for h in hosts {
        match out.iter_mut().find(|(s, _)| *s == h.state) {
            Some((_, n)) => *n += 1,
            None => out.push((h.state.clone(), 1)),
        }
    }
    out
}

/// One host's section (what a live update replaces).
pub fn render_host(r: &Renderer, h: &UiHost, form_token: &str) -> Result<String> {
    r.render(crate::render::names::UI_HOST, &serde_json::json!({ "h": h, "form_token": form_token }))
}

/// The summary line (hosts per state).
pub fn render_summary(r: &Renderer, hosts: &[UiHost]) -> Result<String> {
    r.render(crate::render::names::UI_SUMMARY, &serde_json::json!({ "counts": counts(hosts) }))
}
