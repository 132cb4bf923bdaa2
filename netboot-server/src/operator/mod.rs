//! The operator's side of metalboot: commands that work a server through
//! its HTTP API (`client`), the host commands (`hosts`, `watch`) and `metalboot
//! reinstall` (`reinstall`). Nothing here reaches into the server: these
//! modules use `spec`, the API's wire types (`crate::api`), the shared
//! helpers below both sides (`crate::digest`, `crate::sshkey`,
//! `crate::inventory`) and each other.

pub mod client;
pub mod hosts;
pub mod reinstall;
pub mod status;
pub mod watch;
