//! A reinstall from a rescue system: the target runs from RAM or the
//! network (a provider's rescue system, a live system, an initramfs; see
//! [`super::rootfs`]), so there is no old system to fall back to, and no
//! disk holds the root filesystem to say which one to replace. It is
//! refused unless the operator passes `--rescue-ok`; then:
//!
//! - the host's own inventory disk selectors decide (one, or one per disk
//!   of a raid), checked on the discovered disks before anything changes
//!   ([`super::choose`]): each must match exactly one disk that is not
//!   removable, read-only or in use, and no disk with a mounted filesystem
//!   (the rescue medium, or a disk someone mounted) at all — the
//!   installer, running from RAM after kexec, would no longer see that
//!   disk in use;
//! - only kexec starts the installer: a one-shot GRUB entry needs the
//!   system on disk to be what boots next, and a rescue system is not;
//! - the installer still reboots when it fails before its first write
//!   (`metalboot.fallback=reboot`), but that reboot lands wherever the
//!   provider boots the machine next (its disk, or the rescue system if it
//!   is activated again), not in the system this command came from: the
//!   output says so, and the follow does not wait for it.

use super::choose::{disk_lines, From};
use super::discover::DiskFacts;
use super::rootfs::RootFs;
use super::start::BootVia;
use anyhow::{bail, Result};
use metalboot_spec::DiskSelector;

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

/// The summary's lines for a rescue reinstall: what the target runs from,
/// every disk and the selectors' verdict on it, and what a failure leaves.
pub fn summary_lines(
    root: &RootFs,
    sels: &[DiskSelector],
    chosen: &[&DiskFacts],
    disks: &[DiskFacts],
    links: &[(String, String)],
) -> String {
    let mut s = format!("rescue:   the target {}; {FLAG} given\n", root.runs_from());
    s.push_str(&disk_lines(sels, chosen, disks, links, From::Rescue));
    s.push_str(&format!("if it fails: {NO_WAY_BACK}\n"));
    s
}

#[cfg(test)]
mod tests;
