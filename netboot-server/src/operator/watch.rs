//! `metalboot hosts logs NAME [--follow]` and `metalboot hosts watch`: the
//! installer's console as the server keeps it, and a terminal view of every
//! host that refreshes.

use super::client::ApiClient;
use crate::api::HostView;
use anyhow::Result;
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// Prints the host's log; with `follow`, keeps printing new lines until
/// interrupted.
pub fn logs(client: &ApiClient, name: &str, follow: bool) -> Result<()> {
    let mut after = 0;
    let mut out = std::io::stdout().lock();
    loop {
        let page = client.log(name, after)?;
        for l in &page.lines {
            writeln!(out, "{}", l.line)?;
        }
        out.flush()?;
        let more = page.next != after;
        after = page.next;
        if !more {
            if !follow {
                return Ok(());
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

/// Redraws [`frame`] every `interval` until interrupted; on a terminal the
/// screen is cleared first, otherwise frames follow one another.
pub fn watch(client: &ApiClient, interval: Duration) -> Result<()> {
    let tty = std::io::stdout().is_terminal();
    loop {
        let text = frame(&client.list()?, &now());
        let mut out = std::io::stdout().lock();
        if tty {
            write!(out, "\x1b[H\x1b[2J")?;
        }
        writeln!(out, "{text}")?;
        out.flush()?;
        std::thread::sleep(interval);
    }
}

/// The time now, as the server writes times (RFC 3339, UTC, seconds).
fn now() -> String {
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc().format(&f).unwrap_or_default()
}

fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// One screen: a header with the time and the count per state, then a line
/// per host: name, state, and what it is doing (step and percent) or why it
/// failed.
pub fn frame(hosts: &[HostView], now: &str) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for h in hosts {
        let s = h.record.state.to_string();
        match counts.iter_mut().find(|(k, _)| *k == s) {
            Some((_, n)) => *n += 1,
            None => counts.push((s, 1)),
        }
    }
    let summary: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let mut out =
        format!("metalboot hosts at {now}: {}\n\n", if hosts.is_empty() { "none".into() } else { summary.join(", ") });
    out.push_str(&format!("{:<20} {:<11} {:<26} DETAIL\n", "NAME", "STATE", "STEP"));
    for h in hosts {
        let r = &h.record;
        let (step, detail) = match (&r.failed_step, &r.failed_error, &r.progress) {
            (Some(step), Some(err), _) => (clean(step), clean(err)),
            (_, _, Some(p)) => {
                let pct = p.percent.map(|p| format!(" {p}%")).unwrap_or_default();
                (format!("{}{pct}", clean(p.step.as_deref().unwrap_or("-"))), clean(&p.message))
            }
            _ => ("-".into(), format!("since {}", r.updated_at)),
        };
        let detail: String = detail.chars().take(100).collect();
        out.push_str(&format!("{:<20} {:<11} {:<26} {}\n", r.name, r.state.as_str(), step, detail));
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(json: serde_json::Value) -> HostView {
        let mut base = serde_json::json!({
            "name": "web1", "state": "installing", "host_keys": [], "addresses": [],
            "updated_at": "2026-12-05T10:00:00.000Z", "macs": [], "labels": [], "method": "image",
            "disk": "serial=X", "min_disk_bytes": 0, "login": "root"
        });
        for (k, v) in json.as_object().unwrap() {
            base[k] = v.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn a_frame_shows_counts_progress_and_failures() {
        let hosts = vec![
            host(
                serde_json::json!({"progress": {"at": "x", "kind": "progress", "step": "unpack", "percent": 42, "message": "rootfs"}}),
            ),
            host(
                serde_json::json!({"name": "db1", "state": "failed", "failed_step": "select-disk", "failed_error": "2 disks\nmatch"}),
            ),
            host(serde_json::json!({"name": "db2", "state": "installed"})),
        ];
        let f = frame(&hosts, "2026-12-05T10:00:01.000Z");
        let lines: Vec<&str> = f.lines().collect();
        assert_eq!(lines[0], "metalboot hosts at 2026-12-05T10:00:01.000Z: 1 installing, 1 failed, 1 installed");
        assert!(lines[3].starts_with("web1") && lines[3].contains("unpack 42%") && lines[3].ends_with("rootfs"), "{f}");
        assert!(lines[4].contains("select-disk") && lines[4].ends_with("2 disks match"), "{f}");
        assert!(lines[5].ends_with("since 2026-12-05T10:00:00.000Z"), "{f}");
        assert_eq!(frame(&[], "t").lines().next(), Some("metalboot hosts at t: none"));
    }
}
