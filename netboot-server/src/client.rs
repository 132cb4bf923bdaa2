//! A small blocking client for the operator API, used by `metalboot hosts`.

use crate::cli::HostsAction;
use crate::http::api_types::{FailRequest, HostDetail, HostView, ReinstallBoot, ReinstallRequest};
use crate::state::{HostReport, ProgressEvent};
use anyhow::{bail, Context, Result};

/// Talks to one server with one bearer token.
pub struct ApiClient {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl ApiClient {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str, token: &str) -> ApiClient {
        let agent = ureq::AgentBuilder::new().timeout(std::time::Duration::from_secs(30)).build();
        ApiClient { base: base.trim_end_matches('/').to_string(), token: token.to_string(), agent }
    }

    fn call(&self, method: &str, path: &str) -> Result<String> {
        let url = format!("{}{path}", self.base);
        let resp = self.agent.request(method, &url).set("Authorization", &format!("Bearer {}", self.token)).call();
        match resp {
            Ok(r) => r.into_string().with_context(|| format!("reading response of {method} {url}")),
            Err(ureq::Error::Status(code, r)) => {
                let body = r.into_string().unwrap_or_default();
                bail!("{method} {url}: HTTP {code}: {}", body.trim())
            }
            Err(e) => Err(e).with_context(|| format!("calling {method} {url}")),
        }
    }

    /// All hosts.
    pub fn list(&self) -> Result<Vec<HostView>> {
        serde_json::from_str(&self.call("GET", "/v1/hosts")?).context("parsing host list")
    }

    /// One host with its timeline.
    pub fn show(&self, name: &str) -> Result<HostDetail> {
        serde_json::from_str(&self.call("GET", &format!("/v1/hosts/{name}"))?).context("parsing host")
    }

    /// The Ansible inventory (`--list` shape), or one host's vars.
    pub fn ansible(&self, host: Option<&str>) -> Result<serde_json::Value> {
        let path = match host {
            Some(h) => format!("/v1/inventory/ansible?host={}", urlencode(h)),
            None => "/v1/inventory/ansible".into(),
        };
        serde_json::from_str(&self.call("GET", &path)?).context("parsing inventory")
    }

    fn post_json<B: serde::Serialize, R: serde::de::DeserializeOwned>(&self, path: &str, body: &B) -> Result<R> {
        let url = format!("{}{path}", self.base);
        let resp = self.agent.post(&url).set("Authorization", &format!("Bearer {}", self.token)).send_json(body);
        let text = match resp {
            Ok(r) => r.into_string().with_context(|| format!("reading response of POST {url}"))?,
            Err(ureq::Error::Status(code, r)) => {
                let body = r.into_string().unwrap_or_default();
                bail!("POST {url}: HTTP {code}: {}", body.trim())
            }
            Err(e) => return Err(e).with_context(|| format!("calling POST {url}")),
        };
        serde_json::from_str(&text).with_context(|| format!("parsing the answer of POST {url}"))
    }

    /// Starts a reinstall in place: the installer to boot and its command line.
    pub fn reinstall(&self, name: &str, req: &ReinstallRequest) -> Result<ReinstallBoot> {
        self.post_json(&format!("/v1/hosts/{name}/reinstall"), req)
    }

    /// Records a failure the installer could not report.
    pub fn fail(&self, name: &str, step: &str, error: &str) -> Result<HostView> {
        self.post_json(&format!("/v1/hosts/{name}/fail"), &FailRequest { step: step.into(), error: error.into() })
    }

    /// The host's install plan, fetched with its install token.
    pub fn plan(&self, name: &str, token: &str) -> Result<metalboot_spec::InstallPlan> {
        let text = self.call("GET", &format!("/v1/hosts/{name}/plan?token={}", urlencode(token)))?;
        serde_json::from_str(&text).context("parsing the plan")
    }

    /// Posts a progress event on the host's behalf (token-authenticated).
    pub fn event(&self, name: &str, token: &str, ev: &ProgressEvent) -> Result<serde_json::Value> {
        self.post_json(&format!("/v1/hosts/{name}/events?token={}", urlencode(token)), ev)
    }

    /// Reports host keys and addresses on the host's behalf: `report`
    /// (the installer's final report) or `installed` (first boot).
    pub fn host_report(&self, name: &str, token: &str, what: &str, rep: &HostReport) -> Result<serde_json::Value> {
        self.post_json(&format!("/v1/hosts/{name}/{what}?token={}", urlencode(token)), rep)
    }

    /// Streams `url` (an asset) into `out`; returns the byte count.
    pub fn download(&self, url: &str, out: &mut dyn std::io::Write) -> Result<u64> {
        let agent = ureq::AgentBuilder::new().timeout_connect(std::time::Duration::from_secs(30)).build();
        let resp = agent.get(url).call().with_context(|| format!("fetching {url}"))?;
        std::io::copy(&mut resp.into_reader(), out).with_context(|| format!("copying {url}"))
    }

    /// Arms or disarms.
    pub fn set_armed(&self, name: &str, arm: bool) -> Result<HostView> {
        let verb = if arm { "arm" } else { "disarm" };
        serde_json::from_str(&self.call("POST", &format!("/v1/hosts/{name}/{verb}"))?).context("parsing host")
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// known_hosts text for every installed host: name and addresses, each key.
pub fn known_hosts_text(hosts: &[HostView]) -> Result<String> {
    let mut out = String::new();
    for h in hosts.iter().filter(|h| h.record.state == crate::state::HostState::Installed) {
        let mut names = vec![h.record.name.clone()];
        names.extend(h.record.addresses.iter().cloned());
        for l in crate::handoff::keys::known_hosts_lines(&names, &h.record.host_keys)
            .with_context(|| format!("host {}", h.record.name))?
        {
            out.push_str(&l);
            out.push('\n');
        }
    }
    Ok(out)
}

/// SSHFP records for every installed host's keys; owner `name.domain.` (or
/// the bare name, relative to the zone, without a domain).
pub fn sshfp_text(hosts: &[HostView], domain: Option<&str>) -> Result<String> {
    let mut out = String::new();
    for h in hosts.iter().filter(|h| h.record.state == crate::state::HostState::Installed) {
        let owner = match domain {
            Some(d) => format!("{}.{}.", h.record.name, d.trim_end_matches('.')),
            None => h.record.name.clone(),
        };
        for k in &h.record.host_keys {
            let key = crate::handoff::keys::parse_key(k).with_context(|| format!("host {}", h.record.name))?;
            if let Some(r) = crate::handoff::keys::sshfp_record(&owner, &key) {
                out.push_str(&r);
                out.push('\n');
            }
        }
    }
    Ok(out)
}

fn printable(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// Runs one `metalboot hosts` action and prints the result.
pub fn hosts_command(client: &ApiClient, action: HostsAction, json: bool) -> Result<()> {
    match action {
        HostsAction::List => {
            let hosts = client.list()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&hosts)?);
            } else {
                println!("{:<20} {:<11} {:<18} {:<17} DISK", "NAME", "STATE", "METHOD", "MAC");
                for h in hosts {
                    let method = serde_json::to_value(h.method)?.as_str().unwrap_or("").to_string();
                    println!(
                        "{:<20} {:<11} {:<18} {:<17} {}",
                        h.record.name,
                        h.record.state,
                        method,
                        h.macs.first().map(String::as_str).unwrap_or("-"),
                        printable(&h.disk)
                    );
                }
            }
        }
        HostsAction::Show { name } => {
            let d = client.show(&name)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                println!("host:   {}", d.host.record.name);
                println!("state:  {}", d.host.record.state);
                if let (Some(step), Some(err)) = (&d.host.record.failed_step, &d.host.record.failed_error) {
                    println!("failed: step {} — {}", printable(step), printable(err));
                }
                println!("macs:   {}", d.host.macs.join(", "));
                println!("disk:   {}", printable(&d.host.disk));
                for k in &d.host.record.host_keys {
                    println!("key:    {}", printable(k));
                }
                println!("timeline:");
                for e in d.timeline {
                    let what = match (&e.state, &e.step) {
                        (Some(s), _) => format!("-> {s}"),
                        (None, Some(step)) => {
                            format!("   {}{}", printable(step), e.percent.map(|p| format!(" {p}%")).unwrap_or_default())
                        }
                        _ => "   ".into(),
                    };
                    println!("  {}  {:<24} {}", e.at, what, printable(&e.message));
                }
            }
        }
        HostsAction::Arm { name } => {
            let h = client.set_armed(&name, true)?;
            println!("{}: {}", h.record.name, h.record.state);
        }
        HostsAction::Disarm { name } => {
            let h = client.set_armed(&name, false)?;
            println!("{}: {}", h.record.name, h.record.state);
        }
    }
    Ok(())
}
