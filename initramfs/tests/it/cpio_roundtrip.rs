//! The cpio writer against GNU cpio: what we write, `cpio -t` lists and
//! `cpio -i` unpacks with the same names, types, modes and contents.

use metalboot_initramfs::cpio::{Archive, Entry, Kind};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::process::{Command, Stdio};

fn sample() -> Archive {
    let mut a = Archive::new(1_700_000_000);
    a.file("/init", 0o755, b"#!/bin/sh\necho hi\n".to_vec()).unwrap();
    a.file("usr/lib/x86_64-linux-gnu/libz.so.1.2.13", 0o644, vec![7u8; 70_001]).unwrap();
    a.symlink("usr/lib/x86_64-linux-gnu/libz.so.1", "libz.so.1.2.13").unwrap();
    a.symlink("lib", "usr/lib").unwrap();
    a.dir("tmp", 0o1777).unwrap();
    a.add("dev/console", Entry { mode: 0o600, kind: Kind::CharDev { major: 5, minor: 1 } }).unwrap();
    a.add("dev/loop0", Entry { mode: 0o660, kind: Kind::BlockDev { major: 7, minor: 0 } }).unwrap();
    a.file("etc/empty", 0o600, Vec::new()).unwrap();
    a
}

fn bytes(a: &Archive) -> Vec<u8> {
    let mut v = Vec::new();
    a.write_to(&mut v).unwrap();
    v
}

fn cpio(args: &[&str], input: &[u8], dir: &std::path::Path) -> String {
    let mut child = Command::new("cpio")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("GNU cpio is installed (apt-get install cpio)");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "cpio {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn gnu_cpio_lists_every_entry_parents_first() {
    let dir = tempfile::tempdir().unwrap();
    let listed = cpio(&["-t", "--quiet"], &bytes(&sample()), dir.path());
    let names: Vec<&str> = listed.lines().collect();
    assert_eq!(
        names,
        [
            "dev",
            "dev/console",
            "dev/loop0",
            "etc",
            "etc/empty",
            "init",
            "lib",
            "tmp",
            "usr",
            "usr/lib",
            "usr/lib/x86_64-linux-gnu",
            "usr/lib/x86_64-linux-gnu/libz.so.1",
            "usr/lib/x86_64-linux-gnu/libz.so.1.2.13"
        ]
    );
}

#[test]
fn gnu_cpio_unpacks_contents_modes_links_and_devices() {
    let dir = tempfile::tempdir().unwrap();
    cpio(&["-i", "--quiet", "--make-directories", "--no-absolute-filenames"], &bytes(&sample()), dir.path());
    let p = dir.path();
    assert_eq!(std::fs::read(p.join("init")).unwrap(), b"#!/bin/sh\necho hi\n");
    assert_eq!(std::fs::metadata(p.join("init")).unwrap().permissions().mode() & 0o7777, 0o755);
    assert_eq!(std::fs::read(p.join("usr/lib/x86_64-linux-gnu/libz.so.1")).unwrap().len(), 70_001);
    assert_eq!(std::fs::read_link(p.join("lib")).unwrap().to_str(), Some("usr/lib"));
    assert_eq!(std::fs::metadata(p.join("tmp")).unwrap().permissions().mode() & 0o7777, 0o1777);
    assert_eq!(std::fs::metadata(p.join("etc/empty")).unwrap().len(), 0);
    let console = std::fs::symlink_metadata(p.join("dev/console")).unwrap();
    assert!(console.file_type().is_char_device());
    assert!(std::fs::symlink_metadata(p.join("dev/loop0")).unwrap().file_type().is_block_device());
    use std::os::unix::fs::MetadataExt;
    assert_eq!(console.rdev(), (5 << 8) | 1);
}

#[test]
fn same_entries_in_any_order_give_identical_bytes() {
    let a = bytes(&sample());
    let mut b = Archive::new(1_700_000_000);
    b.add("dev/loop0", Entry { mode: 0o660, kind: Kind::BlockDev { major: 7, minor: 0 } }).unwrap();
    b.file("etc/empty", 0o600, Vec::new()).unwrap();
    b.symlink("lib", "usr/lib").unwrap();
    b.file("usr/lib/x86_64-linux-gnu/libz.so.1.2.13", 0o644, vec![7u8; 70_001]).unwrap();
    b.dir("tmp", 0o1777).unwrap();
    b.symlink("usr/lib/x86_64-linux-gnu/libz.so.1", "libz.so.1.2.13").unwrap();
    b.add("dev/console", Entry { mode: 0o600, kind: Kind::CharDev { major: 5, minor: 1 } }).unwrap();
    b.file("/init", 0o755, b"#!/bin/sh\necho hi\n".to_vec()).unwrap();
    assert_eq!(a, bytes(&b));
    assert_ne!(a, bytes(&Archive::new(1)), "mtime is part of the output");
}

#[test]
fn traversal_is_refused_before_anything_is_written() {
    let mut a = Archive::new(0);
    for bad in ["../escape", "a/../../escape", "/..", "x/./y"] {
        assert!(a.file(bad, 0o644, b"x".to_vec()).is_err(), "{bad}");
    }
    assert_eq!(a.entries().count(), 0);
}
