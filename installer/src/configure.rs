//! Making the unpacked image this host: fstab, hostname, network, root's
//! keys and password, who logs in over SSH and the admin user (`users`),
//! fresh SSH host keys, an empty machine-id, the first-boot phone-home unit,
//! GRUB defaults, and `/dev/disk/by-uuid` links (no udev here; GRUB's
//! config generator relies on them), snapshots ([`crate::snapshots`]). On
//! several disks (raid1), the pieces of a degraded boot ([`crate::degraded`]).

use crate::cmd::in_target;
use crate::degraded;
use crate::files::write;
use crate::render;
use anyhow::{bail, Context, Result};
use metalboot_spec::{InstallPlan, Raid};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Replaces `user`'s password field in shadow text.
pub fn set_shadow_hash(shadow: &str, user: &str, hash: &str) -> Option<String> {
    let mut found = false;
    let out: Vec<String> = shadow
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(':').collect();
            if f.first() == Some(&user) && f.len() > 1 {
                found = true;
                f[1] = hash;
            }
            f.join(":")
        })
        .collect();
    found.then(|| out.join("\n") + "\n")
}

/// Creates `/dev/disk/by-uuid/<uuid>` → the partition.
pub fn by_uuid_link(uuid: &str, dev: &str) -> Result<()> {
    let dir = Path::new("/dev/disk/by-uuid");
    std::fs::create_dir_all(dir)?;
    let link = dir.join(uuid);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(dev, &link).with_context(|| format!("linking {} to {dev}", link.display()))
}

/// Writes every per-host file. The chroot needs /dev etc. bound already.
/// Returns whether the initramfs must be rebuilt (see
/// [`write_degraded_boot`]).
pub fn configure_system(
    target: &Path,
    plan: &InstallPlan,
    opts: &crate::options::Options,
    root_uuid: &str,
    esp_uuid: &str,
) -> Result<bool> {
    write(target, "etc/fstab", &render::fstab(root_uuid, esp_uuid, &plan.layout), 0o644)?;
    let rebuild_initramfs = plan.layout.raid == Raid::Raid1 && write_degraded_boot(target, root_uuid)?;
    write(target, "etc/hostname", &format!("{}\n", plan.hostname), 0o644)?;
    write(target, "etc/hosts", &render::hosts(&plan.hostname), 0o644)?;
    write(target, "etc/systemd/network/10-metalboot.network", &render::networkd(&plan.network), 0o644)?;
    let resolv = target.join("etc/resolv.conf");
    let _ = std::fs::remove_file(&resolv);
    std::os::unix::fs::symlink("../run/systemd/resolve/stub-resolv.conf", &resolv).context("linking resolv.conf")?;
    let keys: String = plan.ssh_authorized_keys.iter().map(|k| format!("{k}\n")).collect();
    std::fs::create_dir_all(target.join("root/.ssh"))?;
    std::fs::set_permissions(target.join("root/.ssh"), std::fs::Permissions::from_mode(0o700))?;
    write(target, "root/.ssh/authorized_keys", &keys, 0o600)?;
    if let Some(hash) = &plan.root_password_hash {
        let shadow = std::fs::read_to_string(target.join("etc/shadow")).context("reading /etc/shadow")?;
        let new = set_shadow_hash(&shadow, "root", hash).context("no root entry in /etc/shadow")?;
        write(target, "etc/shadow", &new, 0o640)?;
    }
    crate::users::configure_logins(target, plan)?;
    write(target, "etc/machine-id", "", 0o444)?;
    for entry in std::fs::read_dir(target.join("etc/ssh")).context("reading /etc/ssh")?.flatten() {
        if entry.file_name().to_string_lossy().starts_with("ssh_host_") {
            std::fs::remove_file(entry.path())?;
        }
    }
    match &opts.host_keys {
        Some(dir) => install_host_keys(dir, &target.join("etc/ssh"))?,
        None => {
            in_target(target, &["ssh-keygen", "-A"]).context("generating SSH host keys")?;
        }
    }
    crate::snapshots::configure(target, plan, opts.pins.as_ref())?;
    if !opts.phone_home {
        write(target, "etc/default/grub.d/metalboot.cfg", &render::grub_defaults(plan), 0o644)?;
        return Ok(rebuild_initramfs);
    }
    write(
        target,
        "etc/metalboot/phone-home.env",
        &render::phone_home_env(&plan.endpoints.installed, &opts.token, opts.pins.as_ref()),
        0o600,
    )?;
    crate::files::enable(target, "multi-user.target", "/etc/systemd/system/metalboot-phone-home.service")?;
    write(target, "etc/default/grub.d/metalboot.cfg", &render::grub_defaults(plan), 0o644)?;
    Ok(rebuild_initramfs)
}

/// The files of a degraded boot: the initramfs script, the udev rule, the
/// GRUB menu entry's script. Returns whether the initramfs must be rebuilt:
/// metalboot's images carry the script and an initramfs built with it, an
/// image without it (or with another version) needs a rebuild.
pub fn write_degraded_boot(target: &Path, root_uuid: &str) -> Result<bool> {
    let carried = std::fs::read_to_string(target.join(degraded::PREMOUNT_PATH)).ok();
    let stale = carried.as_deref() != Some(degraded::premount_script());
    if stale {
        write(target, degraded::PREMOUNT_PATH, degraded::premount_script(), 0o755)?;
    }
    write(target, degraded::UDEV_RULE_PATH, &degraded::udev_rule(root_uuid), 0o644)?;
    write(target, &format!("etc/grub.d/{}", degraded::GRUB_SCRIPT_NAME), &degraded::grub_script(), 0o755)?;
    Ok(stale)
}

/// Copies carried `ssh_host_*` keys into the new system: private keys 0600,
/// public keys 0644. At least one pair must be there.
fn install_host_keys(from: &Path, etc_ssh: &Path) -> Result<()> {
    let mut pairs = 0;
    let mut names: Vec<String> = std::fs::read_dir(from)
        .with_context(|| format!("reading carried host keys in {}", from.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ssh_host_") && n.ends_with("_key"))
        .collect();
    names.sort();
    for n in names {
        let pubname = format!("{n}.pub");
        if !from.join(&pubname).is_file() {
            bail!("carried host key {n} has no {pubname}");
        }
        for (f, mode) in [(n.as_str(), 0o600), (pubname.as_str(), 0o644)] {
            std::fs::copy(from.join(f), etc_ssh.join(f)).with_context(|| format!("installing host key {f}"))?;
            std::fs::set_permissions(etc_ssh.join(f), std::fs::Permissions::from_mode(mode))?;
        }
        pairs += 1;
    }
    if pairs == 0 {
        bail!("{} holds no ssh_host_*_key pair", from.display());
    }
    Ok(())
}

/// The new host's SSH host public keys (`type base64`).
pub fn host_keys(target: &Path) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(target.join("etc/ssh"))?.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let n = p.file_name().unwrap_or_default().to_string_lossy().into_owned();
        if n.starts_with("ssh_host_") && n.ends_with(".pub") {
            let text = std::fs::read_to_string(&p)?;
            let mut it = text.split_whitespace();
            if let (Some(t), Some(b)) = (it.next(), it.next()) {
                keys.push(format!("{t} {b}"));
            }
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadow_root_hash_is_replaced_only_for_root() {
        let s = "root:*:19000:0:99999:7:::\nsshd:!:19000::::::\n";
        assert_eq!(
            set_shadow_hash(s, "root", "$6$x$y").unwrap(),
            "root:$6$x$y:19000:0:99999:7:::\nsshd:!:19000::::::\n"
        );
        assert!(set_shadow_hash("daemon:*:1::::::\n", "root", "h").is_none());
    }
}
