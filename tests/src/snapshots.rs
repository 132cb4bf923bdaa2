//! Snapshots on an installed host (`[host.snapshots]`): btrbk configured
//! by the installer, its timer enabled at the inventory's interval; the
//! snapshots appear on schedule and a later run's retention prunes the
//! older ones.

use crate::backup::BackupTarget;
use crate::scenarios::Installed;
use anyhow::{bail, ensure, Result};
use std::time::{Duration, Instant};

/// The target received @home's snapshot (a received UUID: `btrfs
/// receive` made it); then a stand-in with another host key at the same
/// address gets nothing: the host's SSH client refuses it, btrbk's run
/// fails, and the local snapshot is still taken.
fn check_send(i: &mut Installed, b: &mut BackupTarget, received: &[(String, String)], home: &str) -> Result<()> {
    ensure!(received[0].1.len() > 8, "{home} on the target has no received UUID: {received:?}");
    i.s.phase(&format!("the target received {home} (received UUID {}) over SSH", received[0].1));
    // the host reported the run, signed with its host key
    let status = wait_status(i, |st| st["run"]["result"] == "success" && st["snapshots"].to_string().contains(home))?;
    i.s.phase(&format!("the host reported its snapshots and a successful run: {status}"));
    b.start(&i.s, true)?;
    let before = snapshots(i)?;
    let out = i.ssh("systemctl start btrbk.service; echo rc=$?; journalctl -o cat -u btrbk.service -n 40")?;
    ensure!(!out.contains("rc=0\n"), "btrbk's run succeeded against the stand-in:\n{out}");
    ensure!(out.contains("Host key verification failed"), "no host key refusal in btrbk's log:\n{out}");
    ensure!(b.received()? == received, "the target's directory changed: {:?}", b.received()?);
    let log = b.log();
    let standin_log = log.rsplit("Server listening").next().unwrap_or("");
    ensure!(!standin_log.contains("Accepted publickey"), "the stand-in saw a login:\n{log}");
    let after = snapshots(i)?;
    ensure!(after != before && of(&after, "@home").len() == 2, "the local snapshot was not taken: {after:?}");
    i.s.phase("a stand-in with another host key at the target's address: refused (Host key verification failed), nothing received");
    let status = wait_status(i, |st| st["run"]["result"] != "success")?;
    ensure!(status["run"]["errors"].to_string().contains("Host key verification failed"), "reported: {status}");
    let show = i.s.cli(&["hosts", "show", "vm1"])?;
    ensure!(show.contains("last run: FAILED") && show.contains("snapshots: 2 @home"), "hosts show:\n{show}");
    ensure!(show.contains("backup: ssh-ed25519 "), "hosts show has no backup key:\n{show}");
    let shown: Vec<&str> = show.lines().filter(|l| l.starts_with("snapshots:") || l.starts_with("last run:")).collect();
    i.s.phase(&format!("hosts show: {}", shown.join(" | ")));
    b.start(&i.s, false)?;
    Ok(())
}

/// Waits (up to 90 s) for the host's status report to satisfy `ok`.
fn wait_status(i: &Installed, ok: impl Fn(&serde_json::Value) -> bool) -> Result<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let st = i.s.host("vm1")?["status"].clone();
        if ok(&st) {
            return Ok(st);
        }
        if Instant::now() > deadline {
            let log = i.ssh("journalctl -o cat -u btrbk.service | grep metalboot: | tail -5").unwrap_or_default();
            bail!("the host's status report is {st}\n{log}");
        }
        std::thread::sleep(Duration::from_secs(3));
    }
}

/// The snapshots in `/.snapshots`, by name.
fn snapshots(i: &Installed) -> Result<Vec<String>> {
    let out = i.ssh("btrfs subvolume list -o /.snapshots | awk '{print $NF}' | sed 's|.*/||' | sort")?;
    Ok(out.lines().map(str::to_string).filter(|l| !l.is_empty()).collect())
}

/// The newest snapshot of `name` in `list` (names sort by time).
fn of<'a>(list: &'a [String], name: &str) -> Vec<&'a String> {
    list.iter().filter(|s| s.starts_with(&format!("{name}."))).collect()
}

/// Waits for the timer's first run, then starts a later one (the timer
/// still holding its next) that must replace both snapshots (retention:
/// the newest only).
pub fn check_snapshots(i: &mut Installed) -> Result<()> {
    let timer = i.ssh("systemctl is-enabled btrbk.timer; systemctl show -p TimersMonotonic btrbk.timer")?;
    ensure!(timer.starts_with("enabled"), "btrbk.timer: {timer}");
    let conf = i.ssh("cat /etc/btrbk/btrbk.conf")?;
    ensure!(conf.contains("subvolume /home\n  snapshot_name @home"), "btrbk.conf:\n{conf}");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(360);
    let mut first: Option<Vec<String>> = None;
    loop {
        let list = snapshots(i)?;
        let (root, home) = (of(&list, "@"), of(&list, "@home"));
        match &first {
            None if !root.is_empty() && !home.is_empty() => {
                i.s.phase(&format!("first snapshots after {:?}: {}", started.elapsed(), list.join(", ")));
                first = Some(list.clone());
                // the timer started that run and holds the next one; a
                // later run is started now rather than waited for (once the
                // first has ended: a start while it runs would join it)
                let next = i.ssh(
                    "while [ \"$(systemctl show -p ActiveState --value btrbk.service)\" = activating ]; do sleep 1; done; \
                     systemctl show -p NextElapseUSecMonotonic --value btrbk.timer; sleep 1; systemctl start btrbk.service",
                )?;
                let next = next.trim();
                ensure!(!next.is_empty() && next != "infinity" && next != "0", "btrbk.timer has no next run: {next}");
                continue;
            }
            Some(f) if root.len() == 1 && home.len() == 1 && !f.contains(root[0]) && !f.contains(home[0]) => {
                ensure!(list.len() == 2, "more than the newest kept: {list:?}");
                // the target holds @home's newest snapshot, received, and
                // only that one (its retention: the newest)
                let received = match &i.backup {
                    Some(b) => b.received()?,
                    None => Vec::new(),
                };
                if i.backup.is_some() && !(received.len() == 1 && &received[0].0 == home[0]) {
                    if Instant::now() > deadline {
                        bail!("the target holds {received:?}, not {} alone", home[0]);
                    }
                    std::thread::sleep(Duration::from_secs(10));
                    continue;
                }
                let runs = i.ssh("journalctl -o cat -u btrbk.service | grep -c 'Finished btrbk' || true")?;
                i.s.phase(&format!(
                    "a later run replaced them after {:?}: {} (the first ones pruned; btrbk.service finished {} times)",
                    started.elapsed(),
                    list.join(", "),
                    runs.trim()
                ));
                if let Some(mut b) = i.backup.take() {
                    let r = check_send(i, &mut b, &received, home[0]);
                    i.backup = Some(b);
                    r?;
                }
                return Ok(());
            }
            _ => {}
        }
        if Instant::now() > deadline {
            let log = i.ssh("journalctl -o cat -u btrbk.service | tail -20").unwrap_or_default();
            bail!(
                "snapshots not taken and pruned on schedule in {:?}: now {list:?}, first {first:?}\n{log}",
                started.elapsed()
            );
        }
        std::thread::sleep(Duration::from_secs(10));
    }
}
