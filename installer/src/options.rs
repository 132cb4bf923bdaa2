//! Where and how an install is carried out: the installer's own settings,
//! apart from the host's plan. Read by the steps (`install`, `configure`).

use metalboot_spec::PinSet;
use std::path::PathBuf;

/// Where and how to install.
pub struct Options {
    /// sysfs root to probe (`/sys`).
    pub sys: PathBuf,
    /// Consider only loop devices (integration tests on the build machine).
    pub loop_only: bool,
    /// Where the new system is mounted.
    pub target: PathBuf,
    /// Scratch mount point for the top-level subvolume.
    pub scratch: PathBuf,
    /// Install token (for the phone-home unit).
    pub token: String,
    /// Install GRUB (false in tests that only check the filesystem).
    pub bootloader: bool,
    /// Install these `ssh_host_*` files instead of generating host keys
    /// (standalone reinstall: the operator's side chose and pinned them).
    pub host_keys: Option<PathBuf>,
    /// Enable the first-boot phone-home unit (off when the host cannot reach
    /// the server: standalone).
    pub phone_home: bool,
    /// The server's key pins (`metalboot.pin`): the phone-home's curl
    /// checks them when the plan's endpoints are `https://`.
    pub pins: Option<PinSet>,
}
