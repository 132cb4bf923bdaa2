//! The status page in a real browser (Debian's headless `chromium`) during
//! a QEMU install: logged in through its form, it must show the host's
//! progress change live (no reload: the page keeps a mark set at load) up to
//! `installed`; screenshots go to `target/e2e-status-page-installing.png`
//! and `target/e2e-status-page.png`; arm and
//! disarm work from its buttons (the confirmation accepted).

use crate::browser::{Browser, Page};
use crate::harness::{workspace, Scenario};
use anyhow::{ensure, Context, Result};
use std::time::Duration;

/// A browser on the status page, watching one host.
pub struct Watcher {
    page: Page,
    host: String,
    _browser: Browser,
}

/// Records every state and step the host's section shows, as the page
/// changes, in `window.seen`; `window.mark` only survives without reload.
const OBSERVE: &str = r#"(() => {
  window.mark = "loaded once"; window.seen = [];
  const rec = () => {
    const h = document.getElementById("host-HOST"); if (!h) return;
    const st = h.querySelector("[data-state]").dataset.state;
    const p = h.querySelector("[data-step]");
    const v = st + (p ? ":" + p.dataset.step : "");
    if (window.seen[window.seen.length - 1] !== v) window.seen.push(v);
  };
  new MutationObserver(rec).observe(document.querySelector("main"), { childList: true, subtree: true });
  rec(); return true;
})()"#;

impl Watcher {
    /// Starts Chromium inside the scenario's namespace, logs in with the
    /// API token through the form and starts watching `host`.
    pub fn open(s: &mut Scenario, host: &str) -> Result<Watcher> {
        let dir = s.dir.join("browser");
        std::fs::create_dir_all(&dir)?;
        let mut browser = Browser::launch_with(&["ip", "netns", "exec", &s.ns.name], &dir)?;
        let mut page = browser.open(&format!("{}/", s.base))?;
        page.wait_for("document.getElementById('token') !== null", Duration::from_secs(30))
            .context("the login form")?;
        let token = serde_json::to_string(&s.api_token)?;
        page.eval(&format!(
            "document.getElementById('token').value = {token}; document.querySelector('form[action=\"/login\"]').submit(); true"
        ))?;
        page.wait_for(&format!("document.getElementById('host-{host}') !== null"), Duration::from_secs(30))
            .context("the status page after logging in")?;
        page.wait_for("document.getElementById('live').textContent.includes('on')", Duration::from_secs(30))
            .context("the live updates connecting")?;
        page.eval(&OBSERVE.replace("HOST", host))?;
        s.phase("status page open in chromium, logged in, live updates on");
        Ok(Watcher { page, host: host.to_string(), _browser: browser })
    }

    /// A screenshot once the page shows a step with a percentage (the
    /// install is under way): `target/e2e-status-page-installing.png`.
    pub fn shot_while_installing(&mut self, s: &mut Scenario) -> Result<()> {
        let h = &self.host;
        let js = format!(
            "document.querySelector('#host-{h} progress[value]') !== null ? 'step' : \
             (['armed', 'booting', 'installing'].includes(document.querySelector('#host-{h} [data-state]').dataset.state) ? '' : 'past')"
        );
        let seen = self.page.wait_for(&js, Duration::from_secs(300)).context("a step with a percentage on the page")?;
        if seen == "past" {
            s.phase("no screenshot while installing: the steps with a percentage were over before the page was read");
            return Ok(());
        }
        let shot = workspace().join("target/e2e-status-page-installing.png");
        self.page.screenshot(&shot)?;
        let step =
            self.page.eval(&format!("document.querySelector('#host-{} [data-step]').dataset.step", self.host))?;
        s.phase(&format!("screenshot {} at step {step}", shot.display()));
        Ok(())
    }

    fn state(&mut self) -> String {
        let js = format!("document.querySelector('#host-{} [data-state]').dataset.state", self.host);
        self.page.eval(&js).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
    }

    /// The host is `installed` on the API: the page must have followed the
    /// whole way live. Then a screenshot, and arm and disarm from the page.
    pub fn check_install(&mut self, s: &mut Scenario) -> Result<()> {
        let h = self.host.clone();
        self.page
            .wait_for(
                &format!("document.querySelector('#host-{h} [data-state]').dataset.state === 'installed'"),
                Duration::from_secs(30),
            )
            .context("the page showing installed")?;
        let seen: Vec<String> = serde_json::from_value(self.page.eval("window.seen")?)?;
        let mark = self.page.eval("window.mark")?;
        ensure!(mark == "loaded once", "the page was reloaded (mark {mark}); seen {seen:?}");
        let steps: Vec<&String> = seen.iter().filter(|v| v.starts_with("installing:")).collect();
        ensure!(steps.len() >= 3, "fewer than 3 steps seen live while installing: {seen:?}");
        ensure!(seen.last().map(String::as_str) == Some("installed"), "not ending installed: {seen:?}");
        s.phase(&format!("status page followed live: {}", seen.join(" → ")));
        let shot = workspace().join("target/e2e-status-page.png");
        self.page.screenshot(&shot)?;
        std::fs::copy(&shot, s.dir.join("status-page.png"))?;
        let fp = self.page.eval(&format!("document.querySelector('#host-{h} .keys').textContent"))?;
        ensure!(fp.as_str().is_some_and(|t| t.contains("SHA256:")), "no host key fingerprint on the page: {fp}");
        // arm, then disarm, through the buttons (the confirmation accepted)
        self.page.accept_dialogs()?;
        for (button, want) in [("arm", "armed"), ("disarm", "disarmed")] {
            self.page.eval(&format!("document.querySelector('#host-{h} button.{button}').click(); true"))?;
            self.page
                .wait_for(
                    &format!("document.querySelector('#host-{h} [data-state]').dataset.state === '{want}'"),
                    Duration::from_secs(30),
                )
                .with_context(|| format!("the page after {button}"))?;
            let api = s.host(&h)?;
            ensure!(api["state"] == want, "after {button} on the page the API says {}", api["state"]);
            ensure!(self.state() == want, "the page says {}", self.state());
        }
        s.phase(&format!("screenshot {}; arm and disarm from the page", shot.display()));
        Ok(())
    }
}
