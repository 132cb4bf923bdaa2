//! GRUB for both firmwares on one disk: `i386-pc` into the BIOS boot
//! partition and `x86_64-efi` onto the ESP at the removable-media path
//! (`--removable --no-nvram`: no NVRAM entry needed, boots on any UEFI), then
//! grub.cfg: written directly when `grubcfg` can reproduce what
//! `update-grub` would write, else from the new system's own `update-grub`.

use crate::cmd::in_target;
use crate::grubcfg;
use anyhow::{Context, Result};
use metalboot_spec::Layout;
use std::path::Path;
use std::time::Instant;

/// Installs GRUB for BIOS and UEFI and writes grub.cfg. Returns how
/// grub.cfg was made, with each part's time, for the step's report.
pub fn install_grub(target: &Path, disk: &str, root_uuid: &str, layout: &Layout) -> Result<String> {
    let t = Instant::now();
    in_target(target, &["grub-install", "--target=i386-pc", disk]).context("installing GRUB for BIOS")?;
    let bios = t.elapsed().as_secs_f64();
    let t = Instant::now();
    in_target(
        target,
        &["grub-install", "--target=x86_64-efi", "--efi-directory=/boot/efi", "--removable", "--no-nvram"],
    )
    .context("installing GRUB for UEFI")?;
    let efi = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let subvols: Vec<(String, String)> =
        layout.subvolumes.iter().map(|s| (s.name.clone(), s.mountpoint.clone())).collect();
    let how = match grubcfg::from_target(target, root_uuid, &subvols) {
        Ok(c) => {
            let path = target.join("boot/grub/grub.cfg");
            let tmp = path.with_extension("cfg.new");
            std::fs::write(&tmp, grubcfg::render(&c)).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
            format!("grub.cfg written for Linux {}", c.kernel)
        }
        Err(why) => {
            println!("metalboot: running update-grub: {why}");
            in_target(target, &["update-grub"]).context("writing grub.cfg")?;
            "grub.cfg from update-grub".to_string()
        }
    };
    let cfg = std::fs::read_to_string(target.join("boot/grub/grub.cfg")).context("reading grub.cfg")?;
    if !cfg.contains(&format!("root=UUID={root_uuid}")) {
        anyhow::bail!("grub.cfg does not name the root filesystem by UUID (no /dev/disk/by-uuid link?)");
    }
    Ok(format!("i386-pc {bios:.1}s, x86_64-efi {efi:.1}s, {how} in {:.1}s", t.elapsed().as_secs_f64()))
}
