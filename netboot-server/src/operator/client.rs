//! A small blocking client for the operator API, used by `metalboot hosts`,
//! `reinstall` and the other operator commands.

use crate::api::{FailRequest, HostDetail, HostView, ReinstallBoot, ReinstallRequest};
use anyhow::{bail, Context, Result};
use metalboot_spec::{HostReport, ProgressEvent};
use std::time::Duration;

/// Talks to one server with one bearer token.
pub struct ApiClient {
    base: String,
    token: String,
    agent: ureq::Agent,
    /// For downloads, which have no overall timeout.
    download_agent: ureq::Agent,
}

impl ApiClient {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`, or `https://…`
    /// trusting the system's CAs and those in `ca_file`).
    pub fn new(base: &str, token: &str, ca_file: Option<&std::path::Path>) -> Result<ApiClient> {
        let tls = crate::tls::client::client_config(ca_file)?;
        let agent = ureq::AgentBuilder::new().tls_config(tls.clone()).timeout(Duration::from_secs(30)).build();
        let download_agent = ureq::AgentBuilder::new().tls_config(tls).timeout_connect(Duration::from_secs(30)).build();
        Ok(ApiClient { base: base.trim_end_matches('/').to_string(), token: token.to_string(), agent, download_agent })
    }

    /// `url`'s path and query on this client's base.
    fn on_this_server(&self, url: &str) -> String {
        let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
        match rest.map(|r| r.find('/').map_or("", |i| &r[i..])) {
            Some(path) => format!("{}{path}", self.base),
            None => url.to_string(),
        }
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
            // ureq's text starts with the URL
            Err(e) => bail!("{method} {}", crate::tls::client::describe(&e)),
        }
    }

    /// Has the server reload its config file's inventory; what changed.
    pub fn reload(&self) -> Result<String> {
        let v: serde_json::Value = serde_json::from_str(&self.call("POST", "/v1/reload")?).context("parsing reload")?;
        Ok(v["message"].as_str().unwrap_or_default().to_string())
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
            Err(e) => bail!("POST {}", crate::tls::client::describe(&e)),
        };
        serde_json::from_str(&text).with_context(|| format!("parsing the answer of POST {url}"))
    }

    /// Starts a reinstall in place: the installer to boot and its command line.
    pub fn reinstall(&self, name: &str, req: &ReinstallRequest) -> Result<ReinstallBoot> {
        self.post_json(&format!("/v1/hosts/{name}/reinstall"), req)
    }

    /// Records a failure the installer could not report.
    pub fn fail(&self, name: &str, step: metalboot_spec::Step, error: &str) -> Result<HostView> {
        self.post_json(&format!("/v1/hosts/{name}/fail"), &FailRequest { step, error: error.into() })
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

    /// Streams `url` (an asset URL the server handed out) into `out`;
    /// returns the byte count. The server writes those URLs for the target
    /// (its address as the target sees it, HTTPS pinned for the installer),
    /// so the path is fetched from this client's base, the way the operator
    /// reaches the server; the plan's sha256 checks what arrives.
    pub fn download(&self, url: &str, out: &mut dyn std::io::Write) -> Result<u64> {
        let url = &self.on_this_server(url);
        let resp = match self.download_agent.get(url).call() {
            Ok(r) => r,
            Err(e) => bail!("fetching {}", crate::tls::client::describe(&e)),
        };
        std::io::copy(&mut resp.into_reader(), out).with_context(|| format!("copying {url}"))
    }

    /// The host's log lines after id `after`.
    pub fn log(&self, name: &str, after: i64) -> Result<metalboot_spec::log::LogPage> {
        serde_json::from_str(&self.call("GET", &format!("/v1/hosts/{name}/log?after={after}"))?)
            .context("parsing the host's log")
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

#[cfg(test)]
mod tests {
    use super::ApiClient;

    #[test]
    fn asset_urls_are_fetched_from_the_clients_own_base() {
        let c = ApiClient::new("http://127.0.0.1:8080/", "t", None).unwrap();
        let to = |u: &str| c.on_this_server(u);
        assert_eq!(to("https://10.99.0.1:8443/assets/rootfs.tar.zst"), "http://127.0.0.1:8080/assets/rootfs.tar.zst");
        assert_eq!(to("http://[fd00::1]:8080/assets/vmlinuz?x=1"), "http://127.0.0.1:8080/assets/vmlinuz?x=1");
        assert_eq!(to("https://boot.example"), "http://127.0.0.1:8080");
        assert_eq!(to("file:///x"), "file:///x");
    }
}
