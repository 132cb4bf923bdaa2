//! Backups of a host's snapshots to other machines over SSH
//! (`[[host.snapshots.send]]`): btrbk sends each snapshot to every target
//! with `btrfs send | ssh … btrfs receive`, incrementally after the first.
//! A target is trusted by the host key the inventory pins, never on first
//! use: the installed system's SSH client checks it against a known_hosts
//! file metalboot writes, with strict checking, for that host only.

use crate::error::{quote, SpecError};
use crate::retention::Retention;
use serde::{Deserialize, Serialize};

/// The installed system's key for logging in to the targets; generated at
/// install, its public half reported to the server (`hosts show`).
pub const BACKUP_IDENTITY: &str = "/etc/btrbk/ssh/id_ed25519";
/// The targets' pinned host keys.
pub const BACKUP_KNOWN_HOSTS: &str = "/etc/btrbk/ssh/known_hosts";
/// The SSH client's settings for the targets' hosts.
pub const BACKUP_SSH_CONFIG: &str = "/etc/ssh/ssh_config.d/metalboot-backup.conf";

/// One `[[host.snapshots.send]]` entry.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SendTarget {
    /// `ssh://HOST[:PORT]/DIRECTORY`, the directory on a BTRFS filesystem
    /// of the target (HOST: a name, an IPv4 address or `[IPv6]`).
    pub target: String,
    /// The target's SSH host public key (`type base64`), pinned.
    pub host_key: String,
    /// Who logs in; must be able to run `btrfs receive` (root by default).
    #[serde(default = "root")]
    pub user: String,
    /// Which of the snapshotted subvolumes go there; all when absent
    /// (e.g. only `["@home"]`: a root metalboot reinstalls needs no backup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subvolumes: Option<Vec<String>>,
    /// What the target keeps, as for the snapshots themselves.
    #[serde(default)]
    pub keep: Retention,
}

fn root() -> String {
    "root".to_string()
}

/// A target URL taken apart.
#[derive(Debug, PartialEq, Eq)]
pub struct TargetUrl<'a> {
    /// As ssh takes it: no brackets around an IPv6 address.
    pub host: &'a str,
    /// None: SSH's default, 22.
    pub port: Option<u16>,
    /// The absolute directory on the target.
    pub dir: &'a str,
}

impl TargetUrl<'_> {
    /// The host as a known_hosts line names it: `[host]:port` off port 22.
    pub fn known_hosts_name(&self) -> String {
        match self.port {
            Some(p) if p != 22 => format!("[{}]:{p}", self.host),
            _ => self.host.to_string(),
        }
    }
}

/// Parses `ssh://HOST[:PORT]/DIR`, as btrbk accepts it.
pub fn parse_target(url: &str) -> Result<TargetUrl<'_>, String> {
    let bad = |why: &str| format!("{} is not ssh://HOST[:PORT]/DIRECTORY: {why}", quote(url));
    let rest = url.strip_prefix("ssh://").ok_or_else(|| bad("it must start with ssh://"))?;
    let slash = rest.find('/').ok_or_else(|| bad("no directory"))?;
    let (authority, dir) = rest.split_at(slash);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or_else(|| bad("no ] after the IPv6 address"))?;
        let ip = addr.parse::<std::net::Ipv6Addr>().map_err(|_| bad("not an IPv6 address in [ ]"))?;
        if ip.to_ipv4_mapped().is_some() || addr.contains('.') {
            return Err(bad("an IPv4 address in IPv6 form: write it as IPv4"));
        }
        (addr, after.strip_prefix(':'))
    } else {
        let (h, p) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if h.is_empty() || h.len() > 253 || !h.split('.').all(label_ok) {
            return Err(bad("the host is not a name or an address"));
        }
        (h, p)
    };
    if authority.contains('@') {
        return Err(bad("give the user as `user`, not in the URL"));
    }
    let port = match port {
        None if authority.ends_with(']') || !authority.contains(':') => None,
        None => return Err(bad("text after the IPv6 address")),
        Some(p) if p.is_empty() || p.starts_with('0') || !p.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(bad("the port is not 1 to 65535, in digits"))
        }
        Some(p) => Some(p.parse::<u16>().map_err(|_| bad("the port is not 1 to 65535, in digits"))?),
    };
    crate::safe::check_abs_path(dir).map_err(|e| bad(&e))?;
    if dir == "/" {
        return Err(bad("the directory is the root of the target"));
    }
    Ok(TargetUrl { host, port, dir })
}

impl SendTarget {
    /// Checks every field; names are relative to the entry.
    pub fn validate(&self) -> Result<(), SpecError> {
        parse_target(&self.target).map_err(|m| SpecError::new("target", m))?;
        crate::safe::check_ssh_public_key(&self.host_key).map_err(|m| SpecError::new("host_key", m))?;
        crate::safe::check_user_name(&self.user).map_err(|m| SpecError::new("user", m))?;
        self.keep.validate("keep")
    }

    /// Whether snapshots of `subvolume` go to this target.
    pub fn sends(&self, subvolume: &str) -> bool {
        self.subvolumes.as_ref().is_none_or(|l| l.iter().any(|s| s == subvolume))
    }

    /// This target's lines in a `subvolume` section of btrbk.conf.
    pub fn btrbk_lines(&self) -> String {
        let k = &self.keep;
        format!(
            "  target {}\n    ssh_user {}\n    target_preserve_min {}\n    target_preserve {}\n",
            self.target,
            self.user,
            k.all_within.as_deref().unwrap_or("latest"),
            k.preserve()
        )
    }
}

/// The known_hosts file pinning every target's host key.
pub fn known_hosts(targets: &[SendTarget]) -> String {
    let mut out = String::from("# written by metalboot: the send targets' host keys ([host.snapshots.send])\n");
    for t in targets {
        if let Ok(u) = parse_target(&t.target) {
            let mut key = t.host_key.split_whitespace();
            let (kind, b64) = (key.next().unwrap_or(""), key.next().unwrap_or(""));
            out.push_str(&format!("{} {kind} {b64}\n", u.known_hosts_name()));
        }
    }
    out
}

/// The SSH client's settings for root's connections to the targets' hosts
/// (btrbk runs as root; other users' SSH is left alone): their keys only
/// from [`BACKUP_KNOWN_HOSTS`], strictly, never learnt or updated, no
/// prompts.
pub fn ssh_config(targets: &[SendTarget]) -> String {
    let mut hosts: Vec<&str> = targets.iter().filter_map(|t| parse_target(&t.target).ok()).map(|u| u.host).collect();
    let mut seen = Vec::new();
    hosts.retain(|h| {
        if seen.contains(h) {
            false
        } else {
            seen.push(*h);
            true
        }
    });
    let mut out =
        String::from("# written by metalboot: the send targets of [host.snapshots.send], by their pinned host keys\n");
    for h in hosts {
        out.push_str(&format!(
            "Match host {h} localuser root\n    StrictHostKeyChecking yes\n    UserKnownHostsFile \
             {BACKUP_KNOWN_HOSTS}\n    GlobalKnownHostsFile {BACKUP_KNOWN_HOSTS}\n    UpdateHostKeys no\n    \
             CheckHostIP no\n    BatchMode yes\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    fn target(url: &str) -> SendTarget {
        SendTarget {
            target: url.into(),
            host_key: KEY.into(),
            user: root(),
            subvolumes: None,
            keep: Retention::default(),
        }
    }

    #[test]
    fn urls_are_taken_apart_as_btrbk_and_ssh_name_them() {
        let u = parse_target("ssh://backup.example.net/srv/btrbk/web1").unwrap();
        assert_eq!(u, TargetUrl { host: "backup.example.net", port: None, dir: "/srv/btrbk/web1" });
        assert_eq!(u.known_hosts_name(), "backup.example.net");
        let u = parse_target("ssh://10.99.0.1:2222/srv/b").unwrap();
        assert_eq!((u.host, u.port, u.known_hosts_name().as_str()), ("10.99.0.1", Some(2222), "[10.99.0.1]:2222"));
        let u = parse_target("ssh://[2001:db8::7]:22/b").unwrap();
        assert_eq!((u.host, u.known_hosts_name().as_str()), ("2001:db8::7", "2001:db8::7"));
        for bad in [
            "backup:/srv",
            "ssh://backup",
            "ssh:///srv",
            "ssh://root@backup/srv",
            "ssh://backup:0/srv",
            "ssh://backup:ssh/srv",
            "ssh://[2001:db8::7/srv",
            "ssh://[nope]/srv",
            "ssh://backup:+22/srv",
            "ssh://backup:022/srv",
            "ssh://backup:70000/srv",
            "ssh://[::ffff:1.2.3.4]/srv",
            "ssh://bad_host/srv",
            "ssh://backup/",
            "ssh://backup/srv/../etc",
            "ssh://backup/srv dir",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bad_entry_names_its_field() {
        let e = |t: SendTarget| t.validate().unwrap_err().to_string();
        assert!(e(target("rsync://x/y")).starts_with("field `target`"));
        assert!(
            e(SendTarget { host_key: "ssh-ed25519 !!".into(), ..target("ssh://x/y") }).starts_with("field `host_key`")
        );
        assert!(e(SendTarget { user: "Root Admin".into(), ..target("ssh://x/y") }).starts_with("field `user`"));
        let mut t = target("ssh://x/y");
        t.keep.all_within = Some("ever".into());
        assert!(e(t).starts_with("field `keep.all_within`"));
        target("ssh://x/y").validate().unwrap();
    }

    #[test]
    fn targets_are_pinned_strictly_by_host_and_port() {
        let ts = [target("ssh://10.99.0.1:2222/srv/a"), target("ssh://10.99.0.1/srv/b"), target("ssh://b.example/c")];
        assert_eq!(
            known_hosts(&ts),
            format!(
                "# written by metalboot: the send targets' host keys ([host.snapshots.send])\n\
                 [10.99.0.1]:2222 {KEY}\n10.99.0.1 {KEY}\nb.example {KEY}\n"
            )
        );
        let c = ssh_config(&ts);
        assert_eq!(c.matches("Match host ").count(), 2, "{c}");
        assert!(c.contains("Match host 10.99.0.1 localuser root\n    StrictHostKeyChecking yes\n"), "{c}");
        assert!(c.contains(&format!("UserKnownHostsFile {BACKUP_KNOWN_HOSTS}\n")), "{c}");
        let lines = ts[0].btrbk_lines();
        assert_eq!(
            lines,
            "  target ssh://10.99.0.1:2222/srv/a\n    ssh_user root\n    target_preserve_min latest\n    \
             target_preserve 24h 7d 4w 6m\n"
        );
    }
}
