//! A reinstall that keeps `@home` (`plan.keep`), on loop devices with the
//! installer's real steps: a first install, a file written into `/home`,
//! then the reinstall: the file is there, the image's own `/home` was not
//! unpacked over it, the old root is read-only under `@snapshots`, the new
//! root is the default; a `keep` naming a subvolume the disk does not have
//! is refused before anything is written.

use crate::common::*;
use metalboot_installer::install::{self, NothingWritten};
use metalboot_installer::report::Reporter;
use sha2::Digest;
use std::path::Path;

/// Runs `f` with the filesystem's top level mounted.
fn with_top<T>(disk: &str, dir: &Path, f: impl FnOnce(&Path) -> T + std::panic::UnwindSafe) -> T {
    let root = PartLoop::partition(disk, 3);
    let top = dir.join("top");
    std::fs::create_dir_all(&top).unwrap();
    sh(&format!("mount -o subvolid=5 {} {}", root.0, top.display()));
    let r = std::panic::catch_unwind(|| f(&top));
    sh(&format!("umount {}", top.display()));
    r.unwrap()
}

#[test]
#[ignore = "needs root and loop devices; run by `make test`"]
fn a_reinstall_keeping_home_replaces_only_the_root() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let (_, image) = make_rootfs_tarball(dir.path());
    let srv = serve_file(image.clone(), None);
    let disk = Loop::new(dir.path(), "disk.img", 4 << 30);
    let sha = hex::encode(sha2::Sha256::digest(&image));
    let mut plan = plan(serde_json::json!({"path": disk.dev}), &srv.url, &sha, image.len() as u64);
    let mut rep = Reporter::new(None, "", metalboot_installer::https::agent(None));
    let first = install::install(&plan, &loop_opts(dir.path()), &mut rep).expect("first install");
    with_top(&disk.dev, dir.path(), |top| {
        std::fs::write(top.join("@home/alice/notes"), "the operator's own\n").unwrap();
        std::fs::write(top.join("@home/kept-file"), "data\n").unwrap();
        std::fs::write(top.join("@/old-root-marker"), "old\n").unwrap();
        std::fs::write(top.join("@var_log/old.log"), "old log\n").unwrap();
    });

    // a subvolume that is not there: refused, nothing written
    let before = disk.sha256();
    plan.keep = vec!["@home".into(), "@var_log".into()];
    plan.layout.subvolumes.push(metalboot_spec::Subvolume { name: "@data".into(), mountpoint: "/srv/data".into() });
    plan.keep.push("@data".into());
    plan.validate().unwrap();
    let err = install::install(&plan, &loop_opts(dir.path()), &mut rep).expect_err("@data is not on the disk");
    assert!(err.is::<NothingWritten>(), "{err:#}");
    assert!(format!("{err:#}").contains("no subvolume @data"), "{err:#}");
    assert_eq!(disk.sha256(), before, "a refused keep changed the disk");

    plan.layout.subvolumes.pop();
    plan.keep = vec!["@home".into()];
    plan.validate().unwrap();
    let second = install::install(&plan, &loop_opts(dir.path()), &mut rep).expect("reinstall keeping @home");
    assert_ne!(first.host_keys, second.host_keys, "new host keys");
    with_top(&disk.dev, dir.path(), |top| {
        assert_eq!(std::fs::read_to_string(top.join("@home/alice/notes")).unwrap(), "the operator's own\n");
        assert_eq!(std::fs::read_to_string(top.join("@home/kept-file")).unwrap(), "data\n");
        assert!(!top.join("@/old-root-marker").exists(), "the root was not replaced");
        assert!(top.join("@/etc/hostname").exists(), "the new root has no image");
        assert!(!top.join("@var_log/old.log").exists(), "@var_log was not replaced");
        let snaps: Vec<String> = std::fs::read_dir(top.join("@snapshots"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let old_root = snaps.iter().find(|s| s.starts_with("@.replaced.")).expect("the old root under @snapshots");
        assert!(snaps.iter().any(|s| s.starts_with("@var_log.replaced.")), "{snaps:?}");
        let old = top.join("@snapshots").join(old_root);
        assert_eq!(std::fs::read_to_string(old.join("old-root-marker")).unwrap(), "old\n");
        let ro = sh(&format!("btrfs property get -ts {} ro", old.display()));
        assert_eq!(ro.trim(), "ro=true");
        let def = sh(&format!("btrfs subvolume get-default {}", top.display()));
        assert!(def.trim().ends_with("path @"), "{def}");
    });
}
