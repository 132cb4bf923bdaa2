//! Which disks a reinstall writes when the host's own inventory selectors
//! choose them: on a rescue system (no disk holds a system to replace), and
//! for a host on several disks (btrfs raid1), whose old system may span
//! them. Each selector is checked on the discovered disks before anything
//! changes, by the installer's rule ([`metalboot_spec::DiskSelector::mismatch`]):
//! it must match exactly one disk that is not removable, read-only or in
//! use, and no disk with a mounted filesystem at all — the installer, running
//! from RAM after kexec, would no longer see that disk in use. On a running
//! system the disks holding its root filesystem are the exception: their
//! mounts are the system being replaced.

use super::discover::DiskFacts;
use anyhow::{bail, Context, Result};
use metalboot_spec::{DiskIdentity, DiskSelector};

/// What the target runs from, for which disks in use may be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    /// A rescue system in RAM or on the network: no mounted disk is chosen.
    Rescue,
    /// The old system on disk: the disks holding its root may be chosen.
    OldSystem,
}

impl From {
    fn target(self) -> &'static str {
        match self {
            From::Rescue => "the rescue system",
            From::OldSystem => "the target",
        }
    }
}

/// What the host's selector makes of one disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The selector matches it and it may be wiped.
    Chosen,
    /// A loop, RAM, zram, network block device…: never chosen.
    NotATarget,
    /// It holds mounted filesystems (these): never chosen.
    InUse(Vec<String>),
    /// Removable: never chosen.
    Removable,
    /// Read-only: never chosen.
    ReadOnly,
    /// The selector does not match it (why).
    NoMatch(String),
}

/// `sel` with a `/dev/disk/by-*` path turned into the device it names on
/// the target, as the installer resolves it on the machine.
fn resolved(sel: &DiskSelector, links: &[(String, String)]) -> DiskSelector {
    let mut s = sel.clone();
    if let Some(p) = &sel.path {
        if let Some((_, dev)) = links.iter().find(|(l, _)| l == p) {
            s.path = Some(dev.clone());
        }
    }
    s
}

fn identity(d: &DiskFacts) -> DiskIdentity<'_> {
    DiskIdentity {
        path: &d.path,
        serial: d.serial.as_deref(),
        wwn: d.wwn.as_deref(),
        model: d.model.as_deref(),
        size: d.size,
    }
}

/// Whether `d` holds the root filesystem of the system being replaced.
fn old_root(d: &DiskFacts, from: From) -> bool {
    from == From::OldSystem && d.holds_root
}

/// Whether `d`'s mounts keep it from being chosen.
fn in_use(d: &DiskFacts, from: From) -> bool {
    let mounted = !d.mounts.is_empty();
    mounted && !old_root(d, from)
}

/// Each disk's verdict under `sel`, in the order given.
pub fn verdicts(sel: &DiskSelector, disks: &[DiskFacts], links: &[(String, String)], from: From) -> Vec<Verdict> {
    let sel = resolved(sel, links);
    disks
        .iter()
        .map(|d| {
            // the installer never chooses these, mounted or not
            let name = d.path.rsplit('/').next().unwrap_or_default();
            if metalboot_spec::disk::never_a_target(name) {
                Verdict::NotATarget
            } else if d.removable {
                Verdict::Removable
            } else if d.read_only {
                Verdict::ReadOnly
            } else if in_use(d, from) {
                Verdict::InUse(d.mounts.clone())
            } else {
                sel.mismatch(&identity(d)).map_or(Verdict::Chosen, Verdict::NoMatch)
            }
        })
        .collect()
}

/// The disk `sel` picks, or why none may be wiped; every refusal names
/// each disk and why it was passed over.
pub fn choose<'a>(
    sel: &DiskSelector,
    disks: &'a [DiskFacts],
    links: &[(String, String)],
    from: From,
) -> Result<&'a DiskFacts> {
    let v = verdicts(sel, disks, links, from);
    let rule = sel.describe();
    let resolved = resolved(sel, links);
    // a disk in use that the selector matches: the installer would see it free
    let in_use: Vec<String> = disks
        .iter()
        .zip(&v)
        .filter(|(d, v)| matches!(v, Verdict::InUse(_)) && resolved.mismatch(&identity(d)).is_none())
        .map(|(d, _)| format!("{} ({} mounted)", d.path, d.mounts.join(", ")))
        .collect();
    if !in_use.is_empty() {
        let whose = match from {
            From::Rescue => "the rescue medium, or a disk someone mounted",
            From::OldSystem => "not the root filesystem of the system being replaced",
        };
        bail!(
            "the host's disk selector ({rule}) matches {}, which holds mounted filesystems ({whose}): after kexec \
             the installer would no longer see it in use and could wipe it. Narrow the selector (serial, WWN, path \
             or size) or unmount it; nothing was changed",
            in_use.join(" and ")
        );
    }
    let chosen: Vec<&DiskFacts> =
        disks.iter().zip(&v).filter(|(_, v)| **v == Verdict::Chosen).map(|(d, _)| d).collect();
    match chosen.as_slice() {
        [one] => {
            let confirmed = sel.wipe || old_root(one, from);
            if !one.partitions.is_empty() && !confirmed {
                let parts: Vec<&str> = one.partitions.iter().map(|(p, _, _)| p.as_str()).collect();
                bail!(
                    "{} matches the host's disk selector ({rule}) but holds partitions ({}); the installer wipes it \
                     only with disk.wipe = true in the inventory; nothing was changed",
                    one.path,
                    parts.join(", ")
                );
            }
            Ok(one)
        }
        [] => bail!(
            "no disk of {} matches the host's disk selector ({rule}); disks seen: {}; nothing was changed",
            from.target(),
            seen(disks, &v)
        ),
        many => bail!(
            "{} disks match the host's disk selector ({rule}): {}; refusing to guess (narrow the selector in the \
             inventory); nothing was changed",
            many.len(),
            many.iter().map(|d| d.path.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The disks every selector of a host on several disks picks, in the
/// inventory's order: each one by [`choose`], and no disk twice.
pub fn choose_all<'a>(
    sels: &[DiskSelector],
    disks: &'a [DiskFacts],
    links: &[(String, String)],
    from: From,
) -> Result<Vec<&'a DiskFacts>> {
    let mut out: Vec<&DiskFacts> = Vec::new();
    for (i, sel) in sels.iter().enumerate() {
        let d = choose(sel, disks, links, from)
            .with_context(|| format!("disk {} of {} ({})", i + 1, sels.len(), sel.describe()))?;
        if let Some(j) = out.iter().position(|o| o.path == d.path) {
            bail!(
                "disks {} and {} of the host ({} and {}) both choose {}: each disk of a raid must be another disk \
                 (narrow the selectors in the inventory); nothing was changed",
                j + 1,
                i + 1,
                sels[j].describe(),
                sel.describe(),
                d.path
            );
        }
        out.push(d);
    }
    // a disk of the old root left out would keep half of the old system,
    // bootable (its GRUB, its ESP) beside the new one
    if from == From::OldSystem {
        let left: Vec<&str> = disks
            .iter()
            .filter(|d| d.holds_root && !out.iter().any(|o| o.path == d.path))
            .map(|d| d.path.as_str())
            .collect();
        if !left.is_empty() {
            bail!(
                "the running system's root filesystem is also on {}, which none of the host's disk selectors \
                 chooses: it would keep a bootable half of the old system beside the new one. List it in the \
                 host's disks, or take it out of the filesystem first (btrfs device remove); nothing was changed",
                left.join(" and ")
            );
        }
    }
    Ok(out)
}

/// The one disk that is not removable, read-only or in use, for an
/// inventory entry printed from a rescue system (which pins it further).
pub fn only_free_disk(disks: &[DiskFacts]) -> Result<&DiskFacts> {
    let v = verdicts(&DiskSelector::default(), disks, &[], From::Rescue);
    let free: Vec<&DiskFacts> = disks.iter().zip(&v).filter(|(_, v)| **v == Verdict::Chosen).map(|(d, _)| d).collect();
    match free.as_slice() {
        [one] => Ok(one),
        [] => bail!("no disk is free to install on; disks seen: {}", seen(disks, &v)),
        many => bail!(
            "{} disks are free to install on ({}): refusing to guess",
            many.len(),
            many.iter().map(|d| d.path.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn seen(disks: &[DiskFacts], v: &[Verdict]) -> String {
    if disks.is_empty() {
        return "none".into();
    }
    disks.iter().zip(v).map(|(d, v)| format!("{} ({})", d.path, why(v))).collect::<Vec<_>>().join(", ")
}

/// A verdict in words, for refusals and summaries.
pub fn why(v: &Verdict) -> String {
    match v {
        Verdict::Chosen => "matches".into(),
        Verdict::InUse(m) => format!("holds mounted {}: never chosen", m.join(", ")),
        Verdict::NotATarget => "not a disk to install on: never chosen".into(),
        Verdict::Removable => "removable: never chosen".into(),
        Verdict::ReadOnly => "read-only: never chosen".into(),
        Verdict::NoMatch(r) => r.clone(),
    }
}

/// The summary's lines for disks chosen by selectors: every disk and what
/// the host's selectors make of it.
pub fn disk_lines(
    sels: &[DiskSelector],
    chosen: &[&DiskFacts],
    disks: &[DiskFacts],
    links: &[(String, String)],
    from: From,
) -> String {
    let mut s = String::new();
    // a disk that no selector chose: its verdict under the first selector,
    // or, for several selectors, "matches none"
    let v = verdicts(&sels[0], disks, links, from);
    for (i, (d, v)) in disks.iter().zip(&v).enumerate() {
        let head = if i == 0 { "disks:   " } else { "         " };
        let ids: Vec<String> = [("serial", &d.serial), ("wwn", &d.wwn), ("model", &d.model)]
            .iter()
            .filter_map(|(k, x)| x.as_ref().map(|x| format!(" {k}={x}")))
            .collect();
        let verdict = match chosen.iter().position(|c| c.path == d.path) {
            Some(_) if sels.len() == 1 => format!("chosen by the host's selector ({})", sels[0].describe()),
            Some(k) => format!("chosen by the host's disk {} of {} ({})", k + 1, sels.len(), sels[k].describe()),
            None => match v {
                Verdict::Chosen | Verdict::NoMatch(_) if sels.len() > 1 => {
                    "matches none of the host's disk selectors".into()
                }
                other => why(other),
            },
        };
        s.push_str(&format!("{head} {} {}{}: {verdict}\n", d.path, super::remote::gib(d.size), ids.concat()));
    }
    s
}

#[cfg(test)]
pub(crate) mod tests;
