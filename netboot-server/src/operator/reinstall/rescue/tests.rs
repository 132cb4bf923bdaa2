use super::*;
use crate::operator::reinstall::choose::tests::{sel, LIVE_LSBLK};
use crate::operator::reinstall::discover::parse_lsblk;
use crate::operator::reinstall::rootfs::root_of;

#[test]
fn a_disk_system_goes_on_as_before_and_a_rescue_needs_the_flag() {
    let disk = root_of("/dev/vda1 / ext4 rw 0 0\n").unwrap();
    assert!(!allowed("root@h", &disk, false).unwrap());
    assert!(!allowed("root@h", &disk, true).unwrap(), "the flag changes nothing on a disk system");
    let ram = root_of("tmpfs /run tmpfs rw 0 0\ntmpfs /run/o tmpfs rw 0 0\n/dev/loop0 /run/l squashfs ro 0 0\noverlay / overlay rw,lowerdir=/run/l,upperdir=/run/o/rw,workdir=/run/o/w 0 0\n").unwrap();
    let e = allowed("root@203.0.113.7", &ram, false).unwrap_err().to_string();
    assert_eq!(
        e,
        "root@203.0.113.7 runs from RAM (root is overlay on tmpfs over squashfs): a rescue system; there is no old \
         system to come back to if the install fails. Pass --rescue-ok to reinstall anyway (the host's inventory \
         disk selector then chooses the disk); nothing was changed"
    );
    assert!(allowed("root@203.0.113.7", &ram, true).unwrap());
    let nfs = root_of("10.0.0.1:/srv/r / nfs4 rw 0 0\n").unwrap();
    assert!(allowed("root@h", &nfs, false).unwrap_err().to_string().contains("runs from the network (root is nfs4"));
}

#[test]
fn only_kexec_starts_the_installer_on_a_rescue_system() {
    assert_eq!(boot_via(BootVia::Auto).unwrap(), BootVia::Kexec);
    assert_eq!(boot_via(BootVia::Kexec).unwrap(), BootVia::Kexec);
    let e = boot_via(BootVia::Grub).unwrap_err().to_string();
    assert!(e.starts_with("--boot-via grub is impossible on a rescue system"), "{e}");
}

#[test]
fn the_summary_shows_every_disk_with_its_verdict_and_what_a_failure_leaves() {
    let root = root_of("tmpfs / tmpfs rw 0 0\n").unwrap();
    let disks = parse_lsblk(LIVE_LSBLK).unwrap();
    let sels = [sel(|s| s.serial = Some("S4XXNA0N100001".into()))];
    let s = summary_lines(&root, &sels, &[&disks[0]], &disks, &[]);
    assert_eq!(
        s,
        "rescue:   the target runs from RAM (root is tmpfs); --rescue-ok given\n\
         disks:    /dev/sda 447.1 GiB serial=S4XXNA0N100001 wwn=0x5002538e00000001 model=SAMSUNG MZ7LH480: chosen by \
         the host's selector (serial=S4XXNA0N100001)\n          \
         /dev/sdb 57.8 GiB serial=0401396c1b5e model=Extreme SSD: holds mounted /run/live/medium: never chosen\n\
         if it fails: a rescue system does not come back: a failed install leaves the host in the installer or, \
         after its reboot, in whatever the provider boots next (its disk, or the rescue system if it is activated \
         again)\n"
    );
}
