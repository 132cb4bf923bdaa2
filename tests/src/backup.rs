//! A backup target for `[[host.snapshots.send]]`: a second machine on the
//! scenario's network (a namespace of its own, 10.99.0.3) running OpenSSH's
//! sshd on port 2222, where root logs in only with the key the installed
//! host reported, and only for btrbk's receiving commands (btrbk's
//! `ssh_filter_btrbk.sh`), into a BTRFS filesystem of its own (a file,
//! loop-mounted). Its host key is pinned in the inventory; swapping it for
//! another (a stand-in at the same address) must stop the sends.

use crate::harness::Scenario;
use crate::netns::{run, Netns};
use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The target's address on the scenario's bridge.
pub const BACKUP_IP: &str = "10.99.0.3";
/// The port its sshd listens on (not 22: the pin is on `[host]:port`).
pub const BACKUP_PORT: u16 = 2222;

/// The running target.
pub struct BackupTarget {
    dir: PathBuf,
    /// The BTRFS filesystem's mount point.
    pub mnt: PathBuf,
    /// The host key the inventory pins (`type base64`).
    pub host_key: String,
    peer: Option<Netns>,
    sshd: Option<Child>,
    mounted: bool,
}

fn keygen(path: &Path) -> Result<String> {
    let _ = std::fs::remove_file(path);
    let p = path.to_str().context("path")?;
    run(&["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "backup-target", "-f", p])?;
    let text = std::fs::read_to_string(path.with_extension("pub"))?;
    Ok(text.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
}

/// The host's `snapshots` line: @ and @home every minute, the newest kept,
/// sent as `send` says.
pub fn inventory_line(send: &str) -> String {
    format!(
        "snapshots = {{ subvolumes = [\"@\", \"@home\"], every = \"1min\", keep = {{ hourly = 0, daily = 0, weekly = 0, \
         monthly = 0 }}, {send} }}\n"
    )
}

impl BackupTarget {
    /// Host keys (the pinned one and a stand-in's), the filesystem, the
    /// directory the host's backups go to; sshd starts with [`Self::start`].
    pub fn prepare(s: &Scenario) -> Result<BackupTarget> {
        let dir = s.dir.join("backup");
        std::fs::create_dir_all(&dir)?;
        let host_key = keygen(&dir.join("host_key"))?;
        keygen(&dir.join("standin_key"))?;
        let img = dir.join("fs.img");
        let f = std::fs::File::create(&img)?;
        f.set_len(512 << 20)?;
        drop(f);
        run(&["mkfs.btrfs", "-q", "-f", img.to_str().context("path")?])?;
        let mnt = dir.join("mnt");
        std::fs::create_dir_all(&mnt)?;
        let mut t = BackupTarget { dir, mnt, host_key, peer: None, sshd: None, mounted: false };
        run(&["mount", "-o", "loop", img.to_str().context("path")?, t.mnt.to_str().context("path")?])?;
        t.mounted = true;
        std::fs::create_dir_all(t.mnt.join("vm1"))?;
        std::fs::write(t.dir.join("authorized_keys"), "")?;
        Ok(t)
    }

    /// The inventory's `send` entry: @home only, the newest kept.
    pub fn send_entry(&self) -> String {
        format!(
            "send = [{{ target = \"ssh://{BACKUP_IP}:{BACKUP_PORT}{}/vm1\", host_key = \"{}\", subvolumes = \
             [\"@home\"], keep = {{ hourly = 0, daily = 0, weekly = 0, monthly = 0 }} }}]",
            self.mnt.display(),
            self.host_key
        )
    }

    /// Starts sshd in a namespace of its own on the scenario's bridge,
    /// with the pinned host key or the stand-in's.
    pub fn start(&mut self, s: &Scenario, standin: bool) -> Result<()> {
        self.stop_sshd();
        if self.peer.is_none() {
            self.peer = Some(s.ns.peer("backup", BACKUP_IP)?);
        }
        std::fs::create_dir_all("/run/sshd")?;
        let d = self.dir.display();
        let key = if standin { "standin_key" } else { "host_key" };
        let conf = format!(
            "Port {BACKUP_PORT}\nListenAddress {BACKUP_IP}\nHostKey {d}/{key}\nAuthorizedKeysFile {d}/authorized_keys\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             UsePAM no\nStrictModes no\nPidFile none\nLogLevel VERBOSE\n"
        );
        std::fs::write(self.dir.join("sshd_config"), conf)?;
        let peer = self.peer.as_ref().context("no namespace")?;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("sshd.log"))?;
        let child = peer
            .command("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(self.dir.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting sshd (apt-get install openssh-server)")?;
        self.sshd = Some(child);
        for _ in 0..50 {
            if let Some(st) = self.sshd.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("sshd exited ({st}): {}", std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default());
            }
            if peer.exec(&["ss", "-Hltn", &format!("sport = :{BACKUP_PORT}")]).is_ok_and(|o| !o.trim().is_empty()) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("sshd is not listening on {BACKUP_IP}:{BACKUP_PORT}")
    }

    /// Lets `key` (the host's reported backup key) in, for receiving into
    /// this filesystem only.
    pub fn authorise(&self, key: &str) -> Result<()> {
        let filter = "/usr/share/btrbk/scripts/ssh_filter_btrbk.sh";
        ensure!(Path::new(filter).is_file(), "no {filter} (apt-get install btrbk)");
        let line = format!(
            "command=\"{filter} --target --delete --info --restrict-path {}\",restrict {}\n",
            self.mnt.display(),
            key.trim()
        );
        std::fs::write(self.dir.join("authorized_keys"), line)?;
        Ok(())
    }

    /// Received subvolumes in the host's directory, by name, with their
    /// received UUIDs.
    pub fn received(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let mut names: Vec<String> = std::fs::read_dir(self.mnt.join("vm1"))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for n in names {
            let show = run(&["btrfs", "subvolume", "show", self.mnt.join("vm1").join(&n).to_str().context("path")?])?;
            let uuid = show
                .lines()
                .find_map(|l| l.trim().strip_prefix("Received UUID:"))
                .map(|u| u.trim().to_string())
                .unwrap_or_default();
            out.push((n, uuid));
        }
        Ok(out)
    }

    /// sshd's log (what it accepted and refused).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    fn stop_sshd(&mut self) {
        if let Some(mut c) = self.sshd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for BackupTarget {
    fn drop(&mut self) {
        self.stop_sshd();
        self.peer.take();
        if self.mounted {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
    }
}
