//! The previous system's fstab during a trial: the subvolumes a keeping
//! reinstall moved under `@snapshots` are mounted from there, so the
//! previous system, if it comes back, runs on its own `/var/log` (or `/var`)
//! and not on the new system's.

/// `fstab` with each `subvol=NAME` (or `/NAME`) of a moved subvolume
/// (`(name, moved_to)`) pointing where it went; other lines as they were.
pub fn fstab_following(fstab: &str, moved: &[(String, String)]) -> String {
    let mut out = String::new();
    for line in fstab.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let follow = |o: &str| -> Option<String> {
            let v = o.strip_prefix("subvol=")?.trim_start_matches('/');
            moved.iter().find(|(name, _)| name == v).map(|(_, to)| format!("subvol=/{to}"))
        };
        let changed =
            fields.len() >= 4 && !fields[0].starts_with('#') && fields[3].split(',').any(|o| follow(o).is_some());
        if changed {
            let opts: Vec<String> = fields[3].split(',').map(|o| follow(o).unwrap_or_else(|| o.to_string())).collect();
            let mut f: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
            f[3] = opts.join(",");
            out.push_str(&f.join(" "));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moved_subvolumes_are_mounted_from_where_they_went() {
        let fstab = "# /etc/fstab: written by metalboot-installer\n\
                     UUID=R / btrfs subvol=/@,compress=zstd:1,noatime 0 0\n\
                     UUID=R /.snapshots btrfs subvol=/@snapshots,compress=zstd:1,noatime 0 0\n\
                     UUID=R /home btrfs subvol=/@home,compress=zstd:1,noatime 0 0\n\
                     UUID=R\t/var/log\tbtrfs\tnoatime,subvol=@var_log\t0 0\n\
                     # UUID=R /x btrfs subvol=/@ 0 0\n\
                     UUID=E /boot/efi vfat umask=0077 0 1\n";
        let moved = [
            ("@".to_string(), "@snapshots/@.replaced.T".to_string()),
            ("@var_log".to_string(), "@snapshots/@var_log.replaced.T".to_string()),
        ];
        let out = fstab_following(fstab, &moved);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[1], "UUID=R / btrfs subvol=/@snapshots/@.replaced.T,compress=zstd:1,noatime 0 0");
        assert_eq!(lines[2], "UUID=R /.snapshots btrfs subvol=/@snapshots,compress=zstd:1,noatime 0 0");
        assert_eq!(lines[3], "UUID=R /home btrfs subvol=/@home,compress=zstd:1,noatime 0 0", "kept: untouched");
        assert_eq!(lines[4], "UUID=R /var/log btrfs noatime,subvol=/@snapshots/@var_log.replaced.T 0 0");
        assert_eq!(lines[5], "# UUID=R /x btrfs subvol=/@ 0 0", "comments stay");
        assert_eq!(lines[6], "UUID=E /boot/efi vfat umask=0077 0 1");
        assert_eq!(fstab_following(fstab, &[]), fstab);
    }
}
