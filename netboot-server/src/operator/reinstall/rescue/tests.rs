use super::*;
use crate::operator::reinstall::discover::parse_lsblk;
use crate::operator::reinstall::rootfs::root_of;
use metalboot_spec::ByteSize;

/// A Debian live system started from a USB disk (`sdb`, not flagged
/// removable, as many USB SSDs are not) on a server whose old system is
/// on `sda`; lsblk as util-linux 2.38 prints it.
const LIVE_LSBLK: &str = r#"{"blockdevices":[
 {"name":"loop0","path":"/dev/loop0","size":912261120,"type":"loop","serial":null,"model":null,"wwn":null,"rm":false,"ro":true,"mountpoints":["/run/live/rootfs/filesystem.squashfs"]},
 {"name":"sda","path":"/dev/sda","size":480103981056,"type":"disk","serial":"S4XXNA0N100001","model":"SAMSUNG MZ7LH480","wwn":"0x5002538e00000001","rm":false,"ro":false,"mountpoints":[null],
  "children":[{"name":"sda1","path":"/dev/sda1","size":1048576,"type":"part","mountpoints":[null]},
              {"name":"sda2","path":"/dev/sda2","size":480101859328,"type":"part","mountpoints":[null]}]},
 {"name":"sdb","path":"/dev/sdb","size":62008590336,"type":"disk","serial":"0401396c1b5e","model":"Extreme SSD","wwn":null,"rm":false,"ro":false,"mountpoints":[null],
  "children":[{"name":"sdb1","path":"/dev/sdb1","size":62007541760,"type":"part","mountpoints":["/run/live/medium"]}]}
]}"#;

/// A provider's rescue system in RAM on a server with two NVMe disks.
const RESCUE_LSBLK: &str = r#"{"blockdevices":[
 {"name":"nvme0n1","path":"/dev/nvme0n1","size":512110190592,"type":"disk","serial":"S4EVNX0N000001","model":"SAMSUNG MZVL2512HCJQ","wwn":"eui.002538b000000001","rm":false,"ro":false,"mountpoints":[null]},
 {"name":"nvme1n1","path":"/dev/nvme1n1","size":512110190592,"type":"disk","serial":"S4EVNX0N000002","model":"SAMSUNG MZVL2512HCJQ","wwn":"eui.002538b000000002","rm":false,"ro":false,"mountpoints":[null]}
]}"#;

fn sel(f: impl FnOnce(&mut DiskSelector)) -> DiskSelector {
    let mut s = DiskSelector { wipe: true, ..Default::default() };
    f(&mut s);
    s
}

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
fn the_rescue_medium_is_never_chosen_and_a_selector_that_matches_it_is_refused() {
    let disks = parse_lsblk(LIVE_LSBLK).unwrap();
    assert_eq!(disks.iter().map(|d| d.path.as_str()).collect::<Vec<_>>(), ["/dev/sda", "/dev/sdb"]);
    // by serial: the server's own disk
    let d = choose(&sel(|s| s.serial = Some("S4XXNA0N100001".into())), &disks, &[]).unwrap();
    assert_eq!(d.path, "/dev/sda");
    // "the only eligible disk" would be two for the installer, which no
    // longer sees the medium mounted: refused here, before the rescue is left
    let e = choose(&sel(|_| {}), &disks, &[]).unwrap_err().to_string();
    assert!(e.starts_with("the host's disk selector (the only eligible disk) matches /dev/sdb"), "{e}");
    // a selector the medium also matches is refused outright
    let e = choose(&sel(|s| s.min_size = Some(ByteSize(1 << 30))), &disks, &[]).unwrap_err().to_string();
    assert!(
        e.starts_with(
            "the host's disk selector (size >= 1GiB) matches /dev/sdb (/run/live/medium mounted), which holds \
             mounted filesystems"
        ),
        "{e}"
    );
    // and so is one that names only the medium
    let e = choose(&sel(|s| s.path = Some("/dev/sdb".into())), &disks, &[]).unwrap_err().to_string();
    assert!(e.contains("matches /dev/sdb"), "{e}");
}

#[test]
fn a_selector_path_through_by_id_is_resolved_on_the_target() {
    let disks = parse_lsblk(LIVE_LSBLK).unwrap();
    let links = vec![
        ("/dev/disk/by-id/ata-SAMSUNG_MZ7LH480_S4XXNA0N100001".to_string(), "/dev/sda".to_string()),
        ("/dev/disk/by-id/usb-SanDisk_Extreme_SSD_0401396c1b5e-0:0".to_string(), "/dev/sdb".to_string()),
    ];
    let d = choose(&sel(|s| s.path = Some(links[0].0.clone())), &disks, &links).unwrap();
    assert_eq!(d.path, "/dev/sda");
    let e = choose(&sel(|s| s.path = Some(links[1].0.clone())), &disks, &links).unwrap_err().to_string();
    assert!(e.contains("matches /dev/sdb (/run/live/medium mounted)"), "{e}");
}

#[test]
fn two_matches_no_match_and_old_partitions_without_wipe_are_refused_naming_every_disk() {
    let disks = parse_lsblk(RESCUE_LSBLK).unwrap();
    let e = choose(&sel(|s| s.model = Some("SAMSUNG MZVL2512HCJQ".into())), &disks, &[]).unwrap_err().to_string();
    assert!(
        e.starts_with(
            "2 disks match the host's disk selector (model=SAMSUNG MZVL2512HCJQ): /dev/nvme0n1, /dev/nvme1n1"
        ),
        "{e}"
    );
    let d = choose(&sel(|s| s.wwn = Some("eui.002538B000000002".into())), &disks, &[]).unwrap();
    assert_eq!(d.path, "/dev/nvme1n1");
    let e = choose(&sel(|s| s.serial = Some("NOPE".into())), &disks, &[]).unwrap_err().to_string();
    assert_eq!(
        e,
        "no disk of the rescue system matches the host's disk selector (serial=NOPE); disks seen: /dev/nvme0n1 \
         (serial is S4EVNX0N000001), /dev/nvme1n1 (serial is S4EVNX0N000002); nothing was changed"
    );
    let live = parse_lsblk(LIVE_LSBLK).unwrap();
    let keep = sel(|s| {
        s.serial = Some("S4XXNA0N100001".into());
        s.wipe = false;
    });
    let e = choose(&keep, &live, &[]).unwrap_err().to_string();
    assert!(e.contains("holds partitions (/dev/sda1, /dev/sda2)") && e.contains("disk.wipe = true"), "{e}");
}

#[test]
fn a_removable_medium_is_passed_over_not_refused() {
    let usb_stick = LIVE_LSBLK
        .replace(r#""model":"Extreme SSD","wwn":null,"rm":false"#, r#""model":"Extreme SSD","wwn":null,"rm":true"#);
    let disks = parse_lsblk(&usb_stick).unwrap();
    assert_eq!(choose(&sel(|s| s.min_size = Some(ByteSize(1 << 30))), &disks, &[]).unwrap().path, "/dev/sda");
    assert_eq!(verdicts(&sel(|_| {}), &disks, &[])[1], Verdict::Removable);
}

#[test]
fn the_summary_shows_every_disk_with_its_verdict_and_what_a_failure_leaves() {
    let root = root_of("tmpfs / tmpfs rw 0 0\n").unwrap();
    let disks = parse_lsblk(LIVE_LSBLK).unwrap();
    let s = summary_lines(&root, &sel(|s| s.serial = Some("S4XXNA0N100001".into())), &disks, &[]);
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

#[test]
fn a_printed_entry_takes_the_one_free_disk_or_refuses() {
    let live = parse_lsblk(LIVE_LSBLK).unwrap();
    assert_eq!(only_free_disk(&live).unwrap().path, "/dev/sda");
    let two = parse_lsblk(RESCUE_LSBLK).unwrap();
    let e = only_free_disk(&two).unwrap_err().to_string();
    assert_eq!(e, "2 disks are free to install on (/dev/nvme0n1, /dev/nvme1n1): refusing to guess");
}
