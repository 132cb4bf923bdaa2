//! Snapshots on the installed system (`[host.snapshots]` in the plan):
//! btrbk's configuration, its timer's interval, and the timer enabled. The
//! image must carry Debian's `btrbk` (metalboot's images do).

use crate::files::write;
use anyhow::{bail, Context, Result};
use metalboot_spec::send::{self, BACKUP_IDENTITY, BACKUP_KNOWN_HOSTS, BACKUP_SSH_CONFIG};
use metalboot_spec::InstallPlan;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// btrbk's configuration in the installed system.
pub const BTRBK_CONF: &str = "etc/btrbk/btrbk.conf";
/// The drop-in setting the timer's interval.
pub const TIMER_DROPIN: &str = "etc/systemd/system/btrbk.timer.d/metalboot.conf";

/// The script that reports the host's status after each run.
pub const REPORT_SCRIPT: &str = "usr/local/sbin/metalboot-report-status";
/// Where it finds the server.
pub const REPORT_ENV: &str = "etc/metalboot/status.env";
/// The drop-in that runs it after btrbk.
pub const SERVICE_DROPIN: &str = "etc/systemd/system/btrbk.service.d/metalboot.conf";

/// Writes the report script, its settings and btrbk.service's drop-in
/// (after every run, successful or not); nothing for a plan without a
/// status endpoint (a server from before them).
fn configure_reports(target: &Path, plan: &InstallPlan, pins: Option<&metalboot_spec::PinSet>) -> Result<()> {
    let url = &plan.endpoints.status;
    if url.is_empty() {
        return Ok(());
    }
    let dir = metalboot_spec::snapshots::snapshot_dir(&plan.layout);
    let mut env =
        format!("METALBOOT_STATUS_URL='{url}'\nMETALBOOT_HOST='{}'\nMETALBOOT_SNAPSHOT_DIR='{dir}'\n", plan.hostname);
    if let Some(p) = pins.filter(|_| url.starts_with("https://")) {
        env.push_str(&format!("METALBOOT_PIN='{p}'\n"));
    }
    write(target, REPORT_ENV, &env, 0o600)?;
    write(target, REPORT_SCRIPT, include_str!("report-status.sh"), 0o755)?;
    write(
        target,
        SERVICE_DROPIN,
        &format!(
            "# written by metalboot: report the snapshots and the run's result to the server\n[Service]\n\
             ExecStopPost=-/{REPORT_SCRIPT}\n"
        ),
        0o644,
    )
}

/// Writes the files and enables `btrbk.timer`; nothing without snapshots.
pub fn configure(target: &Path, plan: &InstallPlan, pins: Option<&metalboot_spec::PinSet>) -> Result<()> {
    let Some(snap) = &plan.snapshots else { return Ok(()) };
    if !target.join("usr/bin/btrbk").is_file() {
        bail!(
            "the image has no /usr/bin/btrbk: the host's [host.snapshots] needs an image with Debian's btrbk package \
             (metalboot's own images carry it)"
        );
    }
    write(target, BTRBK_CONF, &snap.btrbk_conf(&plan.layout, &plan.hostname), 0o644)?;
    write(target, TIMER_DROPIN, &snap.timer_dropin(), 0o644)?;
    crate::files::enable(target, "timers.target", "/lib/systemd/system/btrbk.timer")?;
    configure_reports(target, plan, pins)?;
    if snap.send.is_empty() {
        return Ok(());
    }
    write(target, BACKUP_KNOWN_HOSTS, &send::known_hosts(&snap.send), 0o644)?;
    write(target, BACKUP_SSH_CONFIG, &send::ssh_config(&snap.send), 0o644)?;
    let dir = target.join(BACKUP_IDENTITY.trim_start_matches('/')).parent().map(Path::to_path_buf).unwrap_or_default();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    for f in [BACKUP_IDENTITY.to_string(), format!("{BACKUP_IDENTITY}.pub")] {
        let _ = std::fs::remove_file(target.join(f.trim_start_matches('/')));
    }
    let comment = format!("btrbk@{}", plan.hostname);
    crate::cmd::in_target(
        target,
        &["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", &comment, "-f", BACKUP_IDENTITY],
    )
    .context("generating the backup key")?;
    Ok(())
}

/// The backup key's public half (`type base64 comment`), when the install
/// made one.
pub fn backup_key(target: &Path) -> Result<Option<String>> {
    let p = target.join(format!("{BACKUP_IDENTITY}.pub").trim_start_matches('/'));
    match std::fs::read_to_string(&p) {
        Ok(k) => Ok(Some(k.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
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
        configure(t.path(), &p, None).unwrap();
        let conf = std::fs::read_to_string(t.path().join(BTRBK_CONF)).unwrap();
        assert!(conf.contains("subvolume /home\n  snapshot_name @home\n"), "{conf}");
        let timer = std::fs::read_to_string(t.path().join(TIMER_DROPIN)).unwrap();
        assert!(timer.contains("OnUnitActiveSec=15min"), "{timer}");
        let link = std::fs::read_link(t.path().join("etc/systemd/system/timers.target.wants/btrbk.timer")).unwrap();
        assert_eq!(link, Path::new("/lib/systemd/system/btrbk.timer"));
    }

    #[test]
    fn send_targets_are_pinned_and_the_client_kept_to_them() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("usr/bin")).unwrap();
        std::fs::write(t.path().join("usr/bin/btrbk"), "#!/usr/bin/perl\n").unwrap();
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
        let p = plan(Some(serde_json::json!({"subvolumes": ["@"], "every": "1h",
            "send": [{"target": "ssh://192.0.2.9:2222/srv/b", "host_key": key}]})));
        p.validate().unwrap();
        // no ssh-keygen to run in the fixture: everything before it is written
        let e = configure(t.path(), &p, None).unwrap_err();
        assert!(format!("{e:#}").contains("generating the backup key"), "{e:#}");
        let kh = std::fs::read_to_string(t.path().join("etc/btrbk/ssh/known_hosts")).unwrap();
        assert!(kh.ends_with(&format!("[192.0.2.9]:2222 {key}\n")), "{kh}");
        let mode = std::fs::metadata(t.path().join("etc/btrbk/ssh")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let c = std::fs::read_to_string(t.path().join("etc/ssh/ssh_config.d/metalboot-backup.conf")).unwrap();
        assert!(c.contains("Match host 192.0.2.9 localuser root\n    StrictHostKeyChecking yes\n"), "{c}");
        assert_eq!(backup_key(t.path()).unwrap(), None);
        std::fs::write(t.path().join("etc/btrbk/ssh/id_ed25519.pub"), format!("{key} btrbk@web1\n")).unwrap();
        assert_eq!(backup_key(t.path()).unwrap(), Some(format!("{key} btrbk@web1")));
    }

    #[test]
    fn with_a_status_endpoint_each_run_is_reported_through_a_pinned_https() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("usr/bin")).unwrap();
        std::fs::write(t.path().join("usr/bin/btrbk"), "#!/usr/bin/perl\n").unwrap();
        let mut p = plan(Some(serde_json::json!({"subvolumes": ["@"], "every": "1h"})));
        p.endpoints.status = "https://192.0.2.1:8443/v1/hosts/web1/status".into();
        let pins: metalboot_spec::PinSet = metalboot_spec::Pin::of_spki(b"k").to_string().parse().unwrap();
        configure(t.path(), &p, Some(&pins)).unwrap();
        let env = std::fs::read_to_string(t.path().join(REPORT_ENV)).unwrap();
        assert_eq!(
            env,
            format!(
                "METALBOOT_STATUS_URL='{}'\nMETALBOOT_HOST='web1'\nMETALBOOT_SNAPSHOT_DIR='/.snapshots'\n\
                 METALBOOT_PIN='{pins}'\n",
                p.endpoints.status
            )
        );
        let dropin = std::fs::read_to_string(t.path().join(SERVICE_DROPIN)).unwrap();
        assert!(dropin.contains("ExecStopPost=-/usr/local/sbin/metalboot-report-status\n"), "{dropin}");
        let mode = std::fs::metadata(t.path().join(REPORT_SCRIPT)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        // a plan from a server without the endpoint: no reports
        let t2 = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t2.path().join("usr/bin")).unwrap();
        std::fs::write(t2.path().join("usr/bin/btrbk"), "").unwrap();
        configure(t2.path(), &plan(Some(serde_json::json!({"subvolumes": ["@"], "every": "1h"}))), None).unwrap();
        assert!(!t2.path().join(REPORT_ENV).exists());
    }

    #[test]
    fn without_btrbk_in_the_image_it_says_so_and_without_snapshots_nothing_is_written() {
        let t = tempfile::tempdir().unwrap();
        let p = plan(Some(serde_json::json!({"subvolumes": ["@"], "every": "1d"})));
        let e = configure(t.path(), &p, None).unwrap_err().to_string();
        assert!(e.contains("no /usr/bin/btrbk"), "{e}");
        configure(t.path(), &plan(None), None).unwrap();
        assert!(!t.path().join("etc").exists());
    }
}
