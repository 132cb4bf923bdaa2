//! `metalboot reinstall`: turning a running server, reached over SSH, into a
//! freshly installed host that comes back on the same network: discovery
//! parsing (`discover`, `remote`), the SSH session (`ssh`) and the command
//! itself (`run`).

pub mod discover;
pub mod remote;
pub mod run;
pub mod ssh;
