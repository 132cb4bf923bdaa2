//! `metalboot reinstall`: turning a running server, reached over SSH, into a
//! freshly installed host that comes back on the same network: discovery
//! parsing (`discover`, `remote`), the SSH session (`ssh`), the inventory entry
//! printed from discovery (`entry`), starting the installer on the target
//! (`start`: kexec, or the one-shot GRUB entry of `oneshot`), progress
//! display (`progress`) and the command itself (`run`).

pub mod discover;
pub mod entry;
pub mod oneshot;
pub mod payload;
pub mod progress;
pub mod remote;
pub mod run;
pub mod ssh;
pub mod standalone;
pub mod start;
