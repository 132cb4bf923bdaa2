//! metalboot's image builders: a deterministic newc cpio writer, the kernel
//! package fetcher, module resolution, and the initramfs assembly.

pub mod cpio;
pub mod hostfs;
pub mod image;
pub mod kernel;
pub mod modules;
pub mod rootfs;
pub mod run;

/// sha256 of a file, streamed, lower-case hex.
pub fn sha256_file(path: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context;
    use sha2::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}
