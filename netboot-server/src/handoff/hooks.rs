//! Hooks run when a host becomes `installed` or `failed`: a command (argv,
//! no shell) with the host's facts in `METALBOOT_*` variables and a
//! known_hosts file for it, and/or a webhook POST whose JSON body is signed
//! with HMAC-SHA256. Attempts are bounded and each one is written to the
//! host's timeline; the host's state is committed before any hook runs, so
//! a failing hook never changes it.

use crate::sshkey::known_hosts_lines;
use crate::state::{HostRecord, Store};
use anyhow::{bail, Context, Result};
use hmac::{Hmac, Mac};
use metalboot_spec::quote;
use metalboot_spec::HostSpec;
use serde::Deserialize;
use sha2::Sha256;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Header carrying `sha256=<hex HMAC of the body>`.
pub const SIGNATURE_HEADER: &str = "X-Metalboot-Signature-256";

/// `[[handoff.hooks]]` in metalboot.toml.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    /// Name, for the timeline.
    pub name: String,
    /// Events: `installed`, `failed`.
    #[serde(default = "default_on")]
    pub on: Vec<String>,
    /// Only hosts with one of these labels (default: every host).
    #[serde(default)]
    pub labels: Vec<String>,
    /// Only these hosts (default: every host).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Command and arguments, run without a shell.
    #[serde(default)]
    pub command: Vec<String>,
    /// Webhook URL (http:// or https://).
    pub url: Option<String>,
    /// File holding the HMAC key for the webhook (required with `url`).
    pub secret_file: Option<PathBuf>,
    /// PEM file of CA certificates trusted for an `https://` url, beside the
    /// system's store.
    pub ca_file: Option<PathBuf>,
    /// Attempts after the first failed one.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Per attempt.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_on() -> Vec<String> {
    vec!["installed".into()]
}
fn default_retries() -> u32 {
    2
}
fn default_timeout() -> u64 {
    300
}

impl HookConfig {
    /// Checks one hook; `field` names it in errors.
    pub fn validate(&self, field: &str) -> Result<()> {
        metalboot_spec::safe::check_label(&self.name).map_err(|m| anyhow::anyhow!("field `{field}.name`: {m}"))?;
        for e in &self.on {
            if e != "installed" && e != "failed" {
                bail!("field `{field}.on`: {} is not an event (installed, failed)", quote(e));
            }
        }
        if self.command.is_empty() && self.url.is_none() {
            bail!("field `{field}`: a hook needs a `command` or a `url`");
        }
        if let Some(u) = &self.url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                bail!("field `{field}.url`: {} must start with http:// or https://", quote(u));
            }
            if self.secret_file.is_none() {
                bail!("field `{field}.secret_file`: a webhook needs a secret to sign with");
            }
        }
        if self.ca_file.is_some() && !self.url.as_deref().is_some_and(|u| u.starts_with("https://")) {
            bail!("field `{field}.ca_file`: only an https:// url uses a CA file");
        }
        if self.retries > 10 {
            bail!("field `{field}.retries`: at most 10");
        }
        if !(1..=86_400).contains(&self.timeout_secs) {
            bail!("field `{field}.timeout_secs`: between 1 and 86400");
        }
        Ok(())
    }

    /// Does this hook fire for `event` on `spec`?
    pub fn matches(&self, event: &str, spec: &HostSpec) -> bool {
        self.on.iter().any(|e| e == event)
            && (self.hosts.is_empty() || self.hosts.contains(&spec.name))
            && (self.labels.is_empty() || self.labels.iter().any(|l| spec.labels.contains(l)))
    }
}

/// Everything a hook is told about the host.
#[derive(serde::Serialize, Debug, Clone)]
pub struct HookFacts {
    /// `installed` or `failed`.
    pub event: String,
    /// Host name.
    pub host: String,
    /// State now.
    pub state: String,
    /// Where Ansible should connect.
    pub ansible_host: Option<String>,
    /// Reported addresses.
    pub addresses: Vec<String>,
    /// Reported SSH host keys.
    pub host_keys: Vec<String>,
    /// MACs.
    pub macs: Vec<String>,
    /// Labels.
    pub labels: Vec<String>,
    /// Failed step, for `failed`.
    pub failed_step: Option<String>,
    /// Error, for `failed`.
    pub failed_error: Option<String>,
    /// When installed (RFC 3339).
    pub installed_at: Option<String>,
}

impl HookFacts {
    /// From the inventory entry and the stored record.
    pub fn new(event: &str, spec: &HostSpec, rec: &HostRecord) -> HookFacts {
        HookFacts {
            event: event.into(),
            host: spec.name.clone(),
            state: rec.state.to_string(),
            ansible_host: super::ansible::ansible_host(spec, rec),
            addresses: rec.addresses.clone(),
            host_keys: rec.host_keys.clone(),
            macs: spec.macs.iter().map(|m| m.to_string()).collect(),
            labels: spec.labels.clone(),
            failed_step: rec.failed_step.clone(),
            failed_error: rec.failed_error.clone(),
            installed_at: rec.installed_at.clone(),
        }
    }

    /// The `METALBOOT_*` environment of a command hook.
    pub fn env(&self, known_hosts: &Path) -> Vec<(String, String)> {
        let opt = |o: &Option<String>| o.clone().unwrap_or_default();
        vec![
            ("METALBOOT_EVENT".into(), self.event.clone()),
            ("METALBOOT_HOST".into(), self.host.clone()),
            ("METALBOOT_STATE".into(), self.state.clone()),
            ("METALBOOT_ANSIBLE_HOST".into(), opt(&self.ansible_host)),
            ("METALBOOT_ADDRESSES".into(), self.addresses.join(" ")),
            ("METALBOOT_MACS".into(), self.macs.join(" ")),
            ("METALBOOT_LABELS".into(), self.labels.join(" ")),
            ("METALBOOT_FAILED_STEP".into(), opt(&self.failed_step)),
            ("METALBOOT_FAILED_ERROR".into(), opt(&self.failed_error)),
            ("METALBOOT_INSTALLED_AT".into(), opt(&self.installed_at)),
            ("METALBOOT_KNOWN_HOSTS".into(), known_hosts.display().to_string()),
        ]
    }
}

/// `sha256=<hex>` of `body` under `key`.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Writes the host's known_hosts file under `dir` and returns its path.
pub fn write_known_hosts(dir: &Path, facts: &HookFacts) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut names = vec![facts.host.clone()];
    names.extend(facts.ansible_host.iter().cloned());
    names.extend(facts.addresses.iter().cloned());
    let text = known_hosts_lines(&names, &facts.host_keys)?.join("\n") + "\n";
    let path = dir.join(&facts.host);
    let tmp = dir.join(format!(".{}.tmp", facts.host));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

fn tail(s: &str, n: usize) -> String {
    let t: Vec<char> = s.chars().filter(|c| !c.is_control() || *c == '\n').collect();
    let start = t.len().saturating_sub(n);
    t[start..].iter().collect::<String>().trim().to_string()
}

/// One attempt of the command; Ok(output) on exit 0.
async fn run_command(h: &HookConfig, env: &[(String, String)]) -> Result<String> {
    let mut cmd = tokio::process::Command::new(&h.command[0]);
    cmd.args(&h.command[1..]).envs(env.iter().cloned()).kill_on_drop(true).stdin(std::process::Stdio::null());
    let out = tokio::time::timeout(Duration::from_secs(h.timeout_secs), cmd.output())
        .await
        .map_err(|_| anyhow::anyhow!("timed out after {} s", h.timeout_secs))?
        .with_context(|| format!("starting {:?}", h.command[0]))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!("{}: {}", out.status, tail(&text, 2000));
    }
    Ok(tail(&text, 2000))
}

/// One attempt of the webhook; Ok(status) on 2xx.
async fn post(h: &HookConfig, body: Vec<u8>, event: &str) -> Result<String> {
    let url = h.url.clone().context("no url")?;
    let key = std::fs::read(h.secret_file.as_ref().context("no secret_file")?).context("reading the webhook secret")?;
    let key = String::from_utf8_lossy(&key).trim().as_bytes().to_vec();
    let sig = sign(&key, &body);
    let timeout = Duration::from_secs(h.timeout_secs);
    let event = event.to_string();
    let ca_file = h.ca_file.clone();
    tokio::task::spawn_blocking(move || {
        let agent = crate::tls::client::agent_builder(ca_file.as_deref())?.timeout(timeout).build();
        match agent
            .post(&url)
            .set("Content-Type", "application/json")
            .set("X-Metalboot-Event", &event)
            .set(SIGNATURE_HEADER, &sig)
            .send_bytes(&body)
        {
            Ok(r) => Ok(format!("HTTP {}", r.status())),
            Err(ureq::Error::Status(c, r)) => bail!("HTTP {c}: {}", tail(&r.into_string().unwrap_or_default(), 500)),
            Err(e) => bail!("{}", crate::tls::client::describe(&e)),
        }
    })
    .await?
}

/// Runs every hook matching `event` for the host, in order, each with its
/// bounded retries (backoff 2, 4, 8… s, capped at 60), recording every
/// attempt on the host's timeline.
pub async fn run_all(hooks: &[HookConfig], store: &Store, kh_dir: &Path, spec: &HostSpec, facts: HookFacts) {
    let name = spec.name.clone();
    let note = |msg: String| {
        let (st, n) = (store.clone(), name.clone());
        async move {
            let _ = tokio::task::spawn_blocking(move || st.note(&n, "hook", &msg)).await;
        }
    };
    for h in hooks.iter().filter(|h| h.matches(&facts.event, spec)) {
        let kh = match write_known_hosts(kh_dir, &facts) {
            Ok(p) => p,
            Err(e) => {
                note(format!("hook {}: cannot write known_hosts: {e:#}", h.name)).await;
                continue;
            }
        };
        let env = facts.env(&kh);
        let body = serde_json::to_vec(&facts).unwrap_or_default();
        for attempt in 0..=h.retries {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs((2u64 << (attempt - 1).min(5)).min(60))).await;
            }
            let mut results = Vec::new();
            if !h.command.is_empty() {
                results.push(run_command(h, &env).await.map(|o| format!("command ok: {o}")));
            }
            if h.url.is_some() {
                results.push(post(h, body.clone(), &facts.event).await.map(|o| format!("webhook ok: {o}")));
            }
            let ok = results.iter().all(|r| r.is_ok());
            let text: Vec<String> =
                results.into_iter().map(|r| r.unwrap_or_else(|e| format!("failed: {e:#}"))).collect();
            let last = attempt == h.retries;
            let verdict = if ok {
                "done"
            } else if last {
                "gave up"
            } else {
                "will retry"
            };
            tracing::info!(host = %name, hook = %h.name, attempt = attempt + 1, ok, "hook ran");
            note(format!("hook {} ({}) attempt {}: {verdict}; {}", h.name, facts.event, attempt + 1, text.join("; ")))
                .await;
            if ok {
                break;
            }
        }
    }
}
