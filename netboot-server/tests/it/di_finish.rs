//! The Debian installer's last step (`finish.sh`, run by the preseed's
//! `preseed/late_command`) under busybox `sh` (the shell the Debian
//! installer has) against a scratch target. What would reach into the new
//! system (`chroot`) or the network (`wget`) is recorded instead of run.
//! The files it writes for logins must be those metalboot's own installer
//! writes, byte for byte: the SSH daemon's drop-in, the admin user's keys
//! and sudoers file.

use crate::common;
use metalboot::inventory::Inventory;
use metalboot::render::Renderer;
use metalboot::script::{self, Site};
use metalboot_spec::HostSpec;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const HOST_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl root@new";

/// Renders `host`'s finish.sh and runs it against `target`; returns the
/// output and the commands it ran in the new system, one per line.
fn run_finish(dir: &Path, host: &HostSpec, target: &Path) -> (Output, String) {
    let r = Renderer::embedded().unwrap();
    let cfg = common::fixture_config(Path::new("/tmp"));
    let site = Site { base_url: "http://127.0.0.1:9", tls: None, console: &cfg.console, debian: &cfg.debian_installer };
    let body = script::di_script(&r, &site, host, TOKEN, "finish.sh").unwrap().unwrap();
    let script = dir.join("finish.sh");
    std::fs::write(&script, body).unwrap();
    let log = dir.join("chroot.log");
    let prelude = format!("wget(){{ :; }}; chroot(){{ shift; echo \"$*\" >>'{}'; }}; ", log.display());
    let out = Command::new("busybox")
        .args(["sh", "-c", &format!("{prelude}. '{}'", script.display())])
        .env("METALBOOT_TARGET", target)
        .output()
        .unwrap();
    (out, std::fs::read_to_string(&log).unwrap_or_default())
}

/// A target as the Debian installer leaves it: host keys, root, and the
/// admin user its user-setup made (with a home), if `admin` is given.
fn target(dir: &Path, admin: Option<&str>) -> std::path::PathBuf {
    let t = dir.join("target");
    std::fs::create_dir_all(t.join("etc/ssh")).unwrap();
    std::fs::write(t.join("etc/ssh/ssh_host_ed25519_key.pub"), format!("{HOST_KEY}\n")).unwrap();
    let mut passwd = String::from("root:x:0:0:root:/root:/bin/bash\n");
    if let Some(a) = admin {
        passwd.push_str(&format!("{a}:x:1000:1000::/home/{a}:/bin/bash\n"));
        std::fs::create_dir_all(t.join("home").join(a)).unwrap();
    }
    std::fs::write(t.join("etc/passwd"), passwd).unwrap();
    t
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o777
}

#[test]
fn finish_writes_the_login_files_metalboots_installer_writes() {
    let inv = Inventory::load(&common::fixtures().join("inventory")).unwrap();
    for name in ["di1", "di2", "di3"] {
        let host = inv.get(name).unwrap();
        let admin = host.admin_user();
        let dir = tempfile::tempdir().unwrap();
        let t = target(dir.path(), admin.as_ref().map(|a| a.name.as_str()));
        let (out, ran) = run_finish(dir.path(), host, &t);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));

        let drop_in = t.join("etc/ssh/sshd_config.d/00-metalboot.conf");
        assert_eq!(std::fs::read_to_string(&drop_in).unwrap(), host.sshd_settings().drop_in(), "{name}");
        assert_eq!(mode(&drop_in), 0o644, "{name}");
        let root_keys: String = host.ssh_authorized_keys.iter().map(|k| format!("{k}\n")).collect();
        assert_eq!(std::fs::read_to_string(t.join("root/.ssh/authorized_keys")).unwrap(), root_keys, "{name}");
        assert!(ran.contains("curl "), "{name}: the final report goes out through the target's curl:\n{ran}");

        let Some(a) = admin else {
            assert!(!t.join("home").exists() && !t.join("etc/sudoers.d").exists(), "{name}");
            continue;
        };
        let ssh = t.join("home").join(&a.name).join(".ssh");
        let keys: String = a.ssh_authorized_keys.iter().map(|k| format!("{k}\n")).collect();
        assert_eq!(std::fs::read_to_string(ssh.join("authorized_keys")).unwrap(), keys, "{name}");
        assert_eq!((mode(&ssh), mode(&ssh.join("authorized_keys"))), (0o700, 0o600), "{name}");
        let n = &a.name;
        let mut want =
            vec![format!("usermod --password * --shell {} {n}", a.shell), format!("chown -R {n}: /home/{n}/.ssh")];
        let sudoers = t.join(a.sudoers_path().trim_start_matches('/'));
        if a.sudo {
            assert_eq!(std::fs::read_to_string(&sudoers).unwrap(), a.sudoers(), "{name}");
            assert_eq!(mode(&sudoers), 0o440, "{name}");
            want.push(format!("visudo --check --quiet --file {}", a.sudoers_path()));
        } else {
            assert!(!sudoers.exists() && !ran.contains("visudo"), "{name}: no sudo, no sudoers file");
        }
        for w in want {
            assert!(ran.lines().any(|l| l == w), "{name}: {w:?} was not run in the new system:\n{ran}");
        }
    }
}

#[test]
fn finish_fails_when_the_installer_made_no_admin_user() {
    let inv = Inventory::load(&common::fixtures().join("inventory")).unwrap();
    let host = inv.get("di2").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let t = target(dir.path(), None);
    let (out, ran) = run_finish(dir.path(), host, &t);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("metalboot: the installer made no user deploy"), "{stderr}");
    assert!(!ran.contains("curl "), "no final report after a failure:\n{ran}");
}
