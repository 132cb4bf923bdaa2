//! The Debian installer's disk selector (`select-disk.sh`, run by the
//! preseed's `partman/early_command`) against metalboot's own installer: on
//! the installer's recorded sysfs tree, every selector must pick the same
//! disk, or fail with the same message, as `installer::select`. Run under
//! busybox `sh` (the shell the Debian installer has); as root, also inside
//! the real Debian installer initrd's userland (its busybox has fewer
//! applets than Debian's `busybox` package).

use crate::common;
use metalboot::inventory::Inventory;
use metalboot::render::Renderer;
use metalboot::script::{self, Site};
use metalboot_installer::probe::probe_disks;
use metalboot_installer::select::select;
use metalboot_spec::{ByteSize, DiskSelector, HostSpec};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const DI_INITRD: &str = "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/initrd.gz";

fn sysfs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../installer/tests/fixtures/sysfs-mixed")
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

fn host_with(disk: DiskSelector) -> HostSpec {
    let inv = Inventory::load(&common::fixtures().join("inventory")).unwrap();
    let mut h = inv.get("di1").unwrap().clone();
    h.disk = Some(disk);
    h
}

fn render(base: &str, h: &HostSpec) -> String {
    let cfg = common::fixture_config(Path::new("/tmp"));
    let site = Site { base_url: base, tls: None, console: &cfg.console, debian: &cfg.debian_installer };
    script::di_script(&Renderer::embedded().unwrap(), &site, h, TOKEN, "select-disk.sh").unwrap().unwrap()
}

struct Case {
    what: &'static str,
    sel: DiskSelector,
    /// Kernel names of disks the running system has mounted.
    mounted: &'static [&'static str],
}

fn cases() -> Vec<Case> {
    let s = |f: &dyn Fn(&mut DiskSelector)| {
        let mut d = DiskSelector::default();
        f(&mut d);
        d
    };
    vec![
        Case { what: "serial", sel: s(&|d| d.serial = Some("WD-WCC4M0654321".into())), mounted: &[] },
        Case { what: "wwn, other spelling", sel: s(&|d| d.wwn = Some("0x50014EE2B5E3C2A1".into())), mounted: &[] },
        Case {
            what: "model with spaces",
            sel: s(&|d| d.model = Some("Samsung SSD 980 PRO 500GB".into())),
            mounted: &[],
        },
        Case {
            what: "size window",
            sel: s(&|d| {
                d.min_size = Some(ByteSize(400 << 30));
                d.max_size = Some(ByteSize(600 << 30));
            }),
            mounted: &[],
        },
        Case { what: "path", sel: s(&|d| d.path = Some("/dev/vdb".into())), mounted: &[] },
        Case { what: "no match", sel: s(&|d| d.serial = Some("NOPE".into())), mounted: &[] },
        Case { what: "two matches", sel: s(&|d| d.model = Some("WDC WD20EFRX-68E".into())), mounted: &[] },
        Case { what: "removable by path", sel: s(&|d| d.path = Some("/dev/sdc".into())), mounted: &[] },
        Case { what: "in use", sel: s(&|d| d.serial = Some("VIRTIO-DATA".into())), mounted: &["vdb"] },
        Case { what: "partitions, no wipe", sel: s(&|d| d.serial = Some("VIRTIO-SYS".into())), mounted: &[] },
        Case {
            what: "partitions, wipe",
            sel: s(&|d| {
                d.serial = Some("VIRTIO-SYS".into());
                d.wipe = true;
            }),
            mounted: &[],
        },
        Case { what: "min size only", sel: s(&|d| d.min_size = Some(ByteSize(1 << 40))), mounted: &[] },
        Case { what: "max size only", sel: s(&|d| d.max_size = Some(ByteSize(8 << 30))), mounted: &["vda"] },
    ]
}

/// What the Rust selector says: Ok(device) or Err(message).
fn expected(c: &Case) -> Result<String, String> {
    let disks = probe_disks(&sysfs()).unwrap();
    let excluded: Vec<String> = c.mounted.iter().map(|s| s.to_string()).collect();
    select(&disks, &c.sel, &excluded).map(|d| d.path.clone()).map_err(|e| e.to_string())
}

fn mounts_file(dir: &Path, mounted: &[&str]) -> PathBuf {
    let p = dir.join("mounts");
    let body: String = mounted.iter().map(|m| format!("/dev/{m} /media ext4 rw 0 0\n")).collect();
    std::fs::write(&p, body).unwrap();
    p
}

/// Runs `cmd`; Ok(stdout) on exit 0, Err(stderr) otherwise, both trimmed.
fn outcome(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().expect("running the selector");
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    match out.status.code() {
        Some(0) => Ok(stdout),
        Some(1) => Err(stderr.strip_prefix("metalboot: ").unwrap_or(&stderr).to_string()),
        other => panic!("selector exited {other:?}: {stderr}"),
    }
}

#[test]
fn select_disk_agrees_with_the_installer_under_busybox() {
    let (base, seen) = recorder();
    let tmp = tempfile::tempdir().unwrap();
    for c in cases() {
        let want = expected(&c);
        let path = tmp.path().join("select-disk.sh");
        std::fs::write(&path, render(&base, &host_with(c.sel.clone()))).unwrap();
        let got = outcome(
            Command::new("busybox")
                .arg("sh")
                .arg(&path)
                .env("METALBOOT_SYSFS", sysfs())
                .env("METALBOOT_MOUNTS", mounts_file(tmp.path(), c.mounted)),
        );
        assert_eq!(got, want, "case {:?}", c.what);
    }
    // every case reported its outcome, failures with the reason
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), cases().len(), "{seen:#?}");
    assert!(seen.iter().all(|l| l.starts_with("GET /v1/hosts/di1/events/select-disk?token=")), "{seen:#?}");
    let two = seen.iter().find(|l| l.contains("refusing%20to%20guess")).expect("ambiguous case reported");
    assert!(two.contains("&status=failed&message=2%20disks%20match%20model%3DWDC%20WD20EFRX-68E"), "{two}");
    assert!(seen.iter().any(|l| l.contains("status=done&message=installing%20to%20/dev/sdb")), "{seen:#?}");
}

/// The real Debian installer userland: its initrd unpacked, the selector
/// and the sysfs tree copied in, run with `chroot … /bin/sh`.
#[test]
#[ignore = "needs root (chroot) and the debian-installer-12-netboot-amd64 package"]
fn select_disk_agrees_with_the_installer_inside_the_debian_installer() {
    assert!(Path::new(DI_INITRD).exists(), "{DI_INITRD} missing: apt-get install debian-installer-12-netboot-amd64");
    let root = tempfile::tempdir().unwrap();
    let unpack = format!("zcat {DI_INITRD} | cpio -idm --quiet");
    let st = Command::new("sh").arg("-c").arg(&unpack).current_dir(root.path()).status().unwrap();
    assert!(st.success(), "unpacking the installer initrd");
    let st = Command::new("cp").arg("-a").arg(sysfs()).arg(root.path().join("fixture-sys")).status().unwrap();
    assert!(st.success());
    // no server inside the chroot's view is needed: reports fail quietly
    for c in cases() {
        let want = expected(&c);
        std::fs::write(root.path().join("select-disk.sh"), render("http://127.0.0.1:9", &host_with(c.sel.clone())))
            .unwrap();
        mounts_file(root.path(), c.mounted);
        let got = outcome(
            Command::new("chroot")
                .arg(root.path())
                .args(["/bin/sh", "/select-disk.sh"])
                .env_clear()
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
                .env("METALBOOT_SYSFS", "/fixture-sys")
                .env("METALBOOT_MOUNTS", "/mounts"),
        );
        assert_eq!(got, want, "case {:?}", c.what);
    }
}
