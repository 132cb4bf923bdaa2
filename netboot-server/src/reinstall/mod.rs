//! `metalboot reinstall`: turning a running server, reached over SSH, into a
//! freshly installed host that comes back on the same network. This module
//! holds the pure parts: reading what the target reports about itself.

pub mod discover;
pub mod remote;
