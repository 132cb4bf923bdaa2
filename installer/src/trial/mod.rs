//! The trial boot of a reinstall that keeps data (`plan.rollback_after`):
//! the previous root, moved to `@snapshots/@.replaced.<time>`, stays
//! writable and bootable until the new system phones home.
//!
//! - GRUB: `/boot/grub/custom.cfg` of the new root (sourced at the end of
//!   every `grub.cfg`, kept by `update-grub`) adds an entry for the previous
//!   system and one for the new system's trial (with `panic=` so a kernel
//!   that cannot mount its root reboots). A GRUB environment block on the
//!   ESP (FAT: GRUB can write there, not on BTRFS) says `metalboot_trial=new`:
//!   GRUB sets it to `old` before it boots the trial entry once; every other
//!   boot is the previous system's.
//! - The new system: a timer rolls back (`metalboot-trial roll-back`,
//!   reboot) when it has not phoned home `rollback_after` seconds after it
//!   booted; its phone-home commits (`custom.cfg` removed, the previous root
//!   read-only), or rolls back when the server refuses the token.
//! - The previous system: a one-shot unit reports to the server that it is
//!   back (`endpoints.rolled_back`, with its own host keys and why); the
//!   commit removes it.

use crate::files::write;
use crate::options::Options;
use anyhow::{bail, Context, Result};
use metalboot_spec::InstallPlan;
use std::path::Path;

mod fstab;
mod grub;
pub use fstab::fstab_following;
pub use grub::{custom_cfg, env_block, first_entry, BootEntry};

/// The environment block's path on the ESP.
pub const ENV_ON_ESP: &str = "metalboot/grubenv";

/// The trial's script in the new system.
const SCRIPT: &str = include_str!("metalboot-trial.sh");

/// The phone-home script, also the previous system's report.
const PHONE_HOME: &str = include_str!("../../../initramfs/rootfs/metalboot-phone-home");

/// Whether this install's new system boots on trial: a keeping reinstall
/// whose plan sets the deadline and that phones home.
pub fn wanted(plan: &InstallPlan, opts: &Options) -> bool {
    !plan.keep.is_empty() && plan.rollback_after.is_some() && opts.phone_home && !plan.endpoints.rolled_back.is_empty()
}

/// The root subvolume's name in the plan's layout.
fn root_name(plan: &InstallPlan) -> &str {
    plan.layout.root_subvolume().map_or("@", |s| s.name.as_str())
}

/// Before any write, the filesystem's top mounted at `top`: the previous
/// root's boot entry, if it can boot from where the reinstall moves it.
pub fn previous_boot(plan: &InstallPlan, top: &Path) -> Result<BootEntry, String> {
    let root = root_name(plan);
    let cfg = top.join(root).join("boot/grub/grub.cfg");
    let text = std::fs::read_to_string(&cfg).map_err(|e| format!("{root} has no readable boot/grub/grub.cfg ({e})"))?;
    let entry = first_entry(&text).ok_or_else(|| format!("{root}'s grub.cfg has no entry with linux and initrd"))?;
    entry.moved(root, &format!("{}/{root}.replaced.x", metalboot_spec::snapshots::SNAPSHOT_SUBVOLUME))?;
    Ok(entry)
}

/// `None`: no trial wanted; else the previous root's entry, or why the
/// trial cannot be (the previous root would not boot, an ESP without a UUID
/// for the previous system's fstab).
pub fn possible(
    plan: &InstallPlan,
    opts: &Options,
    esp_uuids: &[Option<String>],
    previous_boot: &Result<BootEntry, String>,
) -> Option<Result<BootEntry, String>> {
    if !(wanted(plan, opts) && opts.bootloader) {
        return None;
    }
    if esp_uuids.iter().any(Option::is_none) {
        return Some(Err("an ESP has no UUID the previous system's fstab could find again".into()));
    }
    Some(previous_boot.clone())
}

/// The words for the step's report when a trial was wanted and cannot be.
pub fn note(trial: &Option<Result<BootEntry, String>>) -> String {
    match trial {
        Some(Err(why)) => format!("; no trial boot, nothing to roll back to: {why}"),
        _ => String::new(),
    }
}

/// The previous system, armed to come back.
pub struct Previous {
    /// Where its root went (`@snapshots/@.replaced.<time>`).
    pub root: String,
    /// Every subvolume moved: its name and where it went.
    pub moved: Vec<(String, String)>,
    /// Its boot entry as it was (paths under the root's old name).
    pub entry: BootEntry,
}

impl Previous {
    /// From the trial's check and what the reinstall moved: the root to
    /// `previous_root`, and every subvolume (`moved`).
    pub fn of(
        trial: Option<Result<BootEntry, String>>,
        previous_root: Option<String>,
        moved: Vec<(String, String)>,
    ) -> Option<Previous> {
        Some(Previous { root: previous_root?, moved, entry: trial?.ok()? })
    }
}

/// Writes the ESP's environment block (`metalboot_trial=new`) under
/// `esp_dir`, the mounted ESP. Before GRUB's step, which copies the ESP to
/// the other disks.
pub fn write_env(esp_dir: &Path) -> Result<()> {
    write(esp_dir, ENV_ON_ESP, &env_block(&[("metalboot_trial", "new")]), 0o644)
}

/// Arms the trial in the mounted new system at `target` (the filesystem
/// `root_uuid`), whose previous system is `prev`. Returns what was done, in
/// words.
pub fn arm(target: &Path, plan: &InstallPlan, opts: &Options, prev: &Previous, root_uuid: &str) -> Result<String> {
    let secs = plan.rollback_after.context("no rollback_after")?;
    let snapdir = metalboot_spec::snapshots::snapshot_dir(&plan.layout);
    let previous = prev.root.as_str();
    let Some(leaf) = previous.strip_prefix(&format!("{}/", metalboot_spec::snapshots::SNAPSHOT_SUBVOLUME)) else {
        bail!("the previous root {previous} is not under {}", metalboot_spec::snapshots::SNAPSHOT_SUBVOLUME);
    };
    let old = target.join(snapdir.trim_start_matches('/')).join(leaf);
    let read = |p: &Path| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
    let old_entry = prev
        .entry
        .moved(root_name(plan), previous)
        .map_err(anyhow::Error::msg)
        .context("booting the previous root from where it is now")?;
    // the previous system mounts what was moved with it, not the new system's
    let fstab = old.join("etc/fstab");
    std::fs::write(&fstab, fstab_following(&read(&fstab)?, &prev.moved))
        .with_context(|| format!("writing {}", fstab.display()))?;
    let new_entry = first_entry(&read(&target.join("boot/grub/grub.cfg"))?)
        .context("the new grub.cfg has no menu entry with linux and initrd lines")?;
    let custom = target.join("boot/grub/custom.cfg");
    if custom.exists() {
        bail!("the new system has a /boot/grub/custom.cfg of its own");
    }
    write(target, "boot/grub/custom.cfg", &custom_cfg(root_uuid, previous, &old_entry, &new_entry), 0o644)?;
    write(target, "usr/local/sbin/metalboot-trial", SCRIPT, 0o755)?;
    write(target, "usr/local/sbin/metalboot-phone-home", PHONE_HOME, 0o755)?;
    write(
        target,
        "etc/metalboot/trial.env",
        &format!(
            "METALBOOT_PREVIOUS='{previous}'\nMETALBOOT_REPLACED='{}'\nMETALBOOT_SNAPSHOT_DIR='{snapdir}'\n\
             METALBOOT_ROLLBACK_AFTER={secs}\n",
            prev.moved.iter().map(|(_, to)| to.as_str()).collect::<Vec<_>>().join(" ")
        ),
        0o644,
    )?;
    write(target, "etc/systemd/system/metalboot-trial.timer", &timer(secs), 0o644)?;
    write(target, "etc/systemd/system/metalboot-trial.service", &service(secs), 0o644)?;
    crate::files::enable(target, "timers.target", "/etc/systemd/system/metalboot-trial.timer")?;
    // the previous system: tells the server it is back, once
    let env = crate::render::phone_home_env(&plan.endpoints.rolled_back, &opts.token, opts.pins.as_ref());
    write(&old, "etc/metalboot/rolled-back.env", &env, 0o600)?;
    write(&old, "usr/local/sbin/metalboot-rolled-back", PHONE_HOME, 0o755)?;
    write(&old, "etc/systemd/system/metalboot-rolled-back.service", ROLLED_BACK_UNIT, 0o644)?;
    crate::files::enable(&old, "multi-user.target", "/etc/systemd/system/metalboot-rolled-back.service")?;
    Ok(format!(
        "trial boot armed: {previous} boots unless the new system phones home within {secs} s of its first boot"
    ))
}

fn timer(secs: u32) -> String {
    format!(
        "# written by metalboot-installer: the new system's time to phone home\n\
         [Unit]\nDescription=metalboot: the new system's time to phone home\n\
         ConditionPathExists=/etc/metalboot/trial.env\n\n\
         [Timer]\nOnBootSec={secs}s\nAccuracySec=1s\n\n[Install]\nWantedBy=timers.target\n"
    )
}

fn service(secs: u32) -> String {
    format!(
        "# written by metalboot-installer\n\
         [Unit]\nDescription=metalboot: back to the previous system (no phone-home in time)\n\
         ConditionPathExists=/etc/metalboot/trial.env\n\n\
         [Service]\nType=oneshot\n\
         ExecStart=/usr/local/sbin/metalboot-trial roll-back \"no phone-home within {secs} s of its boot\"\n"
    )
}

const ROLLED_BACK_UNIT: &str = "# written by metalboot-installer: this system came back after a reinstall
# whose new system did not phone home; tells the metalboot server, once
[Unit]
Description=metalboot: report the return of the previous system
Wants=network-online.target
After=network-online.target ssh.service
ConditionPathExists=/etc/metalboot/rolled-back.env

[Service]
Type=exec
ExecStart=/usr/local/sbin/metalboot-rolled-back /etc/metalboot/rolled-back.env
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
";

#[cfg(test)]
mod tests;
