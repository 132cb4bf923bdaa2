//! Filesystems on the new disk(s): vfat ESP, BTRFS root with its subvolumes
//! (created with libbtrfsutil), `@` as default subvolume, and the mounts of
//! the new system under the target directory. On several disks the root is
//! one BTRFS with data and metadata in raid1 over every disk's root
//! partition, mounted with a `device=` option per member (there is no udev
//! in the installer to register them with the kernel), and each disk has its
//! own ESP, a copy of the first.

use crate::cmd::{run, tool};
use anyhow::{bail, Context, Result};
use metalboot_spec::Layout;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::path::{Path, PathBuf};

/// `mkfs.fat` arguments for the ESP on `dev`: FAT32, with the disk's logical
/// sector size as the filesystem's, said rather than left to mkfs.fat's
/// guess from `dev` (Linux will not mount a FAT whose sectors are smaller
/// than the device's).
/// With `volume_id` (`XXXX-XXXX`, as blkid shows a FAT's UUID) the new
/// filesystem has that one: a keeping reinstall's previous system finds its
/// ESP where its fstab says.
pub fn esp_mkfs_args(dev: &str, sector_bytes: u64, volume_id: Option<&str>) -> Vec<String> {
    let sector = sector_bytes.to_string();
    let mut args: Vec<String> = ["-F", "32", "-S", &sector, "-n", "EFI"].map(String::from).to_vec();
    if let Some(id) =
        volume_id.map(|v| v.replace('-', "")).filter(|v| v.len() == 8 && v.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        args.extend(["-i".to_string(), id]);
    }
    args.push(dev.to_string());
    args
}

/// Makes the ESP on `dev`, a partition of a disk with logical sectors of
/// `sector_bytes`.
pub fn make_esp(dev: &str, sector_bytes: u64, volume_id: Option<&str>) -> Result<()> {
    let mkfs = tool(&["/usr/sbin/mkfs.fat", "/sbin/mkfs.fat", "/usr/sbin/mkfs.vfat"])?;
    let args = esp_mkfs_args(dev, sector_bytes, volume_id);
    run(&mkfs, &args.iter().map(String::as_str).collect::<Vec<_>>())
        .with_context(|| format!("making vfat on {dev}"))?;
    Ok(())
}

/// `mkfs.btrfs` arguments for the root on `devs`: one device as before;
/// two or more with data and metadata in raid1 (every block on two devices).
pub fn btrfs_mkfs_args(devs: &[String], label: &str) -> Vec<String> {
    let mut args: Vec<String> = ["-f", "-q", "-L", label].map(String::from).to_vec();
    if devs.len() > 1 {
        args.extend(["-d", "raid1", "-m", "raid1"].map(String::from));
    }
    args.extend(devs.iter().cloned());
    args
}

/// Makes the BTRFS root on `devs` (raid1 over two or more).
pub fn make_btrfs(devs: &[String], label: &str) -> Result<()> {
    let mkfs = tool(&["/usr/sbin/mkfs.btrfs", "/sbin/mkfs.btrfs", "/usr/bin/mkfs.btrfs", "/bin/mkfs.btrfs"])?;
    let args = btrfs_mkfs_args(devs, label);
    run(&mkfs, &args.iter().map(String::as_str).collect::<Vec<_>>())
        .with_context(|| format!("making btrfs on {}", devs.join(" ")))?;
    Ok(())
}

/// Mount options for the BTRFS on `devs`: `opts`, then a `device=` for each
/// member when there are several, so the kernel assembles the filesystem
/// without a prior `btrfs device scan`.
pub fn btrfs_mount_options(devs: &[String], opts: &str) -> String {
    let mut v: Vec<String> = opts.split(',').filter(|o| !o.is_empty()).map(String::from).collect();
    if devs.len() > 1 {
        v.extend(devs.iter().map(|d| format!("device={d}")));
    }
    v.join(",")
}

/// The filesystem UUID of `dev`.
pub fn fs_uuid(dev: &str) -> Result<String> {
    let blkid = tool(&["/usr/sbin/blkid", "/sbin/blkid"])?;
    let out =
        run(&blkid, &["-p", "-s", "UUID", "-o", "value", dev]).with_context(|| format!("reading the UUID of {dev}"))?;
    let u = out.trim().to_string();
    if u.is_empty() {
        bail!("{dev} has no filesystem UUID");
    }
    Ok(u)
}

/// The filesystem type on `dev` as blkid probes it; empty for none.
pub fn fs_type(dev: &str) -> Result<String> {
    let blkid = tool(&["/usr/sbin/blkid", "/sbin/blkid"])?;
    // blkid exits 2 when it finds nothing: that is an answer, not a failure
    let out = std::process::Command::new(blkid)
        .args(["-p", "-s", "TYPE", "-o", "value", dev])
        .output()
        .with_context(|| format!("probing {dev}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Splits mount(8)-style options into VFS flags and filesystem data
/// (`noatime` is a flag, `compress=zstd:1` is btrfs data).
pub fn split_mount_options(opts: &str) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "nodiratime" => flags |= MsFlags::MS_NODIRATIME,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "strictatime" => flags |= MsFlags::MS_STRICTATIME,
            "lazytime" => flags |= MsFlags::MS_LAZYTIME,
            "ro" => flags |= MsFlags::MS_RDONLY,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "sync" => flags |= MsFlags::MS_SYNCHRONOUS,
            "rw" | "defaults" | "atime" | "suid" | "dev" | "exec" | "async" => {}
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

/// Mounts `src` (of `fstype`) on `dst` with `opts`, creating `dst`.
pub fn mount_fs(src: &str, dst: &Path, fstype: &str, opts: &str) -> Result<()> {
    std::fs::create_dir_all(dst).with_context(|| format!("creating {}", dst.display()))?;
    let (flags, data) = split_mount_options(opts);
    mount(Some(src), dst, Some(fstype), flags, Some(data.as_str()))
        .with_context(|| format!("mounting {src} ({fstype}, {opts}) on {}", dst.display()))
}

/// Creates the layout's subvolumes at the top of the filesystem on `devs`
/// and makes the root one the default. Returns the default subvolume's id.
pub fn create_subvolumes(devs: &[String], layout: &Layout, scratch: &Path) -> Result<u64> {
    let dev = devs.first().context("no root device")?;
    mount_fs(dev, scratch, "btrfs", &btrfs_mount_options(devs, "subvolid=5"))?;
    let result = (|| -> Result<u64> {
        let mut root_id = 0;
        for s in &layout.subvolumes {
            let p = scratch.join(&s.name);
            let sv = btrfsutil::subvolume::Subvolume::create(p.as_path(), None)
                .map_err(|e| anyhow::anyhow!("{e:?}"))
                .with_context(|| format!("creating subvolume {}", s.name))?;
            if s.mountpoint == "/" {
                root_id = sv.id();
                // libbtrfsutil hands back a path relative to the filesystem root
                let cwd = std::env::current_dir()?;
                std::env::set_current_dir(scratch)?;
                let r = sv.set_default().map_err(|e| anyhow::anyhow!("{e:?}"));
                std::env::set_current_dir(cwd)?;
                r.with_context(|| format!("making {} the default subvolume", s.name))?;
            }
        }
        let def = btrfsutil::subvolume::Subvolume::get_default(scratch).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        if def.id() != root_id {
            bail!("default subvolume is {} after setting it to {root_id}", def.id());
        }
        Ok(root_id)
    })();
    umount2(scratch, MntFlags::empty()).with_context(|| format!("unmounting {}", scratch.display()))?;
    result
}

/// Mounts the new system at `target`: the root subvolume, the others in
/// parent-first order, and (when given) the ESP at /boot/efi.
pub fn mount_target(root_devs: &[String], esp_dev: Option<&str>, layout: &Layout, target: &Path) -> Result<()> {
    let root_dev = root_devs.first().context("no root device")?;
    let mut subs: Vec<_> = layout.subvolumes.iter().collect();
    subs.sort_by_key(|s| (s.mountpoint != "/", s.mountpoint.matches('/').count(), s.mountpoint.clone()));
    for s in subs {
        let dst =
            if s.mountpoint == "/" { target.to_path_buf() } else { target.join(s.mountpoint.trim_start_matches('/')) };
        let opts = btrfs_mount_options(root_devs, &format!("subvol=/{},{}", s.name, layout.mount_options));
        mount_fs(root_dev, &dst, "btrfs", &opts)?;
    }
    if let Some(esp) = esp_dev {
        mount_fs(esp, &target.join("boot/efi"), "vfat", "umask=0077")?;
    }
    Ok(())
}

/// Makes `esp` a copy of the ESP mounted at `from` (the first disk's, after
/// grub-install): mounted at `at`, every directory and file copied, then
/// unmounted. A second ESP must be whole: one without GRUB's files or its
/// config would leave that disk unbootable.
pub fn copy_esp(from: &Path, esp: &str, at: &Path) -> Result<()> {
    mount_fs(esp, at, "vfat", "umask=0077")?;
    let copied = copy_tree(from, at).with_context(|| format!("copying the ESP to {esp}"));
    let unmounted = umount2(at, MntFlags::empty()).with_context(|| format!("unmounting {}", at.display()));
    copied.and(unmounted)
}

/// Copies the directories and regular files under `from` into `to`.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let mut entries: Vec<_> =
        std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let ty = e.file_type()?;
        if ty.is_dir() {
            std::fs::create_dir_all(&dst).with_context(|| format!("creating {}", dst.display()))?;
            copy_tree(&src, &dst)?;
        } else if ty.is_file() {
            std::fs::copy(&src, &dst).with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
        } else {
            bail!("{} is neither a file nor a directory", src.display());
        }
    }
    let f = std::fs::File::open(to).with_context(|| format!("opening {}", to.display()))?;
    f.sync_all().with_context(|| format!("syncing {}", to.display()))?;
    Ok(())
}

/// Mount points at or under `target`, deepest first.
pub fn mounts_under(mounts: &str, target: &Path) -> Vec<PathBuf> {
    let t = target.to_string_lossy();
    let mut v: Vec<PathBuf> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|m| *m == t || m.starts_with(&format!("{t}/")))
        .map(PathBuf::from)
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    v.dedup();
    v
}

/// Unmounts everything under `target`.
pub fn unmount_all(target: &Path) -> Result<()> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").context("reading /proc/self/mounts")?;
    for m in mounts_under(&mounts, target) {
        if umount2(&m, MntFlags::empty()).is_err() {
            umount2(&m, MntFlags::MNT_DETACH).with_context(|| format!("unmounting {}", m.display()))?;
        }
    }
    Ok(())
}

/// Bind-mounts the kernel filesystems a chroot needs.
pub fn bind_system(target: &Path) -> Result<()> {
    for d in ["dev", "dev/pts", "proc", "sys", "run"] {
        let dst = target.join(d);
        std::fs::create_dir_all(&dst)?;
        mount(Some(Path::new("/").join(d).as_path()), &dst, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .with_context(|| format!("bind-mounting /{d} into the new system"))?;
    }
    let efivars = Path::new("/sys/firmware/efi/efivars");
    if efivars.is_dir() {
        let _ = mount(
            Some(efivars),
            &target.join("sys/firmware/efi/efivars"),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esp_is_fat32_in_the_disks_sector_size() {
        assert_eq!(esp_mkfs_args("/dev/vda2", 512, None), ["-F", "32", "-S", "512", "-n", "EFI", "/dev/vda2"]);
        assert_eq!(
            esp_mkfs_args("/dev/nvme0n1p2", 4096, None),
            ["-F", "32", "-S", "4096", "-n", "EFI", "/dev/nvme0n1p2"]
        );
        // a keeping reinstall makes the ESP with its old UUID; anything else is not passed on
        assert_eq!(
            esp_mkfs_args("/dev/vda2", 512, Some("1A2B-3C4D")),
            ["-F", "32", "-S", "512", "-n", "EFI", "-i", "1A2B3C4D", "/dev/vda2"]
        );
        assert_eq!(esp_mkfs_args("/dev/vda2", 512, Some("-x; rm")).len(), 7);
    }

    #[test]
    fn btrfs_over_two_disks_mirrors_data_and_metadata() {
        let one = vec!["/dev/vda3".to_string()];
        assert_eq!(btrfs_mkfs_args(&one, "root"), ["-f", "-q", "-L", "root", "/dev/vda3"]);
        let two = vec!["/dev/sda3".to_string(), "/dev/nvme0n1p3".to_string()];
        assert_eq!(
            btrfs_mkfs_args(&two, "root"),
            ["-f", "-q", "-L", "root", "-d", "raid1", "-m", "raid1", "/dev/sda3", "/dev/nvme0n1p3"]
        );
        assert_eq!(btrfs_mount_options(&one, "subvol=/@,noatime"), "subvol=/@,noatime");
        assert_eq!(btrfs_mount_options(&two, "subvolid=5"), "subvolid=5,device=/dev/sda3,device=/dev/nvme0n1p3");
    }

    #[test]
    fn copy_tree_copies_files_and_directories() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::create_dir_all(a.join("EFI/BOOT")).unwrap();
        std::fs::write(a.join("EFI/BOOT/BOOTX64.EFI"), "grub").unwrap();
        std::fs::write(a.join("EFI/BOOT/grub.cfg"), "configfile").unwrap();
        std::fs::create_dir_all(&b).unwrap();
        copy_tree(&a, &b).unwrap();
        assert_eq!(std::fs::read_to_string(b.join("EFI/BOOT/BOOTX64.EFI")).unwrap(), "grub");
        assert_eq!(std::fs::read_to_string(b.join("EFI/BOOT/grub.cfg")).unwrap(), "configfile");
    }

    #[test]
    fn mount_options_split_into_flags_and_data() {
        let (f, d) = split_mount_options("subvol=/@,compress=zstd:1,noatime");
        assert_eq!(f, MsFlags::MS_NOATIME);
        assert_eq!(d, "subvol=/@,compress=zstd:1");
    }

    #[test]
    fn mounts_under_target_deepest_first() {
        let m = "/dev/vda3 /target btrfs rw 0 0\n/dev/vda3 /target/home btrfs rw 0 0\n/dev/vda2 /target/boot/efi vfat rw 0 0\nproc /proc proc rw 0 0\n/dev/x /targetx ext4 rw 0 0\n";
        let v = mounts_under(m, Path::new("/target"));
        assert_eq!(v, [PathBuf::from("/target/boot/efi"), PathBuf::from("/target/home"), PathBuf::from("/target")]);
    }
}
