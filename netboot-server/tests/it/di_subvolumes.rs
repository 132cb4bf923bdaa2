//! The Debian installer's subvolume step (`subvolumes.sh`, run by the
//! preseed's `preseed/late_command`) on a real BTRFS filesystem: a loop file
//! laid out as Debian 12's partman leaves it (root in `@rootfs`, an fstab
//! naming it, files under /home and /var/log), the script run with busybox
//! `sh` as the installer would, then the result read back with btrfs-progs.

use crate::common;
use metalboot::inventory::Inventory;
use metalboot::render::Renderer;
use metalboot::script::{self, Site};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A loopback HTTP server that records request lines and answers 200.
fn recorder() -> (String, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let mut line = String::new();
            let mut r = BufReader::new(c.try_clone().unwrap());
            r.read_line(&mut line).unwrap();
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            s.lock().unwrap().push(line.trim_end().to_string());
            let _ = c.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (base, seen)
}

/// Unmounts everything under `dir`, deepest first, even when the test fails.
struct Mounted<'a>(&'a Path);

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-R").arg(self.0).status();
    }
}

/// Detaches a loop device.
struct Loop(String);

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

fn write(p: &Path, body: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

#[test]
#[ignore = "needs root: mounts a loop BTRFS filesystem"]
fn subvolumes_turn_partmans_rootfs_into_the_design_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("disk.img");
    std::fs::File::create(&img).unwrap().set_len(300 << 20).unwrap();
    run("mkfs.btrfs", &["-q", img.to_str().unwrap()]);
    let uuid = run("blkid", &["-s", "UUID", "-o", "value", img.to_str().unwrap()]).trim().to_string();

    // what partman leaves: / in @rootfs
    let dev = run("losetup", &["--find", "--show", img.to_str().unwrap()]).trim().to_string();
    let _loop_guard = Loop(dev.clone());
    let top = tmp.path().join("top");
    std::fs::create_dir(&top).unwrap();
    run("mount", &[&dev, top.to_str().unwrap()]);
    let _top_guard = Mounted(&top);
    run("btrfs", &["-q", "subvolume", "create", top.join("@rootfs").to_str().unwrap()]);
    let r = top.join("@rootfs");
    write(
        &r.join("etc/fstab"),
        &format!(
            "# /etc/fstab: static file system information.\n\
             # <file system> <mount point>   <type>  <options>       <dump>  <pass>\n\
             UUID={uuid} /               btrfs   defaults,subvol=@rootfs 0       0\n\
             # /boot/efi was on /dev/vda2 during installation\n\
             UUID=1234-ABCD  /boot/efi       vfat    umask=0077      0       1\n"
        ),
    );
    write(&r.join("home/alice/notes.txt"), "alice\n");
    write(&r.join("var/log/installer/syslog"), "d-i log\n");
    write(&r.join("var/lib/dpkg/status"), "Package: base-files\n");
    std::os::unix::fs::symlink("installer/syslog", r.join("var/log/latest")).unwrap();
    std::fs::create_dir_all(r.join("run")).unwrap();
    run("umount", &[top.to_str().unwrap()]);

    let target = tmp.path().join("target");
    std::fs::create_dir(&target).unwrap();
    run("mount", &["-o", "subvol=@rootfs", &dev, target.to_str().unwrap()]);
    let _target_guard = Mounted(&target);

    // di3 nests /var/log under /var
    let inv = Inventory::load(&common::fixtures().join("inventory")).unwrap();
    let host = inv.get("di3").unwrap();
    let (base, seen) = recorder();
    let cfg = common::fixture_config(Path::new("/tmp"));
    let site = Site { base_url: &base, tls: None, console: &cfg.console, debian: &cfg.debian_installer };
    let sh = script::di_script(&Renderer::embedded().unwrap(), &site, host, TOKEN, "subvolumes.sh").unwrap().unwrap();
    let script_path = tmp.path().join("subvolumes.sh");
    std::fs::write(&script_path, sh).unwrap();
    let out = Command::new("busybox").arg("sh").arg(&script_path).env("METALBOOT_TARGET", &target).output().unwrap();
    assert!(out.status.success(), "subvolumes.sh failed: {}", String::from_utf8_lossy(&out.stderr));

    // the layout, read back
    run("mount", &["-o", "subvolid=5", &dev, top.to_str().unwrap()]);
    let list = run("btrfs", &["subvolume", "list", top.to_str().unwrap()]);
    let mut names: Vec<&str> = list.lines().filter_map(|l| l.split_whitespace().last()).collect();
    names.sort();
    assert_eq!(names, ["@", "@home", "@snapshots", "@var", "@var_log"], "{list}");
    let default = run("btrfs", &["subvolume", "get-default", top.to_str().unwrap()]);
    assert!(default.trim_end().ends_with(" path @"), "{default}");

    // contents moved, nothing left behind under the mount points
    assert_eq!(std::fs::read_to_string(top.join("@home/alice/notes.txt")).unwrap(), "alice\n");
    assert_eq!(std::fs::read_to_string(top.join("@var_log/installer/syslog")).unwrap(), "d-i log\n");
    assert_eq!(std::fs::read_link(top.join("@var_log/latest")).unwrap(), Path::new("installer/syslog"));
    assert_eq!(std::fs::read_to_string(top.join("@var/lib/dpkg/status")).unwrap(), "Package: base-files\n");
    assert!(!top.join("@var/log/installer").exists(), "/var/log contents stayed in @var");
    assert_eq!(std::fs::read_dir(top.join("@/home")).unwrap().count(), 0, "/home not empty in @");
    assert!(!top.join("@/run/metalboot-top").exists(), "the top-level mount point was left behind");

    // the target sees them mounted where they belong
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    for (mp, sv) in [("home", "@home"), ("var", "@var"), ("var/log", "@var_log"), (".snapshots", "@snapshots")] {
        let want = format!(" {} btrfs ", target.join(mp).display());
        let line = mounts.lines().find(|l| l.contains(&want)).unwrap_or_else(|| panic!("{mp} not mounted"));
        assert!(line.contains(&format!("subvol=/{sv}")), "{line}");
    }

    // fstab: the root line renamed, one line per subvolume, the rest untouched
    let fstab = std::fs::read_to_string(top.join("@/etc/fstab")).unwrap();
    let lines: Vec<&str> = fstab.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines,
        [
            format!("UUID={uuid} /               btrfs   defaults,subvol=@ 0       0").as_str(),
            "UUID=1234-ABCD  /boot/efi       vfat    umask=0077      0       1",
            format!("UUID={uuid} /.snapshots btrfs defaults,subvol=@snapshots 0 0").as_str(),
            format!("UUID={uuid} /home btrfs defaults,subvol=@home 0 0").as_str(),
            format!("UUID={uuid} /var btrfs defaults,subvol=@var 0 0").as_str(),
            format!("UUID={uuid} /var/log btrfs defaults,subvol=@var_log 0 0").as_str(),
        ]
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert!(seen[0].starts_with("GET /v1/hosts/di3/events/subvolumes?token="), "{}", seen[0]);
    assert!(seen[0].contains("&status=done&message=@%20is%20/%20and%20the%20default%20subvolume"), "{}", seen[0]);
}

#[test]
#[ignore = "needs root: mounts a loop BTRFS filesystem"]
fn subvolumes_refuse_a_root_that_is_not_btrfs() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    std::fs::create_dir(&target).unwrap();
    run("mount", &["-t", "tmpfs", "tmpfs", target.to_str().unwrap()]);
    let _g = Mounted(&target);
    let inv = Inventory::load(&common::fixtures().join("inventory")).unwrap();
    let (base, seen) = recorder();
    let cfg = common::fixture_config(Path::new("/tmp"));
    let site = Site { base_url: &base, tls: None, console: &cfg.console, debian: &cfg.debian_installer };
    let sh = script::di_script(&Renderer::embedded().unwrap(), &site, inv.get("di1").unwrap(), TOKEN, "subvolumes.sh")
        .unwrap()
        .unwrap();
    let p = tmp.path().join("s.sh");
    std::fs::write(&p, sh).unwrap();
    let out = Command::new("busybox").arg("sh").arg(&p).env("METALBOOT_TARGET", &target).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{} is tmpfs on tmpfs, not btrfs", target.display())), "{err}");
    let seen = seen.lock().unwrap();
    assert!(
        seen.len() == 1 && seen[0].contains("/events/subvolumes?") && seen[0].contains("status=failed"),
        "{seen:#?}"
    );
}
