//! Reaching the installed hosts over SSH: the scenario's key, host keys
//! checked against a given known_hosts (no trust on first use), as root or
//! as the host's admin user through `sudo -n`.

use crate::harness::Scenario;
use anyhow::{ensure, Context, Result};
use std::path::Path;
use std::time::{Duration, Instant};

impl Scenario {
    /// Runs a command on the installed host over SSH as [`Scenario::login`]
    /// (through `sudo -n` for a user other than root), with host-key
    /// checking against `known_hosts` (no trust on first use).
    pub fn ssh(&self, ip: &str, known_hosts: &Path, cmd: &str) -> Result<String> {
        if self.login == "root" {
            self.ssh_as("root", ip, known_hosts, cmd)
        } else {
            let quoted = format!("'{}'", cmd.replace('\'', "'\\''"));
            self.ssh_as(&self.login, ip, known_hosts, &format!("sudo -n sh -c {quoted}"))
        }
    }

    /// Copies the local file `from` to `to` on `ip` as root, host key
    /// checked.
    pub fn upload(&self, ip: &str, known_hosts: &Path, from: &Path, to: &str) -> Result<()> {
        let mut args = vec!["scp".to_string(), "-q".into()];
        args.extend(self.ssh_options(known_hosts)?);
        args.extend([from.to_str().context("file path")?.to_string(), format!("root@{ip}:{to}")]);
        self.ns.exec(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
        Ok(())
    }

    /// The key, host-key checking against `known_hosts` (no trust on first
    /// use), and timeouts that end a session caught by a reboot.
    fn ssh_options(&self, known_hosts: &Path) -> Result<Vec<String>> {
        let mut o = vec!["-i".to_string(), self.ssh_key.to_str().context("key path")?.to_string()];
        for opt in [
            "StrictHostKeyChecking=yes".to_string(),
            format!("UserKnownHostsFile={}", known_hosts.display()),
            "ConnectTimeout=10".into(),
            // a session caught by a reboot must end, not wait forever for a
            // peer that went away without closing the connection
            "ServerAliveInterval=5".into(),
            "ServerAliveCountMax=3".into(),
            "BatchMode=yes".into(),
        ] {
            o.extend(["-o".to_string(), opt]);
        }
        Ok(o)
    }

    /// Runs `cmd` on `ip` as `user`, as it is.
    pub fn ssh_as(&self, user: &str, ip: &str, known_hosts: &Path, cmd: &str) -> Result<String> {
        let mut args = vec!["ssh".to_string()];
        args.extend(self.ssh_options(known_hosts)?);
        args.extend([format!("{user}@{ip}"), cmd.to_string()]);
        self.ns.exec(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Polls until SSH answers (sshd may start after phone-home).
    pub fn wait_ssh(&mut self, ip: &str, known_hosts: &Path, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            match self.ssh(ip, known_hosts, "true") {
                Ok(_) => {
                    self.phase("ssh with the enrolled key");
                    return Ok(());
                }
                Err(e) if Instant::now() > deadline => return Err(e.context("SSH never succeeded")),
                Err(_) => std::thread::sleep(Duration::from_secs(3)),
            }
        }
    }
}

/// Passwords are off; root logs in with a key, or not at all when the host
/// has an admin user, who then logs in with the key and has sudo.
pub(crate) fn check_logins(s: &mut Scenario, ip: &str, kh: &Path) -> Result<()> {
    let sshd =
        s.ssh(ip, kh, "sshd -T | grep -iE '^(permitrootlogin|passwordauthentication|kbdinteractiveauthentication) '")?;
    ensure!(sshd.contains("passwordauthentication no") && sshd.contains("kbdinteractiveauthentication no"), "{sshd}");
    if s.login == "root" {
        ensure!(sshd.contains("permitrootlogin without-password"), "root may not log in with a key only: {sshd}");
        s.phase("sshd: root with a key only, no passwords");
    } else {
        ensure!(sshd.contains("permitrootlogin no"), "root login is not off: {sshd}");
        ensure!(s.ssh_as("root", ip, kh, "true").is_err(), "root logged in over SSH");
        let id = s.ssh_as(&s.login, ip, kh, "sudo -n id -u")?;
        ensure!(id.trim() == "0", "sudo -n id -u as {}: {id}", s.login);
        s.phase(&format!("sshd: root refused, {} logs in with the key and runs sudo -n", s.login));
    }
    Ok(())
}
