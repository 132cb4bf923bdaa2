//! The old systems the reinstall scenarios start from: Debian installed
//! the classic way (an ext4 root, GRUB), not by metalboot, made by
//! `tests/images/ext4-debian.sh` from the cloud root filesystem image.

use crate::harness::Scenario;
use crate::scenarios::{MAC, TEST_IMAGE};
use crate::vm::{Disk, Firmware};
use anyhow::{ensure, Context, Result};

/// The old system's disk, made by `tests/images/ext4-debian.sh` for `fw`
/// with the script's optional settings `env` (`IP6`, `ADMIN`, …); returns
/// it and a known_hosts file pinning its host keys at `ip`, its static /32.
pub(crate) fn ext4_debian(
    s: &Scenario,
    fw: Firmware,
    ip: &str,
    env: &[(&str, &str)],
) -> Result<(Disk, std::path::PathBuf)> {
    let path = s.dir.join("disk.img");
    let script = crate::harness::workspace().join("tests/images/ext4-debian.sh");
    let rootfs = crate::harness::assets().join(TEST_IMAGE.asset());
    let keys = s.ssh_key.with_extension("pub");
    let out = std::process::Command::new("bash")
        .envs(env.iter().copied())
        .arg(&script)
        .arg(&path)
        .arg("8G")
        .arg(&rootfs)
        .arg(MAC)
        .arg(ip)
        .arg("10.99.0.1")
        .arg(&keys)
        .arg(firmware_name(fw))
        .output()
        .context("running tests/images/ext4-debian.sh")?;
    std::fs::write(s.dir.join("ext4-debian.log"), &out.stderr)?;
    ensure!(out.status.success(), "building the ext4 Debian disk: {}", String::from_utf8_lossy(&out.stderr));
    let kh: String = String::from_utf8_lossy(&out.stdout).lines().map(|k| format!("{ip} {k}\n")).collect();
    let p = s.dir.join("known_hosts.old-system");
    std::fs::write(&p, kh)?;
    Ok((Disk::virtio(path, "E2E-DISK"), p))
}

/// The script's name for `fw`.
pub(crate) fn firmware_name(fw: Firmware) -> &'static str {
    match fw {
        Firmware::Bios => "bios",
        Firmware::Uefi => "uefi",
    }
}
