//! Booting a host on several disks (BTRFS raid1) with one of them missing.
//!
//! The kernel mounts a raid1 BTRFS with a member missing only with the
//! `degraded` mount option, and systemd's `64-btrfs.rules` keeps each
//! device `SYSTEMD_READY=0` until `btrfs ready` says every member is there,
//! so the fstab mounts of the other subvolumes time out even when `/` came
//! up (FIELD.md, "Two disks"). A permanent `degraded` risks split brain
//! when the disk returns, so the normal boot never has it. Three pieces go
//! into the installed system:
//!
//! - an initramfs-tools `local-premount` script: when the root is BTRFS and
//!   `btrfs device ready` still fails after [`WAIT_SECS`] of `btrfs device
//!   scan`, it adds `degraded` to `ROOTFLAGS` (through `/conf/param.conf`,
//!   which the initramfs sources after each script) and leaves
//!   `/run/metalboot/btrfs-degraded`: the host comes back on its own, without
//!   a console. `metalboot.degraded=1` on the kernel command line skips the
//!   wait, `metalboot.degraded=0` turns the fallback off;
//! - a udev rule that marks the root filesystem's devices ready when that
//!   file exists or `metalboot.degraded=1` is on the command line, so the
//!   remaining subvolume mounts proceed;
//! - a GRUB menu entry "(degraded: a disk is missing)" with
//!   `rootflags=subvol=@,degraded metalboot.degraded=1`, for an operator at a
//!   console; an `/etc/grub.d` script keeps it in `update-grub`'s output
//!   after kernel upgrades, and `grubcfg` renders the same entry.
//!
//! GRUB's `fallback` would not help: it applies when the kernel fails to
//! load, not when the root fails to mount. GRUB's own BTRFS reader tries
//! each raid1 copy, so it reads `/boot` with a disk missing.

/// How long the initramfs waits for every member of the root filesystem
/// before it mounts it degraded.
pub const WAIT_SECS: u32 = 30;

/// The kernel command-line flag of a degraded boot.
pub const CMDLINE_FLAG: &str = "metalboot.degraded=1";

/// Left by the initramfs after it mounted the root degraded (on the `/run`
/// the installed system keeps).
pub const FLAG_FILE: &str = "/run/metalboot/btrfs-degraded";

/// Where the initramfs script is installed in the new system.
pub const PREMOUNT_PATH: &str = "etc/initramfs-tools/scripts/local-premount/metalboot-btrfs-degraded";

/// Where the udev rule is installed in the new system.
pub const UDEV_RULE_PATH: &str = "etc/udev/rules.d/65-metalboot-btrfs-degraded.rules";

/// The `/etc/grub.d` script's name: after `10_linux`, so the entry is the
/// third in the menu (after the default and the advanced submenu) as in
/// [`crate::grubcfg::render`]'s (after the default and recovery).
pub const GRUB_SCRIPT_NAME: &str = "11_metalboot_degraded";

/// The menu entry's title.
pub const MENU_TITLE: &str = "Debian GNU/Linux (degraded: a disk is missing)";

/// The initramfs-tools `local-premount` script. The root filesystem images
/// carry it already (their initramfs is built with it), so an install from
/// one of them needs no initramfs rebuild; see [`crate::configure`].
pub fn premount_script() -> &'static str {
    include_str!("../../initramfs/rootfs/metalboot-btrfs-degraded")
}

/// The udev rule for the root filesystem with UUID `root_uuid`.
pub fn udev_rule(root_uuid: &str) -> String {
    format!(
        r#"# written by metalboot-installer: when the root filesystem (btrfs raid1) was
# mounted degraded ({CMDLINE_FLAG} on the kernel command line, or the
# initramfs gave up waiting for a missing disk and left {FLAG_FILE}), its
# remaining devices count as ready, so the other subvolumes are mounted;
# 64-btrfs.rules would hold them until every device appears.
SUBSYSTEM!="block", GOTO="metalboot_btrfs_degraded_end"
ACTION=="remove", GOTO="metalboot_btrfs_degraded_end"
ENV{{ID_FS_TYPE}}!="btrfs", GOTO="metalboot_btrfs_degraded_end"
ENV{{ID_FS_UUID}}!="{root_uuid}", GOTO="metalboot_btrfs_degraded_end"
IMPORT{{cmdline}}="metalboot.degraded"
ENV{{metalboot.degraded}}=="1", ENV{{SYSTEMD_READY}}="1"
TEST=="{FLAG_FILE}", ENV{{SYSTEMD_READY}}="1"
LABEL="metalboot_btrfs_degraded_end"
"#
    )
}

/// The `/etc/grub.d` script: one entry for the newest kernel, like
/// `10_linux`'s first but with the root mounted degraded.
pub fn grub_script() -> String {
    format!(
        r#"#!/bin/sh
# written by metalboot-installer: a menu entry that boots the newest kernel with
# the root filesystem (btrfs raid1) mounted degraded, for a host with a disk
# missing; the first entry stays the default.
set -e
prefix="/usr"
exec_prefix="/usr"
datarootdir="/usr/share"
. "$pkgdatadir/grub-mkconfig_lib"
[ "x$GRUB_FS" = xbtrfs ] || exit 0
rootsubvol="$(make_system_path_relative_to_its_root /)"
rootsubvol="${{rootsubvol#/}}"
boot="$(make_system_path_relative_to_its_root /boot)"
list=
for f in /boot/vmlinuz-*; do
	if grub_file_is_not_garbage "$f"; then list="$list $f"; fi
done
[ -n "$list" ] || exit 0
linux="$(version_find_latest $list)"
version="${{linux#/boot/vmlinuz-}}"
[ -f "/boot/initrd.img-$version" ] || exit 0
echo "menuentry '{MENU_TITLE}' --class debian --class gnu-linux --class gnu --class os \$menuentry_id_option 'metalboot-degraded-$GRUB_DEVICE_UUID' {{"
printf '\tload_video\n\tinsmod gzio\n'
prepare_grub_to_access_device $GRUB_DEVICE_BOOT | sed -e 's/^/\t/'
printf '\techo\t%s\n' "'Loading Linux $version ...'"
printf '\tlinux\t%s\n' "$boot/vmlinuz-$version root=UUID=$GRUB_DEVICE_UUID ro rootflags=subvol=$rootsubvol,degraded $GRUB_CMDLINE_LINUX $GRUB_CMDLINE_LINUX_DEFAULT {CMDLINE_FLAG}"
printf '\techo\t%s\n' "'Loading initial ramdisk ...'"
printf '\tinitrd\t%s\n' "$boot/initrd.img-$version"
echo "}}"
"#
    )
}

/// debconf selections that keep GRUB on every disk when Debian's `grub-pc`
/// package is upgraded (its postinst runs `grub-install` on each of
/// `grub-pc/install_devices`). The images carry `grub-efi-amd64-bin`, not
/// `grub-efi-amd64`, so no package rewrites the ESPs: they stay as the
/// installer made them, identical.
pub fn debconf_selections(disks: &[String]) -> String {
    format!("grub-pc grub-pc/install_devices multiselect {}\n", disks.join(", "))
}

/// The `/dev/disk/by-id` name of `dev` in `links` (`(link, target)` pairs),
/// else `dev`: a name that survives the kernel renumbering disks. Names made
/// from the model and serial come first, then WWNs; partitions are skipped.
pub fn stable_name(dev: &str, links: &[(String, String)]) -> String {
    let mut names: Vec<&str> = links
        .iter()
        .filter(|(l, t)| t == dev && l.starts_with("/dev/disk/by-id/") && !l.contains("-part"))
        .map(|(l, _)| l.as_str())
        .collect();
    names.sort_by_key(|l| {
        let n = l.trim_start_matches("/dev/disk/by-id/");
        (n.starts_with("wwn-") || n.starts_with("nvme-eui."), n.to_string())
    });
    names.first().map_or_else(|| dev.to_string(), |s| s.to_string())
}

/// `(link, target)` for every link in `/dev/disk/by-id` (empty without udev).
pub fn by_id_links() -> Vec<(String, String)> {
    let Ok(dir) = std::fs::read_dir("/dev/disk/by-id") else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| {
            let t = std::fs::canonicalize(e.path()).ok()?;
            Some((e.path().to_string_lossy().into_owned(), t.to_string_lossy().into_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_premount_script_waits_then_adds_degraded_to_rootflags() {
        let s = premount_script();
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains("PREREQ=\"btrfs\""));
        // local-premount runs before the initramfs resolves ROOT=UUID=…
        assert!(s.contains("while ! dev=$(resolve_device \"$ROOT\"); do"), "{s}");
        assert!(s.contains("[ \"$(get_fstype \"$dev\")\" = btrfs ] || exit 0"), "{s}");
        assert!(s.contains("while ! /bin/btrfs device ready \"$dev\" >/dev/null 2>&1; do"));
        assert!(s.contains("if [ \"$i\" -ge 30 ]; then"));
        assert!(s.contains("mkdir -p \"/run/metalboot\"\n: >\"/run/metalboot/btrfs-degraded\"\n"), "{s}");
        assert!(s.contains("*) echo \"ROOTFLAGS='-o ${flags:+$flags,}degraded'\" >>/conf/param.conf ;;"), "{s}");
        assert!(!s.contains("{{") && !s.contains("FLAG_FILE"), "{s}");
    }

    #[test]
    fn the_premount_script_is_valid_shell() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s");
        std::fs::write(&p, premount_script()).unwrap();
        let st = std::process::Command::new("sh").arg("-n").arg(&p).status().unwrap();
        assert!(st.success());
        std::fs::write(&p, grub_script()).unwrap();
        assert!(std::process::Command::new("sh").arg("-n").arg(&p).status().unwrap().success());
    }

    #[test]
    fn the_udev_rule_marks_only_the_root_filesystem_ready() {
        let r = udev_rule("R-UUID");
        let rules: Vec<&str> = r.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            rules,
            [
                "SUBSYSTEM!=\"block\", GOTO=\"metalboot_btrfs_degraded_end\"",
                "ACTION==\"remove\", GOTO=\"metalboot_btrfs_degraded_end\"",
                "ENV{ID_FS_TYPE}!=\"btrfs\", GOTO=\"metalboot_btrfs_degraded_end\"",
                "ENV{ID_FS_UUID}!=\"R-UUID\", GOTO=\"metalboot_btrfs_degraded_end\"",
                "IMPORT{cmdline}=\"metalboot.degraded\"",
                "ENV{metalboot.degraded}==\"1\", ENV{SYSTEMD_READY}=\"1\"",
                "TEST==\"/run/metalboot/btrfs-degraded\", ENV{SYSTEMD_READY}=\"1\"",
                "LABEL=\"metalboot_btrfs_degraded_end\"",
            ]
        );
    }

    #[test]
    fn the_grub_script_boots_the_newest_kernel_degraded() {
        let s = grub_script();
        assert!(s.contains(
            "echo \"menuentry 'Debian GNU/Linux (degraded: a disk is missing)' --class debian --class gnu-linux \
             --class gnu --class os \\$menuentry_id_option 'metalboot-degraded-$GRUB_DEVICE_UUID' {\""
        ));
        assert!(s.contains(
            "root=UUID=$GRUB_DEVICE_UUID ro rootflags=subvol=$rootsubvol,degraded $GRUB_CMDLINE_LINUX \
             $GRUB_CMDLINE_LINUX_DEFAULT metalboot.degraded=1\""
        ));
    }

    #[test]
    fn grub_pc_installs_to_every_disk_by_a_stable_name() {
        let links = vec![
            ("/dev/disk/by-id/wwn-0x5000c500a1b2c3d4".to_string(), "/dev/sda".to_string()),
            ("/dev/disk/by-id/ata-WDC_WD20EFRX_WD-1".to_string(), "/dev/sda".to_string()),
            ("/dev/disk/by-id/ata-WDC_WD20EFRX_WD-1-part1".to_string(), "/dev/sda1".to_string()),
            ("/dev/disk/by-id/nvme-eui.0025".to_string(), "/dev/nvme0n1".to_string()),
            ("/dev/disk/by-id/nvme-Samsung_SSD_S5GX".to_string(), "/dev/nvme0n1".to_string()),
        ];
        let names: Vec<String> =
            ["/dev/sda", "/dev/nvme0n1", "/dev/vdb"].iter().map(|d| stable_name(d, &links)).collect();
        assert_eq!(
            names,
            ["/dev/disk/by-id/ata-WDC_WD20EFRX_WD-1", "/dev/disk/by-id/nvme-Samsung_SSD_S5GX", "/dev/vdb"]
        );
        assert_eq!(
            debconf_selections(&names),
            "grub-pc grub-pc/install_devices multiselect /dev/disk/by-id/ata-WDC_WD20EFRX_WD-1, \
             /dev/disk/by-id/nvme-Samsung_SSD_S5GX, /dev/vdb\n"
        );
    }
}
