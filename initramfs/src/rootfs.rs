//! The root filesystem image every `image`-method host gets: built with
//! `mmdebstrap` from Debian packages, emitted as `rootfs.tar.zst` with a
//! `.sha256` and a package manifest, and cached by a key of its inputs so an
//! unchanged rebuild is instant.

use crate::run::output;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Packages on top of mmdebstrap's `minbase` variant.
pub const PACKAGES: &[&str] = &[
    "linux-image-amd64",
    "grub-pc",
    "grub-efi-amd64-bin",
    "systemd",
    "systemd-sysv",
    "systemd-resolved",
    "udev",
    "dbus",
    "openssh-server",
    "btrfs-progs",
    "dosfstools",
    "python3",
    "curl",
    "ca-certificates",
    "iproute2",
    "iputils-ping",
    "kmod",
    "sudo",
    "zstd",
    "less",
    // `metalboot reinstall` boots the installer with it
    "kexec-tools",
];

const PHONE_HOME_UNIT: &[u8] = include_bytes!("../rootfs/metalboot-phone-home.service");
const PHONE_HOME_SCRIPT: &[u8] = include_bytes!("../rootfs/metalboot-phone-home");
const CUSTOMIZE: &[u8] = include_bytes!("../rootfs/customize.sh");

/// What to build.
pub struct RootfsSpec {
    /// Debian suite.
    pub suite: String,
    /// mmdebstrap MIRROR argument (URL, one-line entry, or a sources file); None: apt's own.
    pub mirror: Option<String>,
    /// Output directory.
    pub out: PathBuf,
    /// Cache directory.
    pub cache: PathBuf,
}

/// The default mirror: this machine's apt sources (deb822) if present.
pub fn default_mirror() -> Option<String> {
    let f = Path::new("/etc/apt/sources.list.d/debian.sources");
    f.exists().then(|| f.display().to_string())
}

/// The cache key: every input that changes the image.
pub fn cache_key(spec: &RootfsSpec) -> Result<String> {
    let mut h = Sha256::new();
    h.update(b"metalboot-rootfs-v1\0");
    h.update(spec.suite.as_bytes());
    h.update(b"\0");
    if let Some(m) = &spec.mirror {
        h.update(m.as_bytes());
        if Path::new(m).is_file() {
            h.update(std::fs::read(m)?);
        }
    }
    for p in PACKAGES {
        h.update(p.as_bytes());
        h.update(b"\0");
    }
    h.update(PHONE_HOME_UNIT);
    h.update(PHONE_HOME_SCRIPT);
    h.update(CUSTOMIZE);
    Ok(hex::encode(h.finalize())[..16].to_string())
}

/// Builds (or reuses) the image; returns (path, was it cached).
pub fn build(spec: &RootfsSpec) -> Result<(PathBuf, bool)> {
    let key = cache_key(spec)?;
    let cached = spec.cache.join(format!("rootfs-{key}"));
    let out_img = spec.out.join("rootfs.tar.zst");
    std::fs::create_dir_all(&spec.out)?;
    if !cached.join("rootfs.tar.zst").is_file() {
        let work = spec.cache.join(format!("rootfs-{key}.work"));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(work.join("files/usr/local/sbin"))?;
        std::fs::create_dir_all(work.join("files/etc/systemd/system"))?;
        write_exec(&work.join("files/usr/local/sbin/metalboot-phone-home"), PHONE_HOME_SCRIPT, 0o755)?;
        write_exec(&work.join("files/etc/systemd/system/metalboot-phone-home.service"), PHONE_HOME_UNIT, 0o644)?;
        write_exec(&work.join("customize.sh"), CUSTOMIZE, 0o755)?;
        let img = work.join("rootfs.tar.zst");
        let manifest = work.join("rootfs.manifest");
        let mut cmd = Command::new("mmdebstrap");
        cmd.args(["--variant=minbase", "--format=tar", "--verbose"])
            .arg(format!("--logfile={}", work.join("mmdebstrap.log").display()))
            .arg(format!("--include={}", PACKAGES.join(",")))
            .args([
                "--dpkgopt=path-exclude=/usr/share/man/*",
                "--dpkgopt=path-exclude=/usr/share/doc/*",
                "--dpkgopt=path-include=/usr/share/doc/*/copyright",
                "--dpkgopt=path-exclude=/usr/share/locale/*",
                "--dpkgopt=path-include=/usr/share/locale/locale.alias",
            ])
            .arg(format!("--customize-hook=sync-in {} /", work.join("files").display()))
            .arg(format!("--customize-hook={}", work.join("customize.sh").display()))
            .arg(format!(
                "--customize-hook=chroot \"$1\" dpkg-query -W -f='${{Package}}\\t${{Version}}\\n' > {}",
                manifest.display()
            ))
            .arg(&spec.suite)
            .arg(&img);
        if let Some(m) = &spec.mirror {
            cmd.arg(m);
        }
        output(&mut cmd).with_context(|| {
            format!("building the root filesystem with mmdebstrap (log: {})", work.join("mmdebstrap.log").display())
        })?;
        let sha = crate::sha256_file(&img)?;
        std::fs::write(work.join("rootfs.tar.zst.sha256"), format!("{sha}  rootfs.tar.zst\n"))?;
        let _ = std::fs::remove_dir_all(&cached);
        std::fs::rename(&work, &cached).context("moving the image into the cache")?;
    }
    let was_cached =
        out_img.is_file() && std::fs::read(spec.out.join("rootfs.key")).ok().as_deref() == Some(key.as_bytes());
    for f in ["rootfs.tar.zst", "rootfs.tar.zst.sha256", "rootfs.manifest"] {
        let dst = spec.out.join(f);
        let _ = std::fs::remove_file(&dst);
        if std::fs::hard_link(cached.join(f), &dst).is_err() {
            std::fs::copy(cached.join(f), &dst).with_context(|| format!("copying {f}"))?;
        }
    }
    std::fs::write(spec.out.join("rootfs.key"), &key)?;
    Ok((out_img, was_cached))
}

fn write_exec(p: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(p, data).with_context(|| format!("writing {}", p.display()))?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}
