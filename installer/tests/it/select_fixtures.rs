//! Disk selection over a recorded sysfs tree (see fixtures/README.md).

use crate::common;
use metalboot_installer::install;
use metalboot_installer::probe::{describe, probe_disks, DiskFacts};
use metalboot_installer::select::{select, select_all, SelectError};
use metalboot_spec::{ByteSize, DiskSelector};
use std::path::Path;

fn disks() -> Vec<DiskFacts> {
    probe_disks(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sysfs-mixed")).unwrap()
}

fn sel(f: impl FnOnce(&mut DiskSelector)) -> DiskSelector {
    let mut s = DiskSelector::default();
    f(&mut s);
    s
}

#[test]
fn probe_reads_sizes_serials_models_and_partitions() {
    let d = disks();
    let names: Vec<&str> = d.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["nvme0n1", "sda", "sdb", "sdc", "vda", "vdb"]);
    let nvme = &d[0];
    assert_eq!(nvme.size, 1000215216 * 512);
    assert_eq!(nvme.model.as_deref(), Some("Samsung SSD 980 PRO 500GB"));
    assert_eq!(nvme.serial.as_deref(), Some("S5GXNF0R123456"));
    assert!(!nvme.rotational);
    assert_eq!(d[1].serial.as_deref(), Some("WD-WCC4M0123456"));
    assert_eq!(d[1].wwn.as_deref(), Some("naa.50014ee2b5e3c2a1"));
    assert!(d[3].removable);
    assert_eq!(d[4].partitions, ["vda1"]);
}

#[test]
fn probe_reads_the_logical_sector_size() {
    let d = disks();
    let sizes: Vec<(&str, u64)> = d.iter().map(|d| (d.name.as_str(), d.logical_block_size)).collect();
    assert_eq!(sizes, [("nvme0n1", 512), ("sda", 512), ("sdb", 512), ("sdc", 512), ("vda", 512), ("vdb", 4096)]);
    // `size` counts 512-byte units on a 4096-byte disk too
    assert_eq!(d[5].size, 8 << 30);
    assert_eq!(describe(&d[5]), "/dev/vdb 8.0 GiB 4096-byte sectors model=- serial=VIRTIO-DATA wwn=- partitions=0");
    assert!(!describe(&d[4]).contains("sectors"), "{}", describe(&d[4]));
}

#[test]
fn dry_run_on_a_4kn_disk_shows_its_sector_size_and_counts_in_it() {
    let vdb = disks().swap_remove(5);
    let plan = common::plan(serde_json::json!({"serial": "VIRTIO-DATA"}), "http://127.0.0.1:9/x", &"0".repeat(64), 1);
    let dry = serde_json::to_value(install::dry_run_on(vec![vdb], &plan).unwrap()).unwrap();
    assert_eq!(dry["disk"]["logical_block_size"], 4096);
    let parts: Vec<(u64, u64, u64)> = dry["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (p["start_lba"].as_u64().unwrap(), p["length_lba"].as_u64().unwrap(), p["sector_bytes"].as_u64().unwrap())
        })
        .collect();
    // 1 MiB, 1 MiB BIOS boot, 512 MiB ESP, root to the last MiB before the backup GPT
    assert_eq!(parts, [(256, 256, 4096), (512, 512 * 256, 4096), (514 * 256, (8192 - 514 - 1) * 256, 4096)]);
}

#[test]
fn one_match_by_serial_wwn_model_or_size() {
    let d = disks();
    assert_eq!(select(&d, &sel(|s| s.serial = Some("WD-WCC4M0654321".into())), &[]).unwrap().name, "sdb");
    assert_eq!(select(&d, &sel(|s| s.wwn = Some("0x50014EE2B5E3C2A1".into())), &[]).unwrap().name, "sda");
    assert_eq!(select(&d, &sel(|s| s.model = Some("Samsung SSD 980 PRO 500GB".into())), &[]).unwrap().name, "nvme0n1");
    let by_size = sel(|s| {
        s.min_size = Some(ByteSize(400 << 30));
        s.max_size = Some(ByteSize(600 << 30));
    });
    assert_eq!(select(&d, &by_size, &[]).unwrap().name, "nvme0n1");
    assert_eq!(select(&d, &sel(|s| s.path = Some("/dev/vdb".into())), &[]).unwrap().name, "vdb");
}

#[test]
fn no_match_names_every_disk_and_why() {
    let e = select(&disks(), &sel(|s| s.serial = Some("NOPE".into())), &[]).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, SelectError::NoMatch { .. }));
    assert!(msg.contains("/dev/sdc (removable)") && msg.contains("/dev/sda (serial is WD-WCC4M0123456)"), "{msg}");
}

#[test]
fn two_matches_are_refused() {
    let e = select(&disks(), &sel(|s| s.model = Some("WDC WD20EFRX-68E".into())), &[]).unwrap_err();
    assert_eq!(e.to_string(), "2 disks match model=WDC WD20EFRX-68E: /dev/sda, /dev/sdb; refusing to guess");
}

#[test]
fn removable_disk_is_never_chosen_even_by_path() {
    let e = select(&disks(), &sel(|s| s.path = Some("/dev/sdc".into())), &[]).unwrap_err();
    assert!(e.to_string().contains("/dev/sdc (removable)"), "{e}");
}

#[test]
fn boot_device_is_never_chosen() {
    let e = select(&disks(), &sel(|s| s.serial = Some("VIRTIO-DATA".into())), &["vdb".into()]).unwrap_err();
    assert!(e.to_string().contains("/dev/vdb (in use by the running system)"), "{e}");
}

#[test]
fn disk_with_partitions_needs_wipe() {
    let d = disks();
    let e = select(&d, &sel(|s| s.serial = Some("VIRTIO-SYS".into())), &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "/dev/vda matches serial=VIRTIO-SYS but holds partitions (vda1); set disk.wipe = true to allow wiping it"
    );
    let ok = select(
        &d,
        &sel(|s| {
            s.serial = Some("VIRTIO-SYS".into());
            s.wipe = true;
        }),
        &[],
    );
    assert_eq!(ok.unwrap().name, "vda");
}

#[test]
fn empty_selector_needs_exactly_one_eligible_disk() {
    let e = select(&disks(), &DiskSelector::default(), &[]).unwrap_err();
    assert!(matches!(e, SelectError::Ambiguous { count: 5, .. }), "{e}");
}

fn raid_plan(disks: serde_json::Value) -> metalboot_spec::InstallPlan {
    let mut v = serde_json::to_value(common::plan(
        serde_json::json!({"path": "/dev/sda"}),
        "http://127.0.0.1:9/x",
        &"0".repeat(64),
        1,
    ))
    .unwrap();
    v.as_object_mut().unwrap().remove("disk");
    v["disks"] = disks;
    v["layout"]["raid"] = "raid1".into();
    let p: metalboot_spec::InstallPlan = serde_json::from_value(v).unwrap();
    p.validate().unwrap();
    p
}

#[test]
fn each_selector_of_a_raid_chooses_its_own_disk() {
    let d = disks();
    let sels =
        [sel(|s| s.serial = Some("WD-WCC4M0654321".into())), sel(|s| s.wwn = Some("naa.50014ee2b5e3c2a1".into()))];
    let chosen = select_all(&d, &sels, &[]).unwrap();
    assert_eq!(chosen.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["sdb", "sda"]);
}

#[test]
fn two_selectors_choosing_one_disk_are_refused_naming_both() {
    let d = disks();
    let sels = [sel(|s| s.serial = Some("WD-WCC4M0123456".into())), sel(|s| s.wwn = Some("0x50014EE2B5E3C2A1".into()))];
    let e = select_all(&d, &sels, &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "disks[0] (serial=WD-WCC4M0123456) and disks[1] (wwn=0x50014EE2B5E3C2A1) both match /dev/sda; each selector \
         must pick its own disk"
    );
}

#[test]
fn one_raid_selector_without_its_disk_stops_the_whole_selection() {
    let d = disks();
    let sels = [sel(|s| s.serial = Some("WD-WCC4M0123456".into())), sel(|s| s.serial = Some("GONE".into()))];
    let e = select_all(&d, &sels, &[]).unwrap_err();
    assert!(matches!(e, SelectError::NoMatch { .. }), "{e}");
    assert!(e.to_string().starts_with("no disk matches serial=GONE"), "{e}");
    // a removable disk or one holding partitions is refused in a raid as alone
    let sels = [sel(|s| s.serial = Some("WD-WCC4M0123456".into())), sel(|s| s.serial = Some("VIRTIO-SYS".into()))];
    assert!(matches!(select_all(&d, &sels, &[]).unwrap_err(), SelectError::HasPartitions { .. }));
}

#[test]
fn dry_run_on_two_disks_shows_both_and_the_raid1() {
    let d = disks();
    let plan = raid_plan(serde_json::json!([{"serial": "WD-WCC4M0123456"}, {"serial": "VIRTIO-DATA"}]));
    // a 1.8 TiB disk with 512-byte sectors and an 8 GiB one with 4096-byte sectors
    let chosen = vec![d[1].clone(), d[5].clone()];
    let dry = serde_json::to_value(install::dry_run_on(chosen, &plan).unwrap()).unwrap();
    assert_eq!(dry["disk"]["path"], "/dev/sda");
    assert_eq!(dry["partitions"][0]["start_lba"], 2048);
    let more = dry["more_disks"].as_array().unwrap();
    assert_eq!(more.len(), 1);
    assert_eq!(more[0]["disk"]["path"], "/dev/vdb");
    assert_eq!(more[0]["partitions"].as_array().unwrap().len(), 3);
    assert_eq!(more[0]["partitions"][0]["start_lba"], 256, "vdb counts its own 4096-byte sectors");
    assert_eq!(
        dry["root"],
        "btrfs raid1 across /dev/sda3, /dev/vdb3 (data and metadata on two disks each; 7.5 GiB usable, the smallest \
         root partition)"
    );
    let files: Vec<&str> = dry["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert!(files.contains(&"/etc/udev/rules.d/65-metalboot-btrfs-degraded.rules"), "{files:?}");
    assert!(files.contains(&"/etc/grub.d/11_metalboot_degraded"), "{files:?}");
    // one disk: as before, no more_disks
    let one = common::plan(serde_json::json!({"serial": "VIRTIO-DATA"}), "http://127.0.0.1:9/x", &"0".repeat(64), 1);
    let dry = serde_json::to_value(install::dry_run_on(vec![d[5].clone()], &one).unwrap()).unwrap();
    assert!(dry.get("more_disks").is_none());
    assert_eq!(dry["root"], "btrfs on /dev/vdb3");
}
