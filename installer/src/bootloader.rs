//! GRUB for both firmwares: `i386-pc` into the BIOS boot partition and
//! `x86_64-efi` onto the ESP at the removable-media path (`--removable
//! --no-nvram`: no NVRAM entry needed, boots on any UEFI), then grub.cfg:
//! written directly when `grubcfg` can reproduce what `update-grub` would
//! write, else from the new system's own `update-grub`.
//!
//! On several disks (raid1) every disk boots on its own: `i386-pc` goes to
//! each disk, the first disk's ESP (at `/boot/efi`) is copied whole to the
//! others, `grub-pc/install_devices` names every disk so a `grub-pc` upgrade
//! keeps them all, and the initramfs is rebuilt with the degraded-boot
//! script ([`crate::degraded`]) unless the image's has it already.

use crate::cmd::in_target;
use crate::{degraded, files, fs, grubcfg};
use anyhow::{Context, Result};
use metalboot_spec::Layout;
use std::path::Path;
use std::time::Instant;

/// Where GRUB goes.
pub struct BootDisks<'a> {
    /// Every disk, the first one's ESP mounted at `/boot/efi`.
    pub disks: &'a [String],
    /// The other disks' ESPs, made copies of the first.
    pub other_esps: &'a [String],
    /// An empty directory to mount them on in turn.
    pub scratch: &'a Path,
    /// The image's initramfs lacks the degraded-boot script.
    pub rebuild_initramfs: bool,
}

/// Installs GRUB for BIOS and UEFI and writes grub.cfg. Returns how
/// grub.cfg was made, with each part's time, for the step's report.
pub fn install_grub(target: &Path, boot: &BootDisks<'_>, root_uuid: &str, layout: &Layout) -> Result<String> {
    let mut extra = String::new();
    if boot.disks.len() > 1 {
        let t = Instant::now();
        let links = degraded::by_id_links();
        let names: Vec<String> = boot.disks.iter().map(|d| degraded::stable_name(d, &links)).collect();
        let sel = "tmp/metalboot-debconf";
        files::write(target, sel, &degraded::debconf_selections(&names), 0o600)?;
        let set = in_target(target, &["debconf-set-selections", &format!("/{sel}")]);
        let _ = std::fs::remove_file(target.join(sel));
        set.context("setting grub-pc/install_devices")?;
        if boot.rebuild_initramfs {
            in_target(target, &["update-initramfs", "-u", "-k", "all"])
                .context("rebuilding the initramfs with the degraded-boot script")?;
            extra = format!("initramfs {:.1}s, ", t.elapsed().as_secs_f64());
        } else {
            extra = "the image's initramfs has the degraded-boot script, ".into();
        }
    }
    let t = Instant::now();
    for disk in boot.disks {
        in_target(target, &["grub-install", "--target=i386-pc", disk])
            .with_context(|| format!("installing GRUB for BIOS on {disk}"))?;
    }
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
    if boot.disks.len() > 1 && !cfg.contains(degraded::CMDLINE_FLAG) {
        anyhow::bail!("grub.cfg has no degraded entry ({})", degraded::MENU_TITLE);
    }
    let cfg_secs = t.elapsed().as_secs_f64();
    for esp in boot.other_esps {
        fs::copy_esp(&target.join("boot/efi"), esp, boot.scratch)?;
    }
    let copies = if boot.other_esps.is_empty() {
        String::new()
    } else {
        format!(", ESP copied to {}", boot.other_esps.join(" "))
    };
    let disks = if boot.disks.len() > 1 { format!(" on {}", boot.disks.len()) } else { String::new() };
    Ok(format!("{extra}i386-pc{disks} {bios:.1}s, x86_64-efi {efi:.1}s, {how} in {cfg_secs:.1}s{copies}"))
}
