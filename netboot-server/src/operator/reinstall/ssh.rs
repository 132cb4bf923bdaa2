//! The SSH side of `metalboot reinstall`, through the system `ssh` client: it
//! brings the operator's agent, keys, `~/.ssh/config` (jump hosts, ports)
//! and known_hosts for free, and keeps key exchange and crypto out of our
//! binary. Host keys are pinned per session: the first connection trusts a
//! key only if the operator's known_hosts has no other for the host, and
//! every later one insists on that same key — which is how "the old system
//! came back" is told from "a new system is up".

use super::sudo::{self, Privilege};
use anyhow::{bail, Context, Result};
use metalboot_spec::quote;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Single-quotes `s` for a POSIX shell (the one quoting helper, shared
/// with the templates).
pub use crate::render::shell_quote;

/// `user@host[:port]`, with `[v6]:port` for IPv6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Login user.
    pub user: String,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// SSH port.
    pub port: u16,
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Target, String> {
        let (user, rest) = s.split_once('@').ok_or_else(|| format!("{}: expected user@host[:port]", quote(s)))?;
        if user.is_empty() || !user.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)) {
            return Err(format!("{}: bad user name {}", quote(s), quote(user)));
        }
        let (host, port) = if let Some(r) = rest.strip_prefix('[') {
            let (h, after) = r.split_once(']').ok_or_else(|| format!("{}: unclosed '['", quote(s)))?;
            (h, after.strip_prefix(':'))
        } else if rest.matches(':').count() > 1 {
            (rest, None) // a bare IPv6 address
        } else {
            match rest.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("{}: bad port {}", quote(s), quote(p)))?,
            None => 22,
        };
        if host.is_empty()
            || host.starts_with('-')
            || !host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:_%".contains(&b))
        {
            return Err(format!("{}: bad host {}", quote(s), quote(host)));
        }
        Ok(Target { user: user.to_string(), host: host.to_string(), port })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.port == 22 {
            write!(f, "{}@{h}", self.user)
        } else {
            write!(f, "{}@{h}:{}", self.user, self.port)
        }
    }
}

/// One target, one pinned host key.
pub struct Ssh {
    target: Target,
    identity: Option<PathBuf>,
    pins: PathBuf,
    privilege: Privilege,
}

/// What a command run over SSH gave back.
pub struct Output {
    /// Exit status; `None` if ssh itself failed (255) or was killed.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: String,
}

impl Ssh {
    /// A session for `target`; `pins` is a file (created) holding the host
    /// key once the first connection has seen it. Commands that need root
    /// run through sudo unless the login is `root` (see
    /// [`Ssh::set_privilege`]).
    pub fn new(target: Target, identity: Option<PathBuf>, pins: &Path) -> Ssh {
        let privilege = Privilege::for_login(&target.user);
        Ssh { target, identity, pins: pins.to_path_buf(), privilege }
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// How commands that need root run: as checked on the target.
    pub fn set_privilege(&mut self, p: Privilege) {
        self.privilege = p;
    }

    /// How commands that need root run.
    pub fn privilege(&self) -> Privilege {
        self.privilege
    }

    /// The first connection for a login that is not root (it pins the host
    /// key): runs [`sudo::CHECK_SCRIPT`] and keeps what it says; stops, with
    /// sudo's reason, where sudo would ask for a password or refuses. For
    /// `root` it connects to nothing.
    pub fn settle_privilege(&mut self) -> Result<Privilege> {
        if self.privilege == Privilege::Root {
            return Ok(Privilege::Root);
        }
        let out = self.run(true, &["sh", "-c", &shell_quote(sudo::CHECK_SCRIPT)], b"", 15)?;
        let Some(code) = out.code else { bail!("cannot log in to {} over SSH: {}", self.target, out.stderr) };
        let p = sudo::checked(&self.target.to_string(), code, &String::from_utf8_lossy(&out.stdout), &out.stderr)
            .map_err(anyhow::Error::msg)?;
        self.privilege = p;
        Ok(p)
    }

    fn command(&self, first: bool, connect_timeout: u32) -> Command {
        let mut c = Command::new("ssh");
        let user_files = if first {
            // new keys go to the session file; one the operator knows must match
            let home = std::env::var("HOME").unwrap_or_default();
            format!("{} {home}/.ssh/known_hosts", self.pins.display())
        } else {
            self.pins.display().to_string()
        };
        c.args(["-o", "BatchMode=yes", "-o", &format!("ConnectTimeout={connect_timeout}")])
            .args(["-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=3"])
            .args(["-o", &format!("UserKnownHostsFile={user_files}")])
            .args(["-o", if first { "StrictHostKeyChecking=accept-new" } else { "StrictHostKeyChecking=yes" }])
            .args(["-o", "LogLevel=ERROR", "-p", &self.target.port.to_string(), "-l", &self.target.user]);
        if let Some(i) = &self.identity {
            c.arg("-i").arg(i).args(["-o", "IdentitiesOnly=yes"]);
        }
        c.arg("--").arg(&self.target.host);
        c
    }

    /// Runs `sh -s` on the target with `script` on standard input;
    /// `first` marks the connection that pins the host key.
    pub fn run_script(&self, first: bool, script: &str) -> Result<Output> {
        self.run(first, &["sh", "-s"], script.as_bytes(), 15)
    }

    /// Runs `argv` (joined by the remote shell) with `stdin` fed to it.
    pub fn run(&self, first: bool, argv: &[&str], stdin: &[u8], connect_timeout: u32) -> Result<Output> {
        let mut c = self.command(first, connect_timeout);
        c.args(argv).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().context("running ssh (is the OpenSSH client installed?)")?;
        let mut sin = child.stdin.take().context("ssh stdin")?;
        let data = stdin.to_vec();
        let feeder = std::thread::spawn(move || {
            let _ = sin.write_all(&data);
        });
        let out = child.wait_with_output().context("waiting for ssh")?;
        let _ = feeder.join();
        let code = out.status.code().filter(|c| *c != 255);
        if first && code.is_some() {
            self.carry_known_pin()?;
        }
        Ok(Output { code, stdout: out.stdout, stderr: String::from_utf8_lossy(&out.stderr).trim().to_string() })
    }

    /// After the first connection: a host key the operator's known_hosts
    /// already held was accepted from there, and so not written to the
    /// session's file, which the later connections trust alone; its lines
    /// are copied over.
    fn carry_known_pin(&self) -> Result<()> {
        let t = &self.target;
        // the name ssh looked the key up under: the ssh_config's
        // HostKeyAlias, else its HostName and Port for the target
        let (mut host, mut port, mut alias) = (t.host.clone(), t.port, None);
        let g = Command::new("ssh").args(["-G", "-p", &t.port.to_string(), "-l", &t.user, "--", &t.host]).output();
        for line in g.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default().lines() {
            match line.split_once(' ') {
                Some(("hostname", v)) => host = v.to_string(),
                Some(("port", v)) => port = v.parse().unwrap_or(port),
                Some(("hostkeyalias", v)) => alias = Some(v.to_string()),
                _ => {}
            }
        }
        let name = alias.unwrap_or(if port == 22 { host } else { format!("[{host}]:{port}") });
        match std::env::var_os("HOME") {
            Some(home) => copy_known_lines(&name, &Path::new(&home).join(".ssh/known_hosts"), &self.pins),
            None => Ok(()),
        }
    }

    /// Like [`Ssh::run`], but anything other than exit 0 is an error naming
    /// `what` and the remote's stderr.
    pub fn check(&self, what: &str, argv: &[&str], stdin: &[u8]) -> Result<Vec<u8>> {
        let o = self.run(false, argv, stdin, 15)?;
        match o.code {
            Some(0) => Ok(o.stdout),
            Some(c) => bail!("{what} failed on {} (exit {c}): {}", self.target, o.stderr),
            None => bail!("{what}: SSH to {} failed: {}", self.target, o.stderr),
        }
    }

    /// [`Ssh::run`] as root: through `sudo -n` for another login.
    pub fn run_root(&self, argv: &[&str], stdin: &[u8]) -> Result<Output> {
        self.run(false, &self.privilege.argv(argv), stdin, 15)
    }

    /// [`Ssh::check`] as root: through `sudo -n` for another login.
    pub fn check_root(&self, what: &str, argv: &[&str], stdin: &[u8]) -> Result<Vec<u8>> {
        self.check(what, &self.privilege.argv(argv), stdin)
    }

    /// Streams the file `src` into `dest` on the target, as root (through
    /// `cat`, so nothing but a POSIX shell is needed there).
    pub fn upload(&self, src: &Path, dest: &str) -> Result<()> {
        let mut c = self.command(false, 15);
        c.arg(self.privilege.write_command(dest)).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = c.spawn().context("running ssh")?;
        let mut sin = child.stdin.take().context("ssh stdin")?;
        let mut f = std::fs::File::open(src).with_context(|| format!("opening {}", src.display()))?;
        std::io::copy(&mut f, &mut sin).with_context(|| format!("sending {} to {}", src.display(), self.target))?;
        drop(sin);
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("writing {dest} on {}: {}", self.target, String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }

    /// The boot id of the system answering with the pinned key, if one does.
    pub fn pinned_boot_id(&self, timeout: Duration) -> Option<String> {
        match self.run(false, &["cat", "/proc/sys/kernel/random/boot_id"], b"", timeout.as_secs().max(1) as u32) {
            Ok(Output { code: Some(0), stdout, .. }) => Some(String::from_utf8_lossy(&stdout).trim().to_string()),
            _ => None,
        }
    }
}

/// Appends to `pins` the lines of `known` (a known_hosts file, hashed or
/// not) for `name` (`host`, or `[host]:port`), unless `pins` has some.
pub fn copy_known_lines(name: &str, known: &Path, pins: &Path) -> Result<()> {
    let lines = |file: &Path| -> Option<String> {
        let o = Command::new("ssh-keygen").args(["-F", name, "-f"]).arg(file).output().ok()?;
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        o.status.success().then(|| text.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect())
    };
    if lines(pins).is_some() {
        return Ok(());
    }
    if let Some(found) = lines(known) {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(pins)
            .with_context(|| format!("writing {}", pins.display()))?;
        f.write_all(found.as_bytes()).with_context(|| format!("writing {}", pins.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_ports_and_ipv6() {
        let t: Target = "root@203.0.113.7".parse().unwrap();
        assert_eq!((t.user.as_str(), t.host.as_str(), t.port), ("root", "203.0.113.7", 22));
        let t: Target = "root@vps.example.net:2222".parse().unwrap();
        assert_eq!((t.host.as_str(), t.port), ("vps.example.net", 2222));
        let t: Target = "admin@[2001:db8::7]:2200".parse().unwrap();
        assert_eq!((t.host.as_str(), t.port), ("2001:db8::7", 2200));
        assert_eq!(t.to_string(), "admin@[2001:db8::7]:2200");
        let t: Target = "root@2001:db8::7".parse().unwrap();
        assert_eq!((t.host.as_str(), t.port), ("2001:db8::7", 22));
        for bad in
            ["203.0.113.7", "root@", "root@host:0", "root@host:x", "root@-oProxyCommand=x", "ro ot@h", "root@h;id"]
        {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
    }

    #[test]
    fn shell_quote_survives_quotes() {
        assert_eq!(shell_quote("a'b c"), "'a'\\''b c'");
    }

    #[test]
    fn a_key_the_operator_knows_is_carried_into_the_pins_once() {
        let dir = tempfile::tempdir().unwrap();
        let (known, pins) = (dir.path().join("known_hosts"), dir.path().join("pins"));
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostHostHostHostHostHostHostHostHostHostHost";
        std::fs::write(&known, format!("other.example {key}\nweb1,10.0.0.5 {key}\n[10.0.0.5]:2222 {key}\n")).unwrap();
        copy_known_lines("10.0.0.5", &known, &pins).unwrap();
        copy_known_lines("10.0.0.5", &known, &pins).unwrap();
        assert_eq!(std::fs::read_to_string(&pins).unwrap(), format!("web1,10.0.0.5 {key}\n"));
        copy_known_lines("[10.0.0.5]:2222", &known, &pins).unwrap();
        assert!(std::fs::read_to_string(&pins).unwrap().ends_with(&format!("[10.0.0.5]:2222 {key}\n")));
        // nothing known: nothing written
        let empty = dir.path().join("empty");
        copy_known_lines("10.0.0.9", &known, &empty).unwrap();
        assert!(!empty.exists());
    }
}
