//! A reinstall from a rescue system: the target runs from RAM or the
//! network (a provider's rescue system, a live system, an initramfs; see
//! [`super::rootfs`]), so there is no old system to fall back to, and no
//! disk holds the root filesystem to say which one to replace. It is
//! refused unless the operator passes `--rescue-ok`; then:
//!
//! - the host's own inventory disk selector decides, checked here on the
//!   discovered disks before anything changes, by the installer's rule
//!   ([`metalboot_spec::DiskSelector::mismatch`]): it must match exactly
//!   one disk that is not removable, read-only or in use, and no disk with
//!   a mounted filesystem (the rescue medium, or a disk someone mounted)
//!   at all — the installer, running from RAM after kexec, would no longer
//!   see that disk in use;
//! - only kexec starts the installer: a one-shot GRUB entry needs the
//!   system on disk to be what boots next, and a rescue system is not;
//! - the installer still reboots when it fails before its first write
//!   (`metalboot.fallback=reboot`), but that reboot lands wherever the
//!   provider boots the machine next (its disk, or the rescue system if it
//!   is activated again), not in the system this command came from: the
//!   output says so, and the follow does not wait for it.

use super::discover::DiskFacts;
use super::remote::gib;
use super::rootfs::RootFs;
use super::start::BootVia;
use anyhow::{bail, Result};
use metalboot_spec::{DiskIdentity, DiskSelector};

/// The flag that allows it.
pub const FLAG: &str = "--rescue-ok";

/// What a failure leaves behind on a rescue system, for the summary and the
/// follow's messages.
pub const NO_WAY_BACK: &str = "a rescue system does not come back: a failed install leaves the host in the installer \
                               or, after its reboot, in whatever the provider boots next (its disk, or the rescue \
                               system if it is activated again)";

/// Refuses a target that runs from RAM or the network unless the operator
/// said `--rescue-ok`; `Ok(true)`: go on as a rescue reinstall.
pub fn allowed(target: &str, root: &RootFs, rescue_ok: bool) -> Result<bool> {
    if !root.off_disk() {
        return Ok(false);
    }
    if !rescue_ok {
        bail!(
            "{target} {}: a rescue system; there is no old system to come back to if the install fails. \
             Pass {FLAG} to reinstall anyway (the host's inventory disk selector then chooses the disk); \
             nothing was changed",
            root.runs_from()
        );
    }
    Ok(true)
}

/// How the installer may start on a rescue system: kexec only.
pub fn boot_via(via: BootVia) -> Result<BootVia> {
    match via {
        BootVia::Grub => bail!(
            "--boot-via grub is impossible on a rescue system: its GRUB is not what boots next (the provider \
             boots the rescue system from RAM or the network), so a one-shot entry would never be read; only \
             kexec can start the installer here; nothing was changed"
        ),
        BootVia::Auto | BootVia::Kexec => Ok(BootVia::Kexec),
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

/// Each disk's verdict under `sel`, in the order given.
pub fn verdicts(sel: &DiskSelector, disks: &[DiskFacts], links: &[(String, String)]) -> Vec<Verdict> {
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
            } else if !d.mounts.is_empty() {
                Verdict::InUse(d.mounts.clone())
            } else {
                sel.mismatch(&identity(d)).map_or(Verdict::Chosen, Verdict::NoMatch)
            }
        })
        .collect()
}

/// The disk the host's selector picks on a rescue system, or why none may
/// be wiped; every refusal names each disk and why it was passed over.
pub fn choose<'a>(sel: &DiskSelector, disks: &'a [DiskFacts], links: &[(String, String)]) -> Result<&'a DiskFacts> {
    let v = verdicts(sel, disks, links);
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
        bail!(
            "the host's disk selector ({rule}) matches {}, which holds mounted filesystems (the rescue medium, or \
             a disk someone mounted): after kexec the installer would no longer see it in use and could wipe it. \
             Narrow the selector (serial, WWN, path or size) or unmount it; nothing was changed",
            in_use.join(" and ")
        );
    }
    let chosen: Vec<&DiskFacts> =
        disks.iter().zip(&v).filter(|(_, v)| **v == Verdict::Chosen).map(|(d, _)| d).collect();
    match chosen.as_slice() {
        [one] => {
            if !one.partitions.is_empty() && !sel.wipe {
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
            "no disk of the rescue system matches the host's disk selector ({rule}); disks seen: {}; nothing was \
             changed",
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

/// The one disk that is not removable, read-only or in use, for an
/// inventory entry printed from a rescue system (which pins it further).
pub fn only_free_disk(disks: &[DiskFacts]) -> Result<&DiskFacts> {
    let v = verdicts(&DiskSelector::default(), disks, &[]);
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

fn why(v: &Verdict) -> String {
    match v {
        Verdict::Chosen => "matches".into(),
        Verdict::InUse(m) => format!("holds mounted {}: never chosen", m.join(", ")),
        Verdict::NotATarget => "not a disk to install on: never chosen".into(),
        Verdict::Removable => "removable: never chosen".into(),
        Verdict::ReadOnly => "read-only: never chosen".into(),
        Verdict::NoMatch(r) => r.clone(),
    }
}

/// The summary's lines for a rescue reinstall: what the target runs from,
/// every disk and the selector's verdict on it, and what a failure leaves.
pub fn summary_lines(root: &RootFs, sel: &DiskSelector, disks: &[DiskFacts], links: &[(String, String)]) -> String {
    let mut s = format!("rescue:   the target {}; {FLAG} given\n", root.runs_from());
    let v = verdicts(sel, disks, links);
    for (i, (d, v)) in disks.iter().zip(&v).enumerate() {
        let head = if i == 0 { "disks:   " } else { "         " };
        let ids: Vec<String> = [("serial", &d.serial), ("wwn", &d.wwn), ("model", &d.model)]
            .iter()
            .filter_map(|(k, x)| x.as_ref().map(|x| format!(" {k}={x}")))
            .collect();
        let verdict = match v {
            Verdict::Chosen => format!("chosen by the host's selector ({})", sel.describe()),
            other => why(other),
        };
        s.push_str(&format!("{head} {} {}{}: {verdict}\n", d.path, gib(d.size), ids.concat()));
    }
    s.push_str(&format!("if it fails: {NO_WAY_BACK}\n"));
    s
}

#[cfg(test)]
mod tests;
