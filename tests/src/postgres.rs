//! A PostgreSQL cluster of a test's own (Debian's `postgresql` package):
//! made in a directory the test gives, run as `nobody` (`initdb` refuses
//! root), reached over its Unix socket only (a path, so every network
//! namespace reaches it), stopped with `kill -9`'s equivalent at the end.
//! Root only. Shared by the server's store tests (included by path) and
//! the QEMU scenarios.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A running cluster; stopped on drop.
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    /// `postgresql://metalboot@<socket dir, %2F-encoded>/postgres`.
    pub url: String,
}

/// The newest PostgreSQL's `bin` directory.
fn bin() -> Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL is not installed (apt-get install postgresql)")?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    found.sort();
    found.pop().context("no initdb under /usr/lib/postgresql (apt-get install postgresql)")
}

impl Cluster {
    /// `initdb` in `dir/data` and a server on a socket in `dir` (made
    /// world-writable for `nobody`).
    pub fn start(dir: &Path) -> Result<Cluster> {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))?;
        let c = Cluster {
            dir: dir.to_path_buf(),
            bin: bin()?,
            url: format!("postgresql://metalboot@{}/postgres", dir.display().to_string().replace('/', "%2F")),
        };
        let data = c.data();
        let initdb = c.bin.join("initdb");
        c.as_nobody(&[path(&initdb)?, "-D", path(&data)?, "-U", "metalboot", "-A", "trust", "--no-sync"])?;
        c.start_again()?;
        Ok(c)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn as_nobody(&self, args: &[&str]) -> Result<()> {
        let out = Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .args(args)
            .current_dir(&self.dir)
            .output()
            .context("runuser")?;
        if !out.status.success() {
            bail!("{}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }

    /// Starts the server (again, after [`Cluster::stop`]); returns once it
    /// takes connections.
    pub fn start_again(&self) -> Result<()> {
        let (ctl, data, log) = (self.bin.join("pg_ctl"), self.data(), self.dir.join("postgres.log"));
        let opts = format!("-k {} -c listen_addresses='' -c fsync=off", self.dir.display());
        self.as_nobody(&[path(&ctl)?, "-D", path(&data)?, "-l", path(&log)?, "-w", "-o", &opts, "start"])
    }

    /// Stops the server at once (`-m immediate`: no clean shutdown, as a
    /// crash or a cut network looks to its clients).
    pub fn stop(&self) -> Result<()> {
        let (ctl, data) = (self.bin.join("pg_ctl"), self.data());
        self.as_nobody(&[path(&ctl)?, "-D", path(&data)?, "-m", "immediate", "stop"])
    }
}

fn path(p: &Path) -> Result<&str> {
    p.to_str().context("a path that is not UTF-8")
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
