//! Copying programs from the build machine (installed from Debian packages)
//! into the archive: the file, every symlink on the way to it (so `/lib →
//! usr/lib` and `ld-linux` links look as on Debian), and the shared libraries
//! `ldd` reports, recursively.

use crate::cpio::Archive;
use crate::run::output;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// Adds host paths to an archive and keeps a size account per component.
pub struct HostFs<'a> {
    /// Target archive.
    pub archive: &'a mut Archive,
    /// Bytes added per component label.
    pub sizes: BTreeMap<String, u64>,
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

impl<'a> HostFs<'a> {
    /// Wraps an archive.
    pub fn new(archive: &'a mut Archive) -> Self {
        HostFs { archive, sizes: BTreeMap::new() }
    }

    /// Adds `path` as it is on this machine, following and replicating
    /// symlinks. Returns the resolved path.
    pub fn add_path(&mut self, path: &Path, label: &str) -> Result<PathBuf> {
        self.add_path_depth(path, label, 0)
    }

    fn add_path_depth(&mut self, path: &Path, label: &str, depth: u32) -> Result<PathBuf> {
        if depth > 40 {
            bail!("too many symlinks resolving {}", path.display());
        }
        let mut resolved = PathBuf::from("/");
        for comp in normalize(path).components().skip(1) {
            let cand = resolved.join(comp);
            let meta = std::fs::symlink_metadata(&cand).with_context(|| format!("reading {}", cand.display()))?;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&cand)?;
                self.archive.symlink(&cand.to_string_lossy(), &target.to_string_lossy())?;
                let abs = if target.is_absolute() { target } else { resolved.join(target) };
                resolved = self.add_path_depth(&normalize(&abs), label, depth + 1)?;
            } else {
                resolved = cand;
            }
        }
        let meta = std::fs::metadata(&resolved).with_context(|| format!("reading {}", resolved.display()))?;
        let name = resolved.to_string_lossy().into_owned();
        if meta.is_dir() {
            if !self.archive.contains(&name) {
                self.archive.dir(&name, 0o755)?;
            }
        } else if !self.archive.contains(&name) {
            let data = std::fs::read(&resolved).with_context(|| format!("reading {}", resolved.display()))?;
            *self.sizes.entry(label.to_string()).or_default() += data.len() as u64;
            self.archive.file(&name, meta.permissions().mode() & 0o7777, data)?;
        }
        Ok(resolved)
    }

    /// Adds a program and the shared libraries it needs.
    pub fn add_program(&mut self, path: &Path, label: &str) -> Result<()> {
        self.add_path(path, label)?;
        for lib in shared_libs(path)? {
            self.add_path(&lib, "shared libraries")?;
        }
        Ok(())
    }
}

/// Shared libraries of an ELF program, as `ldd` resolves them (absolute
/// paths, including the dynamic loader). Static programs have none.
pub fn shared_libs(path: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd").arg(path).output().with_context(|| format!("running ldd {}", path.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || text.contains("not a dynamic executable") || text.contains("statically linked") {
        return Ok(vec![]);
    }
    parse_ldd(&text).with_context(|| format!("reading ldd output for {}", path.display()))
}

/// Parses `ldd` output lines (`libc.so.6 => /lib/…/libc.so.6 (0x…)`,
/// `/lib64/ld-linux-x86-64.so.2 (0x…)`, `linux-vdso.so.1 (0x…)`).
pub fn parse_ldd(text: &str) -> Result<Vec<PathBuf>> {
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.contains("=> not found") {
            bail!("missing library: {line}");
        }
        let path = match line.split_once("=>") {
            Some((_, rhs)) => rhs.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(p));
        }
    }
    Ok(libs)
}

/// Checks a tool exists before we try to add it, with a hint naming the package.
pub fn require(path: &str, package: &str) -> Result<PathBuf> {
    let p = PathBuf::from(path);
    if !p.exists() {
        bail!("{path} not found: install the Debian package {package}");
    }
    Ok(p)
}

/// Runs `busybox --list` to get its applets.
pub fn busybox_applets(busybox: &Path) -> Result<Vec<String>> {
    Ok(output(Command::new(busybox).arg("--list"))?.lines().map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ldd() {
        let t = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        let libs = parse_ldd(t).unwrap();
        assert_eq!(
            libs,
            [PathBuf::from("/lib/x86_64-linux-gnu/libz.so.1"), PathBuf::from("/lib64/ld-linux-x86-64.so.2")]
        );
        assert!(parse_ldd("libfoo.so => not found").is_err());
    }

    #[test]
    fn normalizes_dotdot() {
        assert_eq!(normalize(Path::new("/usr/lib/../bin/x")), PathBuf::from("/usr/bin/x"));
    }
}
