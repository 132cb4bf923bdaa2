//! What the operator sees of a failed install without a console: the
//! installer's own log, through `metalboot hosts logs`, its tail on the
//! host's timeline, and the host in `metalboot hosts watch`.

use crate::harness::Scenario;
use anyhow::{ensure, Context, Result};
use std::time::Duration;

/// Checks the log of `name`, failed with `reason` (`host` is its
/// `GET /v1/hosts/NAME`); keeps it as `installer.log` beside the serial log.
pub fn check_failed_install_log(s: &mut Scenario, name: &str, host: &serde_json::Value, reason: &str) -> Result<()> {
    let log = s.cli(&["hosts", "logs", name])?;
    std::fs::write(s.dir.join("installer.log"), &log)?;
    let lines = log.lines().count();
    for want in ["metalboot-installer ", "metalboot: kernel command line:", "FAILED at step", reason] {
        ensure!(log.contains(want), "`hosts logs {name}` lacks {want:?} ({lines} lines):\n{log}");
    }
    let (tokens, redacted) =
        (log.matches("metalboot.token=").count(), log.matches("metalboot.token=<redacted>").count());
    ensure!(tokens == redacted, "the log carries the install token:\n{log}");
    let tail = host["timeline"]
        .as_array()
        .and_then(|t| t.iter().find(|e| e["kind"] == "log"))
        .context("no installer log on the failed host's timeline")?;
    let tail = tail["message"].as_str().unwrap_or_default();
    ensure!(tail.contains(reason), "the timeline's log tail lacks {reason:?}:\n{tail}");
    s.phase(&format!("hosts logs: {lines} installer lines; the timeline has the last {}", tail.lines().count() - 1));
    // the status page shows them too, open on the failed host
    let auth = format!("Authorization: Bearer {}", s.api_token);
    let page = s.ns.exec(&["curl", "-sf", "-H", &auth, &format!("{}/", s.base)])?;
    let section = page.split(&format!("id=\"host-{name}\"")).nth(1).unwrap_or_default();
    ensure!(
        section.contains("<details data-key=\"log-")
            && section.contains(" open>")
            && section.contains("metalboot: kernel command line:")
            && section.contains("FAILED at step"),
        "the status page does not show the installer's log for {name}:\n{page}"
    );
    s.phase("the status page shows the installer's log, open on the failed host");
    // `hosts watch` off a terminal: frames one after another
    let mut watch = s.cli_command(&["hosts", "watch", "--interval", "1"])?;
    let child = watch.stdout(std::process::Stdio::piped()).spawn().context("starting hosts watch")?;
    std::thread::sleep(Duration::from_millis(2500));
    // stopped by its own PID, then what it printed
    let pid = child.id();
    let _ = std::process::Command::new("kill").arg(pid.to_string()).status();
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let frames = text.matches("metalboot hosts at ").count();
    let row = text.lines().find(|l| l.starts_with(name)).unwrap_or_default();
    ensure!(frames >= 2 && row.contains("failed") && row.contains(reason), "hosts watch printed:\n{text}");
    s.phase(&format!(
        "hosts watch: {frames} frames in 2.5 s; {}",
        row.split_whitespace().collect::<Vec<_>>().join(" ")
    ));
    Ok(())
}
