//! The members of every mounted BTRFS filesystem, as the kernel lists them
//! (`/sys/fs/btrfs/FSID/devices/NAME`): lsblk shows a multi-device
//! filesystem's mounts on the one device the kernel names in
//! `/proc/mounts`, and its FSTYPE/UUID columns may be empty where there is
//! no udev database. A disk with a member of a mounted BTRFS is in use —
//! and holds the root when that filesystem is `/` — whatever lsblk says.

use super::discover::DiskFacts;

/// `FSID NAME` lines (the discovery script's `btrfs` section) applied to
/// `disks`: every disk holding a member gets the filesystem's mounts (those
/// lsblk shows on any of its members; `[btrfs FSID]` if none), and holds
/// the root if one of them is `/`.
pub fn apply(disks: &mut [DiskFacts], lines: &str) {
    let pairs: Vec<(&str, &str)> = lines.lines().filter_map(|l| l.trim().split_once(' ')).collect();
    let base = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
    let mut fsids: Vec<&str> = pairs.iter().map(|(f, _)| *f).collect();
    fsids.dedup();
    for fsid in fsids {
        let names: Vec<&str> = pairs.iter().filter(|(f, _)| *f == fsid).map(|(_, n)| n.trim()).collect();
        let holds = |d: &DiskFacts| {
            names.contains(&base(&d.path).as_str())
                || d.partitions.iter().any(|(p, _, _)| names.contains(&base(p).as_str()))
        };
        let mut mounts: Vec<String> = Vec::new();
        for d in disks.iter() {
            for (p, _, m) in &d.partitions {
                if names.contains(&base(p).as_str()) {
                    for m in m.iter().flat_map(|m| m.split(',')) {
                        if !mounts.iter().any(|x| x == m) {
                            mounts.push(m.to_string());
                        }
                    }
                }
            }
        }
        if mounts.is_empty() {
            mounts.push(format!("[btrfs {fsid}]"));
        }
        for d in disks.iter_mut().filter(|d| holds(d)) {
            for m in &mounts {
                if !d.mounts.contains(m) {
                    d.mounts.push(m.clone());
                }
            }
            d.holds_root |= d.mounts.iter().any(|m| m == "/");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::reinstall::discover::parse_lsblk;

    /// lsblk without a udev database: no FSTYPE or UUID, the root's mounts
    /// on `vda3` only.
    const BARE: &str = r#"{"blockdevices":[
 {"name":"vda","path":"/dev/vda","size":8589934592,"type":"disk","serial":"D1","mountpoints":[null],
  "children":[{"name":"vda3","path":"/dev/vda3","size":8050966528,"type":"part","mountpoints":["/home","/"]}]},
 {"name":"vdb","path":"/dev/vdb","size":8589934592,"type":"disk","serial":"D2","mountpoints":[null],
  "children":[{"name":"vdb3","path":"/dev/vdb3","size":8050966528,"type":"part","mountpoints":[null]}]},
 {"name":"vdc","path":"/dev/vdc","size":8589934592,"type":"disk","serial":"D3","mountpoints":[null]}
]}"#;

    #[test]
    fn the_kernel_s_member_list_marks_the_second_disk_of_a_raid1_root() {
        let mut disks = parse_lsblk(BARE).unwrap();
        assert!(disks[1].mounts.is_empty(), "lsblk alone does not see it");
        apply(&mut disks, "5e0c2a9e-6f1e-4a57-9d7e-1f0b7f3c2a10 vda3\n5e0c2a9e-6f1e-4a57-9d7e-1f0b7f3c2a10 vdb3\n");
        assert_eq!(disks[1].mounts, ["/home", "/"]);
        assert!(disks[0].holds_root && disks[1].holds_root && !disks[2].holds_root);
        assert!(disks[2].mounts.is_empty());
    }

    #[test]
    fn a_mounted_btrfs_whose_mounts_lsblk_does_not_show_still_makes_its_disks_in_use() {
        let mut disks = parse_lsblk(BARE).unwrap();
        apply(&mut disks, "0f6a3c1e vdc\n");
        assert_eq!(disks[2].mounts, ["[btrfs 0f6a3c1e]"]);
        assert!(!disks[2].holds_root);
    }
}
