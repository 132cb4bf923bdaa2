//! The admin user made by a real `useradd` in a chroot: a small root made of
//! the build machine's `useradd` with its libraries and Debian's
//! `login.defs`, `/etc/default/useradd` and `/etc/skel`, like an unpacked
//! image (root only: chroot).

use crate::common::{sh, KEY};
use metalboot_installer::users;
use metalboot_spec::{AdminUser, RootLogin, SshdSettings};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Copies `bin` and the libraries `ldd` names into `root`.
fn copy_with_libraries(root: &Path, bin: &str) {
    let mut files = vec![bin.to_string()];
    for line in sh(&format!("ldd {bin}")).lines() {
        let p = match line.split_once("=>") {
            Some((_, r)) => r.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        files.extend(p.filter(|p| p.starts_with('/')).map(str::to_string));
    }
    for f in files {
        let dst = root.join(f.trim_start_matches('/'));
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&f, &dst).unwrap();
    }
}

fn small_root(root: &Path) {
    copy_with_libraries(root, "/usr/sbin/useradd");
    for d in ["etc/default", "home", "bin", "usr/bin"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    sh(&format!(
        "cp -r /etc/login.defs /etc/skel {r}/etc/ && cp /etc/default/useradd {r}/etc/default/",
        r = root.display()
    ));
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    std::fs::write(root.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nsudo:x:27:\n").unwrap();
    std::fs::write(root.join("etc/gshadow"), "root:*::\nsudo:*::\n").unwrap();
    // stand-ins the installer only looks for: the shell and sudo
    std::fs::write(root.join("bin/bash"), "").unwrap();
    std::fs::write(root.join("usr/bin/sudo"), "").unwrap();
}

#[test]
#[ignore = "needs root (chroot); run by `make test`"]
fn admin_user_is_made_by_the_images_useradd_with_keys_and_sudo() {
    crate::common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    small_root(root);
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../../../netboot-server/tests/golden/web1.plan.json")).unwrap();
    let admin =
        AdminUser { name: "ops".into(), ssh_authorized_keys: vec![KEY.into()], sudo: true, shell: "/bin/bash".into() };
    v["admin"] = serde_json::to_value(&admin).unwrap();
    v["ssh"] = serde_json::to_value(SshdSettings { permit_root_login: RootLogin::No, password_authentication: false })
        .unwrap();
    let plan: metalboot_spec::InstallPlan = serde_json::from_value(v).unwrap();
    plan.validate().unwrap();

    users::configure_logins(root, &plan).unwrap();

    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    let entry = users::passwd_entry(&passwd, "ops").expect("ops in /etc/passwd");
    assert!(passwd.contains("ops:x:1000:1000::/home/ops:/bin/bash\n"), "{passwd}");
    let shadow = std::fs::read_to_string(root.join("etc/shadow")).unwrap();
    assert!(shadow.lines().any(|l| l.starts_with("ops:*:")), "no password, not locked: {shadow}");
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap();
    assert!(group.contains("sudo:x:27:ops\n") && group.contains("ops:x:1000:\n"), "{group}");
    assert!(root.join("home/ops/.profile").exists(), "home made from /etc/skel");

    let keys = root.join("home/ops/.ssh/authorized_keys");
    assert_eq!(std::fs::read_to_string(&keys).unwrap(), format!("{KEY}\n"));
    for (p, mode) in [(root.join("home/ops/.ssh"), 0o700), (keys, 0o600)] {
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!((m.uid(), m.gid(), m.permissions().mode() & 0o777), (entry.uid, entry.gid, mode), "{}", p.display());
    }
    let sudoers = root.join("etc/sudoers.d/metalboot-ops");
    assert_eq!(std::fs::read_to_string(&sudoers).unwrap(), admin.sudoers());
    let m = std::fs::metadata(&sudoers).unwrap();
    assert_eq!((m.uid(), m.permissions().mode() & 0o777), (0, 0o440));
    let sshd = std::fs::read_to_string(root.join("etc/ssh/sshd_config.d/00-metalboot.conf")).unwrap();
    assert!(
        sshd.contains("\nPermitRootLogin no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"),
        "{sshd}"
    );

    // a second run finds the user there and refuses rather than guess
    let err = format!("{:#}", users::configure_logins(root, &plan).unwrap_err());
    assert!(err.contains("already has a user \"ops\""), "{err}");
}
