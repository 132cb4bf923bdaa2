//! Who logs in to the new system: the SSH daemon's drop-in (root login,
//! password logins) and the plan's admin user.
//!
//! The user is made by the new system's own `useradd`, so its `login.defs`
//! (UID range, home mode) and `/etc/skel` apply, with its own group and a
//! home in `@home`. It gets `*` for a password: no password can match it,
//! yet the account is not locked (`!`), which sshd would refuse even for a
//! key when it runs without PAM. Its keys go to `~/.ssh/authorized_keys`
//! (0700 and 0600, owned by the user); with sudo it joins the `sudo` group
//! and gets a sudoers file of its own, which the new system's `visudo`
//! checks before the install goes on.

use crate::cmd::in_target;
use crate::files::write;
use anyhow::{bail, Context, Result};
use metalboot_spec::login::SSHD_DROP_IN;
use metalboot_spec::{quote, AdminUser, InstallPlan};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The fields of a user's `/etc/passwd` line the installer needs.
#[derive(Debug, PartialEq, Eq)]
pub struct PasswdEntry {
    /// User ID.
    pub uid: u32,
    /// Primary group ID.
    pub gid: u32,
    /// Home directory.
    pub home: String,
}

/// The entry for `name` in `/etc/passwd` text, if there is a well-formed one.
pub fn passwd_entry(passwd: &str, name: &str) -> Option<PasswdEntry> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() != 7 || f[0] != name {
            return None;
        }
        Some(PasswdEntry { uid: f[2].parse().ok()?, gid: f[3].parse().ok()?, home: f[5].to_string() })
    })
}

/// The `useradd` command line that makes `admin` (run in the new system).
pub fn useradd_args(admin: &AdminUser) -> Vec<&str> {
    let mut args = vec!["useradd", "--create-home", "--user-group", "--shell", &admin.shell, "--password", "*"];
    if admin.sudo {
        args.extend(["--groups", "sudo"]);
    }
    args.extend(["--", &admin.name]);
    args
}

/// The files making `admin` writes, for the dry run.
pub fn admin_files(admin: &AdminUser) -> Vec<String> {
    let n = &admin.name;
    let mut files = vec![
        format!("/etc/passwd, /etc/group, /etc/shadow, /home/{n} (user {n}, by useradd)"),
        format!("/home/{n}/.ssh/authorized_keys"),
    ];
    if admin.sudo {
        files.push(admin.sudoers_path());
    }
    files
}

/// Who may log in to the new system, in words, for the dry run.
pub fn describe_logins(plan: &InstallPlan) -> Vec<String> {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let mut out = vec![
        format!("root over SSH: {}", plan.ssh.permit_root_login.as_sshd()),
        format!("password logins over SSH: {}", yes_no(plan.ssh.password_authentication)),
    ];
    if let Some(a) = &plan.admin {
        let sudo = if a.sudo { "passwordless sudo" } else { "no sudo" };
        out.push(format!("admin user {}: {} key(s), shell {}, {sudo}", a.name, a.ssh_authorized_keys.len(), a.shell));
    }
    out
}

/// Writes the SSH daemon's drop-in and makes the plan's admin user, if any.
pub fn configure_logins(target: &Path, plan: &InstallPlan) -> Result<()> {
    if let Some(admin) = &plan.admin {
        create_admin(target, admin)?;
    }
    write(target, SSHD_DROP_IN, &plan.ssh.drop_in(), 0o644)
}

fn read_passwd(target: &Path) -> Result<String> {
    std::fs::read_to_string(target.join("etc/passwd")).context("reading /etc/passwd of the new system")
}

/// Checks what making `admin` needs from the image, before anything is run
/// in it: `useradd`, the shell, `sudo` if asked for, and a free name.
fn check_image_for(target: &Path, admin: &AdminUser) -> Result<()> {
    let name = quote(&admin.name);
    if !target.join("usr/sbin/useradd").exists() {
        bail!("cannot make user {name}: the image has no /usr/sbin/useradd (Debian's passwd package)");
    }
    if !target.join(admin.shell.trim_start_matches('/')).exists() {
        bail!("cannot make user {name}: its shell {} is not in the image", quote(&admin.shell));
    }
    if admin.sudo && !target.join("usr/bin/sudo").exists() {
        bail!("user {name} is to have sudo, but the image has no /usr/bin/sudo");
    }
    if passwd_entry(&read_passwd(target)?, &admin.name).is_some() {
        bail!("the image already has a user {name}; choose another admin user name");
    }
    Ok(())
}

fn create_admin(target: &Path, admin: &AdminUser) -> Result<()> {
    check_image_for(target, admin)?;
    in_target(target, &useradd_args(admin)).with_context(|| format!("making user {}", admin.name))?;
    let user = passwd_entry(&read_passwd(target)?, &admin.name)
        .with_context(|| format!("useradd left no /etc/passwd entry for {}", admin.name))?;
    enrol_keys(target, &user, &admin.ssh_authorized_keys)?;
    if admin.sudo {
        let rel = admin.sudoers_path();
        write(target, &rel, &admin.sudoers(), 0o440)?;
        if target.join("usr/sbin/visudo").exists() {
            in_target(target, &["visudo", "--check", "--quiet", "--file", &rel])
                .with_context(|| format!("checking {rel}"))?;
        }
    }
    Ok(())
}

/// Writes `keys` to the user's `~/.ssh/authorized_keys` in the new system:
/// the directory 0700, the file 0600, both owned by the user.
pub fn enrol_keys(target: &Path, user: &PasswdEntry, keys: &[String]) -> Result<()> {
    if !user.home.starts_with('/') || user.home == "/" {
        bail!("home directory {} is not one of the user's own", quote(&user.home));
    }
    let ssh = format!("{}/.ssh", user.home);
    let dir = target.join(ssh.trim_start_matches('/'));
    // a home kept from before (reinstall --keep) is the old system's: never
    // follow a link in it out of the user's own tree
    for (p, shown) in [(target.join(user.home.trim_start_matches('/')), &user.home), (dir.clone(), &ssh)] {
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
            bail!("{shown} is a symbolic link (a home kept from the old system?): refusing to write keys through it");
        }
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {ssh}"))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).with_context(|| format!("chmod {ssh}"))?;
    let file = format!("{ssh}/authorized_keys");
    let text: String = keys.iter().map(|k| format!("{k}\n")).collect();
    write(target, &file, &text, 0o600)?;
    for (p, shown) in [(dir.clone(), &ssh), (dir.join("authorized_keys"), &file)] {
        std::os::unix::fs::lchown(&p, Some(user.uid), Some(user.gid))
            .with_context(|| format!("giving {shown} to uid {}", user.uid))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use metalboot_spec::{RootLogin, SshdSettings};
    use std::os::unix::fs::MetadataExt;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example";

    fn admin(sudo: bool) -> AdminUser {
        AdminUser { name: "ops".into(), ssh_authorized_keys: vec![KEY.into()], sudo, shell: "/bin/bash".into() }
    }

    fn plan(admin: Option<AdminUser>, ssh: SshdSettings) -> InstallPlan {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../netboot-server/tests/golden/web1.plan.json")).unwrap();
        v["admin"] = serde_json::to_value(admin).unwrap();
        v["ssh"] = serde_json::to_value(ssh).unwrap();
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn passwd_entry_reads_uid_gid_and_home() {
        let p = "root:x:0:0:root:/root:/bin/bash\nops:x:1000:1000::/home/ops:/bin/bash\nbad:x:y:1::/h:/bin/sh\n";
        assert_eq!(passwd_entry(p, "ops"), Some(PasswdEntry { uid: 1000, gid: 1000, home: "/home/ops".into() }));
        assert_eq!(passwd_entry(p, "op"), None);
        assert_eq!(passwd_entry(p, "bad"), None);
    }

    #[test]
    fn useradd_makes_a_home_a_group_and_no_password() {
        assert_eq!(
            useradd_args(&admin(true)),
            [
                "useradd",
                "--create-home",
                "--user-group",
                "--shell",
                "/bin/bash",
                "--password",
                "*",
                "--groups",
                "sudo",
                "--",
                "ops"
            ]
        );
        assert!(!useradd_args(&admin(false)).contains(&"sudo"));
    }

    #[test]
    fn keys_are_the_users_with_private_modes() {
        let dir = tempfile::tempdir().unwrap();
        let (uid, gid) = (nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw());
        let user = PasswdEntry { uid, gid, home: "/home/ops".into() };
        enrol_keys(dir.path(), &user, &[KEY.into(), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMq".into()]).unwrap();
        let ssh = dir.path().join("home/ops/.ssh");
        let file = ssh.join("authorized_keys");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            format!("{KEY}\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMq\n")
        );
        for (p, mode) in [(&ssh, 0o700), (&file, 0o600)] {
            let m = std::fs::metadata(p).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, mode, "{}", p.display());
            assert_eq!((m.uid(), m.gid()), (uid, gid), "{}", p.display());
        }
        let root = PasswdEntry { uid, gid, home: "/".into() };
        assert!(enrol_keys(dir.path(), &root, &[KEY.into()]).is_err(), "no keys in /.ssh");
        // a kept home whose .ssh leads elsewhere: nothing written through it
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::create_dir_all(dir.path().join("home/eve")).unwrap();
        std::os::unix::fs::symlink("../../etc", dir.path().join("home/eve/.ssh")).unwrap();
        let eve = PasswdEntry { uid, gid, home: "/home/eve".into() };
        let e = enrol_keys(dir.path(), &eve, &[KEY.into()]).unwrap_err().to_string();
        assert!(e.contains("/home/eve/.ssh is a symbolic link"), "{e}");
        assert!(!dir.path().join("etc/authorized_keys").exists());
    }

    #[test]
    fn logins_are_described_for_the_dry_run() {
        let no = SshdSettings { permit_root_login: RootLogin::No, password_authentication: false };
        assert_eq!(
            describe_logins(&plan(Some(admin(true)), no)),
            [
                "root over SSH: no",
                "password logins over SSH: no",
                "admin user ops: 1 key(s), shell /bin/bash, passwordless sudo"
            ]
        );
        assert_eq!(describe_logins(&plan(None, SshdSettings::default()))[0], "root over SSH: prohibit-password");
    }

    #[test]
    fn without_an_admin_only_the_sshd_drop_in_is_written() {
        let dir = tempfile::tempdir().unwrap();
        configure_logins(dir.path(), &plan(None, SshdSettings::default())).unwrap();
        let p = dir.path().join("etc/ssh/sshd_config.d/00-metalboot.conf");
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"), "{text}");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o644);
        assert!(!dir.path().join("etc/sudoers.d").exists());
    }

    #[test]
    fn an_image_that_cannot_make_the_admin_is_refused_before_running_anything() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path();
        std::fs::create_dir_all(t.join("etc")).unwrap();
        std::fs::write(t.join("etc/passwd"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
        let no = SshdSettings { permit_root_login: RootLogin::No, password_authentication: false };
        let err = |a: AdminUser| format!("{:#}", configure_logins(t, &plan(Some(a), no)).unwrap_err());
        assert!(err(admin(true)).contains("no /usr/sbin/useradd"), "{}", err(admin(true)));
        for f in ["usr/sbin/useradd", "bin/bash"] {
            std::fs::create_dir_all(t.join(f).parent().unwrap()).unwrap();
            std::fs::write(t.join(f), "").unwrap();
        }
        let zsh = AdminUser { shell: "/bin/zsh".into(), ..admin(false) };
        assert!(err(zsh).contains("shell \"/bin/zsh\" is not in the image"));
        assert!(err(admin(true)).contains("no /usr/bin/sudo"), "{}", err(admin(true)));
        std::fs::write(t.join("etc/passwd"), "root:x:0:0:root:/root:/bin/bash\nops:x:1000:1000::/home/ops:/bin/sh\n")
            .unwrap();
        assert!(err(admin(false)).contains("already has a user \"ops\""), "{}", err(admin(false)));
        assert!(!t.join("etc/ssh").exists(), "nothing written after a refusal");
    }
}
