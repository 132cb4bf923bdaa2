//! The Debian kernel the installer boots: resolved from the
//! `linux-image-amd64` metapackage with apt, downloaded with
//! `apt-get download`, unpacked with `dpkg-deb -x`, and indexed with
//! `depmod -b` (kernel packages ship no `modules.dep`). Cached by package
//! name and version.

use crate::run::output;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// An unpacked kernel package.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// Package name, e.g. `linux-image-6.1.0-56-amd64`.
    pub package: String,
    /// Package version, e.g. `6.1.192-2`.
    pub package_version: String,
    /// Kernel release, e.g. `6.1.0-56-amd64`.
    pub release: String,
    /// The unpacked package tree.
    pub root: PathBuf,
    /// `…/lib/modules/<release>`.
    pub modules_dir: PathBuf,
    /// The kernel image.
    pub vmlinuz: PathBuf,
}

/// Resolves a metapackage (`linux-image-amd64`) to the versioned image package.
pub fn resolve_package(meta: &str) -> Result<(String, String)> {
    let deps = output(Command::new("apt-cache").args(["depends", "--important", meta]))?;
    let pkg = deps
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .map(|p| p.trim().trim_start_matches('<').trim_end_matches('>').to_string())
        .find(|p| p.starts_with("linux-image-"))
        .unwrap_or_else(|| meta.to_string());
    let show = output(Command::new("apt-cache").args(["show", "--no-all-versions", &pkg]))?;
    let version = show
        .lines()
        .find_map(|l| l.strip_prefix("Version: "))
        .with_context(|| format!("no Version for {pkg} in apt-cache show (run apt-get update?)"))?
        .trim()
        .to_string();
    Ok((pkg, version))
}

/// Downloads (once) and unpacks the kernel package named by `meta` under `cache`.
pub fn fetch(cache: &Path, meta: &str) -> Result<Kernel> {
    let (package, package_version) =
        resolve_package(meta).with_context(|| format!("resolving kernel package {meta}"))?;
    let dir = cache.join(format!("{package}_{package_version}"));
    let tree = dir.join("tree");
    if !dir.join(".done").exists() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let dl = dir.join("deb");
        std::fs::create_dir_all(&dl)?;
        // apt-get download runs as _apt when it can; let it write here.
        let _ = Command::new("chmod").args(["0777"]).arg(&dl).status();
        output(
            Command::new("apt-get").args(["download", "-q", &format!("{package}={package_version}")]).current_dir(&dl),
        )
        .with_context(|| format!("downloading {package}"))?;
        let deb = std::fs::read_dir(&dl)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .with_context(|| format!("apt-get download left no .deb in {}", dl.display()))?;
        output(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree)).context("unpacking kernel package")?;
        let release = find_release(&tree)?;
        output(Command::new("depmod").arg("-b").arg(&tree).arg(&release))
            .context("running depmod on the kernel tree")?;
        std::fs::write(dir.join(".done"), format!("{package} {package_version}\n"))?;
    }
    let release = find_release(&tree)?;
    let modules_dir = modules_root(&tree).join(&release);
    let vmlinuz = tree.join("boot").join(format!("vmlinuz-{release}"));
    if !vmlinuz.is_file() {
        bail!("{} has no kernel image {}", package, vmlinuz.display());
    }
    Ok(Kernel { package, package_version, release, root: tree, modules_dir, vmlinuz })
}

fn modules_root(tree: &Path) -> PathBuf {
    let usr = tree.join("usr/lib/modules");
    if usr.is_dir() {
        usr
    } else {
        tree.join("lib/modules")
    }
}

fn find_release(tree: &Path) -> Result<String> {
    let root = modules_root(tree);
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .with_context(|| format!("reading {}", root.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    match names.as_slice() {
        [one] => Ok(one.clone()),
        other => bail!("expected one kernel release in {}, found {other:?}", root.display()),
    }
}
