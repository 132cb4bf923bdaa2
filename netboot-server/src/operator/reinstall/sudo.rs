//! Root on the target when the SSH login is not root (`debian@host`, as
//! many cloud images allow): every command that needs root runs through
//! `sudo -n` (non-interactive: sudo fails instead of asking for a password
//! nobody is there to type). Before anything changes the command runs
//! [`CHECK_SCRIPT`]; if sudo would ask for a password, or refuses, the
//! reinstall stops there with sudo's own words.
//!
//! What runs as root: the GRUB probe (`grub-probe` opens block devices),
//! installing kexec-tools, every write (the uploads, through `sh -c 'cat >
//! …'` under sudo, since a redirection in the login shell would run as the
//! login user), `kexec`, `grub-reboot` and the `custom.cfg` edit, the
//! reboot and the clean-up. Discovery, the boot id and the key probe only
//! read what any user may read, and run as the login user (so discovery
//! reads the login user's `authorized_keys`, as `--print-host` means to).

use crate::render::shell_quote;

/// How commands that need root run on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// The login is root (uid 0): commands run as they are.
    Root,
    /// Through `sudo -n --`.
    Sudo,
}

/// Run by `sh -c` as the login user before anything else: prints `uid0`
/// for a login that is root under another name, else asks sudo without a
/// password (its exit status and stderr say why not).
pub const CHECK_SCRIPT: &str = "if [ \"$(id -u)\" = 0 ]; then echo uid0; exit 0; fi\nsudo -n true\n";

impl Privilege {
    /// What a login name implies before anything is asked: `root` needs
    /// nothing; any other login is checked with [`CHECK_SCRIPT`].
    pub fn for_login(user: &str) -> Privilege {
        if user == "root" {
            Privilege::Root
        } else {
            Privilege::Sudo
        }
    }

    /// `argv` as the remote shell runs it as root.
    pub fn argv<'a>(self, argv: &[&'a str]) -> Vec<&'a str> {
        match self {
            Privilege::Root => argv.to_vec(),
            Privilege::Sudo => ["sudo", "-n", "--"].iter().chain(argv).copied().collect(),
        }
    }

    /// The remote command that writes its standard input to `dest` as root.
    pub fn write_command(self, dest: &str) -> String {
        let write = format!("cat > {}", shell_quote(dest));
        match self {
            Privilege::Root => write,
            Privilege::Sudo => format!("sudo -n -- sh -c {}", shell_quote(&write)),
        }
    }

    /// Added to progress lines about what ran as root.
    pub fn suffix(self) -> &'static str {
        match self {
            Privilege::Root => "",
            Privilege::Sudo => " (through sudo -n)",
        }
    }

    /// The summary's line for a login that is not root.
    pub fn summary_line(self, user: &str) -> Option<String> {
        match self {
            Privilege::Root => None,
            Privilege::Sudo => Some(format!(
                "root:     through `sudo -n` as {user} (passwordless sudo checked): the GRUB probe, kexec-tools, \
                 the uploads, kexec or grub-reboot, the reboot and any clean-up\n"
            )),
        }
    }
}

/// What [`CHECK_SCRIPT`] gave back (exit status, stdout, stderr) as the
/// privilege to use, or the error that stops the reinstall before
/// anything changes; `target` is `user@host` as the operator typed it.
pub fn checked(target: &str, code: i32, stdout: &str, stderr: &str) -> Result<Privilege, String> {
    if code == 0 {
        return Ok(if stdout.lines().any(|l| l.trim() == "uid0") { Privilege::Root } else { Privilege::Sudo });
    }
    let said = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ");
    let lower = said.to_ascii_lowercase();
    let why = if lower.contains("password is required") || lower.contains("terminal is required to read the password") {
        "sudo asks for a password"
    } else if lower.contains("must have a tty") {
        "sudo insists on a terminal (requiretty)"
    } else if lower.contains("not in the sudoers") || lower.contains("not allowed to") || lower.contains("may not run")
    {
        "sudo does not allow this user"
    } else if code == 127 || lower.contains("not found") {
        "sudo is not installed"
    } else {
        "sudo refuses"
    };
    let said = if said.is_empty() { format!("exit {code}") } else { said };
    Err(format!(
        "{target}: {why} (sudo -n true failed: {said}); allow passwordless sudo for this user, or log in as root; \
         nothing was changed"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_commands_are_prefixed_with_sudo_n_only_for_another_login() {
        assert_eq!(Privilege::for_login("root"), Privilege::Root);
        assert_eq!(Privilege::for_login("debian"), Privilege::Sudo);
        assert_eq!(Privilege::Root.argv(&["mkdir", "-p", "/run/metalboot"]), ["mkdir", "-p", "/run/metalboot"]);
        assert_eq!(
            Privilege::Sudo.argv(&["mkdir", "-p", "/run/metalboot"]),
            ["sudo", "-n", "--", "mkdir", "-p", "/run/metalboot"]
        );
        // a script keeps its one quoted word: sudo runs `sh -c SCRIPT`
        let script = shell_quote("kexec -l /run/metalboot/vmlinuz --command-line='a b'");
        assert_eq!(
            Privilege::Sudo.argv(&["sh", "-c", &script]).join(" "),
            "sudo -n -- sh -c 'kexec -l /run/metalboot/vmlinuz --command-line='\\''a b'\\'''"
        );
    }

    #[test]
    fn an_upload_redirects_inside_the_root_shell() {
        assert_eq!(Privilege::Root.write_command("/run/metalboot/vmlinuz"), "cat > '/run/metalboot/vmlinuz'");
        let w = Privilege::Sudo.write_command("/boot/metalboot/initramfs.img");
        assert_eq!(w, "sudo -n -- sh -c 'cat > '\\''/boot/metalboot/initramfs.img'\\'''");
        // the login shell hands sudo exactly `sh -c "cat > '/boot/…'"`
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("printf '%s|' {}", w.trim_start_matches("sudo -n -- "))])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "sh|-c|cat > '/boot/metalboot/initramfs.img'|");
        // a hostile name stays one word
        let evil = Privilege::Sudo.write_command("/tmp/x'; rm -rf /; '");
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("printf '%s|' {}", evil.trim_start_matches("sudo -n -- "))])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "sh|-c|cat > '/tmp/x'\\''; rm -rf /; '\\'''|");
    }

    /// What sshd does with a command: the words joined by spaces, run by
    /// the login shell; here with a `sudo` on PATH that insists on `-n --`
    /// and runs the rest as given.
    fn remote(dir: &std::path::Path, command: &str, stdin: &[u8]) -> (i32, String) {
        use std::io::Write;
        let sudo = dir.join("sudo");
        if !sudo.exists() {
            std::fs::write(&sudo, "#!/bin/sh\n[ \"$1\" = -n ] && [ \"$2\" = -- ] || exit 9\nshift 2\nexec \"$@\"\n")
                .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&sudo, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
        let mut c = std::process::Command::new("sh")
            .args(["-c", command])
            .env("PATH", path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = c.wait_with_output().unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
    }

    #[test]
    fn wrapped_commands_and_uploads_survive_both_shells() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // an upload to a name with a space and a quote
        let dest = d.join("it's here.img");
        let w = Privilege::Sudo.write_command(dest.to_str().unwrap());
        assert_eq!(remote(d, &w, b"kernel bytes").0, 0);
        assert_eq!(std::fs::read(&dest).unwrap(), b"kernel bytes");
        // a script as `sh -c SCRIPT` under sudo, a command line with quotes in it
        let script = format!(
            "printf '%s\\n' {} > {}",
            shell_quote("a='b c' $(x)"),
            shell_quote(&format!("{}/out", d.display()))
        );
        let quoted = shell_quote(&script);
        let argv = Privilege::Sudo.argv(&["sh", "-c", &quoted]);
        assert_eq!(remote(d, &argv.join(" "), b"").0, 0);
        assert_eq!(std::fs::read_to_string(d.join("out")).unwrap(), "a='b c' $(x)\n");
        // standard input reaches the command under sudo (sha256sum -c, sh -s)
        let argv = Privilege::Sudo.argv(&["sh", "-s"]);
        assert_eq!(remote(d, &argv.join(" "), b"echo from-stdin\n"), (0, "from-stdin\n".into()));
    }

    #[test]
    fn the_check_script_runs_in_a_posix_shell() {
        // run here as whoever runs the tests: uid 0 says so; anyone else
        // gets sudo's verdict (or its absence) in the exit status
        let out = std::process::Command::new("sh").args(["-c", CHECK_SCRIPT]).output().unwrap();
        let code = out.status.code().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if tests_run_as_root() {
            assert_eq!((code, stdout.trim()), (0, "uid0"));
        } else {
            assert!(!stdout.contains("uid0"));
        }
    }

    fn tests_run_as_root() -> bool {
        let out = std::process::Command::new("id").arg("-u").output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == "0"
    }

    #[test]
    fn a_password_prompt_stops_the_reinstall_with_sudos_words() {
        let e = checked("debian@203.0.113.7", 1, "", "sudo: a password is required\n").unwrap_err();
        assert_eq!(
            e,
            "debian@203.0.113.7: sudo asks for a password (sudo -n true failed: sudo: a password is required); \
             allow passwordless sudo for this user, or log in as root; nothing was changed"
        );
        let e = checked("ops@h", 1, "", "sudo: sorry, you must have a tty to run sudo\n").unwrap_err();
        assert!(
            e.starts_with("ops@h: sudo insists on a terminal (requiretty) (sudo -n true failed: sudo: sorry"),
            "{e}"
        );
        let e =
            checked("ops@h", 1, "", "ops is not in the sudoers file.  This incident will be reported.\n").unwrap_err();
        assert!(e.starts_with("ops@h: sudo does not allow this user"), "{e}");
        let e = checked("ops@h", 1, "", "Sorry, user ops may not run sudo on h.\n").unwrap_err();
        assert!(e.starts_with("ops@h: sudo does not allow this user"), "{e}");
        let e = checked("ops@h", 127, "", "sh: 2: sudo: not found\n").unwrap_err();
        assert!(e.starts_with("ops@h: sudo is not installed (sudo -n true failed: sh: 2: sudo: not found)"), "{e}");
        let e = checked("ops@h", 1, "", "").unwrap_err();
        assert!(e.starts_with("ops@h: sudo refuses (sudo -n true failed: exit 1); allow passwordless sudo"), "{e}");
    }

    #[test]
    fn passwordless_sudo_or_a_uid_0_login_goes_on() {
        assert_eq!(checked("debian@h", 0, "", ""), Ok(Privilege::Sudo));
        // warnings on stderr do not matter when sudo said yes
        assert_eq!(
            checked("debian@h", 0, "", "sudo: unable to resolve host h: Name or service not known"),
            Ok(Privilege::Sudo)
        );
        assert_eq!(checked("toor@h", 0, "uid0\n", ""), Ok(Privilege::Root));
    }
}
