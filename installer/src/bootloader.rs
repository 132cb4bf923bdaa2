//! GRUB for both firmwares on one disk: `i386-pc` into the BIOS boot
//! partition and `x86_64-efi` onto the ESP at the removable-media path
//! (`--removable --no-nvram`: no NVRAM entry needed, boots on any UEFI), then
//! the config from the installed system's own `update-grub`.

use crate::cmd::in_target;
use anyhow::{Context, Result};
use std::path::Path;

/// Installs GRUB for BIOS and UEFI and writes grub.cfg.
pub fn install_grub(target: &Path, disk: &str) -> Result<()> {
    in_target(target, &["grub-install", "--target=i386-pc", disk]).context("installing GRUB for BIOS")?;
    in_target(
        target,
        &["grub-install", "--target=x86_64-efi", "--efi-directory=/boot/efi", "--removable", "--no-nvram"],
    )
    .context("installing GRUB for UEFI")?;
    in_target(target, &["update-grub"]).context("writing grub.cfg")?;
    let cfg = std::fs::read_to_string(target.join("boot/grub/grub.cfg")).context("reading grub.cfg")?;
    if !cfg.contains("root=UUID=") {
        anyhow::bail!("grub.cfg does not name the root filesystem by UUID (no /dev/disk/by-uuid link?)");
    }
    Ok(())
}
