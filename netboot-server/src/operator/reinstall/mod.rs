//! `metalboot reinstall`: turning a running server, reached over SSH, into a
//! freshly installed host that comes back on the same network: discovery
//! parsing (`discover`, `remote`), the SSH session (`ssh`; `sudo` for a
//! login that is not root), the inventory entry
//! printed from discovery (`entry`), the decisions made before anything
//! changes (`policy`), starting the installer on the target (`start`: kexec,
//! or the one-shot GRUB entry of `oneshot`; `standalone` and `payload` for a
//! target that cannot reach the server), following it (`follow`, the pure
//! state machine, and `watch`, the loops that observe for it; `keyprobe`
//! for which key the server presents from a target that came back), progress
//! display (`progress`) and the command itself (`run`).

pub mod choose;
pub mod discover;
pub mod entry;
pub mod follow;
pub mod keep;
pub mod keyprobe;
pub mod members;
pub mod oneshot;
pub mod payload;
pub mod policy;
pub mod progress;
pub mod remote;
pub mod rescue;
pub mod rootfs;
pub mod run;
pub mod ssh;
pub mod standalone;
pub mod start;
pub mod sudo;
pub mod watch;
