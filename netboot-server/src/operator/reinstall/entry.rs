//! `metalboot reinstall … --print-host`: a `[[host]]` inventory entry made
//! from what discovery found, for a server the inventory does not know yet.
//! The inventory stays the operator's, in git: metalboot prints the entry
//! and never edits the files; the operator adds it, restarts `metalboot
//! serve`, and runs the reinstall.
//!
//! The entry pins the disk the way the reinstall itself does (unique serial,
//! else path and exact size, `wipe = true` since it holds the old system;
//! on a rescue system, which runs on no disk, the one disk that is not
//! removable, read-only or in use, if there is exactly one; a root
//! filesystem on several disks keeps them all, as `disks` with
//! `layout.raid = "raid1"`),
//! keeps the network static on the discovered MAC, and enrols the keys that
//! may log in as the login user today plus the operator's `--identity` key.
//! Keys with `authorized_keys` options (`command=`, `from=`, …) are left
//! out: they are restricted today and must not become root keys unasked.

use super::choose;
use super::discover::DiskFacts;
use super::policy::disk_selector;
use super::remote::Discovered;
use crate::inventory::Inventory;
use anyhow::{bail, Context, Result};
use metalboot_spec::quote;
use metalboot_spec::{DiskSelector, MacAddr, NetworkSpec};
use serde::Serialize;

#[derive(Serialize)]
struct File<'a> {
    host: [Entry<'a>; 1],
}

#[derive(Serialize)]
struct Entry<'a> {
    name: &'a str,
    macs: [MacAddr; 1],
    arm: bool,
    ssh_authorized_keys: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    disk: Option<DiskSelector>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    disks: Vec<DiskSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    layout: Option<RaidLayout>,
    network: &'a NetworkSpec,
}

#[derive(Serialize)]
struct RaidLayout {
    raid: &'static str,
}

/// Keys from `authorized_keys` lines that are plain keys metalboot accepts;
/// a comment it would refuse is dropped, the key kept. Returns the keys and
/// how many lines were left out.
pub fn usable_keys(lines: &[String]) -> (Vec<String>, usize) {
    let mut keys = Vec::new();
    let mut skipped = 0;
    for l in lines {
        let mut words = l.split_whitespace();
        let bare = match (words.next(), words.next()) {
            (Some(k), Some(b)) => format!("{k} {b}"),
            _ => String::new(),
        };
        let comment: Vec<&str> = words.collect();
        let full = format!("{bare} {}", comment.join(" "));
        let full = full.trim_end();
        let key = if metalboot_spec::safe::check_ssh_public_key(full).is_ok() {
            full.to_string()
        } else if metalboot_spec::safe::check_ssh_public_key(&bare).is_ok() {
            bare
        } else {
            skipped += 1;
            continue;
        };
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    (keys, skipped)
}

/// The inventory entry for `name`, as TOML with a header saying where it
/// came from; checked by loading it as an inventory before it is returned.
pub fn host_entry(
    target: &str,
    name: &str,
    d: &Discovered,
    net: &NetworkSpec,
    extra_keys: &[String],
) -> Result<String> {
    let roots: Vec<&DiskFacts> = d.disks.iter().filter(|x| x.holds_root).collect();
    let disks = if d.root.off_disk() {
        vec![choose::only_free_disk(&d.disks).with_context(|| {
            format!(
                "the target {}, so no disk holds an old system to pin; write the entry's disk selector by hand",
                d.root.runs_from()
            )
        })?]
    } else if roots.len() > 1 {
        // a root filesystem on several disks (btrfs raid1 or similar):
        // the entry keeps them all, as raid1
        roots
    } else {
        vec![d.root_disk()?]
    };
    let mac = net.mac.context("the kept interface has no MAC")?;
    let mut lines = extra_keys.to_vec();
    lines.extend(d.authorized_keys.iter().cloned());
    let (keys, skipped) = usable_keys(&lines);
    if keys.is_empty() {
        bail!(
            "no SSH public key to enrol for {name}: the target's authorized_keys has none metalboot can use \
             ({skipped} left out) and no --identity KEY with KEY.pub beside it was given"
        );
    }
    let file = File {
        host: [Entry {
            name,
            macs: [mac],
            arm: false,
            ssh_authorized_keys: &keys,
            disk: (disks.len() == 1).then(|| disk_selector(disks[0], &d.disks)),
            disks: if disks.len() > 1 { disks.iter().map(|x| disk_selector(x, &d.disks)).collect() } else { vec![] },
            layout: (disks.len() > 1).then_some(RaidLayout { raid: "raid1" }),
            network: net,
        }],
    };
    let body = toml::to_string(&file).context("writing the entry as TOML")?;
    let mut out = format!(
        "# {name}: discovered on {target} (\"{}\", {}, {:?} boot) by metalboot reinstall --print-host\n\
         # {}; the network is kept static on {mac}\n",
        printable(&d.hostname),
        printable(&d.kernel),
        d.boot,
        disks.iter().map(|x| format!("disk {} ({} bytes)", x.path, x.size)).collect::<Vec<_>>().join(", "),
    );
    if disks.len() > 1 {
        out.push_str("# the root filesystem spans these disks: the entry installs btrfs raid1 across them\n");
    }
    if d.root.off_disk() {
        out.push_str(&format!(
            "# discovered from a rescue system ({}): the disk is the only one not in use\n",
            printable(&d.root.runs_from())
        ));
    }
    if skipped > 0 {
        out.push_str(&format!("# {skipped} authorized_keys line(s) with options or unknown types were left out\n"));
    }
    out.push_str(&body);
    Inventory::from_sources([("the printed entry", out.as_str())])
        .with_context(|| format!("the entry made for {} does not validate", quote(name)))?;
    Ok(out)
}

/// For the comment header: no newlines or control characters from the target.
fn printable(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}
