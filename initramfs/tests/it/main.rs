//! The integration tests of the initramfs builder, in one test binary.

mod cpio_roundtrip;
