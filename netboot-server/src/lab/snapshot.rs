//! `lab up --snapshot`: the installed hosts kept in a cache and every later
//! `up` of the same lab started on copy-on-write overlays of them.
//!
//! An entry is made once, after a real install: the VMs are powered off
//! from inside (so the filesystems are clean), the server is stopped (so its
//! database is whole), and the disks (qcow2), the server's data directory
//! (its state with the hosts `installed` and their host keys, its leases and
//! its TLS certificate, whose pin the hosts hold) and the lab's SSH key are
//! moved into `<cache>/<key>/`. The key is a digest of everything that
//! decides what the disks hold: metalboot's version, the config, the
//! inventory entries, each host's firmware and disks, and the bytes of the
//! kernel, initramfs and root filesystem images. A change to any of them
//! makes another entry; nothing is ever updated in place.

use super::setup::LabDisk;
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where entries live unless `--cache` or `METALBOOT_LAB_CACHE` says.
pub const DEFAULT_CACHE: &str = "/var/cache/metalboot/lab";

/// The file an entry is complete with (written before the entry is renamed
/// into place).
const META: &str = "snapshot.json";

/// What a snapshot is made from, for its key.
pub struct KeyParts<'a> {
    /// The operator's config, as written.
    pub config: &'a str,
    /// The lab's inventory as the lab's server gets it, without the lab's
    /// (per-lab) SSH key.
    pub inventory: &'a str,
    /// Each host: name, firmware, disks.
    pub hosts: Vec<(&'a str, &'a str, &'a [LabDisk])>,
    /// The asset files the installs read.
    pub assets: Vec<PathBuf>,
}

/// The entry's name: a SHA-256 over the parts, each length-prefixed.
pub fn key(p: &KeyParts<'_>) -> Result<String> {
    let mut h = Sha256::new();
    let mut put = |b: &[u8]| {
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    };
    put(b"metalboot lab snapshot 1");
    put(env!("CARGO_PKG_VERSION").as_bytes());
    put(p.config.as_bytes());
    put(p.inventory.as_bytes());
    for (name, fw, disks) in &p.hosts {
        put(format!("{name} {fw}").as_bytes());
        for d in disks.iter() {
            put(format!("{} {} {:?} {}", d.file, d.serial, d.bus, d.size).as_bytes());
        }
    }
    for a in &p.assets {
        put(crate::digest::sha256_file(a)?.as_bytes());
    }
    Ok(hex::encode(h.finalize())[..24].to_string())
}

/// The cache directory: `--cache`, else `METALBOOT_LAB_CACHE`, else
/// [`DEFAULT_CACHE`]; absolute, as the overlays name their base by it.
/// An existing one must be root's and writable by root only: root boots
/// its disks and uses its keys.
pub fn cache_dir(arg: Option<&Path>) -> Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let dir = arg
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("METALBOOT_LAB_CACHE").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE));
    let dir = std::path::absolute(&dir).with_context(|| format!("the snapshot cache {}", dir.display()))?;
    if let Ok(m) = std::fs::metadata(&dir) {
        if !m.is_dir() || m.uid() != 0 || m.mode() & 0o022 != 0 {
            bail!(
                "the snapshot cache {} must be a directory owned by root and writable by root only \
                 (its snapshots are booted and their keys used as root)",
                dir.display()
            );
        }
    }
    Ok(dir)
}

/// Every file under `dir`, sorted (for the key: a templates directory).
pub fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A complete entry for `key` under `cache`, if there is one.
pub fn lookup(cache: &Path, key: &str) -> Option<PathBuf> {
    let dir = cache.join(key);
    dir.join(META).is_file().then_some(dir)
}

/// What the entry's `snapshot.json` says of it, for the operator.
pub fn describe(entry: &Path) -> String {
    let meta: serde_json::Value =
        std::fs::read(entry.join(META)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    let made = meta["made"].as_i64().map(|t| crate::state::rfc3339(t * 1000));
    format!(
        "{} (made {}, hosts {})",
        entry.display(),
        made.as_deref().unwrap_or("?"),
        meta["hosts"].as_array().map_or("?".into(), |h| h
            .iter()
            .filter_map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(", "))
    )
}

/// The qcow2 image of a disk file name (`disk1.img` → `disk1.qcow2`).
pub fn qcow2_name(file: &str) -> String {
    format!("{}.qcow2", file.strip_suffix(".img").unwrap_or(file))
}

/// Makes a blank qcow2 disk of `size` bytes at `path`.
pub fn create_blank(path: &Path, size: u64) -> Result<()> {
    qemu_img(&["create", "-q", "-f", "qcow2"], &[path], Some(size))
}

/// Makes `path` a qcow2 overlay on the entry's image `base`.
pub fn create_overlay(base: &Path, path: &Path) -> Result<()> {
    let b = base.to_str().context("the snapshot's path is not UTF-8")?;
    qemu_img(&["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", b], &[path], None)
}

fn qemu_img(args: &[&str], paths: &[&Path], size: Option<u64>) -> Result<()> {
    let mut c = Command::new("qemu-img");
    c.args(args).args(paths);
    if let Some(s) = size {
        c.arg(s.to_string());
    }
    let out = c.output().context("running qemu-img (apt-get install qemu-utils)")?;
    if !out.status.success() {
        bail!("qemu-img {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Copies the entry's SSH key and server data into the lab's directory.
pub fn restore(entry: &Path, lab: &Path) -> Result<()> {
    for f in [super::access::KEY, "id_ed25519.pub"] {
        std::fs::copy(entry.join(f), lab.join(f)).with_context(|| format!("copying {f} from the snapshot"))?;
    }
    copy_tree(&entry.join("data"), &lab.join("data"))
}

/// `cp -a FROM TO`.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let out = Command::new("cp").arg("-a").arg(from).arg(to).output().context("running cp")?;
    if !out.status.success() {
        bail!("copying {} to {}: {}", from.display(), to.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// One host's disks to keep: `(host name, [(the lab's qcow2 file, its name in the entry)])`.
pub type HostDisks = (String, Vec<(PathBuf, String)>);

/// Stores what the lab in `lab` made (its VMs off, its server stopped) as
/// the entry `key` under `cache`: the disks are moved there and made
/// read-only, everything is on disk before the entry is renamed into
/// place. If another `up` made the same entry meanwhile, ours stays beside
/// it as `KEY-PID` (this lab's disks, key and server data belong together)
/// and later `up`s use theirs. If storing fails, the disks go back to the
/// lab. The entry's directory.
pub fn store(cache: &Path, key: &str, lab: &Path, hosts: &[HostDisks]) -> Result<PathBuf> {
    std::fs::create_dir_all(cache).with_context(|| format!("making the snapshot cache {}", cache.display()))?;
    remove_abandoned(cache);
    let tmp = cache.join(format!(".{key}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o700))?;
    let mut moved: Vec<(PathBuf, PathBuf)> = Vec::new();
    let made = (|| -> Result<()> {
        for f in [super::access::KEY, "id_ed25519.pub"] {
            std::fs::copy(lab.join(f), tmp.join(f))?;
        }
        copy_tree(&lab.join("data"), &tmp.join("data"))?;
        for (name, disks) in hosts {
            let d = tmp.join("hosts").join(name);
            std::fs::create_dir_all(&d)?;
            for (file, kept) in disks {
                move_file(file, &d.join(kept))?;
                moved.push((file.clone(), d.join(kept)));
                std::fs::set_permissions(d.join(kept), std::fs::Permissions::from_mode(0o444))?;
            }
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let names: Vec<&str> = hosts.iter().map(|(n, _)| n.as_str()).collect();
        let meta = serde_json::json!({ "made": now, "hosts": names, "version": env!("CARGO_PKG_VERSION") });
        std::fs::write(tmp.join(META), serde_json::to_vec_pretty(&meta)?)?;
        sync_fs(&tmp)
    })();
    if let Err(e) = made {
        for (back, from) in moved.iter().rev() {
            let _ = std::fs::set_permissions(from, std::fs::Permissions::from_mode(0o644));
            let _ = move_file(from, back);
        }
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e.context("saving the snapshot (the disks are back in the lab)"));
    }
    let mut entry = cache.join(key);
    if std::fs::rename(&tmp, &entry).is_err() {
        entry = cache.join(format!("{key}-{}", std::process::id()));
        std::fs::rename(&tmp, &entry)
            .with_context(|| format!("putting the snapshot in place at {}", entry.display()))?;
    }
    sync_fs(cache)?;
    Ok(entry)
}

/// Removes `.KEY.PID` directories of `up`s that died while storing.
fn remove_abandoned(cache: &Path) {
    for e in std::fs::read_dir(cache).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name.strip_prefix('.').and_then(|n| n.rsplit_once('.')).map(|(_, p)| p.to_string());
        if let Some(pid) = pid.filter(|p| p.parse::<u32>().is_ok()) {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// `sync -f PATH`: the filesystem holding it flushed to disk.
fn sync_fs(path: &Path) -> Result<()> {
    let out = Command::new("sync").arg("-f").arg(path).output().context("running sync")?;
    if !out.status.success() {
        bail!("sync -f {}: {}", path.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Renames `from` to `to`, copying across filesystems.
fn move_file(from: &Path, to: &Path) -> Result<()> {
    if std::fs::rename(from, to).is_ok() {
        return Ok(());
    }
    let out = Command::new("cp").arg("--sparse=always").arg(from).arg(to).output().context("running cp")?;
    if !out.status.success() {
        bail!("copying {} to {}: {}", from.display(), to.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    std::fs::remove_file(from)?;
    Ok(())
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
