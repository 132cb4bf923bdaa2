//! Snapshots on an installed host (`[host.snapshots]`): btrbk configured
//! by the installer, its timer enabled at the inventory's interval; the
//! snapshots appear on schedule and retention prunes the older ones.

use crate::scenarios::Installed;
use anyhow::{bail, ensure, Result};
use std::time::{Duration, Instant};

/// The snapshots in `/.snapshots`, by name.
fn snapshots(i: &Installed) -> Result<Vec<String>> {
    let out = i.ssh("btrfs subvolume list -o /.snapshots | awk '{print $NF}' | sed 's|.*/||' | sort")?;
    Ok(out.lines().map(str::to_string).filter(|l| !l.is_empty()).collect())
}

/// The newest snapshot of `name` in `list` (names sort by time).
fn of<'a>(list: &'a [String], name: &str) -> Vec<&'a String> {
    list.iter().filter(|s| s.starts_with(&format!("{name}."))).collect()
}

/// Waits for the timer's first run, then for a later one that replaced
/// both snapshots (retention: the newest only).
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
            }
            Some(f) if root.len() == 1 && home.len() == 1 && !f.contains(root[0]) && !f.contains(home[0]) => {
                ensure!(list.len() == 2, "more than the newest kept: {list:?}");
                let runs = i.ssh("journalctl -o cat -u btrbk.service | grep -c 'Finished btrbk' || true")?;
                i.s.phase(&format!(
                    "a later run replaced them after {:?}: {} (the first ones pruned; btrbk.service finished {} times)",
                    started.elapsed(),
                    list.join(", "),
                    runs.trim()
                ));
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
