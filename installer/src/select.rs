//! Choosing the install disk: the plan's selector must match exactly one
//! eligible disk. Removable and read-only disks, and disks the installer is
//! running from (or has mounted), are never eligible. A disk that already
//! holds partitions is chosen only when the plan says `wipe = true`. A plan
//! with several disks (`disks = [...]`) has each selector choose its own
//! disk by the same rules, and two that choose the same disk are refused.

use crate::probe::DiskFacts;
use metalboot_spec::{DiskIdentity, DiskSelector};

/// Why no disk was chosen.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectError {
    /// Nothing matched.
    #[error("no disk matches {selector}; disks seen: {seen}")]
    NoMatch {
        /// The selector in words.
        selector: String,
        /// Each disk and why it was passed over.
        seen: String,
    },
    /// More than one disk matched.
    #[error("{count} disks match {selector}: {names}; refusing to guess")]
    Ambiguous {
        /// The selector in words.
        selector: String,
        /// How many matched.
        count: usize,
        /// Their paths.
        names: String,
    },
    /// The one match holds partitions and the plan does not allow wiping.
    #[error("{path} matches {selector} but holds partitions ({parts}); set disk.wipe = true to allow wiping it")]
    HasPartitions {
        /// The selector in words.
        selector: String,
        /// The disk.
        path: String,
        /// Its partitions.
        parts: String,
    },
    /// Two selectors of a multi-disk plan chose the same disk.
    #[error(
        "disks[{first}] ({first_selector}) and disks[{second}] ({second_selector}) both match {path}; each \
         selector must pick its own disk"
    )]
    SameDisk {
        /// Index of the first selector.
        first: usize,
        /// The first selector in words.
        first_selector: String,
        /// Index of the second selector.
        second: usize,
        /// The second selector in words.
        second_selector: String,
        /// The disk both chose.
        path: String,
    },
}

/// Why `d` does not satisfy `sel` (None: it does).
pub fn mismatch(d: &DiskFacts, sel: &DiskSelector, excluded: &[String]) -> Option<String> {
    if d.removable {
        return Some("removable".into());
    }
    if d.read_only {
        return Some("read-only".into());
    }
    if excluded.contains(&d.name) {
        return Some("in use by the running system".into());
    }
    sel.mismatch(&DiskIdentity {
        path: &d.path,
        serial: d.serial.as_deref(),
        wwn: d.wwn.as_deref(),
        model: d.model.as_deref(),
        size: d.size,
    })
}

/// Picks the one disk `sel` names among `disks`; `excluded` holds kernel
/// names of disks in use (boot medium, mounted).
pub fn select<'a>(
    disks: &'a [DiskFacts],
    sel: &DiskSelector,
    excluded: &[String],
) -> Result<&'a DiskFacts, SelectError> {
    let selector = sel.describe();
    let matches: Vec<&DiskFacts> = disks.iter().filter(|d| mismatch(d, sel, excluded).is_none()).collect();
    match matches.as_slice() {
        [] => Err(SelectError::NoMatch {
            selector,
            seen: if disks.is_empty() {
                "none".into()
            } else {
                disks
                    .iter()
                    .map(|d| format!("{} ({})", d.path, mismatch(d, sel, excluded).unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        }),
        [one] => {
            if !one.partitions.is_empty() && !sel.wipe {
                return Err(SelectError::HasPartitions {
                    selector,
                    path: one.path.clone(),
                    parts: one.partitions.join(", "),
                });
            }
            Ok(one)
        }
        many => Err(SelectError::Ambiguous {
            selector,
            count: many.len(),
            names: many.iter().map(|d| d.path.as_str()).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// Picks one disk per selector (each by [`select`]'s rules, in order) and
/// refuses two selectors choosing the same disk, naming both.
pub fn select_all<'a>(
    disks: &'a [DiskFacts],
    sels: &[DiskSelector],
    excluded: &[String],
) -> Result<Vec<&'a DiskFacts>, SelectError> {
    let mut chosen: Vec<&DiskFacts> = Vec::with_capacity(sels.len());
    for (j, sel) in sels.iter().enumerate() {
        let d = select(disks, sel, excluded)?;
        if let Some(i) = chosen.iter().position(|c| c.name == d.name) {
            return Err(SelectError::SameDisk {
                first: i,
                first_selector: sels[i].describe(),
                second: j,
                second_selector: sel.describe(),
                path: d.path.clone(),
            });
        }
        chosen.push(d);
    }
    Ok(chosen)
}
