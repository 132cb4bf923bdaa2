//! metalboot-installer as a library: the pure parts (command line, disk
//! facts, selection, layout, rendering) and the steps that carry a plan out.

pub mod bootloader;
pub mod cmd;
pub mod cmdline;
pub mod configure;
pub mod disk;
pub mod entropy;
pub mod fetch;
pub mod fs;
pub mod install;
pub mod layout;
pub mod net;
pub mod probe;
pub mod render;
pub mod report;
pub mod select;
pub mod sysinit;
