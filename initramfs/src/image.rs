//! Assembles the installer initramfs: our `/init` and installer, busybox,
//! the real tools the installer calls (kmod, btrfs-progs, dosfstools,
//! util-linux, tar, zstd) with their shared libraries, CA certificates, and
//! the kernel modules for disks, NICs and filesystems with their dependencies.
//! The result is a deterministic newc cpio compressed with zstd.

use crate::cpio::{Archive, Kind};
use crate::hostfs::{busybox_applets, require, HostFs};
use crate::kernel::Kernel;
use crate::modules::{ModuleIndex, REQUIRED, WANTED};
use crate::run::output;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Real tools and the Debian package each comes from, by candidate paths.
const TOOLS: &[(&str, &[&str], &str)] = &[
    ("kmod", &["/usr/bin/kmod", "/bin/kmod"], "kmod"),
    (
        "mkfs.btrfs",
        &["/usr/sbin/mkfs.btrfs", "/sbin/mkfs.btrfs", "/usr/bin/mkfs.btrfs", "/bin/mkfs.btrfs"],
        "btrfs-progs",
    ),
    ("btrfs", &["/usr/bin/btrfs", "/bin/btrfs"], "btrfs-progs"),
    ("mkfs.fat", &["/usr/sbin/mkfs.fat", "/sbin/mkfs.fat"], "dosfstools"),
    ("blkid", &["/usr/sbin/blkid", "/sbin/blkid"], "util-linux"),
    ("wipefs", &["/usr/sbin/wipefs", "/sbin/wipefs"], "util-linux"),
    ("tar", &["/usr/bin/tar", "/bin/tar"], "tar"),
    ("zstd", &["/usr/bin/zstd"], "zstd"),
    ("chroot", &["/usr/sbin/chroot"], "coreutils"),
];

/// What went into an initramfs, for the build report.
#[derive(Serialize, Debug)]
pub struct Report {
    /// Kernel package and release.
    pub kernel: String,
    /// Bytes per component (uncompressed).
    pub components: BTreeMap<String, u64>,
    /// Kernel modules included.
    pub module_count: usize,
    /// Wanted modules this kernel does not have (neither module nor built in).
    pub modules_absent: Vec<String>,
    /// Entries in the archive.
    pub entries: usize,
    /// Uncompressed cpio size.
    pub cpio_bytes: u64,
    /// Compressed size.
    pub compressed_bytes: u64,
    /// sha256 of the compressed file.
    pub sha256: String,
}

fn find_tool(candidates: &[&str], package: &str) -> Result<PathBuf> {
    for c in candidates {
        if Path::new(c).exists() {
            return Ok(PathBuf::from(c));
        }
    }
    bail!("{} not found: install the Debian package {package}", candidates[0])
}

/// Builds the archive (not yet compressed).
pub fn build_archive(kernel: &Kernel, installer: &Path, mtime: u32, work: &Path) -> Result<(Archive, Report)> {
    let mut archive = Archive::new(mtime);
    // usrmerged layout, as on Debian 12
    for (link, target) in [("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"), ("lib64", "usr/lib64")] {
        archive.dir(target, 0o755)?;
        archive.symlink(link, target)?;
    }
    for d in ["dev", "proc", "sys", "run", "mnt", "target", "root", "etc", "var"] {
        archive.dir(d, 0o755)?;
    }
    archive.dir("tmp", 0o1777)?;
    archive.add("dev/console", crate::cpio::Entry { mode: 0o600, kind: Kind::CharDev { major: 5, minor: 1 } })?;
    archive.add("dev/null", crate::cpio::Entry { mode: 0o666, kind: Kind::CharDev { major: 1, minor: 3 } })?;
    archive.file("init", 0o755, include_bytes!("../files/init").to_vec())?;
    archive.file("usr/share/udhcpc/default.script", 0o755, include_bytes!("../files/udhcpc.script").to_vec())?;
    archive.file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n".to_vec())?;
    archive.file("etc/group", 0o644, b"root:x:0:\n".to_vec())?;
    archive.file(
        "etc/metalboot-release",
        0o644,
        format!("metalboot installer initramfs {}\nkernel {}\n", env!("CARGO_PKG_VERSION"), kernel.release)
            .into_bytes(),
    )?;
    archive.file("etc/fstab", 0o644, Vec::new())?;

    let mut host = HostFs::new(&mut archive);
    let data = std::fs::read(installer).with_context(|| format!("reading installer {}", installer.display()))?;
    host.sizes.insert("installer".into(), data.len() as u64);
    host.archive.file("usr/bin/metalboot-installer", 0o755, data)?;
    for lib in crate::hostfs::shared_libs(installer)? {
        host.add_path(&lib, "shared libraries")?;
    }
    let busybox = require("/usr/bin/busybox", "busybox-static")?;
    if !crate::hostfs::shared_libs(&busybox)?.is_empty() {
        bail!("/usr/bin/busybox is dynamically linked: install busybox-static");
    }
    host.add_path(&busybox, "busybox")?;
    for (name, candidates, package) in TOOLS {
        let p = find_tool(candidates, package)?;
        host.add_program(&p, &format!("tools ({name})"))?;
    }
    for l in ["modprobe", "insmod", "rmmod", "lsmod", "depmod", "modinfo"] {
        host.archive.symlink(&format!("usr/sbin/{l}"), "../bin/kmod")?;
    }
    if !host.archive.contains("usr/sbin/mkfs.vfat") {
        host.archive.symlink("usr/sbin/mkfs.vfat", "mkfs.fat")?;
    }
    let certs = Path::new("/etc/ssl/certs/ca-certificates.crt");
    if certs.exists() {
        host.add_path(certs, "ca certificates")?;
    }
    let mut sizes = std::mem::take(&mut host.sizes);

    // busybox applets, except where a real tool is already in place
    for applet in busybox_applets(&busybox)? {
        let taken = ["usr/bin", "usr/sbin"].iter().any(|d| archive.contains(&format!("{d}/{applet}")));
        if !taken && !applet.contains('/') {
            archive.symlink(&format!("usr/bin/{applet}"), "busybox")?;
        }
    }

    let (count, absent, bytes) = add_modules(&mut archive, kernel, mtime, work)?;
    sizes.insert("kernel modules".into(), bytes);
    let report = Report {
        kernel: format!("{} {} ({})", kernel.package, kernel.package_version, kernel.release),
        components: sizes,
        module_count: count,
        modules_absent: absent,
        entries: archive.entries().count(),
        cpio_bytes: 0,
        compressed_bytes: 0,
        sha256: String::new(),
    };
    Ok((archive, report))
}

fn add_modules(archive: &mut Archive, kernel: &Kernel, _mtime: u32, work: &Path) -> Result<(usize, Vec<String>, u64)> {
    let idx = ModuleIndex::load(&kernel.modules_dir)?;
    let (files, missing) = idx.closure(WANTED);
    let required_missing: Vec<&String> = missing.iter().filter(|m| REQUIRED.contains(&m.as_str())).collect();
    if !required_missing.is_empty() {
        bail!("kernel {} lacks required modules {required_missing:?}", kernel.release);
    }
    // Stage the chosen modules and let depmod index just those.
    let stage = work.join("modules-stage");
    let _ = std::fs::remove_dir_all(&stage);
    let dst_root = stage.join("lib/modules").join(&kernel.release);
    std::fs::create_dir_all(&dst_root)?;
    for f in ["modules.order", "modules.builtin", "modules.builtin.modinfo"] {
        let src = kernel.modules_dir.join(f);
        if src.exists() {
            std::fs::copy(&src, dst_root.join(f)).with_context(|| format!("copying {}", src.display()))?;
        }
    }
    let mut bytes = 0;
    for rel in &files {
        let src = kernel.modules_dir.join(rel);
        let dst = dst_root.join(rel);
        std::fs::create_dir_all(dst.parent().expect("module path has a parent"))?;
        bytes += std::fs::copy(&src, &dst).with_context(|| format!("copying module {}", src.display()))?;
    }
    output(Command::new("depmod").arg("-b").arg(&stage).arg(&kernel.release)).context("indexing the chosen modules")?;
    let mut all = Vec::new();
    walk(&dst_root, &mut all)?;
    all.sort();
    for p in all {
        let rel = p.strip_prefix(stage.join("lib")).expect("walked under stage");
        let data = std::fs::read(&p)?;
        archive.file(&format!("usr/lib/{}", rel.display()), 0o644, data)?;
    }
    Ok((files.len(), missing, bytes))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// Writes the compressed initramfs to `out` and completes the report.
pub fn write_initramfs(archive: &Archive, mut report: Report, out: &Path) -> Result<Report> {
    let mut raw = Vec::with_capacity(archive.payload_bytes() as usize + (1 << 20));
    report.cpio_bytes = archive.write_to(&mut raw)?;
    let compressed = zstd::stream::encode_all(&raw[..], 19).context("compressing initramfs")?;
    report.compressed_bytes = compressed.len() as u64;
    report.sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&compressed));
    let tmp = out.with_extension("tmp");
    std::fs::write(&tmp, &compressed).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))?;
    Ok(report)
}
