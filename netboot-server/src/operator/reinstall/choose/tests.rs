use super::*;
use crate::operator::reinstall::discover::parse_lsblk;
use metalboot_spec::ByteSize;

/// A Debian live system started from a USB disk (`sdb`, not flagged
/// removable, as many USB SSDs are not) on a server whose old system is
/// on `sda`; lsblk as util-linux 2.38 prints it.
pub(crate) const LIVE_LSBLK: &str = r#"{"blockdevices":[
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

pub(crate) fn sel(f: impl FnOnce(&mut DiskSelector)) -> DiskSelector {
    let mut s = DiskSelector { wipe: true, ..Default::default() };
    f(&mut s);
    s
}

#[test]
fn the_rescue_medium_is_never_chosen_and_a_selector_that_matches_it_is_refused() {
    let disks = parse_lsblk(LIVE_LSBLK).unwrap();
    assert_eq!(disks.iter().map(|d| d.path.as_str()).collect::<Vec<_>>(), ["/dev/sda", "/dev/sdb"]);
    // by serial: the server's own disk
    let d = choose(&sel(|s| s.serial = Some("S4XXNA0N100001".into())), &disks, &[], From::Rescue).unwrap();
    assert_eq!(d.path, "/dev/sda");
    // "the only eligible disk" would be two for the installer, which no
    // longer sees the medium mounted: refused here, before the rescue is left
    let e = choose(&sel(|_| {}), &disks, &[], From::Rescue).unwrap_err().to_string();
    assert!(e.starts_with("the host's disk selector (the only eligible disk) matches /dev/sdb"), "{e}");
    // a selector the medium also matches is refused outright
    let e = choose(&sel(|s| s.min_size = Some(ByteSize(1 << 30))), &disks, &[], From::Rescue).unwrap_err().to_string();
    assert!(
        e.starts_with(
            "the host's disk selector (size >= 1GiB) matches /dev/sdb (/run/live/medium mounted), which holds \
             mounted filesystems"
        ),
        "{e}"
    );
    // and so is one that names only the medium
    let e = choose(&sel(|s| s.path = Some("/dev/sdb".into())), &disks, &[], From::Rescue).unwrap_err().to_string();
    assert!(e.contains("matches /dev/sdb"), "{e}");
}

#[test]
fn a_selector_path_through_by_id_is_resolved_on_the_target() {
    let disks = parse_lsblk(LIVE_LSBLK).unwrap();
    let links = vec![
        ("/dev/disk/by-id/ata-SAMSUNG_MZ7LH480_S4XXNA0N100001".to_string(), "/dev/sda".to_string()),
        ("/dev/disk/by-id/usb-SanDisk_Extreme_SSD_0401396c1b5e-0:0".to_string(), "/dev/sdb".to_string()),
    ];
    let d = choose(&sel(|s| s.path = Some(links[0].0.clone())), &disks, &links, From::Rescue).unwrap();
    assert_eq!(d.path, "/dev/sda");
    let e = choose(&sel(|s| s.path = Some(links[1].0.clone())), &disks, &links, From::Rescue).unwrap_err().to_string();
    assert!(e.contains("matches /dev/sdb (/run/live/medium mounted)"), "{e}");
}

#[test]
fn two_matches_no_match_and_old_partitions_without_wipe_are_refused_naming_every_disk() {
    let disks = parse_lsblk(RESCUE_LSBLK).unwrap();
    let e = choose(&sel(|s| s.model = Some("SAMSUNG MZVL2512HCJQ".into())), &disks, &[], From::Rescue)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            "2 disks match the host's disk selector (model=SAMSUNG MZVL2512HCJQ): /dev/nvme0n1, /dev/nvme1n1"
        ),
        "{e}"
    );
    let d = choose(&sel(|s| s.wwn = Some("eui.002538B000000002".into())), &disks, &[], From::Rescue).unwrap();
    assert_eq!(d.path, "/dev/nvme1n1");
    let e = choose(&sel(|s| s.serial = Some("NOPE".into())), &disks, &[], From::Rescue).unwrap_err().to_string();
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
    let e = choose(&keep, &live, &[], From::Rescue).unwrap_err().to_string();
    assert!(e.contains("holds partitions (/dev/sda1, /dev/sda2)") && e.contains("disk.wipe = true"), "{e}");
}

#[test]
fn a_removable_medium_is_passed_over_not_refused() {
    let usb_stick = LIVE_LSBLK
        .replace(r#""model":"Extreme SSD","wwn":null,"rm":false"#, r#""model":"Extreme SSD","wwn":null,"rm":true"#);
    let disks = parse_lsblk(&usb_stick).unwrap();
    assert_eq!(
        choose(&sel(|s| s.min_size = Some(ByteSize(1 << 30))), &disks, &[], From::Rescue).unwrap().path,
        "/dev/sda"
    );
    assert_eq!(verdicts(&sel(|_| {}), &disks, &[], From::Rescue)[1], Verdict::Removable);
}

#[test]
fn a_printed_entry_takes_the_one_free_disk_or_refuses() {
    let live = parse_lsblk(LIVE_LSBLK).unwrap();
    assert_eq!(only_free_disk(&live).unwrap().path, "/dev/sda");
    let two = parse_lsblk(RESCUE_LSBLK).unwrap();
    let e = only_free_disk(&two).unwrap_err().to_string();
    assert_eq!(e, "2 disks are free to install on (/dev/nvme0n1, /dev/nvme1n1): refusing to guess");
}

/// A server running its old system from btrfs raid1 on `vda3` and `vdb3`
/// (lsblk shows the mounts on `vda3` only), a data disk mounted on `/srv`
/// and a blank disk; lsblk as util-linux 2.38 prints it.
const RAID_LSBLK: &str = r#"{"blockdevices":[
 {"name":"vda","path":"/dev/vda","size":8589934592,"type":"disk","serial":"D1","model":null,"wwn":null,"rm":false,"ro":false,"fstype":null,"uuid":null,"mountpoints":[null],
  "children":[{"name":"vda1","path":"/dev/vda1","size":1048576,"type":"part","fstype":null,"uuid":null,"mountpoints":[null]},
              {"name":"vda2","path":"/dev/vda2","size":536870912,"type":"part","fstype":"vfat","uuid":"9C1A-0B2E","mountpoints":["/boot/efi"]},
              {"name":"vda3","path":"/dev/vda3","size":8050966528,"type":"part","fstype":"btrfs","uuid":"5e0c2a9e-6f1e-4a57-9d7e-1f0b7f3c2a10","mountpoints":["/var/log","/home","/"]}]},
 {"name":"vdb","path":"/dev/vdb","size":8589934592,"type":"disk","serial":"D2","model":null,"wwn":null,"rm":false,"ro":false,"fstype":null,"uuid":null,"mountpoints":[null],
  "children":[{"name":"vdb1","path":"/dev/vdb1","size":1048576,"type":"part","fstype":null,"uuid":null,"mountpoints":[null]},
              {"name":"vdb2","path":"/dev/vdb2","size":536870912,"type":"part","fstype":"vfat","uuid":"9C1A-0B2E","mountpoints":[null]},
              {"name":"vdb3","path":"/dev/vdb3","size":8050966528,"type":"part","fstype":"btrfs","uuid":"5e0c2a9e-6f1e-4a57-9d7e-1f0b7f3c2a10","mountpoints":[null]}]},
 {"name":"vdc","path":"/dev/vdc","size":8589934592,"type":"disk","serial":"DATA","model":null,"wwn":null,"rm":false,"ro":false,"fstype":"ext4","uuid":"0f6a3c1e-8a51-4c9b-a0a4-4f51d5b2c001","mountpoints":["/srv"]},
 {"name":"vdd","path":"/dev/vdd","size":8589934592,"type":"disk","serial":"BLANK","model":null,"wwn":null,"rm":false,"ro":false,"fstype":null,"uuid":null,"mountpoints":[null]}
]}"#;

fn serials(v: &[&DiskFacts]) -> Vec<String> {
    v.iter().map(|d| d.serial.clone().unwrap_or_default()).collect()
}

#[test]
fn every_member_of_a_raid1_root_holds_the_root_and_is_in_use() {
    let disks = parse_lsblk(RAID_LSBLK).unwrap();
    let roots: Vec<&str> = disks.iter().filter(|d| d.holds_root).map(|d| d.path.as_str()).collect();
    assert_eq!(roots, ["/dev/vda", "/dev/vdb"]);
    assert_eq!(disks[1].mounts, ["/var/log", "/home", "/"], "vdb3 is mounted through vda3");
    assert!(disks[3].mounts.is_empty());
}

#[test]
fn a_running_raid1_host_is_reinstalled_onto_the_disks_its_selectors_choose() {
    let disks = parse_lsblk(RAID_LSBLK).unwrap();
    let by = |s: &str| sel(|x| x.serial = Some(s.into()));
    // the old system's own disks: in use by the system being replaced
    let two = [by("D1"), by("D2")];
    let chosen = choose_all(&two, &disks, &[], From::OldSystem).unwrap();
    assert_eq!(serials(&chosen), ["D1", "D2"]);
    // even without wipe = true: they hold the old system, confirmed by name
    let keep = [sel(|x| x.serial = Some("D1".into())), sel(|x| x.serial = Some("D2".into()))].map(|mut s| {
        s.wipe = false;
        s
    });
    assert_eq!(serials(&choose_all(&keep, &disks, &[], From::OldSystem).unwrap()), ["D1", "D2"]);
    // leaving a disk of the old root out would keep half of it bootable
    let e = format!("{:#}", choose_all(&[by("D1"), by("BLANK")], &disks, &[], From::OldSystem).unwrap_err());
    assert!(e.starts_with("the running system's root filesystem is also on /dev/vdb, which none"), "{e}");
    // the mounted data disk is never chosen
    let e = choose_all(&[by("D1"), by("DATA")], &disks, &[], From::OldSystem).unwrap_err();
    let e = format!("{e:#}");
    assert!(
        e.starts_with(
            "disk 2 of 2 (serial=DATA): the host's disk selector (serial=DATA) matches /dev/vdc (/srv mounted)"
        ),
        "{e}"
    );
    assert!(e.contains("not the root filesystem of the system being replaced"), "{e}");
    // from a rescue system the same mounts are somebody else's
    let e = format!("{:#}", choose_all(&two, &disks, &[], From::Rescue).unwrap_err());
    assert!(e.contains("matches /dev/vda (/boot/efi, /var/log, /home, / mounted)"), "{e}");
}

#[test]
fn two_selectors_choosing_one_disk_and_a_missing_disk_are_refused() {
    let disks = parse_lsblk(RESCUE_LSBLK).unwrap();
    let any = sel(|s| s.model = Some("SAMSUNG MZVL2512HCJQ".into()));
    let one = sel(|s| s.serial = Some("S4EVNX0N000001".into()));
    let two = sel(|s| s.serial = Some("S4EVNX0N000002".into()));
    let chosen = choose_all(&[one.clone(), two.clone()], &disks, &[], From::Rescue).unwrap();
    assert_eq!(serials(&chosen), ["S4EVNX0N000001", "S4EVNX0N000002"]);
    let e = format!("{:#}", choose_all(&[one.clone(), one.clone()], &disks, &[], From::Rescue).unwrap_err());
    assert_eq!(
        e,
        "disks 1 and 2 of the host (serial=S4EVNX0N000001 and serial=S4EVNX0N000001) both choose /dev/nvme0n1: each \
         disk of a raid must be another disk (narrow the selectors in the inventory); nothing was changed"
    );
    let e = format!("{:#}", choose_all(&[any, two], &disks, &[], From::Rescue).unwrap_err());
    assert!(e.starts_with("disk 1 of 2 (model=SAMSUNG MZVL2512HCJQ): 2 disks match"), "{e}");
    let gone = sel(|s| s.serial = Some("S4EVNX0N000003".into()));
    let e = format!("{:#}", choose_all(&[one, gone], &disks, &[], From::Rescue).unwrap_err());
    assert!(e.starts_with("disk 2 of 2 (serial=S4EVNX0N000003): no disk of the rescue system matches"), "{e}");
}

#[test]
fn the_disk_lines_name_which_selector_chose_each_disk() {
    let disks = parse_lsblk(RAID_LSBLK).unwrap();
    let sels = [sel(|x| x.serial = Some("D1".into())), sel(|x| x.serial = Some("D2".into()))];
    let chosen = choose_all(&sels, &disks, &[], From::OldSystem).unwrap();
    assert_eq!(
        disk_lines(&sels, &chosen, &disks, &[], From::OldSystem),
        "disks:    /dev/vda 8.0 GiB serial=D1: chosen by the host's disk 1 of 2 (serial=D1)\n          \
         /dev/vdb 8.0 GiB serial=D2: chosen by the host's disk 2 of 2 (serial=D2)\n          \
         /dev/vdc 8.0 GiB serial=DATA: holds mounted /srv: never chosen\n          \
         /dev/vdd 8.0 GiB serial=BLANK: matches none of the host's disk selectors\n"
    );
}
