//! The RAM payload of a standalone reinstall: an uncompressed cpio (newc)
//! archive holding `/metalboot/plan.json`, the root filesystem image and
//! the new host keys. It goes *before* the installer's compressed
//! initramfs in the one initrd kexec loads, the way early microcode is
//! carried: the kernel unpacks both into the same root filesystem. Files
//! are streamed from disk, so a 200 MiB image is never held in memory.

use anyhow::{bail, Context, Result};
use metalboot_spec::quote;
use std::io::Write;
use std::path::Path;

/// Writes a newc archive entry by entry.
pub struct CpioWriter<W: Write> {
    w: W,
    ino: u32,
    at: u64,
}

impl<W: Write> CpioWriter<W> {
    /// An archive written to `w`.
    pub fn new(w: W) -> Self {
        CpioWriter { w, ino: 1, at: 0 }
    }

    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.w.write_all(b)?;
        self.at += b.len() as u64;
        Ok(())
    }

    fn pad4(&mut self) -> Result<()> {
        let pad = (4 - (self.at % 4) as usize) % 4;
        self.put(&[0u8; 3][..pad])
    }

    fn header(&mut self, name: &str, mode: u32, size: u64) -> Result<()> {
        let Ok(size32) = u32::try_from(size) else {
            bail!("{name}: {size} bytes does not fit a cpio newc entry (4 GiB)")
        };
        if name.is_empty() || name.starts_with('/') || name.contains('\0') || name.split('/').any(|c| c == "..") {
            bail!("cpio entry name {} must be relative, without `..`", quote(name));
        }
        let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
        let fields = [self.ino, mode, 0, 0, nlink, 0, size32, 0, 0, 0, 0, name.len() as u32 + 1, 0];
        self.ino += 1;
        let mut h = String::from("070701");
        for f in fields {
            h.push_str(&format!("{f:08X}"));
        }
        self.put(h.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad4()
    }

    /// A directory.
    pub fn dir(&mut self, name: &str, perm: u32) -> Result<()> {
        self.header(name, 0o040000 | (perm & 0o7777), 0)
    }

    /// A regular file from memory.
    pub fn bytes(&mut self, name: &str, perm: u32, data: &[u8]) -> Result<()> {
        self.header(name, 0o100000 | (perm & 0o7777), data.len() as u64)?;
        self.put(data)?;
        self.pad4()
    }

    /// A regular file streamed from `src`.
    pub fn file(&mut self, name: &str, perm: u32, src: &Path) -> Result<()> {
        let mut f = std::fs::File::open(src).with_context(|| format!("opening {}", src.display()))?;
        let size = f.metadata()?.len();
        self.header(name, 0o100000 | (perm & 0o7777), size)?;
        let n = std::io::copy(&mut f, &mut self.w).with_context(|| format!("copying {}", src.display()))?;
        if n != size {
            bail!("{} changed while it was archived ({size} then {n} bytes)", src.display());
        }
        self.at += n;
        self.pad4()
    }

    /// Ends the archive (`TRAILER!!!`), zero-padded to 512 bytes so the
    /// compressed archive appended after it starts aligned.
    pub fn finish(mut self) -> Result<W> {
        self.header("TRAILER!!!", 0, 0)?;
        let pad = (512 - (self.at % 512) as usize) % 512;
        self.put(&vec![0u8; pad])?;
        self.w.flush()?;
        Ok(self.w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_newc_and_everything_is_4_byte_aligned() {
        let mut w = CpioWriter::new(Vec::new());
        w.dir("metalboot", 0o700).unwrap();
        w.bytes("metalboot/plan.json", 0o600, b"{}\n").unwrap();
        let out = w.finish().unwrap();
        assert_eq!(out.len() % 512, 0);
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("070701"), "{text}");
        // dir: mode 040700, 2 links; name "metalboot\0" is 10 bytes
        assert_eq!(&text[6 + 8..6 + 16], "000041C0");
        assert_eq!(&text[6 + 11 * 8..6 + 12 * 8], "0000000A");
        // header 110 + name 10 = 120, already aligned: the next header follows
        assert_eq!(&text[120..126], "070701");
        assert!(text.contains("TRAILER!!!"));
    }

    #[test]
    fn names_that_escape_or_sizes_over_4_gib_are_refused() {
        let mut w = CpioWriter::new(Vec::new());
        assert!(w.bytes("/etc/passwd", 0o644, b"").is_err());
        assert!(w.bytes("a/../../b", 0o644, b"").is_err());
        assert!(w.header("big", 0o100644, 1 << 32).unwrap_err().to_string().contains("4 GiB"));
    }

    /// GNU cpio reads back what was written, content and modes.
    #[test]
    fn gnu_cpio_extracts_it() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        let data: Vec<u8> = (0..300_001u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&big, &data).unwrap();
        let arch = dir.path().join("p.cpio");
        let mut w = CpioWriter::new(std::fs::File::create(&arch).unwrap());
        w.dir("metalboot", 0o700).unwrap();
        w.dir("metalboot/ssh", 0o700).unwrap();
        w.file("metalboot/rootfs.tar.zst", 0o600, &big).unwrap();
        w.bytes("metalboot/ssh/ssh_host_ed25519_key.pub", 0o644, b"ssh-ed25519 AAAA x\n").unwrap();
        w.finish().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let st = std::process::Command::new("cpio")
            .args(["-i", "-d", "--no-absolute-filenames", "--quiet", "-F"])
            .arg(&arch)
            .current_dir(&out)
            .status()
            .expect("cpio (GNU cpio) is installed");
        assert!(st.success());
        assert_eq!(std::fs::read(out.join("metalboot/rootfs.tar.zst")).unwrap(), data);
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(out.join("metalboot/rootfs.tar.zst")).unwrap().permissions().mode();
        assert_eq!(m & 0o777, 0o600);
        let k = std::fs::read_to_string(out.join("metalboot/ssh/ssh_host_ed25519_key.pub")).unwrap();
        assert_eq!(k, "ssh-ed25519 AAAA x\n");
    }
}
