//! The integration tests of the installer, in one test binary: disk selection
//! on sysfs fixtures, entropy, installs onto loop devices and the admin user
//! made in a chroot (root only, `#[ignore]`d otherwise).

// a test may unwrap: a panic is its failure report
#![allow(clippy::unwrap_used)]

mod common;
mod entropy;
mod golden;
mod grubcfg;
mod https;
mod loop_install;
mod loop_keep;
mod select_fixtures;
mod users;
