//! The old systems the reinstall scenarios start from: Debian installed
//! the classic way (an ext4 root, GRUB), not by metalboot, made by
//! `tests/images/ext4-debian.sh` from the cloud root filesystem image.

use crate::harness::Scenario;
use crate::scenarios::{MAC, TEST_IMAGE};
use crate::vm::{Disk, Firmware};
use anyhow::Result;
use std::ffi::OsStr;

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
    let rootfs = crate::harness::assets().join(TEST_IMAGE.asset());
    let keys = s.ssh_key.with_extension("pub");
    let args: [&OsStr; 8] = [
        path.as_ref(),
        "8G".as_ref(),
        rootfs.as_ref(),
        MAC.as_ref(),
        ip.as_ref(),
        "10.99.0.1".as_ref(),
        keys.as_ref(),
        firmware_name(fw).as_ref(),
    ];
    let p = crate::image_builder::run(s, "ext4-debian.sh", &args, env, "the ext4 Debian disk", ip, "old-system")?;
    Ok((Disk::virtio(path, "E2E-DISK"), p))
}

/// The script's name for `fw`.
pub(crate) fn firmware_name(fw: Firmware) -> &'static str {
    match fw {
        Firmware::Bios => "bios",
        Firmware::Uefi => "uefi",
    }
}
