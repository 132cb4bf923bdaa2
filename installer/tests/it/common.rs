//! Helpers for installer tests on the build machine: loop devices over
//! sparse files, a small real root filesystem tarball, and a one-file HTTP
//! server with Range support that can drop a connection on purpose.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (it attaches loop devices); run it through `make test`"
    );
}

/// A loop device over a sparse file, detached on drop.
pub struct Loop {
    pub dev: String,
    pub file: PathBuf,
}

impl Loop {
    pub fn new(dir: &Path, name: &str, bytes: u64) -> Loop {
        let file = dir.join(name);
        std::fs::File::create(&file).unwrap().set_len(bytes).unwrap();
        let dev = sh(&format!("losetup --find --show --partscan {}", file.display())).trim().to_string();
        Loop { dev, file }
    }

    pub fn sha256(&self) -> String {
        sh(&format!("sha256sum < {}", self.file.display())).split_whitespace().next().unwrap().to_string()
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

/// Builds a small but real root filesystem: the build machine's ssh-keygen
/// with its libraries (the installer runs it in the new root), /etc files,
/// and files with special owners, modes, links and an xattr.
pub fn make_rootfs_tarball(dir: &Path) -> (PathBuf, Vec<u8>) {
    let root = dir.join("rootfs");
    for d in ["etc/ssh", "usr/bin", "home/alice", "var/log", "srv", "root", "tmp", "boot"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let keygen = "/usr/bin/ssh-keygen";
    let mut files = vec![keygen.to_string()];
    for line in sh(&format!("ldd {keygen}")).lines() {
        let p = match line.split_once("=>") {
            Some((_, r)) => r.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = p.filter(|p| p.starts_with('/')) {
            files.push(p.to_string());
        }
    }
    for f in files {
        let dst = root.join(f.trim_start_matches('/'));
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&f, &dst).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
    std::fs::write(root.join("home/alice/notes"), "in @home\n").unwrap();
    std::fs::write(root.join("var/log/boot.log"), "in @var_log\n").unwrap();
    std::fs::write(root.join("srv/owned"), "owned by 1234:5678\n").unwrap();
    sh(&format!(
        "cd {r} && chown 1234:5678 srv/owned && chmod 0640 srv/owned && ln srv/owned srv/hard && ln -s owned srv/link \
         && printf x > srv/suid && chmod 4755 srv/suid && chmod 1777 tmp",
        r = root.display()
    ));
    xattr::set(root.join("srv/owned"), "user.metalboot", b"kept").unwrap();
    let tarball = dir.join("rootfs.tar.zst");
    sh(&format!(
        "tar --numeric-owner --xattrs --xattrs-include='*' -C {} -cf - . | zstd -q -T0 -o {}",
        root.display(),
        tarball.display()
    ));
    let bytes = std::fs::read(&tarball).unwrap();
    (tarball, bytes)
}

/// Serves `data` at `/rootfs.tar.zst` with Range support. If `drop_after`
/// is set, the first response is cut after that many bytes.
pub struct FileServer {
    pub url: String,
    pub requests: Arc<AtomicU64>,
}

pub fn serve_file(data: Vec<u8>, drop_after: Option<u64>) -> FileServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/rootfs.tar.zst", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicU64::new(0));
    let count = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let n = count.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let mut start = 0u64;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(r) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    start = r.trim().trim_end_matches('-').parse().unwrap_or(0);
                }
            }
            let body = &data[start as usize..];
            let status = if start > 0 { "206 Partial Content" } else { "200 OK" };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nETag: \"v1\"\r\nConnection: close\r\n{}\r\n",
                body.len(),
                if start > 0 {
                    format!("Content-Range: bytes {start}-{}/{}\r\n", data.len() - 1, data.len())
                } else {
                    String::new()
                }
            );
            let _ = s.write_all(head.as_bytes());
            let limit = match (n, drop_after) {
                (0, Some(d)) => d as usize,
                _ => body.len(),
            };
            let _ = s.write_all(&body[..limit.min(body.len())]);
            let _ = s.flush();
            let _ = s.shutdown(std::net::Shutdown::Both);
            let _ = reader.read(&mut [0u8; 1]);
        }
    });
    FileServer { url, requests }
}

pub const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example";

/// A plan for `disk_toml` (a TOML inline selector) and the image.
pub fn plan(disk_json: serde_json::Value, url: &str, sha256: &str, size: u64) -> metalboot_spec::InstallPlan {
    let v = serde_json::json!({
        "version": 1,
        "hostname": "looptest",
        "macs": ["52:54:00:00:00:01"],
        "disk": disk_json,
        "layout": metalboot_spec::Layout::default(),
        "network": {"mode": "static", "mac": "52:54:00:00:00:01", "addresses": ["192.0.2.9/24"], "gateway": "192.0.2.1", "dns": ["192.0.2.53"]},
        "image": {"url": url, "sha256": sha256, "size": size},
        "ssh_authorized_keys": [KEY],
        "root_password_hash": "$6$salt$hash",
        "kernel_args": [],
        "on_failure": "shell",
        "endpoints": {"events": "http://127.0.0.1:9/e", "report": "http://127.0.0.1:9/r", "installed": "http://127.0.0.1:9/i"}
    });
    let p: metalboot_spec::InstallPlan = serde_json::from_value(v).unwrap();
    p.validate().unwrap();
    p
}

/// One partition of a disk image through its own loop device (the build
/// machine's kernel may not scan GPTs on loop devices).
pub struct PartLoop(pub String);

impl PartLoop {
    pub fn new(dev: &str, offset: u64, size: u64) -> PartLoop {
        PartLoop(sh(&format!("losetup --find --show --offset {offset} --sizelimit {size} {dev}")).trim().to_string())
    }

    /// Partition `n` (1-based) of `dev`'s GPT, 512-byte sectors.
    pub fn partition(dev: &str, n: u32) -> PartLoop {
        let g = gpt::GptConfig::new().open(dev).unwrap();
        let p = &g.partitions()[&n];
        PartLoop::new(dev, p.first_lba * 512, (p.last_lba + 1 - p.first_lba) * 512)
    }
}

impl Drop for PartLoop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// The installer's options for an install on loop devices in `dir`: no
/// bootloader, partitions through offset loop devices.
pub fn loop_opts(dir: &Path) -> metalboot_installer::install::Options {
    metalboot_installer::install::Options {
        sys: "/sys".into(),
        loop_only: true,
        target: dir.join("target"),
        scratch: dir.join("scratch"),
        token: "looptoken".into(),
        bootloader: false,
        host_keys: None,
        phone_home: true,
        pins: None,
    }
}
