//! The one-shot GRUB entry of `metalboot reinstall --boot-via grub`: the
//! probe recorded on a classic ext4 Debian (`fixtures/grub/`), the
//! refusals where GRUB could not clear the entry, the rendered entry
//! checked by GRUB's own `grub-script-check`, and the arm and disarm
//! scripts run in a real shell against real `grub-reboot` and
//! `grub-editenv` on a scratch boot directory.

use metalboot::operator::reinstall::oneshot::{GrubFacts, ENTRY_ID};
use std::path::Path;
use std::process::Command;

fn recorded() -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/grub/ext4.probe", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn ext4() -> GrubFacts {
    GrubFacts::parse(&recorded()).unwrap()
}

fn refusal(f: &GrubFacts) -> String {
    format!("{:#}", f.usable().expect_err("refused"))
}

#[test]
fn a_classic_ext4_debian_takes_a_one_shot_entry() {
    let f = ext4();
    assert_eq!((f.dir(), f.fs.as_str(), f.abstraction.as_str()), ("/boot/grub", "ext2", ""));
    assert_eq!(f.reboot.as_deref(), Some("/usr/sbin/grub-reboot"));
    assert_eq!(f.boot_free_kib, Some(3061604));
    f.usable().unwrap();
    f.check_space(21 << 20).unwrap();
    let e = format!("{:#}", f.check_space(4 << 30).unwrap_err());
    assert!(e.contains("/boot has 3061604 KiB free"), "{e}");
}

#[test]
fn where_grub_cannot_clear_the_entry_it_is_refused_by_name() {
    let mut f = ext4();
    f.fs = "btrfs".into();
    let e = refusal(&f);
    assert!(e.contains("/boot/grub is on btrfs") && e.contains("every reboot would start the installer"), "{e}");
    let mut f = ext4();
    f.fs = "zfs".into();
    assert!(refusal(&f).contains("on zfs"));
    let mut f = ext4();
    f.abstraction = "lvm\n".into();
    assert!(refusal(&f).contains("is on lvm (LVM, RAID or encryption)"));
    let mut f = ext4();
    f.abstraction = "diskfilter mdraid1x".into();
    assert!(refusal(&f).contains("diskfilter mdraid1x"));
    let mut f = ext4();
    f.cfg = f.cfg.replace("save_env next_entry", "");
    assert!(refusal(&f).contains("does not clear next_entry"));
    let mut f = ext4();
    f.cfg = f.cfg.lines().filter(|l| !l.contains("custom.cfg")).collect::<Vec<_>>().join("\n");
    assert!(refusal(&f).contains("does not read custom.cfg"));
    let mut f = ext4();
    f.cfg.push_str("\n  set timeout=-1\n");
    assert!(refusal(&f).contains("waits for a key"));
    let mut f = ext4();
    f.env = "saved_entry=0\nnext_entry=rescue".into();
    assert!(refusal(&f).contains("already pending in /boot/grub/grubenv: next_entry=rescue"));
    f.env = "next_entry=".into();
    f.usable().expect("an empty next_entry is what GRUB leaves after a one-shot");
    let f = GrubFacts::parse(&recorded().replace("/usr/sbin/grub-reboot", "none")).unwrap();
    assert!(refusal(&f).contains("grub-reboot or grub-editenv is not installed"));
    let f = GrubFacts::parse(&recorded().replace("### dir\n/boot/grub", "### dir\nnone")).unwrap();
    assert!(refusal(&f).contains("GRUB 2 does not boot it"));
}

#[test]
fn cut_or_foreign_probe_output_is_refused() {
    let cut: String = recorded().lines().take(8).map(|l| format!("{l}\n")).collect();
    assert!(format!("{:#}", GrubFacts::parse(&cut).unwrap_err()).contains("ends early"));
    assert!(format!("{:#}", GrubFacts::parse("Welcome\n").unwrap_err()).contains("not from metalboot's GRUB probe"));
}

const CMDLINE: &str = "console=ttyS0,115200 ip=10.99.0.50::10.99.0.1:255.255.255.255:vm1:eth0:off \
                       metalboot.url=http://10.99.0.1:8080 metalboot.token=abc metalboot.fallback=reboot";

#[test]
fn the_entry_finds_boot_by_uuid_and_keeps_every_argument_a_word() {
    let f = ext4();
    let e = f.menuentry(CMDLINE, &["initramfs.img"]).unwrap();
    assert!(e.contains(&format!("--id {ENTRY_ID} {{")), "{e}");
    assert!(e.contains("insmod ext2\n"), "{e}");
    assert!(e.contains("search --no-floppy --fs-uuid --set=root b66c3a71-6f5d-44d4-9ee4-5a56e7cd876e"), "{e}");
    assert!(e.contains("linux '/boot/metalboot/vmlinuz' 'console=ttyS0,115200' 'ip=10.99.0.50::"), "{e}");
    assert!(e.contains("'metalboot.fallback=reboot'\n"), "{e}");
    assert!(e.contains("initrd '/boot/metalboot/initramfs.img'\n"), "{e}");
    // a separate /boot: paths from its own root
    let mut sep = ext4();
    sep.boot_rel = "/".into();
    let e = sep.menuentry(CMDLINE, &["payload.cpio", "initramfs.img"]).unwrap();
    assert!(e.contains("linux '/metalboot/vmlinuz'"), "{e}");
    assert!(e.contains("initrd '/metalboot/payload.cpio' '/metalboot/initramfs.img'"), "{e}");
    for bad in ["a=b'c", "a=\u{1b}[2J"] {
        assert!(f.menuentry(&format!("console=ttyS0 {bad}"), &["initramfs.img"]).is_err(), "{bad:?}");
    }
}

#[test]
fn grub_script_check_accepts_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("custom.cfg");
    let e = ext4().menuentry(CMDLINE, &["payload.cpio", "initramfs.img"]).unwrap();
    std::fs::write(&cfg, e).unwrap();
    let out = Command::new("grub-script-check")
        .arg(&cfg)
        .output()
        .expect("grub-script-check (Debian grub-common, installed by `make deps`)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(&cfg, "menuentry 'x' {\n linux /v 'a\n").unwrap();
    let bad = Command::new("grub-script-check").arg(&cfg).output().unwrap();
    assert!(!bad.status.success(), "the check can fail");
}

/// The recorded facts pointed at a scratch `boot/grub`, with a
/// `grub-reboot` that writes that directory's grubenv.
fn scratch(root: &Path) -> GrubFacts {
    let grub = root.join("boot/grub");
    std::fs::create_dir_all(&grub).unwrap();
    let reboot = root.join("grub-reboot");
    std::fs::write(&reboot, format!("#!/bin/sh\nexec grub-reboot --boot-directory={}/boot \"$@\"\n", root.display()))
        .unwrap();
    Command::new("chmod").arg("+x").arg(&reboot).status().unwrap();
    let mut f = ext4();
    f.dir = Some(grub.display().to_string());
    f.reboot = Some(reboot.display().to_string());
    f.editenv = Some("grub-editenv".into());
    f
}

fn sh(script: &str, stdin: &str) -> (bool, String) {
    use std::io::Write;
    let mut c = Command::new("sh")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn env_list(f: &GrubFacts) -> String {
    let out = Command::new("grub-editenv").arg(format!("{}/grubenv", f.dir())).arg("list").output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn arming_keeps_the_operators_custom_cfg_and_disarming_restores_it() {
    let root = tempfile::tempdir().unwrap();
    let f = scratch(root.path());
    let custom = format!("{}/custom.cfg", f.dir());
    let mine = "menuentry 'rescue' --id rescue {\n  linux /rescue\n}\n";
    std::fs::write(&custom, mine).unwrap();
    let files = root.path().join("metalboot");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("vmlinuz"), "k").unwrap();
    let entry = f.menuentry(CMDLINE, &["initramfs.img"]).unwrap();

    let (ok, out) = sh(&f.arm_script(), &entry);
    assert!(ok, "{out}");
    assert_eq!(std::fs::read_to_string(&custom).unwrap(), format!("{mine}{entry}"));
    assert!(env_list(&f).contains(&format!("next_entry={ENTRY_ID}")), "{}", env_list(&f));
    // armed twice (a retry): still one entry after the operator's own
    let (ok, out) = sh(&f.arm_script(), &entry);
    assert!(ok, "{out}");
    assert_eq!(std::fs::read_to_string(&custom).unwrap(), format!("{mine}{entry}"));

    let (ok, out) = sh(&f.disarm_script(&files.display().to_string()), "");
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "pending", "the one-shot had not run yet");
    assert_eq!(std::fs::read_to_string(&custom).unwrap(), mine, "the operator's custom.cfg is back, byte for byte");
    assert!(!env_list(&f).contains("next_entry=metalboot"), "{}", env_list(&f));
    assert!(!files.exists());
    let left: Vec<_> = std::fs::read_dir(f.dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 2, "only custom.cfg and grubenv are left: {left:?}");
}

#[test]
fn without_a_custom_cfg_disarming_removes_the_one_it_made() {
    let root = tempfile::tempdir().unwrap();
    let f = scratch(root.path());
    let entry = f.menuentry(CMDLINE, &["initramfs.img"]).unwrap();
    let (ok, out) = sh(&f.arm_script(), &entry);
    assert!(ok, "{out}");
    let custom = format!("{}/custom.cfg", f.dir());
    assert_eq!(std::fs::read_to_string(&custom).unwrap(), entry);
    let (ok, out) = sh(&f.arm_script(), &entry);
    assert!(ok, "{out}");
    assert_eq!(std::fs::read_to_string(&custom).unwrap(), entry, "armed twice: one entry");
    // GRUB ran the entry: it cleared next_entry itself
    Command::new("grub-editenv").arg(format!("{}/grubenv", f.dir())).args(["set", "next_entry="]).status().unwrap();
    let (ok, out) = sh(&f.disarm_script(&root.path().join("none").display().to_string()), "");
    assert!(ok && out.trim().is_empty(), "{out}");
    assert!(!Path::new(&custom).exists());
    let left: Vec<_> = std::fs::read_dir(f.dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["grubenv"], "nothing of ours is left");
}

#[test]
fn the_probe_only_reads() {
    use metalboot::operator::reinstall::oneshot::GRUB_PROBE_SCRIPT;
    for line in GRUB_PROBE_SCRIPT.lines() {
        let l = line.replace("2>&1", "").replace("2>/dev/null", "");
        for word in ["rm ", "mv ", "cp ", " set ", "unset", "create", "grub-install", "update-grub", ">"] {
            assert!(!l.contains(word), "the GRUB probe writes ({word:?}): {line}");
        }
        assert!(!l.trim_start().starts_with("\"$reboot\""), "the GRUB probe runs grub-reboot: {line}");
    }
}
