//! The store on a real PostgreSQL: a cluster made for the test in a
//! temporary directory (Debian's `postgresql` package), run as `nobody`,
//! reached over its Unix socket, stopped at the end. Root only (it runs
//! `initdb` as another user): `make unit` runs it.

use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A PostgreSQL cluster of the test's own.
pub(crate) struct Cluster {
    dir: tempfile::TempDir,
    /// `postgresql://metalboot@%2F…/postgres`.
    pub url: String,
}

fn bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (apt-get install postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    found.sort();
    found.pop().expect("no initdb under /usr/lib/postgresql")
}

fn as_nobody(dir: &Path, args: &[&str]) {
    let out = Command::new("runuser").args(["-u", "nobody", "--"]).args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Cluster {
    pub(crate) fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let b = bin();
        let data = p.join("data");
        let (initdb, pg_ctl) = (b.join("initdb"), b.join("pg_ctl"));
        as_nobody(
            p,
            &[initdb.to_str().unwrap(), "-D", data.to_str().unwrap(), "-U", "metalboot", "-A", "trust", "--no-sync"],
        );
        let opts = format!("-k {} -c listen_addresses='' -c fsync=off", p.display());
        let log = p.join("log");
        as_nobody(
            p,
            &[
                pg_ctl.to_str().unwrap(),
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-o",
                &opts,
                "start",
            ],
        );
        let host: String = p.display().to_string().replace('/', "%2F");
        Cluster { url: format!("postgresql://metalboot@{host}/postgres"), dir }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let pg_ctl = bin().join("pg_ctl");
        let _ = Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(pg_ctl)
            .args(["-D", data.to_str().unwrap_or(""), "-m", "immediate", "stop"])
            .output();
    }
}

fn rep() -> HostReport {
    HostReport {
        host_keys: vec!["ssh-ed25519 AAAA".into()],
        addresses: vec!["10.98.1.100/24".into()],
        ..Default::default()
    }
}

/// Two servers on one database: a host booted by both at once ends up with
/// one install, and its phone-home is taken once.
fn one_install_across_servers(a: &Store, b: &Store) {
    a.arm("web1", "test").unwrap();
    let (ta, tb) = (new_token(), new_token());
    std::thread::scope(|sc| {
        let one = sc.spawn(|| a.start_boot("web1", &hash_token(&ta), "image", "server a").unwrap());
        let two = sc.spawn(|| b.start_boot("web1", &hash_token(&tb), "image", "server b").unwrap());
        assert_eq!((one.join().unwrap(), two.join().unwrap()), (BootStart::Installer, BootStart::Installer));
    });
    // one token is current and one pending: whichever installer speaks
    // first wins, and the other's token is dead from then on
    let first =
        b.record_event("web1", &tb, &ProgressEvent::new("partition".parse().unwrap(), EventStatus::Running, ""));
    assert!(first.unwrap().is_ok());
    let late = a.record_event("web1", &ta, &ProgressEvent::new("partition".parse().unwrap(), EventStatus::Running, ""));
    assert_eq!(late.unwrap().unwrap_err(), TokenError::Invalid);
    assert_eq!(a.record_report("web1", &tb, &rep()).unwrap().unwrap().state, HostState::Rebooting);
    let firsts: Vec<bool> = std::thread::scope(|sc| {
        let hs: Vec<_> =
            [a, b, a, b].into_iter().map(|s| sc.spawn(|| s.record_installed("web1", &tb, &rep()))).collect();
        hs.into_iter().map(|h| h.join().unwrap().unwrap().unwrap().1).collect()
    });
    assert_eq!(firsts.iter().filter(|f| **f).count(), 1, "phone-home taken {firsts:?}");
    let states: Vec<_> = a.timeline("web1").unwrap().into_iter().filter_map(|e| e.state).collect();
    assert_eq!(states.iter().filter(|s| *s == "installed").count(), 1, "{states:?}");
    assert_eq!(b.get("web1").unwrap().state, HostState::Installed);
}

#[test]
#[ignore = "runs a PostgreSQL cluster as nobody: root only, run by `make unit`"]
fn postgres_two_servers_one_install() {
    let c = Cluster::start();
    let (a, b) = (Store::connect(&c.url).unwrap(), Store::connect(&c.url).unwrap());
    one_install_across_servers(&a, &b);
    // and everything else the store does, on PostgreSQL
    super::tests::lifecycle_on(&Store::connect(&c.url).unwrap(), "web2");
}

#[test]
fn sqlite_two_handles_one_install() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (Store::open(d.path()).unwrap(), Store::open(d.path()).unwrap());
    one_install_across_servers(&a, &b);
}

#[test]
#[ignore = "runs a PostgreSQL cluster as nobody: root only, run by `make unit`"]
fn postgres_gone_and_back() {
    let c = Cluster::start();
    let s = Store::connect(&c.url).unwrap();
    s.arm("web1", "test").unwrap();
    let data = c.dir.path().join("data");
    let ctl = bin().join("pg_ctl");
    as_nobody(c.dir.path(), &[ctl.to_str().unwrap(), "-D", data.to_str().unwrap(), "-m", "immediate", "stop"]);
    let e = s.start_boot("web1", &hash_token(&new_token()), "image", "bios").unwrap_err();
    assert!(format!("{e:#}").contains("state database"), "{e:#}");
    let opts = format!("-k {} -c listen_addresses='' -c fsync=off", c.dir.path().display());
    let log = c.dir.path().join("log");
    as_nobody(
        c.dir.path(),
        &[ctl.to_str().unwrap(), "-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-w", "-o", &opts, "start"],
    );
    assert_eq!(s.start_boot("web1", &hash_token(&new_token()), "image", "bios").unwrap(), BootStart::Installer);
}
