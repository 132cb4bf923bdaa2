//! A reinstall that keeps subvolumes (`plan.keep`, `metalboot reinstall
//! --keep @home`): the disks are not repartitioned and the filesystem
//! metalboot made stays, the kept subvolumes untouched. The root and every
//! other subvolume of the layout are moved, read-only, under `@snapshots`
//! (`@snapshots/@.replaced.<UTC time>`) and made anew, empty; the ESPs are
//! made anew. Everything is checked before the first write: the disks hold
//! metalboot's layout, and every subvolume named exists.

use crate::disk::{self, OffsetLoops};
use crate::diskplan::DiskPlan;
use crate::fs;
use crate::options::Options;
use anyhow::{bail, Context, Result};
use btrfsutil::subvolume::Subvolume;
use metalboot_spec::InstallPlan;
use nix::mount::{umount2, MntFlags};
use std::path::Path;

/// The filesystem found: its devices, the ESPs, and (on loop devices) the
/// mappings that hold them.
pub struct Existing {
    /// The BTRFS root partitions, one per disk.
    pub roots: Vec<String>,
    /// The ESPs, one per disk.
    pub esps: Vec<String>,
    /// Their UUIDs, given to the new ones (the previous system's fstab
    /// names the ESP by it).
    pub esp_uuids: Vec<Option<String>>,
    /// The previous root's boot entry, read from its grub.cfg (for a trial
    /// boot, [`crate::trial`]), or why there is none.
    pub previous_boot: Result<crate::trial::BootEntry, String>,
    /// Offset loop devices (tests on loop devices only).
    pub loops: Vec<OffsetLoops>,
}

/// Before any write: each disk's ESP is FAT and its root BTRFS, where
/// metalboot's layout puts them, and the filesystem holds the root, the
/// snapshots and every subvolume `keep` names.
pub fn find(plan: &InstallPlan, disks: &[DiskPlan], opts: &Options) -> Result<Existing> {
    let mut ex = Existing {
        roots: Vec::new(),
        esps: Vec::new(),
        esp_uuids: Vec::new(),
        previous_boot: Err(String::new()),
        loops: Vec::new(),
    };
    for d in disks {
        let devs = if opts.loop_only {
            let l = OffsetLoops::map(&d.disk.path, &d.partitions)?;
            let devs = l.devices.clone();
            ex.loops.push(l);
            devs
        } else {
            disk::wait_for_partitions(&d.disk.name, &d.partitions)
                .with_context(|| format!("{} does not hold metalboot's partitions", d.disk.path))?
        };
        let (esp, root) = (fs::fs_type(&devs[1])?, fs::fs_type(&devs[2])?);
        if esp != "vfat" || root != "btrfs" {
            bail!(
                "{} does not hold a filesystem metalboot made: {} is {}, {} is {} (vfat and btrfs expected); \
                 nothing to keep, reinstall without --keep",
                d.disk.path,
                devs[1],
                if esp.is_empty() { "empty" } else { &esp },
                devs[2],
                if root.is_empty() { "empty" } else { &root }
            );
        }
        ex.esp_uuids.push(fs::fs_uuid(&devs[1]).ok());
        ex.esps.push(devs[1].clone());
        ex.roots.push(devs[2].clone());
    }
    let top = &opts.scratch;
    let opts_ro = fs::btrfs_mount_options(&ex.roots, "subvolid=5,ro");
    fs::mount_fs(&ex.roots[0], top, "btrfs", &opts_ro)?;
    let missing: Vec<String> = metalboot_spec::keep::dispositions(&plan.keep, &plan.layout, "")
        .into_iter()
        .filter(|(_, how)| how.is_none())
        .map(|(name, _)| name)
        .filter(|name| Subvolume::is_subvolume(top.join(name).as_path()).is_err())
        .collect();
    let present = list_top(top);
    ex.previous_boot = crate::trial::previous_boot(plan, top);
    umount2(top.as_path(), MntFlags::empty()).with_context(|| format!("unmounting {}", top.display()))?;
    if !missing.is_empty() {
        bail!(
            "the filesystem on {} has no subvolume {} (it has: {}); nothing was changed",
            ex.roots[0],
            missing.join(", "),
            present.join(", ")
        );
    }
    Ok(ex)
}

fn list_top(top: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(top)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// What [`replace`] did.
pub struct Replaced {
    /// In words, one line per subvolume.
    pub done: Vec<String>,
    /// Where the previous root went (`@snapshots/@.replaced.<time>`), if
    /// there was one.
    pub previous_root: Option<String>,
    /// Every subvolume moved: its name and where it went.
    pub moved: Vec<(String, String)>,
}

/// After the boundary: each replaced subvolume moved, read-only, under
/// `@snapshots` and made anew (the root the default again), then the ESPs
/// made anew, with their old UUIDs. One that is not there (new in the
/// layout, or moved by an earlier try that failed) is only made, so a
/// failed try can be run again. With `trial` the moved subvolumes stay
/// writable: the previous system boots on them until the new one phones
/// home ([`crate::trial`]).
pub fn replace(plan: &InstallPlan, ex: &Existing, disks: &[DiskPlan], scratch: &Path, trial: bool) -> Result<Replaced> {
    let stamp = utc_stamp(std::time::SystemTime::now());
    let replaced = replace_subvolumes(plan, ex, scratch, &stamp, trial)?;
    for ((esp, d), uuid) in ex.esps.iter().zip(disks).zip(&ex.esp_uuids) {
        fs::make_esp(esp, d.disk.logical_block_size, uuid.as_deref())?;
    }
    Ok(replaced)
}

fn replace_subvolumes(plan: &InstallPlan, ex: &Existing, scratch: &Path, stamp: &str, trial: bool) -> Result<Replaced> {
    fs::mount_fs(&ex.roots[0], scratch, "btrfs", &fs::btrfs_mount_options(&ex.roots, "subvolid=5"))?;
    let result = (|| -> Result<Replaced> {
        let mut done = Vec::new();
        let mut previous_root = None;
        let mut moved_all = Vec::new();
        for (name, kept_as) in metalboot_spec::keep::dispositions(&plan.keep, &plan.layout, stamp) {
            let Some(kept_as) = kept_as else {
                done.push(format!("{name} kept"));
                continue;
            };
            // moved, not copied: the default subvolume cannot be deleted,
            // and anything nested in it moves along
            let path = scratch.join(&name);
            let moved = scratch.join(&kept_as);
            let there = std::fs::symlink_metadata(&path).is_ok();
            let is_root = plan.layout.root_subvolume().is_some_and(|s| s.name == name);
            if there {
                std::fs::rename(&path, &moved).with_context(|| format!("moving {name} to {kept_as}"))?;
                if is_root {
                    previous_root = Some(kept_as.clone());
                }
                moved_all.push((name.clone(), kept_as.clone()));
                if !trial {
                    Subvolume::get(moved.as_path())
                        .and_then(|s| s.set_ro(true))
                        .map_err(|e| anyhow::anyhow!("{e:?}"))
                        .with_context(|| format!("making {kept_as} read-only"))?;
                }
            }
            let new = Subvolume::create(path.as_path(), None)
                .map_err(|e| anyhow::anyhow!("{e:?}"))
                .with_context(|| format!("creating {name}"))?;
            if is_root {
                let cwd = std::env::current_dir()?;
                std::env::set_current_dir(scratch)?;
                let r = new.set_default().map_err(|e| anyhow::anyhow!("{e:?}"));
                std::env::set_current_dir(cwd)?;
                r.with_context(|| format!("making the new {name} the default subvolume"))?;
            }
            done.push(if there && trial {
                format!(
                    "{name} replaced (the old one as {kept_as}, in use again if the new system does not phone home)"
                )
            } else if there {
                format!("{name} replaced (the old one read-only as {kept_as})")
            } else {
                format!("{name} made (there was none)")
            });
        }
        Ok(Replaced { done, previous_root, moved: moved_all })
    })();
    umount2(scratch, MntFlags::empty()).with_context(|| format!("unmounting {}", scratch.display()))?;
    result
}

/// For the dry run: each subvolume of the layout, kept or replaced.
pub fn describe(plan: &InstallPlan) -> Vec<String> {
    if plan.keep.is_empty() {
        return Vec::new();
    }
    let mut out = vec!["not repartitioned: the partitions are those on the disk, the ESP is made anew".to_string()];
    for (name, how) in metalboot_spec::keep::dispositions(&plan.keep, &plan.layout, "<time>") {
        let at = plan.layout.subvolumes.iter().find(|s| s.name == name).map_or("", |s| s.mountpoint.as_str());
        out.push(match how {
            None => format!("{name} ({at}): kept, untouched"),
            Some(kept_as) if at == "/" && plan.rollback_after.is_some() => {
                format!("{name} ({at}): replaced, empty; the old one as {kept_as}, read-only once the new system phoned home")
            }
            Some(kept_as) => format!("{name} ({at}): replaced, empty; the old one read-only as {kept_as}"),
        });
    }
    if let Some(secs) = plan.rollback_after {
        out.push(format!(
            "the new system boots once on trial: without a phone-home within {secs} s of that boot the host boots the old root again"
        ));
    }
    out
}

/// `YYYYMMDDTHHMMSSZ` in UTC.
pub fn utc_stamp(t: std::time::SystemTime) -> String {
    let f = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::OffsetDateTime::from(t).format(&f).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn the_dry_run_names_what_is_kept_and_what_is_replaced() {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../netboot-server/tests/golden/web1.plan.json")).unwrap();
        v["keep"] = serde_json::json!(["@home"]);
        let plan: InstallPlan = serde_json::from_value(v).unwrap();
        plan.validate().unwrap();
        let d = describe(&plan);
        assert!(d.contains(&"@home (/home): kept, untouched".to_string()), "{d:?}");
        assert!(
            d.contains(&"@ (/): replaced, empty; the old one read-only as @snapshots/@.replaced.<time>".to_string())
        );
        assert!(d.contains(&"@snapshots (/.snapshots): kept, untouched".to_string()), "{d:?}");
    }

    #[test]
    fn stamps_are_utc_calendar_times() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000Z");
        assert_eq!(utc_stamp(UNIX_EPOCH + Duration::from_secs(1_800_000_000)), "20270115T080000Z");
        assert_eq!(utc_stamp(UNIX_EPOCH + Duration::from_secs(951_782_400)), "20000229T000000Z");
        assert_eq!(utc_stamp(UNIX_EPOCH + Duration::from_secs(1_798_761_599)), "20261231T235959Z");
    }
}
