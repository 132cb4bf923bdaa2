//! The lab's state file (`<dir>/lab.json`): what `lab up` started, by
//! process id, so that the other `lab` commands find it and `lab down`
//! stops exactly that.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Name of the state file in the lab's directory.
pub const FILE: &str = "lab.json";

/// A lab that is up (or was, if its processes are gone).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct LabState {
    /// The lab's directory (absolute).
    pub dir: PathBuf,
    /// Its network namespace.
    pub netns: String,
    /// `metalboot serve`'s process (pid 0 before it started).
    pub server: Proc,
    /// The server's HTTP base URL on the lab network.
    pub base: String,
    /// `kvm` or `tcg`.
    pub accel: String,
    /// When `lab up` started (seconds since the epoch).
    pub started: u64,
    /// The hosts, in the order their VMs were started.
    pub hosts: Vec<LabHost>,
    /// The snapshot whose overlays the disks are (`up --snapshot`).
    #[serde(default)]
    pub snapshot: Option<PathBuf>,
}

/// A process the lab started: its id and its start time (in clock ticks
/// after boot, `/proc/PID/stat` field 22), so that a process id reused after
/// a reboot or a crash is never taken for it.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Proc {
    /// Process id.
    pub pid: u32,
    /// Start time.
    pub start: u64,
}

impl Proc {
    /// Process `pid` as it runs now.
    pub fn of(pid: u32) -> Proc {
        Proc { pid, start: start_time(pid).unwrap_or(0) }
    }

    /// Whether this process has ended: no such process, another one under
    /// its id, or a zombie. (While it exits its command line is already
    /// empty, so [`LabState::owns`] stops seeing it before it is gone.)
    pub fn ended(&self) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        let Some((_, rest)) = stat.rsplit_once(')') else { return true };
        start_time(self.pid) != Some(self.start) || rest.trim_start().starts_with(['Z', 'X'])
    }
}

/// Field 22 of `/proc/<pid>/stat`.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid …": fields after the last ')' start at 3
    stat.rsplit_once(')')?.1.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// One host of the lab.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct LabHost {
    /// Inventory name.
    pub name: String,
    /// The MAC its VM boots with.
    pub mac: String,
    /// `bios` or `uefi`.
    pub firmware: String,
    /// QEMU's process.
    pub vm: Proc,
    /// Its tap device in the namespace.
    pub tap: String,
    /// Its disks, serial console and QEMU's output.
    pub dir: PathBuf,
    /// Who Ansible and `ssh` log in as.
    pub login: String,
    /// Its address, once installed.
    #[serde(default)]
    pub ip: Option<String>,
}

impl LabState {
    /// The state file of the lab in `dir`, if there is one.
    pub fn load(dir: &Path) -> Result<Option<LabState>> {
        let p = dir.join(FILE);
        match std::fs::read_to_string(&p) {
            Ok(t) => {
                let st: LabState = serde_json::from_str(&t).with_context(|| format!("reading {}", p.display()))?;
                // a copied or edited state file must not lead to another
                // lab's processes or namespace
                if st.dir != dir || st.netns != netns_name(&st.dir) {
                    bail!(
                        "{} belongs to the lab in {} (namespace {}), not to this directory: leaving it alone",
                        p.display(),
                        st.dir.display(),
                        st.netns
                    );
                }
                Ok(Some(st))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
        }
    }

    /// The state of the lab in `dir`, or an error saying there is none.
    pub fn require(dir: &Path) -> Result<LabState> {
        Self::load(dir)?.with_context(|| format!("no lab in {}: start one with `metalboot lab up`", dir.display()))
    }

    /// Writes the state file (atomically).
    pub fn save(&self) -> Result<()> {
        crate::files::write_atomically(&self.dir.join(FILE), &serde_json::to_vec_pretty(self)?, 0o644)
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Result<&LabHost> {
        self.hosts.iter().find(|h| h.name == name).with_context(|| {
            let names: Vec<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
            format!("no host {name:?} in the lab (it has: {})", names.join(", "))
        })
    }

    /// Whether process `p` runs and is the one the lab started: the same
    /// start time, and a command line with a path in the lab's directory.
    pub fn owns(&self, p: Proc) -> bool {
        p.pid != 0 && start_time(p.pid) == Some(p.start) && cmdline_mentions(p.pid, &format!("{}/", self.dir.display()))
    }

    /// The lab's processes that still run: (what, process).
    pub fn running(&self) -> Vec<(String, Proc)> {
        let mut v = Vec::new();
        if self.owns(self.server) {
            v.push(("server".to_string(), self.server));
        }
        for h in &self.hosts {
            if self.owns(h.vm) {
                v.push((format!("VM {}", h.name), h.vm));
            }
        }
        v
    }
}

/// The ids of the processes (this one aside) whose command line, its
/// arguments separated by NUL bytes as in `/proc/<pid>/cmdline`, passes
/// `pred`.
pub fn processes_whose_cmdline(pred: impl Fn(&str) -> bool) -> Vec<u32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if pid != std::process::id() && pred(&String::from_utf8_lossy(&cmd)) {
            v.push(pid);
        }
    }
    v
}

/// Whether `/proc/<pid>/cmdline` contains `text`.
fn cmdline_mentions(pid: u32, text: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(text))
        .unwrap_or(false)
}

/// The namespace name of the lab in `dir`: `mblab-` and a digest of the
/// path, so labs in two directories do not meet.
pub fn netns_name(dir: &Path) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(dir.display().to_string().as_bytes());
    format!("mblab-{}", &hex::encode(d)[..10])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(dir: &Path) -> LabState {
        LabState {
            dir: dir.to_path_buf(),
            netns: netns_name(dir),
            server: Proc::default(),
            base: "http://10.99.0.1:8080".into(),
            accel: "tcg".into(),
            started: 0,
            hosts: vec![],
            snapshot: None,
        }
    }

    #[test]
    fn a_process_is_the_labs_only_with_its_start_time_and_the_labs_path() {
        let dir = tempfile::tempdir().unwrap();
        let st = lab(dir.path());
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30; exit 0"])
            .arg(dir.path().join("x"))
            .spawn()
            .unwrap();
        let p = Proc::of(child.id());
        // until the child has exec'd, its command line is this test's
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !cmdline_mentions(p.pid, "sleep 30") && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(p.start > 0 && st.owns(p));
        assert!(!st.owns(Proc { start: p.start + 1, ..p }), "another start time: a reused process id");
        assert!(!lab(&dir.path().join("other")).owns(p), "another lab's path");
        assert!(!st.owns(Proc::of(std::process::id())), "a process that does not name the lab");
        assert!(!p.ended());
        child.kill().unwrap();
        // killed, not yet reaped: a zombie has ended
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !p.ended() && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(p.ended(), "a killed child, a zombie now, has ended");
        child.wait().unwrap();
        assert!(!st.owns(p) && p.ended());
    }

    #[test]
    fn a_state_file_copied_elsewhere_is_refused() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        lab(a.path()).save().unwrap();
        assert_eq!(LabState::load(a.path()).unwrap(), Some(lab(a.path())));
        std::fs::copy(a.path().join(FILE), b.path().join(FILE)).unwrap();
        let e = LabState::load(b.path()).unwrap_err().to_string();
        assert!(e.contains("belongs to the lab in") && e.contains("leaving it alone"), "{e}");
        assert_eq!(LabState::load(&b.path().join("none")).unwrap(), None);
    }
}
