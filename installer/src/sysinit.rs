//! Bringing the initramfs up without udev: load the drivers for the hardware
//! the kernel found (every `modalias` under `/sys/bus/*/devices`, handed to
//! kmod's `modprobe`), then wait until the set of block devices stops
//! changing.

use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Every distinct modalias the kernel exposes.
pub fn modaliases(sys: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Ok(buses) = std::fs::read_dir(sys.join("bus")) else { return out };
    for bus in buses.flatten() {
        let Ok(devs) = std::fs::read_dir(bus.path().join("devices")) else { continue };
        for dev in devs.flatten() {
            if let Ok(a) = std::fs::read_to_string(dev.path().join("modalias")) {
                let a = a.trim();
                if !a.is_empty() {
                    out.insert(a.to_string());
                }
            }
        }
    }
    out
}

/// Loads drivers for all present hardware, plus `extra` modules by name.
/// Repeats once so that devices appearing behind new drivers (virtio bus
/// children) get theirs too.
pub fn load_drivers(extra: &[&str]) -> Result<usize> {
    let mut seen = BTreeSet::new();
    for _ in 0..3 {
        let aliases = modaliases(Path::new("/sys"));
        let new: Vec<String> = aliases.difference(&seen).cloned().collect();
        if new.is_empty() {
            break;
        }
        // -q: quiet about aliases no module claims; -b: honour blacklists; -a: many
        let _ = Command::new("/usr/sbin/modprobe")
            .args(["-q", "-b", "-a"])
            .args(&new)
            .status()
            .context("running modprobe")?;
        seen.extend(new);
    }
    let _ = Command::new("/usr/sbin/modprobe").args(["-q", "-a"]).args(extra).status();
    Ok(seen.len())
}

/// Waits until `/sys/block` has been unchanged for `settle`, at most `max`.
pub fn wait_for_block_devices(settle: Duration, max: Duration) -> Vec<String> {
    let start = Instant::now();
    let list = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir("/sys/block")
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    let mut last = list();
    let mut stable_since = Instant::now();
    while start.elapsed() < max {
        std::thread::sleep(Duration::from_millis(100));
        let now = list();
        if now != last {
            last = now;
            stable_since = Instant::now();
        } else if stable_since.elapsed() >= settle {
            break;
        }
    }
    last
}
