//! Snapshots of a host's subvolumes, declared in the inventory
//! (`[host.snapshots]`) and carried in the plan: the installed system takes
//! them with Debian's `btrbk` on a systemd timer, into the `@snapshots`
//! subvolume, and prunes them by the retention given. Everything is checked
//! here, at inventory load, with the field named; [`SnapshotSpec::btrbk_conf`]
//! renders the one configuration both the plan preview and the installer use.

use crate::disk::Layout;
use crate::error::{quote, SpecError};
use crate::retention::span;
pub use crate::retention::Retention;
use serde::{Deserialize, Serialize};

/// The subvolume snapshots go into.
pub const SNAPSHOT_SUBVOLUME: &str = "@snapshots";

/// `[host.snapshots]`
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSpec {
    /// Subvolumes of the layout to snapshot, e.g. `["@", "@home"]`.
    pub subvolumes: Vec<String>,
    /// How often: a number and a unit, `min`, `h`, `d` or `w` (`"15min"`,
    /// `"1h"`, `"1d"`).
    pub every: String,
    /// What is kept.
    #[serde(default)]
    pub keep: Retention,
    /// Where the snapshots are sent, over SSH (`[[host.snapshots.send]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub send: Vec<crate::send::SendTarget>,
}

/// Where the layout mounts [`SNAPSHOT_SUBVOLUME`] (`/.snapshots` by default).
pub fn snapshot_dir(layout: &Layout) -> &str {
    layout.subvolumes.iter().find(|s| s.name == SNAPSHOT_SUBVOLUME).map_or("/.snapshots", |s| &s.mountpoint)
}

impl SnapshotSpec {
    /// The interval in minutes.
    pub fn every_minutes(&self) -> Result<u64, SpecError> {
        let (n, unit) = span(&self.every, &["min", "h", "d", "w"]).map_err(|m| SpecError::new("every", m))?;
        Ok(n * match unit {
            "min" => 1,
            "h" => 60,
            "d" => 1440,
            _ => 10_080,
        })
    }

    /// Checks against the host's layout.
    pub fn validate(&self, layout: &Layout) -> Result<(), SpecError> {
        if self.subvolumes.is_empty() {
            return Err(SpecError::new(
                "subvolumes",
                "empty: name the subvolumes to snapshot, e.g. [\"@\", \"@home\"]",
            ));
        }
        if !layout.subvolumes.iter().any(|s| s.name == SNAPSHOT_SUBVOLUME) {
            return Err(SpecError::new(
                "subvolumes",
                format!("the layout has no {SNAPSHOT_SUBVOLUME} subvolume to keep the snapshots in"),
            ));
        }
        for (i, name) in self.subvolumes.iter().enumerate() {
            let field = format!("subvolumes[{i}]");
            if name == SNAPSHOT_SUBVOLUME {
                return Err(SpecError::new(
                    field,
                    format!("{SNAPSHOT_SUBVOLUME} holds the snapshots; it is not snapshotted"),
                ));
            }
            if !layout.subvolumes.iter().any(|s| &s.name == name) {
                let known: Vec<_> = layout.subvolumes.iter().map(|s| s.name.as_str()).collect();
                return Err(SpecError::new(
                    field,
                    format!("{} is not a subvolume of the layout ({})", quote(name), known.join(", ")),
                ));
            }
            if self.subvolumes[..i].contains(name) {
                return Err(SpecError::new(field, format!("{} is named twice", quote(name))));
            }
        }
        self.every_minutes()?;
        self.keep.validate("keep")?;
        for (i, t) in self.send.iter().enumerate() {
            t.validate().map_err(|e| e.under(&format!("send[{i}]")))?;
            for (j, name) in t.subvolumes.iter().flatten().enumerate() {
                if !self.subvolumes.contains(name) {
                    return Err(SpecError::new(
                        format!("send[{i}].subvolumes[{j}]"),
                        format!("{} is not snapshotted (subvolumes = {:?})", quote(name), self.subvolumes),
                    ));
                }
            }
            if t.subvolumes.as_ref().is_some_and(Vec::is_empty) {
                return Err(SpecError::new(format!("send[{i}].subvolumes"), "empty: leave it out to send them all"));
            }
        }
        Ok(())
    }

    /// `/etc/btrbk/btrbk.conf` for the host: one `subvolume` section per
    /// subvolume, by its mount point, named after it.
    pub fn btrbk_conf(&self, layout: &Layout, hostname: &str) -> String {
        let dir = snapshot_dir(layout);
        let k = &self.keep;
        let mut out = format!(
            "# btrbk configuration for {hostname}, written by metalboot from its inventory ([host.snapshots]).\n\
             # Snapshots every {} into {dir} ({SNAPSHOT_SUBVOLUME}); btrbk.timer runs `btrbk run`.\n\
             timestamp_format        long-iso\n\
             snapshot_create         always\n\
             snapshot_preserve_min   {}\n\
             snapshot_preserve       {}\n\
             snapshot_dir            {dir}\n",
            self.every,
            k.all_within.as_deref().unwrap_or("latest"),
            k.preserve(),
        );
        if !self.send.is_empty() {
            out.push_str(&format!(
                "# sent to {} target(s) over SSH, their host keys pinned in {}\nssh_identity            {}\n",
                self.send.len(),
                crate::send::BACKUP_KNOWN_HOSTS,
                crate::send::BACKUP_IDENTITY
            ));
        }
        for name in &self.subvolumes {
            let mp = layout.subvolumes.iter().find(|s| &s.name == name).map_or("/", |s| s.mountpoint.as_str());
            out.push_str(&format!("\nsubvolume {mp}\n  snapshot_name {name}\n"));
            for t in self.send.iter().filter(|t| t.sends(name)) {
                out.push_str(&t.btrbk_lines());
            }
        }
        out
    }

    /// The drop-in that sets btrbk.timer's interval: `every` after each
    /// run, and soon after boot (at most 5 minutes), so a host that reboots
    /// more often than `every` still gets its snapshots.
    pub fn timer_dropin(&self) -> String {
        let m = self.every_minutes().unwrap_or(1440);
        format!(
            "# written by metalboot: snapshots every {} ([host.snapshots] every)\n[Timer]\nOnCalendar=\nOnBootSec={}min\nOnUnitActiveSec={m}min\nAccuracySec=1s\nPersistent=false\n",
            self.every,
            m.min(5)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml: &str) -> SnapshotSpec {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn a_good_spec_renders_btrbk_and_its_timer() {
        let s = spec("subvolumes = [\"@\", \"@home\"]\nevery = \"1h\"\nkeep = { hourly = 6, daily = 0, weekly = 0, monthly = 2 }\n");
        let layout = Layout::default();
        s.validate(&layout).unwrap();
        assert_eq!(s.every_minutes().unwrap(), 60);
        let conf = s.btrbk_conf(&layout, "web1");
        assert!(conf.contains("snapshot_preserve_min   latest\n"), "{conf}");
        assert!(conf.contains("snapshot_preserve       6h 2m\n"), "{conf}");
        assert!(conf.contains("snapshot_dir            /.snapshots\n"), "{conf}");
        assert!(
            conf.contains("\nsubvolume /\n  snapshot_name @\n\nsubvolume /home\n  snapshot_name @home\n"),
            "{conf}"
        );
        let timer = s.timer_dropin();
        assert!(timer.contains("OnUnitActiveSec=60min\n") && timer.contains("OnBootSec=5min\n"), "{timer}");
        let none =
            spec("subvolumes = [\"@\"]\nevery = \"1min\"\nkeep = { hourly = 0, daily = 0, weekly = 0, monthly = 0 }\n");
        assert!(none.btrbk_conf(&layout, "x").contains("snapshot_preserve       no\n"));
    }

    #[test]
    fn send_targets_go_in_every_subvolume_section_with_the_identity() {
        let s = spec(concat!(
            "subvolumes = [\"@\", \"@home\"]\nevery = \"1d\"\n",
            "[[send]]\ntarget = \"ssh://b.example:2222/srv/web1\"\n",
            "host_key = \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\"\n",
            "keep = { daily = 30, hourly = 0, weekly = 0, monthly = 0 }\n",
        ));
        let layout = Layout::default();
        s.validate(&layout).unwrap();
        let conf = s.btrbk_conf(&layout, "web1");
        assert!(conf.contains("ssh_identity            /etc/btrbk/ssh/id_ed25519\n"), "{conf}");
        assert_eq!(conf.matches("  target ssh://b.example:2222/srv/web1\n").count(), 2, "{conf}");
        assert!(conf.ends_with("snapshot_name @home\n  target ssh://b.example:2222/srv/web1\n    ssh_user root\n    target_preserve_min latest\n    target_preserve 30d\n"), "{conf}");
        let mut bad = s.clone();
        bad.send[0].target = "ssh://b.example/".into();
        assert!(bad.validate(&layout).unwrap_err().to_string().starts_with("field `send[0].target`"));
        bad.send[0].target = "ssh://b.example/x".into();
        bad.send[0].keep.weekly = 20_000;
        assert!(bad.validate(&layout).unwrap_err().to_string().starts_with("field `send[0].keep.weekly`"));
        let mut only = s.clone();
        only.send[0].subvolumes = Some(vec!["@home".into()]);
        only.validate(&layout).unwrap();
        assert_eq!(only.btrbk_conf(&layout, "web1").matches("  target ").count(), 1);
        only.send[0].subvolumes = Some(vec!["@var_log".into()]);
        let e = only.validate(&layout).unwrap_err().to_string();
        assert!(e.starts_with("field `send[0].subvolumes[0]`") && e.contains("not snapshotted"), "{e}");
        assert!(!serde_json::to_string(&spec("subvolumes = [\"@\"]\nevery = \"1d\"\n")).unwrap().contains("send"));
    }

    #[test]
    fn bad_values_are_refused_with_the_field_named() {
        let layout = Layout::default();
        let err = |t: &str| spec(t).validate(&layout).unwrap_err().to_string();
        assert!(err("subvolumes = [\"@\"]\nevery = \"1 hour\"\n").contains("every"));
        assert!(err("subvolumes = [\"@\"]\nevery = \"0min\"\n").contains("out of range"));
        assert!(err("subvolumes = [\"@\"]\nevery = \"5s\"\n").contains("every"));
        assert!(err("subvolumes = [\"@data\"]\nevery = \"1h\"\n").contains("subvolumes[0]"));
        assert!(err("subvolumes = [\"@\", \"@\"]\nevery = \"1h\"\n").contains("named twice"));
        assert!(err("subvolumes = [\"@snapshots\"]\nevery = \"1h\"\n").contains("holds the snapshots"));
        assert!(err("subvolumes = []\nevery = \"1h\"\n").contains("empty"));
        let e = err("subvolumes = [\"@\"]\nevery = \"1h\"\nkeep = { all_within = \"2 days\" }\n");
        assert!(e.contains("keep.all_within"), "{e}");
        assert!(err("subvolumes = [\"@\"]\nevery = \"1h\"\nkeep = { daily = 20000 }\n").contains("keep.daily"));
        assert!(
            toml::from_str::<SnapshotSpec>("subvolumes = [\"@\"]\nevery = \"1h\"\nkeep = { yearly = 1 }\n").is_err()
        );
    }
}
