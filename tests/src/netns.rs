//! The scenarios' namespaces, made by the same code as `metalboot lab`'s:
//! named `mbe2e-<scenario>-<pid>`, so that a crashed run's are found and
//! removed by the next.

pub use metalboot::lab::netns::{run, Netns};

/// Prefix of every namespace this harness creates.
pub const PREFIX: &str = "mbe2e-";

/// Deletes namespaces left by earlier runs of the harness (and kills what
/// ran in them); those of a harness process still running are left alone.
pub fn cleanup_stale() {
    metalboot::lab::netns::cleanup_stale(PREFIX)
}
