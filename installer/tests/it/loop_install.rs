//! The installer's real steps on loop devices: partition → mkfs →
//! subvolumes → unpack → configure, then the test mounts the result and
//! checks it; a corrupted image leaves no partition table; a selector that
//! matches no disk or two disks writes nothing.

use crate::common;
use common::*;
use metalboot_installer::install;
use metalboot_installer::report::Reporter;
use sha2::Digest;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

fn sha(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
#[ignore = "needs root and loop devices; run by `make test`"]
fn installs_layout_subvolumes_image_and_config_on_a_loop_disk() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let (_, image) = make_rootfs_tarball(dir.path());
    // the first transfer is cut short: the installer must resume with Range
    let srv = serve_file(image.clone(), Some(image.len() as u64 / 3));
    let disk = Loop::new(dir.path(), "disk.img", 4 << 30);
    let plan = plan(serde_json::json!({"path": disk.dev}), &srv.url, &sha(&image), image.len() as u64);
    let mut rep = Reporter::new(None, "", metalboot_installer::https::agent(None));
    let keys = install::install(&plan, &loop_opts(dir.path()), &mut rep).expect("install succeeds");
    assert!(srv.requests.load(std::sync::atomic::Ordering::SeqCst) >= 2, "transfer was resumed");
    assert!(keys.host_keys.iter().any(|k| k.starts_with("ssh-ed25519 ")), "{keys:?}");
    assert_eq!(keys.backup_key, None, "no send targets, no backup key");

    // GPT: BIOS boot, ESP, Linux filesystem, 1 MiB aligned
    let g = gpt::GptConfig::new().open(&disk.dev).unwrap();
    let parts: Vec<_> = g.partitions().values().collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0].part_type_guid, gpt::partition_types::BIOS);
    assert_eq!(parts[1].part_type_guid, gpt::partition_types::EFI);
    assert_eq!(parts[2].part_type_guid, gpt::partition_types::LINUX_FS);
    assert!(parts.iter().all(|p| p.first_lba % 2048 == 0));
    // the build machine's kernel may not scan GPTs: look at the partitions through offset loops
    let esp = PartLoop::new(&disk.dev, parts[1].first_lba * 512, (parts[1].last_lba + 1 - parts[1].first_lba) * 512);
    let root = PartLoop::new(&disk.dev, parts[2].first_lba * 512, (parts[2].last_lba + 1 - parts[2].first_lba) * 512);
    assert_eq!(sh(&format!("blkid -p -s TYPE -o value {}", esp.0)).trim(), "vfat");
    assert_eq!(sh(&format!("blkid -p -s TYPE -o value {}", root.0)).trim(), "btrfs");

    // subvolumes at the top level, @ the default
    let top = dir.path().join("top");
    std::fs::create_dir_all(&top).unwrap();
    sh(&format!("mount -o subvolid=5 {} {}", root.0, top.display()));
    let check = std::panic::catch_unwind(|| {
        let list = sh(&format!("btrfs subvolume list {}", top.display()));
        for s in ["@", "@home", "@var_log", "@snapshots"] {
            assert!(list.lines().any(|l| l.ends_with(&format!("path {s}"))), "{s} missing: {list}");
        }
        let def = sh(&format!("btrfs subvolume get-default {}", top.display()));
        assert!(def.trim().ends_with("path @"), "{def}");
        // /home and /var/log content went into their subvolumes, not into @
        assert_eq!(std::fs::read_to_string(top.join("@home/alice/notes")).unwrap(), "in @home\n");
        assert_eq!(std::fs::read_to_string(top.join("@var_log/boot.log")).unwrap(), "in @var_log\n");
        assert_eq!(std::fs::read_dir(top.join("@/home")).unwrap().count(), 0);
        // owners, modes, hard links, symlinks, xattrs
        let r = top.join("@");
        let m = std::fs::metadata(r.join("srv/owned")).unwrap();
        assert_eq!((m.uid(), m.gid(), m.permissions().mode() & 0o7777), (1234, 5678, 0o640));
        assert_eq!(m.ino(), std::fs::metadata(r.join("srv/hard")).unwrap().ino());
        assert_eq!(std::fs::read_link(r.join("srv/link")).unwrap().to_str(), Some("owned"));
        assert_eq!(std::fs::metadata(r.join("srv/suid")).unwrap().permissions().mode() & 0o7777, 0o4755);
        assert_eq!(std::fs::metadata(r.join("tmp")).unwrap().permissions().mode() & 0o7777, 0o1777);
        assert_eq!(xattr::get(r.join("srv/owned"), "user.metalboot").unwrap().as_deref(), Some(&b"kept"[..]));
        // configuration
        let root_uuid = sh(&format!("blkid -p -s UUID -o value {}", root.0)).trim().to_string();
        let fstab = std::fs::read_to_string(r.join("etc/fstab")).unwrap();
        assert!(fstab.contains(&format!("UUID={root_uuid} / btrfs subvol=/@,compress=zstd:1,noatime 0 0")), "{fstab}");
        assert!(fstab.contains(&format!("UUID={root_uuid} /home btrfs subvol=/@home,")), "{fstab}");
        assert_eq!(std::fs::read_to_string(r.join("etc/hostname")).unwrap(), "looptest\n");
        assert_eq!(std::fs::read_to_string(r.join("root/.ssh/authorized_keys")).unwrap(), format!("{KEY}\n"));
        assert_eq!(std::fs::metadata(r.join("root/.ssh/authorized_keys")).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(std::fs::read_to_string(r.join("etc/shadow")).unwrap().starts_with("root:$6$salt$hash:"));
        let net = std::fs::read_to_string(r.join("etc/systemd/network/10-metalboot.network")).unwrap();
        assert!(net.contains("MACAddress=52:54:00:00:00:01") && net.contains("Address=192.0.2.9/24"), "{net}");
        assert!(r.join("etc/ssh/ssh_host_ed25519_key").exists());
        assert_eq!(std::fs::read(r.join("etc/machine-id")).unwrap().len(), 0);
        let env = std::fs::read_to_string(r.join("etc/metalboot/phone-home.env")).unwrap();
        assert!(env.contains("METALBOOT_TOKEN='looptoken'"), "{env}");
        assert!(std::fs::symlink_metadata(
            r.join("etc/systemd/system/multi-user.target.wants/metalboot-phone-home.service")
        )
        .is_ok());
    });
    sh(&format!("umount {}", top.display()));
    check.unwrap();
}

#[test]
#[ignore = "needs root and loop devices; run by `make test`"]
fn corrupted_image_aborts_and_leaves_no_partition_table() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let (_, mut image) = make_rootfs_tarball(dir.path());
    let good = sha(&image);
    let n = image.len();
    image[n / 2] ^= 0xff; // corrupt one byte in the middle of the stream
    let srv = serve_file(image.clone(), None);
    let disk = Loop::new(dir.path(), "disk.img", 4 << 30);
    let plan = plan(serde_json::json!({"path": disk.dev}), &srv.url, &good, n as u64);
    let mut rep = Reporter::new(None, "", metalboot_installer::https::agent(None));
    let err = install::install(&plan, &loop_opts(dir.path()), &mut rep).expect_err("corrupt image refused");
    let msg = format!("{err:#}");
    assert!(msg.contains("checksum mismatch") || msg.contains("tar failed"), "{msg}");
    // the disk was written to: a reinstall must not reboot into it as if untouched
    assert!(!err.is::<install::NothingWritten>(), "{msg}");
    // nothing left mounted, and no partition table to boot from
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains(dir.path().to_str().unwrap()), "{mounts}");
    let pt =
        std::process::Command::new("blkid").args(["-p", "-s", "PTTYPE", "-o", "value", &disk.dev]).output().unwrap();
    assert!(String::from_utf8_lossy(&pt.stdout).trim().is_empty(), "partition table survived");
    let first_mib = std::fs::read(&disk.file).unwrap();
    assert!(first_mib[..1 << 20].iter().all(|b| *b == 0));
}

#[test]
#[ignore = "needs root and loop devices; run by `make test`"]
fn refuses_no_match_and_two_matches_without_writing_a_byte() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    // an unusual size so that no other test's loop device matches
    let size: u64 = (64 << 20) + 7 * (1 << 20);
    let a = Loop::new(dir.path(), "a.img", size);
    let b = Loop::new(dir.path(), "b.img", size);
    // give one disk old data, so "unchanged" means something
    sh(&format!("printf 'old data' | dd of={} conv=notrunc status=none", a.file.display()));
    let before = (a.sha256(), b.sha256());
    let both = serde_json::json!({"min_size": size, "max_size": size});
    let none = serde_json::json!({"serial": "NO-SUCH-SERIAL"});
    for (sel, want) in [(both, "2 disks match"), (none, "no disk matches")] {
        let plan = plan(sel, "http://127.0.0.1:9/x", &"0".repeat(64), 1);
        let mut rep = Reporter::new(None, "", metalboot_installer::https::agent(None));
        let err = install::install(&plan, &loop_opts(dir.path()), &mut rep).expect_err("refused");
        assert!(format!("{err:#}").contains(want), "{err:#}");
        assert!(err.is::<install::NothingWritten>(), "not marked as before the first write: {err:#}");
    }
    assert_eq!(before, (a.sha256(), b.sha256()), "a disk image changed");
}

#[test]
#[ignore = "needs root and loop devices; run by `make test`"]
fn refuses_a_disk_with_partitions_unless_wipe_is_set() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let disk = Loop::new(dir.path(), "d.img", 512 << 20);
    sh(&format!("printf 'label: gpt\\n,100M\\n' | sfdisk -q {} && partx -u {} || true", disk.dev, disk.dev));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let before = disk.sha256();
    let plan = plan(serde_json::json!({"path": disk.dev}), "http://127.0.0.1:9/x", &"0".repeat(64), 1);
    let mut rep = Reporter::new(None, "", metalboot_installer::https::agent(None));
    let err = install::install(&plan, &loop_opts(dir.path()), &mut rep).expect_err("refused");
    assert!(format!("{err:#}").contains("holds partitions"), "{err:#}");
    assert!(err.is::<install::NothingWritten>(), "not marked as before the first write: {err:#}");
    assert_eq!(before, disk.sha256());
}

fn raid_plan(a: &str, b: &str, url: &str, sha256: &str, size: u64) -> metalboot_spec::InstallPlan {
    let mut v = serde_json::to_value(plan(serde_json::json!({"path": a}), url, sha256, size)).unwrap();
    v.as_object_mut().unwrap().remove("disk");
    v["disks"] = serde_json::json!([{"path": a}, {"path": b}]);
    v["layout"]["raid"] = "raid1".into();
    let p: metalboot_spec::InstallPlan = serde_json::from_value(v).unwrap();
    p.validate().unwrap();
    p
}

/// A partition of `dev` (512-byte sectors) as a loop device.
fn part_loop(dev: &str, p: &gpt::partition::Partition) -> PartLoop {
    PartLoop::new(dev, p.first_lba * 512, (p.last_lba + 1 - p.first_lba) * 512)
}

#[test]
#[ignore = "needs root and loop devices; run by `make test`"]
fn installs_btrfs_raid1_across_two_loop_disks() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let (_, image) = make_rootfs_tarball(dir.path());
    let srv = serve_file(image.clone(), None);
    // disks of different sizes: the raid1 holds what the smaller one does
    let a = Loop::new(dir.path(), "a.img", 4 << 30);
    let b = Loop::new(dir.path(), "b.img", 5 << 30);
    let plan = raid_plan(&a.dev, &b.dev, &srv.url, &sha(&image), image.len() as u64);
    let mut rep = Reporter::new(None, "", metalboot_installer::https::agent(None));
    install::install(&plan, &loop_opts(dir.path()), &mut rep).expect("install succeeds");

    let mut roots = Vec::new();
    let mut esps = Vec::new();
    for disk in [&a, &b] {
        let g = gpt::GptConfig::new().open(&disk.dev).unwrap();
        let parts: Vec<_> = g.partitions().values().cloned().collect();
        assert_eq!(parts.len(), 3, "{}", disk.dev);
        assert_eq!(parts[0].part_type_guid, gpt::partition_types::BIOS);
        assert_eq!(parts[1].part_type_guid, gpt::partition_types::EFI);
        assert_eq!(parts[2].part_type_guid, gpt::partition_types::LINUX_FS);
        esps.push(part_loop(&disk.dev, &parts[1]));
        roots.push(part_loop(&disk.dev, &parts[2]));
    }
    for e in &esps {
        assert_eq!(sh(&format!("blkid -p -s TYPE -o value {}", e.0)).trim(), "vfat");
    }
    let uuids: Vec<String> =
        roots.iter().map(|r| sh(&format!("blkid -p -s UUID -o value {}", r.0)).trim().to_string()).collect();
    assert_eq!(uuids[0], uuids[1], "one filesystem on both disks");
    let top = dir.path().join("top");
    std::fs::create_dir_all(&top).unwrap();
    sh(&format!("mount -o subvolid=5,device={},device={} {} {}", roots[0].0, roots[1].0, roots[0].0, top.display()));
    let check = std::panic::catch_unwind(|| {
        let df = sh(&format!("btrfs filesystem df {}", top.display()));
        assert!(df.contains("Data, RAID1") && df.contains("Metadata, RAID1"), "{df}");
        let show = sh(&format!("btrfs filesystem show {}", top.display()));
        assert!(show.contains("Total devices 2"), "{show}");
        let r = top.join("@");
        assert_eq!(std::fs::read_to_string(top.join("@home/alice/notes")).unwrap(), "in @home\n");
        let fstab = std::fs::read_to_string(r.join("etc/fstab")).unwrap();
        assert!(fstab.contains(&format!("UUID={} / btrfs subvol=/@,", uuids[0])), "{fstab}");
        assert!(fstab.contains("/boot/efi vfat umask=0077,nofail,x-systemd.device-timeout=10s 0 1"), "{fstab}");
        let rule = std::fs::read_to_string(r.join("etc/udev/rules.d/65-metalboot-btrfs-degraded.rules")).unwrap();
        assert!(rule.contains(&format!("ENV{{ID_FS_UUID}}!=\"{}\"", uuids[0])), "{rule}");
        let hook = r.join("etc/initramfs-tools/scripts/local-premount/metalboot-btrfs-degraded");
        assert_eq!(std::fs::metadata(&hook).unwrap().permissions().mode() & 0o777, 0o755);
        assert!(r.join("etc/grub.d/11_metalboot_degraded").exists());
    });
    sh(&format!("umount {}", top.display()));
    check.unwrap();
}

#[test]
#[ignore = "needs root and loop devices; run by `make test`"]
fn a_failed_raid1_install_wipes_both_disks() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let (_, mut image) = make_rootfs_tarball(dir.path());
    let good = sha(&image);
    let n = image.len();
    image[n / 2] ^= 0xff;
    let srv = serve_file(image, None);
    let a = Loop::new(dir.path(), "a.img", 4 << 30);
    let b = Loop::new(dir.path(), "b.img", 4 << 30);
    let plan = raid_plan(&a.dev, &b.dev, &srv.url, &good, n as u64);
    let mut rep = Reporter::new(None, "", metalboot_installer::https::agent(None));
    let err = install::install(&plan, &loop_opts(dir.path()), &mut rep).expect_err("corrupt image refused");
    assert!(!err.is::<install::NothingWritten>(), "{err:#}");
    for disk in [&a, &b] {
        let head = std::fs::read(&disk.file).unwrap();
        assert!(head[..1 << 20].iter().all(|b| *b == 0), "{} kept a partition table", disk.dev);
    }
}

#[test]
#[ignore = "needs root and loop devices; run by `make test`"]
fn a_raid1_with_one_disk_chosen_twice_writes_nothing() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let size: u64 = (64 << 20) + 11 * (1 << 20);
    let a = Loop::new(dir.path(), "a.img", size);
    let before = a.sha256();
    // the same disk by path and by size: only the installer can tell
    let mut v =
        serde_json::to_value(plan(serde_json::json!({"path": a.dev}), "http://127.0.0.1:9/x", &"0".repeat(64), 1))
            .unwrap();
    v.as_object_mut().unwrap().remove("disk");
    v["disks"] = serde_json::json!([{"path": a.dev}, {"min_size": size, "max_size": size}]);
    v["layout"]["raid"] = "raid1".into();
    let p: metalboot_spec::InstallPlan = serde_json::from_value(v).unwrap();
    p.validate().unwrap();
    let mut rep = Reporter::new(None, "", metalboot_installer::https::agent(None));
    let err = install::install(&p, &loop_opts(dir.path()), &mut rep).expect_err("refused");
    assert!(format!("{err:#}").contains("both match"), "{err:#}");
    assert!(err.is::<install::NothingWritten>(), "{err:#}");
    assert_eq!(before, a.sha256());
}
