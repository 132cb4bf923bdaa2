//! A fresh install's filesystem: every chosen disk partitioned (GPT in its
//! own sector size), an ESP on each, BTRFS (raid1 across several), the
//! layout's subvolumes, the new system mounted at the target.

use crate::diskplan::DiskPlan;
use crate::report::Reporter;
use crate::{disk, fs};
use anyhow::Result;
use metalboot_spec::{InstallPlan, Step};

use crate::options::Options;

/// Writes the disks; returns the root partitions and the ESPs. `current`
/// follows the step under way (a failure names it).
pub fn make_filesystem(
    plan: &InstallPlan,
    opts: &Options,
    rep: &mut Reporter,
    disks: &[DiskPlan],
    current: &mut Step,
    offset_loops: &mut Vec<disk::OffsetLoops>,
) -> Result<(Vec<String>, Vec<String>)> {
    *current = Step::Partition;
    let mut esps = Vec::new();
    let mut roots = Vec::new();
    for d in disks {
        let (f, parts) = (&d.disk, &d.partitions);
        rep.step(Step::Partition, &format!("GPT on {}: {} partitions", f.path, parts.len()));
        disk::wipe_signatures(&f.path, &f.partitions)?;
        disk::zero_ends(&f.path, f.size)?;
        disk::write_partition_table(&f.path, f.size, f.logical_block_size, parts)?;
        disk::reread_partition_table(&f.path)?;
        let devs = if opts.loop_only {
            let loops = disk::OffsetLoops::map(&f.path, parts)?;
            let devs = loops.devices.clone();
            offset_loops.push(loops);
            devs
        } else {
            disk::wait_for_partitions(&f.name, parts)?
        };
        esps.push(devs[1].clone());
        roots.push(devs[2].clone());
        rep.done(Step::Partition, &devs.join(" "));
    }

    *current = Step::Mkfs;
    let root_words = if roots.len() == 1 {
        format!("btrfs on {}", roots[0])
    } else {
        format!("btrfs raid1 across {}", roots.join(", "))
    };
    rep.step(Step::Mkfs, &format!("vfat on {}, {root_words}", esps.join(", ")));
    for (esp, d) in esps.iter().zip(disks) {
        fs::make_esp(esp, d.disk.logical_block_size, None)?;
    }
    fs::make_btrfs(&roots, "root")?;
    rep.done(Step::Mkfs, &format!("root UUID {}", fs::fs_uuid(&roots[0])?));

    *current = Step::Subvolumes;
    rep.step(Step::Subvolumes, &plan.layout.subvolumes.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(" "));
    let default_id = fs::create_subvolumes(&roots, &plan.layout, &opts.scratch)?;
    // the ESP is only needed by GRUB (and the build machine's kernel may lack vfat)
    fs::mount_target(&roots, opts.bootloader.then_some(esps[0].as_str()), &plan.layout, &opts.target)?;
    rep.done(Step::Subvolumes, &format!("default subvolume id {default_id}, mounted at {}", opts.target.display()));
    Ok((roots, esps))
}
