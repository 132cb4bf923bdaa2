//! metalboot-installer as a library: the pure parts (command line, disk
//! facts, selection, planning, rendering) and the steps that carry a plan out.

pub mod cmdline;
pub mod probe;
pub mod select;
pub mod sysinit;
