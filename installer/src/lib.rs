//! metalboot-installer as a library: the pure parts (disk facts, selection,
//! layout, rendering), the steps that carry a plan out, the command-line
//! interface and the initramfs's init sequence.

pub mod bootloader;
pub mod cli;
pub mod cmd;
pub mod configure;
pub mod console_log;
pub mod degraded;
pub mod disk;
pub mod diskplan;
pub mod entropy;
pub mod fetch;
pub mod files;
pub mod fresh;
pub mod fs;
pub mod grubcfg;
pub mod https;
pub mod init;
pub mod install;
pub mod keep;
pub mod layout;
pub mod net;
pub mod options;
pub mod probe;
pub mod render;
pub mod report;
pub mod select;
pub mod snapshots;
pub mod sysinit;
pub mod trial;
pub mod unpack;
pub mod users;
