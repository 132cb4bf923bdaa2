//! The integration tests of the installer, in one test binary: disk selection
//! on sysfs fixtures, entropy, and installs onto loop devices (root only,
//! `#[ignore]`d otherwise).

mod common;
mod entropy;
mod loop_install;
mod select_fixtures;
