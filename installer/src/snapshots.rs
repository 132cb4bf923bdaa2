//! Snapshots on the installed system (`[host.snapshots]` in the plan):
//! btrbk's configuration, its timer's interval, and the timer enabled. The
//! image must carry Debian's `btrbk` (metalboot's images do).

use crate::files::write;
use anyhow::{bail, Context, Result};
use metalboot_spec::InstallPlan;
use std::path::Path;

/// btrbk's configuration in the installed system.
pub const BTRBK_CONF: &str = "etc/btrbk/btrbk.conf";
/// The drop-in setting the timer's interval.
pub const TIMER_DROPIN: &str = "etc/systemd/system/btrbk.timer.d/metalboot.conf";

/// Writes the files and enables `btrbk.timer`; nothing without snapshots.
pub fn configure(target: &Path, plan: &InstallPlan) -> Result<()> {
    let Some(snap) = &plan.snapshots else { return Ok(()) };
    if !target.join("usr/bin/btrbk").is_file() {
        bail!(
            "the image has no /usr/bin/btrbk: the host's [host.snapshots] needs an image with Debian's btrbk package \
             (metalboot's own images carry it)"
        );
    }
    write(target, BTRBK_CONF, &snap.btrbk_conf(&plan.layout, &plan.hostname), 0o644)?;
    write(target, TIMER_DROPIN, &snap.timer_dropin(), 0o644)?;
    let wants = target.join("etc/systemd/system/timers.target.wants");
    std::fs::create_dir_all(&wants)?;
    let link = wants.join("btrbk.timer");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("/lib/systemd/system/btrbk.timer", &link).context("enabling btrbk.timer")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(snapshots: Option<serde_json::Value>) -> InstallPlan {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../netboot-server/tests/golden/web1.plan.json")).unwrap();
        if let Some(s) = snapshots {
            v["snapshots"] = s;
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn btrbk_is_configured_and_its_timer_enabled() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("usr/bin")).unwrap();
        std::fs::write(t.path().join("usr/bin/btrbk"), "#!/usr/bin/perl\n").unwrap();
        let p = plan(Some(serde_json::json!({"subvolumes": ["@", "@home"], "every": "15min"})));
        p.validate().unwrap();
        configure(t.path(), &p).unwrap();
        let conf = std::fs::read_to_string(t.path().join(BTRBK_CONF)).unwrap();
        assert!(conf.contains("subvolume /home\n  snapshot_name @home\n"), "{conf}");
        let timer = std::fs::read_to_string(t.path().join(TIMER_DROPIN)).unwrap();
        assert!(timer.contains("OnUnitActiveSec=15min"), "{timer}");
        let link = std::fs::read_link(t.path().join("etc/systemd/system/timers.target.wants/btrbk.timer")).unwrap();
        assert_eq!(link, Path::new("/lib/systemd/system/btrbk.timer"));
    }

    #[test]
    fn without_btrbk_in_the_image_it_says_so_and_without_snapshots_nothing_is_written() {
        let t = tempfile::tempdir().unwrap();
        let p = plan(Some(serde_json::json!({"subvolumes": ["@"], "every": "1d"})));
        let e = configure(t.path(), &p).unwrap_err().to_string();
        assert!(e.contains("no /usr/bin/btrbk"), "{e}");
        configure(t.path(), &plan(None)).unwrap();
        assert!(!t.path().join("etc").exists());
    }
}
