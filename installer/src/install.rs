//! The install as named steps. Everything before `partition` only reads;
//! every precondition (one matching disk per selector, each its own, not in
//! use, big enough, exclusive access) is checked there, for every disk of a
//! multi-disk plan before any is written. From the first write on, any
//! failure wipes the partition table of every chosen disk so no half-written
//! disk can boot, and is reported as `failed` with the step's name.

use crate::layout::{partition_layout, PartKind, PartSpec};
use crate::probe::{self, DiskFacts};
use crate::report::Reporter;
use crate::select;
use crate::{configure, degraded, disk, entropy, fs, users};
use anyhow::{Context, Result};
use metalboot_spec::login::SSHD_DROP_IN;
use metalboot_spec::{DiskSelector, HostReport, InstallPlan, Raid, Step};
use serde::Serialize;
use std::time::Duration;

pub use crate::diskplan::DiskPlan;
pub use crate::options::Options;

/// How long the install waits for the kernel's random number generator.
const ENTROPY_LIMIT: Duration = Duration::from_secs(300);

/// What the installer will do, computed without touching anything.
#[derive(Serialize, Debug)]
pub struct DryRun {
    /// The chosen disk (the first of several), with its logical sector size.
    pub disk: DiskFacts,
    /// Partitions to create on it.
    pub partitions: Vec<PartSpec>,
    /// The other disks of a host on several disks, each with its partitions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub more_disks: Vec<DiskPlan>,
    /// The root filesystem: `btrfs on /dev/vda3`, or `btrfs raid1 across …`.
    pub root: String,
    /// Subvolumes and mount points.
    pub subvolumes: Vec<(String, String)>,
    /// BTRFS mount options.
    pub mount_options: String,
    /// Image to unpack.
    pub image: String,
    /// Files written into the new system.
    pub files: Vec<String>,
    /// Who may log in over SSH, and the admin user made besides root.
    pub logins: Vec<String>,
    /// A reinstall that keeps subvolumes: what happens to each (the
    /// partitions above are those already there, not written).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keeps: Vec<String>,
}

/// The root filesystem in words, for the dry run and the mkfs step.
fn describe_root(disks: &[DiskPlan]) -> String {
    let roots: Vec<String> = disks.iter().map(|d| d.partition_path(PartKind::Root)).collect();
    match roots.as_slice() {
        [one] => format!("btrfs on {one}"),
        many => {
            let smallest = disks
                .iter()
                .filter_map(|d| d.partitions.iter().find(|p| p.kind == PartKind::Root).map(PartSpec::bytes))
                .min()
                .unwrap_or_default();
            format!(
                "btrfs raid1 across {} (data and metadata on two disks each; {:.1} GiB usable, the smallest root \
                 partition)",
                many.join(", "),
                smallest as f64 / (1u64 << 30) as f64
            )
        }
    }
}

const FILES: &[&str] = &[
    "/etc/fstab",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/systemd/network/10-metalboot.network",
    "/etc/resolv.conf",
    "/root/.ssh/authorized_keys",
    "/etc/shadow (root password, if the plan has one)",
    SSHD_DROP_IN,
    "/etc/machine-id (emptied)",
    "/etc/ssh/ssh_host_*_key (new)",
    "/etc/metalboot/phone-home.env",
    "/etc/default/grub.d/metalboot.cfg",
    "/boot/grub/grub.cfg",
    "/boot/efi/EFI/BOOT/BOOTX64.EFI",
];

/// Every file the install writes into the new system, the admin user's by
/// name (after the SSH daemon's drop-in), and on several disks the
/// degraded boot's.
pub fn files_written(plan: &InstallPlan) -> Vec<String> {
    let mut files: Vec<String> = FILES.iter().map(|f| f.to_string()).collect();
    if plan.layout.raid == Raid::Raid1 {
        files.extend([
            format!("/{}", degraded::PREMOUNT_PATH),
            format!("/{}", degraded::UDEV_RULE_PATH),
            format!("/etc/grub.d/{}", degraded::GRUB_SCRIPT_NAME),
            "/boot/initrd.img-* (rebuilt with the degraded-boot script)".to_string(),
            "debconf: grub-pc/install_devices (every disk)".to_string(),
            "the ESP of every other disk (a copy of the first)".to_string(),
        ]);
    }
    if let Some(a) = &plan.admin {
        let at = FILES.iter().position(|f| *f == SSHD_DROP_IN).map_or(files.len(), |i| i + 1);
        files.splice(at..at, users::admin_files(a));
    }
    if plan.snapshots.is_some() {
        files.extend([
            format!("/{}", crate::snapshots::BTRBK_CONF),
            format!("/{}", crate::snapshots::TIMER_DROPIN),
            "/etc/systemd/system/timers.target.wants/btrbk.timer (enabled)".to_string(),
        ]);
        if !plan.endpoints.status.is_empty() {
            files.extend(
                [crate::snapshots::REPORT_ENV, crate::snapshots::REPORT_SCRIPT, crate::snapshots::SERVICE_DROPIN]
                    .map(|f| format!("/{f}")),
            );
        }
    }
    if plan.snapshots.as_ref().is_some_and(|s| !s.send.is_empty()) {
        files.extend([
            format!("{} (new; its public key is reported)", metalboot_spec::send::BACKUP_IDENTITY),
            metalboot_spec::send::BACKUP_KNOWN_HOSTS.to_string(),
            metalboot_spec::send::BACKUP_SSH_CONFIG.to_string(),
        ]);
    }
    files
}

/// Probes and selects every disk of the plan; no writes. Each selector
/// must match exactly one eligible disk, and no two the same one.
pub fn choose_disks(plan: &InstallPlan, opts: &Options) -> Result<Vec<DiskFacts>> {
    let disks = if opts.loop_only { probe::probe_loop_disks(&opts.sys)? } else { probe::probe_disks(&opts.sys)? };
    // a disk path given as a /dev/disk/by-* link names its kernel device
    let sels: Vec<DiskSelector> = plan
        .disk_selectors()
        .iter()
        .map(|s| {
            let mut sel = s.clone();
            if let Some(real) = sel.path.as_ref().and_then(|p| std::fs::canonicalize(p).ok()) {
                sel.path = Some(real.to_string_lossy().into_owned());
            }
            // keeping data: the disk holds metalboot's partitions, and stays so
            sel.wipe |= !plan.keep.is_empty();
            sel
        })
        .collect();
    let names: Vec<String> = disks.iter().map(|d| d.name.clone()).collect();
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let in_use = disk::disks_in_use(&mounts, &names);
    let chosen = select::select_all(&disks, &sels, &in_use)?;
    // The kernel may not have registered partitions (or the disk holds a bare
    // filesystem): look at the disk itself too.
    for (d, sel) in chosen.iter().zip(&sels) {
        if d.partitions.is_empty() && !sel.wipe {
            if let Some(sig) = disk::existing_signature(&d.path, d.logical_block_size) {
                return Err(select::SelectError::HasPartitions {
                    selector: sel.describe(),
                    path: d.path.clone(),
                    parts: sig,
                }
                .into());
            }
        }
    }
    Ok(chosen.into_iter().cloned().collect())
}

/// The dry run: disks, partitions, subvolumes, files.
pub fn dry_run(plan: &InstallPlan, opts: &Options) -> Result<DryRun> {
    dry_run_on(choose_disks(plan, opts)?, plan)
}

/// Each chosen disk's partitions (in its own logical sectors: disks of a
/// raid1 may differ in size and sector size).
pub fn plan_disks(disks: Vec<DiskFacts>, plan: &InstallPlan) -> Result<Vec<DiskPlan>> {
    disks
        .into_iter()
        .map(|disk| {
            let partitions = partition_layout(disk.size, disk.logical_block_size, &plan.layout)
                .with_context(|| format!("laying out {}", disk.path))?;
            Ok(DiskPlan { disk, partitions })
        })
        .collect()
}

/// The dry run on chosen disks: their partitions (in their logical sectors,
/// which the disks' facts show), the root filesystem, subvolumes, files.
pub fn dry_run_on(disks: Vec<DiskFacts>, plan: &InstallPlan) -> Result<DryRun> {
    let mut planned = plan_disks(disks, plan)?;
    let root = describe_root(&planned);
    if planned.is_empty() {
        anyhow::bail!("no disk chosen");
    }
    let first = planned.remove(0);
    Ok(DryRun {
        disk: first.disk,
        partitions: first.partitions,
        more_disks: planned,
        root,
        subvolumes: plan.layout.subvolumes.iter().map(|s| (s.name.clone(), s.mountpoint.clone())).collect(),
        mount_options: plan.layout.mount_options.clone(),
        image: format!("{} ({} bytes, sha256 {})", plan.image.url, plan.image.size, plan.image.sha256),
        files: files_written(plan),
        logins: users::describe_logins(plan),
        keeps: crate::keep::describe(plan),
    })
}

/// Runs the install. Returns what the server is told: the new host's SSH
/// host public keys and, with send targets, its backup key.
pub fn install(plan: &InstallPlan, opts: &Options, rep: &mut Reporter) -> Result<HostReport> {
    let mut step = Step::SelectDisk;
    rep.step(step, &format!("looking for {}", metalboot_spec::disk::describe_selectors(plan.disk_selectors())));
    let chosen = match choose_disks(plan, opts) {
        Ok(d) => d,
        Err(e) => return Err(untouched(rep, step, e)),
    };
    rep.done(step, &chosen.iter().map(probe::describe).collect::<Vec<_>>().join("; "));
    step = Step::Preflight;
    rep.step(step, &format!("checking {}", chosen.iter().map(|d| d.path.as_str()).collect::<Vec<_>>().join(" ")));
    let pre = (|| -> Result<Vec<DiskPlan>> {
        let planned = plan_disks(chosen, plan)?;
        for d in &planned {
            disk::ensure_exclusive_access(&d.disk.path)?;
        }
        Ok(planned)
    })();
    let disks = match pre {
        Ok(p) => p,
        Err(e) => return Err(untouched(rep, step, e)),
    };
    // a reinstall that keeps subvolumes: the filesystem must be there
    let existing = if plan.keep.is_empty() {
        None
    } else {
        match crate::keep::find(plan, &disks, opts) {
            Ok(ex) => Some(ex),
            Err(e) => return Err(untouched(rep, step, e)),
        }
    };
    rep.done(step, if disks.len() == 1 { "disk is free and large enough" } else { "disks are free and large enough" });
    step = Step::Entropy;
    let waited = entropy::wait_until(&mut entropy::seeded, ENTROPY_LIMIT, Duration::from_secs(1), &mut || {
        entropy::nudge_kernel();
        rep.step(step, "waiting for the kernel's random number generator to be seeded (partition GUIDs, host keys)");
    });
    match waited {
        Ok(w) if w.is_zero() => {}
        Ok(w) => rep.done(step, &format!("seeded after {:.1}s", w.as_secs_f64())),
        Err(e) => return Err(untouched(rep, step, e)),
    }
    // ---- the destructive boundary: from here on the disks are being changed ----
    let mut current = Step::Partition;
    let result = write_system(plan, opts, rep, &disks, &mut current, existing.as_ref());
    match result {
        Ok(report) => Ok(report),
        Err(e) => {
            let msg = format!("{e:#}");
            let _ = fs::unmount_all(&opts.target);
            let _ = fs::unmount_all(&opts.scratch);
            if !plan.keep.is_empty() {
                // the kept data must stay: no wipe; the old root is under @snapshots
                let keep = plan.keep.join(",");
                let note = format!(
                    "not wiped: {keep} kept, the replaced subvolumes under @snapshots; a keeping reinstall may be run again, from a rescue system: metalboot reinstall … --rescue-ok --keep {keep}"
                );
                rep.failed(current, &format!("{msg} ({note})"));
                return Err(e);
            }
            // every chosen disk: a half-written raid1 member must not boot either
            let failed: Vec<&str> = disks
                .iter()
                .filter(|d| disk::make_unbootable(&d.disk.path, d.disk.size).is_err())
                .map(|d| d.disk.path.as_str())
                .collect();
            let note = match (failed.as_slice(), disks.len()) {
                ([], 1) => "partition table wiped".to_string(),
                ([], n) => format!("partition tables of all {n} disks wiped"),
                (_, 1) => "could not wipe the partition table".to_string(),
                (f, _) => format!("could not wipe the partition table of {}", f.join(", ")),
            };
            rep.failed(current, &format!("{msg} ({note})"));
            Err(e)
        }
    }
}

/// A failure before the first write: every disk is as it was. Callers tell
/// it from a failure after with `error.is::<NothingWritten>()`.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct NothingWritten(pub anyhow::Error);

fn untouched(rep: &mut Reporter, step: Step, e: anyhow::Error) -> anyhow::Error {
    debug_assert!(step.before_first_write(), "{step}");
    rep.failed(step, &format!("{e:#}"));
    NothingWritten(e).into()
}

fn write_system(
    plan: &InstallPlan,
    opts: &Options,
    rep: &mut Reporter,
    disks: &[DiskPlan],
    current: &mut Step,
    existing: Option<&crate::keep::Existing>,
) -> Result<HostReport> {
    let mut _offset_loops = Vec::new();
    let mut previous = None;
    let (roots, esps) = match existing {
        None => crate::fresh::make_filesystem(plan, opts, rep, disks, current, &mut _offset_loops)?,
        Some(ex) => {
            *current = Step::Subvolumes;
            rep.step(
                Step::Subvolumes,
                &format!("keeping {} on {}, not repartitioned", plan.keep.join(", "), ex.roots.join(", ")),
            );
            let trial = crate::trial::possible(plan, opts, &ex.esp_uuids, &ex.previous_boot);
            let r = crate::keep::replace(plan, ex, disks, &opts.scratch, matches!(trial, Some(Ok(_))))?;
            fs::mount_target(&ex.roots, opts.bootloader.then_some(ex.esps[0].as_str()), &plan.layout, &opts.target)?;
            rep.done(Step::Subvolumes, &format!("{}{}", r.done.join("; "), crate::trial::note(&trial)));
            previous = crate::trial::Previous::of(trial, r.previous_root, r.moved);
            (ex.roots.clone(), ex.esps.clone())
        }
    };
    let root_uuid = fs::fs_uuid(&roots[0])?;
    let esp_uuid = fs::fs_uuid(&esps[0])?;

    *current = Step::Unpack;
    rep.step(Step::Unpack, &format!("{} ({:.1} MiB)", plan.image.url, plan.image.size as f64 / 1048576.0));
    let started = std::time::Instant::now();
    crate::unpack::unpack_image(plan, &opts.target, rep)?;
    rep.done(Step::Unpack, &format!("in {:.1}s", started.elapsed().as_secs_f64()));

    *current = Step::Configure;
    rep.step(Step::Configure, &plan.hostname);
    fs::bind_system(&opts.target)?;
    let rebuild_initramfs = configure::configure_system(&opts.target, plan, opts, &root_uuid, &esp_uuid)?;
    rep.done(Step::Configure, "fstab, network, keys, logins, host keys, phone-home");

    if opts.bootloader {
        *current = Step::Bootloader;
        let what = if disks.len() == 1 {
            "GRUB for BIOS and UEFI".to_string()
        } else {
            format!("GRUB for BIOS and UEFI on each of {} disks", disks.len())
        };
        rep.step(Step::Bootloader, &what);
        // GRUB's config generator finds the root by any member
        configure::by_uuid_link(&root_uuid, &roots[0])?;
        configure::by_uuid_link(&esp_uuid, &esps[0])?;
        let started = std::time::Instant::now();
        let paths: Vec<String> = disks.iter().map(|d| d.disk.path.clone()).collect();
        let boot = crate::bootloader::BootDisks {
            disks: &paths,
            other_esps: &esps[1..],
            scratch: opts.scratch.as_path(),
            rebuild_initramfs,
        };
        if previous.is_some() {
            crate::trial::write_env(&opts.target.join("boot/efi"))?;
        }
        let mut how = crate::bootloader::install_grub(&opts.target, &boot, &root_uuid, &plan.layout)?;
        if let Some(prev) = &previous {
            how = format!("{how}; {}", crate::trial::arm(&opts.target, plan, opts, prev, &root_uuid)?);
        }
        rep.done(Step::Bootloader, &format!("in {:.1}s: {how}", started.elapsed().as_secs_f64()));
    }
    let report = HostReport {
        host_keys: configure::host_keys(&opts.target)?,
        addresses: Vec::new(),
        backup_key: crate::snapshots::backup_key(&opts.target)?,
        rolled_back: None,
    };
    *current = Step::Unmount;
    fs::unmount_all(&opts.target)?;
    nix::unistd::sync();
    Ok(report)
}

#[cfg(test)]
#[path = "install_tests.rs"]
mod tests;
