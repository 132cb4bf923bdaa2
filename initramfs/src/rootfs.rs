//! The root filesystem image every `image`-method host gets: built with
//! `mmdebstrap` from Debian packages, emitted as `rootfs.tar.zst` with a
//! `.sha256` and a package manifest, and cached by a key of its inputs so an
//! unchanged rebuild is instant.
//!
//! Two flavours differ only in the kernel: `generic` (Debian's
//! `linux-image-amd64`, every driver, for bare metal) and `cloud`
//! (`linux-image-cloud-amd64`: virtio, Xen, Hyper-V and the usual
//! filesystems, a quarter of the modules, for VMs and VPSs), emitted as
//! `rootfs-cloud.tar.zst` and so on beside the generic files.

use crate::run::output;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Which kernel the image carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Flavour {
    /// Debian's generic kernel, every driver: for bare metal.
    Generic,
    /// Debian's cloud kernel (virtio, Xen, Hyper-V; few drivers for physical
    /// hardware): for VMs and VPSs.
    Cloud,
}

impl Flavour {
    /// The kernel metapackage.
    pub fn kernel_package(self) -> &'static str {
        match self {
            Flavour::Generic => "linux-image-amd64",
            Flavour::Cloud => "linux-image-cloud-amd64",
        }
    }

    /// Every package on top of mmdebstrap's `minbase` variant, the kernel
    /// first (the order the generic image's cache key has always hashed).
    pub fn packages(self) -> Vec<&'static str> {
        std::iter::once(self.kernel_package()).chain(PACKAGES.iter().copied()).collect()
    }

    /// The output files' stem: `rootfs` or `rootfs-cloud`.
    pub fn stem(self) -> &'static str {
        match self {
            Flavour::Generic => "rootfs",
            Flavour::Cloud => "rootfs-cloud",
        }
    }

    /// The image's file name, which is also its asset name on the server.
    pub fn image_name(self) -> String {
        format!("{}.tar.zst", self.stem())
    }

    /// The image's checksum file.
    pub fn sha256_name(self) -> String {
        format!("{}.tar.zst.sha256", self.stem())
    }

    /// The package manifest (`package<TAB>version` per line).
    pub fn manifest_name(self) -> String {
        format!("{}.manifest", self.stem())
    }

    /// The file in the output directory holding the key the files there were built with.
    fn key_name(self) -> String {
        format!("{}.key", self.stem())
    }
}

/// Packages on top of mmdebstrap's `minbase` variant besides the kernel
/// ([`Flavour::kernel_package`]).
pub const PACKAGES: &[&str] = &[
    "grub-pc",
    "grub-efi-amd64-bin",
    "systemd",
    "systemd-sysv",
    "systemd-resolved",
    "udev",
    "dbus",
    "openssh-server",
    "btrfs-progs",
    // [host.snapshots]: snapshots and their retention
    "btrbk",
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
const BTRFS_DEGRADED: &[u8] = include_bytes!("../rootfs/metalboot-btrfs-degraded");

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
    /// Which kernel.
    pub flavour: Flavour,
}

/// The default mirror: this machine's apt sources (deb822) if present.
pub fn default_mirror() -> Option<String> {
    let f = Path::new("/etc/apt/sources.list.d/debian.sources");
    f.exists().then(|| f.display().to_string())
}

/// The cache key: every input that changes the image. The generic flavour
/// hashes what it hashed before flavours existed, so its caches stay valid.
pub fn cache_key(spec: &RootfsSpec) -> Result<String> {
    let mut h = Sha256::new();
    h.update(b"metalboot-rootfs-v1\0");
    if spec.flavour != Flavour::Generic {
        h.update(b"flavour\0");
        h.update(spec.flavour.stem().as_bytes());
        h.update(b"\0");
    }
    h.update(spec.suite.as_bytes());
    h.update(b"\0");
    if let Some(m) = &spec.mirror {
        h.update(m.as_bytes());
        if Path::new(m).is_file() {
            h.update(std::fs::read(m)?);
        }
    }
    for p in spec.flavour.packages() {
        h.update(p.as_bytes());
        h.update(b"\0");
    }
    h.update(PHONE_HOME_UNIT);
    h.update(BTRFS_DEGRADED);
    h.update(PHONE_HOME_SCRIPT);
    h.update(CUSTOMIZE);
    Ok(hex::encode(h.finalize())[..16].to_string())
}

/// The cache directory for `key`: `rootfs-KEY` (generic, as before
/// flavours), `rootfs-cloud-KEY`.
pub fn cache_dir_name(flavour: Flavour, key: &str) -> String {
    format!("{}-{key}", flavour.stem())
}

/// Builds (or reuses) the image; returns (path, was it cached).
pub fn build(spec: &RootfsSpec) -> Result<(PathBuf, bool)> {
    let flavour = spec.flavour;
    let (image_name, sha256_name, manifest_name) =
        (flavour.image_name(), flavour.sha256_name(), flavour.manifest_name());
    let key = cache_key(spec)?;
    let cached = spec.cache.join(cache_dir_name(flavour, &key));
    let out_img = spec.out.join(&image_name);
    std::fs::create_dir_all(&spec.out)?;
    if !cached.join(&image_name).is_file() {
        let work = spec.cache.join(format!("{}.work", cache_dir_name(flavour, &key)));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(work.join("files/usr/local/sbin"))?;
        std::fs::create_dir_all(work.join("files/etc/systemd/system"))?;
        std::fs::create_dir_all(work.join("files/etc/initramfs-tools/scripts/local-premount"))?;
        write_exec(&work.join("files/usr/local/sbin/metalboot-phone-home"), PHONE_HOME_SCRIPT, 0o755)?;
        write_exec(&work.join("files/etc/systemd/system/metalboot-phone-home.service"), PHONE_HOME_UNIT, 0o644)?;
        write_exec(
            &work.join("files/etc/initramfs-tools/scripts/local-premount/metalboot-btrfs-degraded"),
            BTRFS_DEGRADED,
            0o755,
        )?;
        write_exec(&work.join("customize.sh"), CUSTOMIZE, 0o755)?;
        let img = work.join(&image_name);
        let manifest = work.join(&manifest_name);
        let mut cmd = Command::new("mmdebstrap");
        cmd.args(["--variant=minbase", "--format=tar", "--verbose"])
            .arg(format!("--logfile={}", work.join("mmdebstrap.log").display()))
            .arg(format!("--include={}", flavour.packages().join(",")))
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
        std::fs::write(work.join(&sha256_name), format!("{sha}  {image_name}\n"))?;
        let _ = std::fs::remove_dir_all(&cached);
        std::fs::rename(&work, &cached).context("moving the image into the cache")?;
    }
    let key_file = spec.out.join(flavour.key_name());
    let was_cached = out_img.is_file() && std::fs::read(&key_file).ok().as_deref() == Some(key.as_bytes());
    for f in [&image_name, &sha256_name, &manifest_name] {
        let dst = spec.out.join(f);
        let _ = std::fs::remove_file(&dst);
        if std::fs::hard_link(cached.join(f), &dst).is_err() {
            std::fs::copy(cached.join(f), &dst).with_context(|| format!("copying {f}"))?;
        }
    }
    std::fs::write(&key_file, &key)?;
    Ok((out_img, was_cached))
}

fn write_exec(p: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(p, data).with_context(|| format!("writing {}", p.display()))?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(flavour: Flavour) -> RootfsSpec {
        RootfsSpec {
            suite: "bookworm".into(),
            mirror: Some("http://192.0.2.1/debian".into()),
            out: "/out".into(),
            cache: "/cache".into(),
            flavour,
        }
    }

    #[test]
    fn each_flavour_has_its_own_kernel_and_nothing_else_differs() {
        let (g, c) = (Flavour::Generic.packages(), Flavour::Cloud.packages());
        assert_eq!(g[0], "linux-image-amd64");
        assert_eq!(c[0], "linux-image-cloud-amd64");
        assert_eq!(g[1..], c[1..]);
        for p in [&g, &c] {
            assert_eq!(p.iter().filter(|p| p.starts_with("linux-image-")).count(), 1, "{p:?}");
        }
    }

    #[test]
    fn generic_keeps_the_file_names_and_cloud_has_its_own() {
        let names = |f: Flavour| [f.image_name(), f.sha256_name(), f.manifest_name(), f.key_name()];
        assert_eq!(
            names(Flavour::Generic),
            ["rootfs.tar.zst", "rootfs.tar.zst.sha256", "rootfs.manifest", "rootfs.key"]
        );
        assert_eq!(
            names(Flavour::Cloud),
            ["rootfs-cloud.tar.zst", "rootfs-cloud.tar.zst.sha256", "rootfs-cloud.manifest", "rootfs-cloud.key"]
        );
    }

    #[test]
    fn flavours_have_distinct_cache_keys_and_directories() {
        let (g, c) = (cache_key(&spec(Flavour::Generic)).unwrap(), cache_key(&spec(Flavour::Cloud)).unwrap());
        assert_ne!(g, c);
        assert_eq!(cache_dir_name(Flavour::Generic, &g), format!("rootfs-{g}"));
        assert_eq!(cache_dir_name(Flavour::Cloud, &c), format!("rootfs-cloud-{c}"));
        // even were the keys equal, the directories would not be
        assert_ne!(cache_dir_name(Flavour::Generic, &g), cache_dir_name(Flavour::Cloud, &g));
    }

    /// The generic image's key, input by input (no flavour in it, as before
    /// flavours existed): a cached image is reused until one of them changes.
    #[test]
    fn generic_cache_key_is_the_one_from_before_flavours() {
        let s = spec(Flavour::Generic);
        let mut h = Sha256::new();
        h.update(b"metalboot-rootfs-v1\0");
        h.update(b"bookworm\0");
        h.update(b"http://192.0.2.1/debian");
        for p in std::iter::once("linux-image-amd64").chain(PACKAGES.iter().copied()) {
            h.update(p.as_bytes());
            h.update(b"\0");
        }
        h.update(PHONE_HOME_UNIT);
        h.update(BTRFS_DEGRADED);
        h.update(PHONE_HOME_SCRIPT);
        h.update(CUSTOMIZE);
        assert_eq!(cache_key(&s).unwrap(), hex::encode(h.finalize())[..16]);
    }

    #[test]
    fn the_key_changes_with_suite_and_mirror() {
        let base = cache_key(&spec(Flavour::Cloud)).unwrap();
        let mut s = spec(Flavour::Cloud);
        s.suite = "trixie".into();
        assert_ne!(cache_key(&s).unwrap(), base);
        let mut s = spec(Flavour::Cloud);
        s.mirror = None;
        assert_ne!(cache_key(&s).unwrap(), base);
    }
}
