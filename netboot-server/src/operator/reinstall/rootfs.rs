//! What the target's running system runs from, read from its
//! `/proc/mounts`: a disk (the usual case: the disk a reinstall in place
//! replaces, and the old system a failed install falls back to), or RAM or
//! the network (a provider's rescue system, a live system, an initramfs, a
//! diskless NFS root), where no disk holds the root filesystem and a reboot
//! goes wherever the firmware or the provider boots next.
//!
//! The facts relied on (proc(5), `Documentation/filesystems/overlayfs.rst`):
//! one line per mount, `SOURCE TARGET FSTYPE OPTIONS 0 0`, with space, tab,
//! newline and backslash written as octal escapes (`\040`); mounts over the
//! same target stack, and the last line for `/` is the root in use (a
//! kernel before 3.x listed the initramfs as `rootfs /` first); an overlay
//! names its layers in its options (`lowerdir=A:B`, with `\:` for a colon in
//! a name, `upperdir=`), and each layer lives on whichever mount holds its
//! path.

use anyhow::{bail, Result};

/// One line of `/proc/mounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// What is mounted (`/dev/vda2`, `tmpfs`, `10.0.0.1:/srv/root`).
    pub source: String,
    /// Where.
    pub target: String,
    /// The filesystem type.
    pub fstype: String,
    /// Mount options, comma-separated.
    pub options: String,
}

/// `\040`-style escapes undone.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = b[i + 1..i + 4].iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
            if let Ok(v) = u8::try_from(v) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/mounts` text; lines that are not mounts are skipped.
pub fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (source, target, fstype) = (w.next()?, w.next()?, w.next()?);
            Some(Mount {
                source: unescape(source),
                target: unescape(target),
                fstype: fstype.to_string(),
                options: w.next().map(unescape).unwrap_or_default(),
            })
        })
        .collect()
}

/// Where the root filesystem's data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    /// A block device: a system on disk.
    Disk,
    /// Memory (tmpfs, ramfs, the initramfs, a squashfs image, an overlay of those).
    Ram,
    /// A network filesystem.
    Network,
}

/// The running root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootFs {
    /// Its type as `/proc/mounts` says (`ext4`, `overlay`, `nfs4`).
    pub fstype: String,
    /// Its source.
    pub source: String,
    /// Where its data lives.
    pub medium: Medium,
    /// In words, for the operator: `ext4 on /dev/vda1`, `overlay on tmpfs
    /// over squashfs`, `nfs4 from 10.0.0.1:/srv/root`.
    pub what: String,
}

impl RootFs {
    /// A rescue, live, initramfs or diskless system: no disk holds its
    /// root, and nothing on a disk is what it comes back to.
    pub fn off_disk(&self) -> bool {
        self.medium != Medium::Disk
    }

    /// "runs from RAM (root is …)", for the operator.
    pub fn runs_from(&self) -> String {
        let from = match self.medium {
            Medium::Disk => "runs from disk",
            Medium::Ram => "runs from RAM",
            Medium::Network => "runs from the network",
        };
        format!("{from} (root is {})", self.what)
    }
}

fn medium_of(fstype: &str) -> Medium {
    match fstype {
        "tmpfs" | "ramfs" | "rootfs" | "squashfs" | "iso9660" | "erofs" | "zram" => Medium::Ram,
        "nfs" | "nfs4" | "cifs" | "smb3" | "9p" | "virtiofs" | "ceph" | "glusterfs" => Medium::Network,
        _ => Medium::Disk,
    }
}

/// The mount holding `path`: the one with the longest target that is
/// `path` or one of its parents (the later one where two stack); `skip` is
/// the overlay itself (its layers are below it, not on it).
fn holder<'a>(mounts: &'a [Mount], path: &str, skip: usize) -> Option<&'a Mount> {
    let path = path.trim_end_matches('/');
    let holds = |target: &str| {
        let t = target.trim_end_matches('/');
        t.is_empty() || path == t || path.strip_prefix(t).is_some_and(|rest| rest.starts_with('/'))
    };
    mounts
        .iter()
        .enumerate()
        .filter(|(i, m)| *i != skip && holds(&m.target))
        .max_by_key(|(i, m)| (m.target.trim_end_matches('/').len(), *i))
        .map(|(_, m)| m)
}

/// The option `key=` of a comma-separated list.
fn option<'a>(options: &'a str, key: &str) -> Option<&'a str> {
    options.split(',').find_map(|o| o.strip_prefix(key)?.strip_prefix('='))
}

/// `lowerdir=` split on the colons that are not escaped.
fn lower_dirs(v: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.last_mut().expect("never empty").extend(chars.next()),
            ':' => out.push(String::new()),
            c => out.last_mut().expect("never empty").push(c),
        }
    }
    out.retain(|d| !d.is_empty());
    out
}

/// The running root filesystem, from `/proc/mounts`.
pub fn root_of(mounts_text: &str) -> Result<RootFs> {
    let mounts = parse_mounts(mounts_text);
    let Some((at, root)) = mounts.iter().enumerate().rev().find(|(_, m)| m.target == "/") else {
        bail!("/proc/mounts lists no root filesystem");
    };
    let fstype = root.fstype.clone();
    let source = root.source.clone();
    if fstype != "overlay" {
        let medium = medium_of(&fstype);
        let what = match (medium, fstype.as_str()) {
            (_, "rootfs") => "rootfs (an initramfs)".to_string(),
            (Medium::Network, _) => format!("{fstype} from {source}"),
            (Medium::Ram, "tmpfs" | "ramfs") => fstype.clone(),
            _ => format!("{fstype} on {source}"),
        };
        return Ok(RootFs { fstype, source, medium, what });
    }
    // an overlay is on whatever holds its layers
    let layer = |dir: &str| holder(&mounts, dir, at).map(|m| m.fstype.clone());
    let upper = option(&root.options, "upperdir").map(|d| layer(d).unwrap_or_else(|| "?".into()));
    let lowers: Vec<String> = option(&root.options, "lowerdir")
        .map(lower_dirs)
        .unwrap_or_default()
        .iter()
        .map(|d| layer(d).unwrap_or_else(|| "?".into()))
        .collect();
    let layers: Vec<&str> = upper.iter().chain(&lowers).map(String::as_str).collect();
    // a layer nowhere to be seen was left behind in the initramfs, which
    // is RAM; only an overlay wholly on disk filesystems is a disk system
    let medium = if layers.iter().any(|l| medium_of(l) == Medium::Network) {
        Medium::Network
    } else if layers.is_empty() || layers.iter().any(|l| *l == "?" || medium_of(l) == Medium::Ram) {
        Medium::Ram
    } else {
        Medium::Disk
    };
    let mut lower_types: Vec<&str> = Vec::new();
    for l in &lowers {
        if Some(l) != upper.as_ref() && !lower_types.contains(&l.as_str()) {
            lower_types.push(l);
        }
    }
    let name =
        |t: &str| if t == "?" { "layers not visible from the running system".to_string() } else { t.to_string() };
    let mut what = match &upper {
        Some(u) => format!("overlay on {}", name(u)),
        None => "overlay".to_string(),
    };
    if !lower_types.is_empty() {
        what.push_str(&format!(" over {}", lower_types.iter().map(|t| name(t)).collect::<Vec<_>>().join(" and ")));
    }
    Ok(RootFs { fstype, source, medium, what })
}

#[cfg(test)]
mod tests;
