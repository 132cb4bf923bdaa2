//! The integration tests of the initramfs builder, in one test binary.

// a test may unwrap: a panic is its failure report
#![allow(clippy::unwrap_used)]

mod cpio_roundtrip;
