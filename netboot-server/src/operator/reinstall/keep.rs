//! `reinstall --keep @home[,@data…]`: checked on the running system before
//! anything starts (its root is BTRFS on metalboot's layout and has every
//! subvolume named), and the lines the confirmation shows. The installer
//! checks again on the disk before it writes.

use super::ssh::Ssh;
use anyhow::{bail, Result};
use metalboot_spec::snapshots::SNAPSHOT_SUBVOLUME;

/// The top-level subvolumes in `btrfs subvolume list -a` output.
pub fn top_level(list: &str) -> Vec<String> {
    list.lines()
        .filter_map(|l| l.split(" path ").nth(1))
        .map(|p| p.trim().trim_start_matches("<FS_TREE>/").to_string())
        .filter(|p| !p.contains('/'))
        .collect()
}

/// Checks `findmnt` and `btrfs subvolume list` output of the running
/// system against `keep`; returns the confirmation's lines.
pub fn check(keep: &[String], root_mount: &str, list: &str) -> Result<String> {
    let mut it = root_mount.split_whitespace();
    let (fstype, opts) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
    if fstype != "btrfs" || !opts.split(',').any(|o| o.starts_with("subvol=/")) {
        bail!(
            "--keep needs the root on BTRFS in a subvolume, as metalboot installs it; / is {} ({}): reinstall \
             without --keep",
            if fstype.is_empty() { "unknown" } else { fstype },
            opts
        );
    }
    let root = opts.split(',').find_map(|o| o.strip_prefix("subvol=/")).unwrap_or_default();
    if root.contains('/') {
        bail!(
            "--keep: / is {root}, not a subvolume at the top of the filesystem: this host runs a previous system \
             it rolled back to, and a keeping reinstall would set the failed root aside as \"previous\"; \
             reinstall without --keep, or make {root} the root again first; nothing was changed"
        );
    }
    let have = top_level(list);
    let missing: Vec<&str> =
        keep.iter().map(String::as_str).chain([SNAPSHOT_SUBVOLUME]).filter(|k| !have.iter().any(|h| h == k)).collect();
    if !missing.is_empty() {
        bail!(
            "--keep: the target's filesystem has no subvolume {} (it has {}); nothing was changed",
            missing.join(", "),
            have.join(", ")
        );
    }
    Ok(format!(
        "KEEPS:    {} (untouched, mounted where they were) and {SNAPSHOT_SUBVOLUME}; not repartitioned\n\
         REPLACES: @ and the layout's other subvolumes, the old ones kept read-only as \
         {SNAPSHOT_SUBVOLUME}/<name>.replaced.<time>\n",
        keep.join(", ")
    ))
}

/// The confirmation's line on what happens if the new system does not
/// come up: a standalone install cannot phone home, so it has no trial.
pub fn rollback_line(standalone: bool, rollback_after: Option<u32>) -> String {
    if standalone {
        return "ROLLBACK: none (a standalone install cannot phone home); the old root is kept read-only\n".into();
    }
    let secs = rollback_after.unwrap_or(metalboot_spec::plan::DEFAULT_ROLLBACK_AFTER_SECS);
    format!(
        "ROLLBACK: the old root stays bootable; unless the new system phones home within {secs} s of its first \
         boot, the host boots the old root again by itself\n"
    )
}

/// Runs the check on the target (as root); nothing for an empty `keep`.
pub fn check_target(ssh: &Ssh, keep: &[String], rescue: bool) -> Result<Option<String>> {
    if keep.is_empty() {
        return Ok(None);
    }
    if rescue {
        // nothing of the disk is mounted to look at: the installer checks it
        return Ok(Some(format!(
            "KEEPS:    {} and {SNAPSHOT_SUBVOLUME}, if the disk holds them (the installer checks before it              writes); not repartitioned
",
            keep.join(", ")
        )));
    }
    // the remote shell joins the words: the script is one quoted word
    let script = super::ssh::shell_quote("findmnt -n -o FSTYPE,OPTIONS /; echo ---; btrfs subvolume list -a /");
    let out = ssh.run_root(&["sh", "-c", &script], b"")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (mount, list) = text.split_once("---\n").unwrap_or((&text, ""));
    if out.code != Some(0) {
        bail!("--keep: cannot list the target's subvolumes ({}): {}", out.code.unwrap_or(-1), out.stderr.trim());
    }
    check(keep, mount.trim(), list).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str =
        "ID 256 gen 40 top level 5 path <FS_TREE>/@\nID 257 gen 39 top level 5 path <FS_TREE>/@snapshots\n\
        ID 258 gen 40 top level 5 path <FS_TREE>/@home\nID 259 gen 40 top level 5 path <FS_TREE>/@var_log\n\
        ID 300 gen 41 top level 257 path <FS_TREE>/@snapshots/@home.20261205T2210+0000\n";
    const ROOT: &str = "btrfs rw,noatime,compress=zstd:1,space_cache=v2,subvolid=256,subvol=/@";

    #[test]
    fn the_target_must_hold_what_is_kept() {
        assert_eq!(top_level(LIST), ["@", "@snapshots", "@home", "@var_log"]);
        let lines = check(&["@home".into()], ROOT, LIST).unwrap();
        assert!(lines.starts_with("KEEPS:    @home (untouched"), "{lines}");
        let e = check(&["@data".into()], ROOT, LIST).unwrap_err().to_string();
        assert!(e.contains("no subvolume @data (it has @, @snapshots, @home, @var_log)"), "{e}");
        let e = check(&["@home".into()], "ext4 rw,relatime", "").unwrap_err().to_string();
        assert!(e.contains("/ is ext4"), "{e}");
        let no_snaps = LIST.replace("path <FS_TREE>/@snapshots\n", "path <FS_TREE>/@other\n");
        assert!(check(&["@home".into()], ROOT, &no_snaps).unwrap_err().to_string().contains("@snapshots"));
        // a host back on its previous root after a failed trial
        let rolled_back = ROOT.replace("subvol=/@", "subvol=/@snapshots/@.replaced.20261206T030000Z");
        let e = check(&["@home".into()], &rolled_back, LIST).unwrap_err().to_string();
        assert!(e.contains("/ is @snapshots/@.replaced.20261206T030000Z, not a subvolume at the top"), "{e}");
    }

    #[test]
    fn the_confirmation_says_how_the_host_comes_back() {
        assert!(rollback_line(false, None).contains("within 600 s of its first boot"));
        assert!(rollback_line(false, Some(45)).contains("within 45 s"));
        assert!(rollback_line(true, Some(45)).starts_with("ROLLBACK: none (a standalone install cannot phone home)"));
    }
}
