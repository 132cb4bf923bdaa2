//! metalboot's image builders: a deterministic newc cpio writer, the kernel
//! package fetcher, module resolution, and the initramfs assembly.

pub mod cpio;
pub mod hostfs;
pub mod image;
pub mod kernel;
pub mod modules;
pub mod run;
