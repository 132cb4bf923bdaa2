//! `/proc/mounts` samples. Recorded on this project's build machine (Linux
//! 6.18): its own ext4 root, and in a private mount namespace after
//! `pivot_root` a tmpfs root and two overlay roots (a tmpfs standing in for
//! the live system's squashfs, so the lines are the kernel's own). The
//! others are written in the shape those systems show (Debian live-boot's
//! `/run/live` layout, an NFS root, an initramfs, a kernel before 3.x, a
//! metalboot-installed btrfs root, a container's overlay).

use super::*;

/// The build machine (a VM with its disk as `/dev/vda`), trimmed to the
/// lines that matter.
const EXT4: &str = "proc /proc proc rw,relatime 0 0
sysfs /sys sysfs rw,relatime 0 0
devtmpfs /dev devtmpfs rw,relatime,size=12334792k,nr_inodes=3083698,mode=755 0 0
tmpfs /dev/shm tmpfs rw,relatime,size=24683784k 0 0
devpts /dev/pts devpts rw,relatime,mode=600,ptmxmode=000 0 0
/dev/vda / ext4 rw,relatime,discard,resv_strict,resuid=65534,resgid=65534 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
/dev/vda /run/netns ext4 rw,relatime,discard,resv_strict,resuid=65534,resgid=65534 0 0
";

/// A metalboot-installed host: `@` is the root, other subvolumes beside it.
const BTRFS: &str = "sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
/dev/vda3 / btrfs rw,noatime,compress=zstd:1,discard=async,space_cache=v2,subvolid=256,subvol=/@ 0 0
/dev/vda3 /home btrfs rw,noatime,compress=zstd:1,discard=async,space_cache=v2,subvolid=257,subvol=/@home 0 0
/dev/vda2 /boot/efi vfat rw,relatime,fmask=0077,dmask=0077,codepage=437,iocharset=ascii,shortname=mixed,errors=remount-ro 0 0
";

/// A kernel before 3.x listed the initramfs first, then the real root over it.
const OLD_KERNEL: &str = "rootfs / rootfs rw 0 0
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
/dev/sda1 / ext4 rw,relatime,errors=remount-ro,data=ordered 0 0
";

/// Debian live (live-boot): the medium at `/run/live/medium`, the
/// squashfs from a loop device, a tmpfs for the changes, the overlay as `/`.
const DEBIAN_LIVE: &str = "overlay / overlay rw,noatime,lowerdir=/run/live/rootfs/filesystem.squashfs/,upperdir=/run/live/overlay/rw,workdir=/run/live/overlay/work 0 0
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
udev /dev devtmpfs rw,nosuid,relatime,size=1985648k,nr_inodes=496412,mode=755 0 0
tmpfs /run tmpfs rw,nosuid,nodev,noexec,relatime,size=401412k,mode=755 0 0
/dev/sdb1 /run/live/medium vfat ro,noatime,fmask=0022,dmask=0022,codepage=437,iocharset=ascii,shortname=mixed,utf8,errors=remount-ro 0 0
/dev/loop0 /run/live/rootfs/filesystem.squashfs squashfs ro,noatime,errors=continue 0 0
tmpfs /run/live/overlay tmpfs rw,noatime,size=2007060k,mode=755 0 0
tmpfs /usr/lib/live/mount tmpfs rw,nosuid,nodev,noexec,relatime,size=401412k,mode=755 0 0
";

/// Recorded: the overlay's layers moved under the new root, as live-boot
/// does (a tmpfs standing in for the squashfs).
const OVERLAY_RECORDED: &str = "tmpfs /run tmpfs rw,relatime,mode=755 0 0
tmpfs /run/live/rootfs/filesystem.squashfs tmpfs ro,relatime 0 0
tmpfs /run/live/overlay tmpfs rw,relatime,mode=755 0 0
overlay / overlay rw,relatime,lowerdir=/run/live/rootfs/filesystem.squashfs/,upperdir=/run/live/overlay/rw,workdir=/run/live/overlay/work,uuid=on 0 0
proc /proc proc rw,relatime 0 0
";

/// Recorded: an overlay whose layers stayed behind in the initramfs (its
/// paths name nothing the running system can see), as a rescue system
/// booted into RAM may show it.
const OVERLAY_HIDDEN_LAYERS: &str = "overlay / overlay rw,relatime,lowerdir=/tmp/mbrec/root/run/live/rootfs/filesystem.squashfs/,upperdir=/tmp/mbrec/root/run/live/overlay/rw,workdir=/tmp/mbrec/root/run/live/overlay/work,uuid=on 0 0
proc /proc proc rw,relatime 0 0
";

/// Recorded: a tmpfs root, as a provider's rescue system unpacked into RAM
/// shows it.
const RESCUE_TMPFS: &str = "tmpfs / tmpfs rw,relatime,size=2097152k,mode=755 0 0
proc /proc proc rw,relatime 0 0
udev /dev devtmpfs rw,relatime,size=12334792k,nr_inodes=3083698,mode=755 0 0
";

/// A diskless host booted with `root=/dev/nfs nfsroot=…` or by an
/// initramfs mounting NFSv4.
const NFS4: &str = "10.0.0.1:/srv/nfsroot / nfs4 rw,relatime,vers=4.2,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=10.0.0.50,local_lock=none,addr=10.0.0.1 0 0
proc /proc proc rw,relatime 0 0
";
const NFS_KERNEL: &str = "/dev/root / nfs rw,relatime,vers=3,rsize=4096,wsize=4096,namlen=255,hard,nolock,proto=udp,timeo=11,retrans=3,sec=sys,mountaddr=10.0.0.1,mountvers=3,mountproto=udp,local_lock=all,addr=10.0.0.1 0 0
";

/// Still in the initramfs (nothing was ever switched to).
const INITRAMFS: &str = "rootfs / rootfs rw,size=1001828k,nr_inodes=250457 0 0
proc /proc proc rw,relatime 0 0
sysfs /sys sysfs rw,relatime 0 0
devtmpfs /dev devtmpfs rw,relatime,size=1001844k,nr_inodes=250461,mode=755 0 0
";

/// A container's overlay, every layer on the host's ext4 disk.
const OVERLAY_ON_DISK: &str = "/dev/sda2 /var/lib/containers ext4 rw,relatime 0 0
overlay / overlay rw,relatime,lowerdir=/var/lib/containers/l/A:/var/lib/containers/l/B,upperdir=/var/lib/containers/u/diff,workdir=/var/lib/containers/u/work 0 0
";

#[test]
fn a_root_on_disk_is_a_disk_system() {
    let r = root_of(EXT4).unwrap();
    assert_eq!((r.medium, r.what.as_str()), (Medium::Disk, "ext4 on /dev/vda"));
    assert!(!r.off_disk());
    let r = root_of(BTRFS).unwrap();
    assert_eq!((r.medium, r.what.as_str()), (Medium::Disk, "btrfs on /dev/vda3"));
    // the initramfs listed first is not the root in use
    let r = root_of(OLD_KERNEL).unwrap();
    assert_eq!((r.medium, r.what.as_str()), (Medium::Disk, "ext4 on /dev/sda1"));
    let r = root_of(OVERLAY_ON_DISK).unwrap();
    assert_eq!(r.medium, Medium::Disk, "{r:?}");
    assert_eq!(r.what, "overlay on ext4");
}

#[test]
fn a_live_system_runs_from_ram_on_its_squashfs_and_tmpfs() {
    let r = root_of(DEBIAN_LIVE).unwrap();
    assert_eq!(r.medium, Medium::Ram);
    assert_eq!(r.what, "overlay on tmpfs over squashfs");
    assert_eq!(r.runs_from(), "runs from RAM (root is overlay on tmpfs over squashfs)");
    let r = root_of(OVERLAY_RECORDED).unwrap();
    assert_eq!((r.medium, r.what.as_str()), (Medium::Ram, "overlay on tmpfs"));
}

#[test]
fn a_rescue_system_in_ram_is_seen_with_or_without_its_layers() {
    let r = root_of(RESCUE_TMPFS).unwrap();
    assert_eq!((r.medium, r.runs_from().as_str()), (Medium::Ram, "runs from RAM (root is tmpfs)"));
    let r = root_of(OVERLAY_HIDDEN_LAYERS).unwrap();
    assert_eq!(r.medium, Medium::Ram);
    assert_eq!(r.what, "overlay on layers not visible from the running system");
    let r = root_of(INITRAMFS).unwrap();
    assert_eq!((r.medium, r.what.as_str()), (Medium::Ram, "rootfs (an initramfs)"));
    assert!(r.off_disk());
}

#[test]
fn an_nfs_root_runs_from_the_network() {
    let r = root_of(NFS4).unwrap();
    assert_eq!(r.medium, Medium::Network);
    assert_eq!(r.runs_from(), "runs from the network (root is nfs4 from 10.0.0.1:/srv/nfsroot)");
    let r = root_of(NFS_KERNEL).unwrap();
    assert_eq!((r.medium, r.what.as_str()), (Medium::Network, "nfs from /dev/root"));
}

#[test]
fn escapes_are_undone_and_colons_split_lower_layers() {
    let m = parse_mounts("/dev/sdb1 /media/my\\040stick vfat ro 0 0\n");
    assert_eq!(m[0].target, "/media/my stick");
    assert_eq!(lower_dirs("/a\\:b:/c"), ["/a:b", "/c"]);
    let text = "tmpfs /run/my\\040layers tmpfs rw 0 0\n/dev/loop0 /run/ro squashfs ro 0 0\n\
                overlay / overlay rw,lowerdir=/run/ro,upperdir=/run/my\\040layers/rw,workdir=/run/my\\040layers/w 0 0\n";
    assert_eq!(root_of(text).unwrap().what, "overlay on tmpfs over squashfs");
}

#[test]
fn no_root_line_is_an_error() {
    assert!(root_of("proc /proc proc rw 0 0\n").is_err());
    assert!(root_of("").is_err());
}
