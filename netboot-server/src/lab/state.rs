//! The lab's state file (`<dir>/lab.json`): what `lab up` started, by
//! process id, so that the other `lab` commands find it and `lab down`
//! stops exactly that.

use anyhow::{Context, Result};
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
    /// `metalboot serve`'s process id (0 before it started).
    pub server_pid: u32,
    /// The server's HTTP base URL on the lab network.
    pub base: String,
    /// `kvm` or `tcg`.
    pub accel: String,
    /// When `lab up` started (seconds since the epoch).
    pub started: u64,
    /// The hosts, in the order their VMs were started.
    pub hosts: Vec<LabHost>,
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
    /// QEMU's process id.
    pub vm_pid: u32,
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
            Ok(t) => Ok(Some(serde_json::from_str(&t).with_context(|| format!("reading {}", p.display()))?)),
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
        let p = self.dir.join(FILE);
        let tmp = p.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &p).with_context(|| format!("writing {}", p.display()))
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Result<&LabHost> {
        self.hosts.iter().find(|h| h.name == name).with_context(|| {
            let names: Vec<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
            format!("no host {name:?} in the lab (it has: {})", names.join(", "))
        })
    }

    /// Whether process `pid` runs and is one of this lab's: its command
    /// line names the lab's directory (a reused process id does not).
    pub fn owns(&self, pid: u32) -> bool {
        pid != 0 && cmdline_mentions(pid, &self.dir.display().to_string())
    }

    /// The lab's processes that still run: (what, process id).
    pub fn running(&self) -> Vec<(String, u32)> {
        let mut v = Vec::new();
        if self.owns(self.server_pid) {
            v.push(("server".to_string(), self.server_pid));
        }
        for h in &self.hosts {
            if self.owns(h.vm_pid) {
                v.push((format!("VM {}", h.name), h.vm_pid));
            }
        }
        v
    }
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
