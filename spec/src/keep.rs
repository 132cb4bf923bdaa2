//! A reinstall that keeps data (`metalboot reinstall --keep @home`): which
//! subvolumes may be kept, and the names the replaced ones are kept under.

use crate::disk::Layout;
use crate::error::{quote, SpecError};
use crate::snapshots::SNAPSHOT_SUBVOLUME;

/// Checks `keep` against the layout: subvolumes of it, each once, never the
/// root (it is what is replaced) nor `@snapshots` (always kept: the old
/// root goes there), and the layout must have `@snapshots`.
pub fn check_keep(keep: &[String], layout: &Layout) -> Result<(), SpecError> {
    if keep.is_empty() {
        return Ok(());
    }
    if !layout.subvolumes.iter().any(|s| s.name == SNAPSHOT_SUBVOLUME) {
        return Err(SpecError::new(
            "keep",
            format!("the layout has no {SNAPSHOT_SUBVOLUME}: the old root would have nowhere to go"),
        ));
    }
    for (i, name) in keep.iter().enumerate() {
        let field = format!("keep[{i}]");
        let Some(sv) = layout.subvolumes.iter().find(|s| &s.name == name) else {
            let known: Vec<_> = layout.subvolumes.iter().map(|s| s.name.as_str()).collect();
            return Err(SpecError::new(
                field,
                format!("{} is not a subvolume of the layout ({})", quote(name), known.join(", ")),
            ));
        };
        if sv.mountpoint == "/" {
            return Err(SpecError::new(field, format!("{} is the root: it is what a reinstall replaces", quote(name))));
        }
        if name == SNAPSHOT_SUBVOLUME {
            return Err(SpecError::new(field, format!("{SNAPSHOT_SUBVOLUME} is always kept; leave it out")));
        }
        if keep[..i].contains(name) {
            return Err(SpecError::new(field, format!("{} is named twice", quote(name))));
        }
    }
    Ok(())
}

/// What a keeping reinstall does with each subvolume of the layout:
/// `(name, Some(kept_as))` for one replaced (kept read-only as
/// `@snapshots/<name>.replaced.<stamp>`), `(name, None)` for one kept.
pub fn dispositions(keep: &[String], layout: &Layout, stamp: &str) -> Vec<(String, Option<String>)> {
    layout
        .subvolumes
        .iter()
        .map(|s| {
            let kept = s.name == SNAPSHOT_SUBVOLUME || keep.contains(&s.name);
            (s.name.clone(), (!kept).then(|| format!("{SNAPSHOT_SUBVOLUME}/{}.replaced.{stamp}", s.name)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_data_subvolumes_of_the_layout_are_kept() {
        let l = Layout::default();
        check_keep(&["@home".into()], &l).unwrap();
        check_keep(&[], &l).unwrap();
        let e =
            |k: &[&str]| check_keep(&k.iter().map(|s| s.to_string()).collect::<Vec<_>>(), &l).unwrap_err().to_string();
        assert!(e(&["@data"]).contains("field `keep[0]`: \"@data\" is not a subvolume of the layout (@, @home"));
        assert!(e(&["@"]).contains("is the root"));
        assert!(e(&["@snapshots"]).contains("always kept"));
        assert!(e(&["@home", "@home"]).contains("field `keep[1]`"));
        let mut no_snaps = l.clone();
        no_snaps.subvolumes.retain(|s| s.name != "@snapshots");
        assert!(check_keep(&["@home".into()], &no_snaps).unwrap_err().to_string().contains("nowhere to go"));
    }

    #[test]
    fn the_root_and_what_is_not_kept_go_under_snapshots() {
        let d = dispositions(&["@home".into()], &Layout::default(), "20261206T0010");
        assert_eq!(
            d,
            [
                ("@".to_string(), Some("@snapshots/@.replaced.20261206T0010".to_string())),
                ("@home".to_string(), None),
                ("@var_log".to_string(), Some("@snapshots/@var_log.replaced.20261206T0010".to_string())),
                ("@snapshots".to_string(), None),
            ]
        );
    }
}
