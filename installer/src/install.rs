//! The install as named steps. Everything before `partition` only reads;
//! every precondition (one matching disk, not in use, big enough, exclusive
//! access) is checked there. From the first write on, any failure wipes the
//! partition table so the half-written disk cannot boot, and is reported as
//! `failed` with the step's name.

use crate::cmd::tool;
use crate::fetch::{self, FetchError};
use crate::layout::{partition_layout, PartSpec};
use crate::probe::{self, DiskFacts};
use crate::report::Reporter;
use crate::select;
use crate::{configure, disk, entropy, fs, users};
use anyhow::{anyhow, Context, Result};
use metalboot_spec::login::SSHD_DROP_IN;
use metalboot_spec::{InstallPlan, Step};
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

pub use crate::options::Options;

/// How long the install waits for the kernel's random number generator.
const ENTROPY_LIMIT: Duration = Duration::from_secs(300);

/// What the installer will do, computed without touching anything.
#[derive(Serialize, Debug)]
pub struct DryRun {
    /// The chosen disk, with its logical sector size.
    pub disk: DiskFacts,
    /// Partitions to create.
    pub partitions: Vec<PartSpec>,
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
/// name (after the SSH daemon's drop-in).
pub fn files_written(plan: &InstallPlan) -> Vec<String> {
    let mut files: Vec<String> = FILES.iter().map(|f| f.to_string()).collect();
    if let Some(a) = &plan.admin {
        let at = FILES.iter().position(|f| *f == SSHD_DROP_IN).map_or(files.len(), |i| i + 1);
        files.splice(at..at, users::admin_files(a));
    }
    files
}

/// Probes and selects; no writes.
pub fn choose_disk(plan: &InstallPlan, opts: &Options) -> Result<DiskFacts> {
    let mut disks = if opts.loop_only { probe::probe_loop_disks(&opts.sys)? } else { probe::probe_disks(&opts.sys)? };
    // a disk path given as a /dev/disk/by-* link names its kernel device
    let mut sel = plan.disk.clone();
    if let Some(p) = &sel.path {
        if let Ok(real) = std::fs::canonicalize(p) {
            sel.path = Some(real.to_string_lossy().into_owned());
        }
    }
    let names: Vec<String> = disks.iter().map(|d| d.name.clone()).collect();
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let in_use = disk::disks_in_use(&mounts, &names);
    let chosen = select::select(&disks, &sel, &in_use)?.name.clone();
    let idx = disks.iter().position(|d| d.name == chosen).expect("selected from this list");
    let d = disks.swap_remove(idx);
    // The kernel may not have registered partitions (or the disk holds a bare
    // filesystem): look at the disk itself too.
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
    Ok(d)
}

/// The dry run: disk, partitions, subvolumes, files.
pub fn dry_run(plan: &InstallPlan, opts: &Options) -> Result<DryRun> {
    dry_run_on(choose_disk(plan, opts)?, plan)
}

/// The dry run on a chosen disk: its partitions (in its logical sectors,
/// which the disk's facts show), subvolumes, files.
pub fn dry_run_on(disk: DiskFacts, plan: &InstallPlan) -> Result<DryRun> {
    let partitions = partition_layout(disk.size, disk.logical_block_size, &plan.layout)?;
    Ok(DryRun {
        disk,
        partitions,
        subvolumes: plan.layout.subvolumes.iter().map(|s| (s.name.clone(), s.mountpoint.clone())).collect(),
        mount_options: plan.layout.mount_options.clone(),
        image: format!("{} ({} bytes, sha256 {})", plan.image.url, plan.image.size, plan.image.sha256),
        files: files_written(plan),
        logins: users::describe_logins(plan),
    })
}

/// Runs the install. Returns the new host's SSH host public keys.
pub fn install(plan: &InstallPlan, opts: &Options, rep: &mut Reporter) -> Result<Vec<String>> {
    let mut step = Step::SelectDisk;
    rep.step(step, &format!("looking for {}", plan.disk.describe()));
    let chosen = match choose_disk(plan, opts) {
        Ok(d) => d,
        Err(e) => return Err(untouched(rep, step, e)),
    };
    rep.done(step, &probe::describe(&chosen));
    step = Step::Preflight;
    rep.step(step, &format!("checking {}", chosen.path));
    let pre = (|| -> Result<Vec<PartSpec>> {
        let parts = partition_layout(chosen.size, chosen.logical_block_size, &plan.layout)?;
        disk::ensure_exclusive_access(&chosen.path)?;
        Ok(parts)
    })();
    let parts = match pre {
        Ok(p) => p,
        Err(e) => return Err(untouched(rep, step, e)),
    };
    rep.done(step, "disk is free and large enough");
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
    // ---- the destructive boundary: from here on the disk is being changed ----
    let mut current = Step::Partition;
    let result = write_system(plan, opts, rep, &chosen, &parts, &mut current);
    match result {
        Ok(keys) => Ok(keys),
        Err(e) => {
            let msg = format!("{e:#}");
            let _ = fs::unmount_all(&opts.target);
            let _ = fs::unmount_all(&opts.scratch);
            let wiped = disk::make_unbootable(&chosen.path, chosen.size);
            let note = match wiped {
                Ok(()) => "partition table wiped",
                Err(_) => "could not wipe the partition table",
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
    d: &DiskFacts,
    parts: &[PartSpec],
    current: &mut Step,
) -> Result<Vec<String>> {
    *current = Step::Partition;
    rep.step(Step::Partition, &format!("GPT on {}: {} partitions", d.path, parts.len()));
    disk::wipe_signatures(&d.path, &d.partitions)?;
    disk::zero_ends(&d.path, d.size)?;
    disk::write_partition_table(&d.path, d.size, d.logical_block_size, parts)?;
    disk::reread_partition_table(&d.path)?;
    let _offset_loops;
    let devs = if opts.loop_only {
        _offset_loops = disk::OffsetLoops::map(&d.path, parts)?;
        _offset_loops.devices.clone()
    } else {
        disk::wait_for_partitions(&d.name, parts)?
    };
    let (esp, root) = (&devs[1], &devs[2]);
    rep.done(Step::Partition, &devs.join(" "));

    *current = Step::Mkfs;
    rep.step(Step::Mkfs, &format!("vfat on {esp}, btrfs on {root}"));
    fs::make_esp(esp, d.logical_block_size)?;
    fs::make_btrfs(root, "root")?;
    let root_uuid = fs::fs_uuid(root)?;
    let esp_uuid = fs::fs_uuid(esp)?;
    rep.done(Step::Mkfs, &format!("root UUID {root_uuid}"));

    *current = Step::Subvolumes;
    rep.step(Step::Subvolumes, &plan.layout.subvolumes.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(" "));
    let default_id = fs::create_subvolumes(root, &plan.layout, &opts.scratch)?;
    // the ESP is only needed by GRUB (and the build machine's kernel may lack vfat)
    fs::mount_target(root, opts.bootloader.then_some(esp.as_str()), &plan.layout, &opts.target)?;
    rep.done(Step::Subvolumes, &format!("default subvolume id {default_id}, mounted at {}", opts.target.display()));

    *current = Step::Unpack;
    rep.step(Step::Unpack, &format!("{} ({:.1} MiB)", plan.image.url, plan.image.size as f64 / 1048576.0));
    let started = std::time::Instant::now();
    unpack_image(plan, &opts.target, rep)?;
    rep.done(Step::Unpack, &format!("in {:.1}s", started.elapsed().as_secs_f64()));

    *current = Step::Configure;
    rep.step(Step::Configure, &plan.hostname);
    fs::bind_system(&opts.target)?;
    configure::configure_system(&opts.target, plan, opts, &root_uuid, &esp_uuid)?;
    rep.done(Step::Configure, "fstab, network, keys, logins, host keys, phone-home");

    if opts.bootloader {
        *current = Step::Bootloader;
        rep.step(Step::Bootloader, "GRUB for BIOS and UEFI");
        configure::by_uuid_link(&root_uuid, root)?;
        configure::by_uuid_link(&esp_uuid, esp)?;
        let started = std::time::Instant::now();
        let how = crate::bootloader::install_grub(&opts.target, &d.path, &root_uuid, &plan.layout)?;
        rep.done(Step::Bootloader, &format!("in {:.1}s: {how}", started.elapsed().as_secs_f64()));
    }
    let keys = configure::host_keys(&opts.target)?;
    *current = Step::Unmount;
    fs::unmount_all(&opts.target)?;
    nix::unistd::sync();
    Ok(keys)
}

/// Streams the image into `tar` (GNU, numeric owners, xattrs, ACLs), with
/// no copy in RAM; the checksum is checked when the last byte has arrived.
fn unpack_image(plan: &InstallPlan, target: &Path, rep: &mut Reporter) -> Result<()> {
    let tar = tool(&["/usr/bin/tar", "/bin/tar"])?;
    let zstd = tool(&["/usr/bin/zstd"])?;
    let mut child = Command::new(&tar)
        .args([
            "--extract",
            "--file=-",
            "--numeric-owner",
            "--same-owner",
            "--preserve-permissions",
            "--xattrs",
            "--xattrs-include=*",
            "--acls",
        ])
        .arg(format!("--use-compress-program={zstd}"))
        .arg("--directory")
        .arg(target)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting tar")?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let size = plan.image.size.max(1);
    let http = rep.http().clone();
    let fetched =
        fetch::stream_image(&http, &plan.image.url, plan.image.size, &plan.image.sha256, &mut stdin, &mut |done| {
            rep.progress(Step::Unpack, (done * 100 / size) as u8, done)
        });
    drop(stdin);
    let out = child.wait_with_output().context("waiting for tar")?;
    match fetched {
        Err(FetchError::Checksum { got, want }) => {
            return Err(anyhow!("image checksum mismatch: got sha256 {got}, plan says {want}"))
        }
        Err(FetchError::Other(e)) => return Err(e.context("streaming the image")),
        Ok(_) => {}
    }
    if !out.status.success() {
        return Err(anyhow!("tar failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    let _ = std::io::stdout().flush();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(admin: serde_json::Value) -> InstallPlan {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../netboot-server/tests/golden/web1.plan.json")).unwrap();
        v["admin"] = admin;
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_dry_run_names_the_admin_users_files() {
        let without = files_written(&plan(serde_json::Value::Null));
        assert_eq!(without.len(), FILES.len());
        let ops = serde_json::json!({
            "name": "ops",
            "ssh_authorized_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMq"],
            "sudo": true,
            "shell": "/bin/bash"
        });
        let with = files_written(&plan(ops.clone()));
        let at = with.iter().position(|f| f == SSHD_DROP_IN).unwrap();
        assert!(with[at + 1].contains("/home/ops (user ops, by useradd)"), "{with:?}");
        assert_eq!(with[at + 2], "/home/ops/.ssh/authorized_keys");
        assert_eq!(with[at + 3], "/etc/sudoers.d/metalboot-ops");
        assert_eq!(with.len(), FILES.len() + 3);
        let mut no_sudo = ops;
        no_sudo["sudo"] = false.into();
        assert!(!files_written(&plan(no_sudo)).iter().any(|f| f.contains("sudoers")));
    }
}
