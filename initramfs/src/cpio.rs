//! A deterministic writer for the "newc" cpio format (magic `070701`), the
//! format the Linux kernel unpacks an initramfs from
//! (Documentation/driver-api/early-userspace/buffer-format.rst).
//!
//! Determinism: entries are sorted by path, every missing parent directory is
//! emitted before its children, owners are 0:0, mtimes are one fixed value,
//! inode numbers are assigned in output order. The same entries always give
//! the same bytes.

use std::collections::BTreeMap;
use std::io::{self, Write};

/// What an entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file with its contents.
    File(Vec<u8>),
    /// A symbolic link to `target`.
    Symlink(String),
    /// A character device node.
    CharDev {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A block device node.
    BlockDev {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
}

/// One archive member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Permission bits (e.g. 0o755).
    pub mode: u32,
    /// Type and data.
    pub kind: Kind,
}

/// Why an entry was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CpioError {
    /// Empty path, `.`/`..` component, NUL, or a name over 4 KiB.
    #[error("unsafe path {0:?} in archive (empty, '.', '..' or NUL component)")]
    UnsafePath(String),
    /// A path was added twice with different contents.
    #[error("{0:?} added twice with different contents")]
    Conflict(String),
    /// A parent of the path is not a directory.
    #[error("{0:?} has a parent that is not a directory")]
    NotADirectory(String),
}

/// An in-memory archive, written out sorted.
#[derive(Default, Debug)]
pub struct Archive {
    entries: BTreeMap<String, Entry>,
    mtime: u32,
}

/// Normalises `path` to a relative form without leading `/`, refusing
/// anything that could escape the root.
pub fn clean_path(path: &str) -> Result<String, CpioError> {
    let trimmed = path.trim_start_matches('/');
    if trimmed.is_empty() || trimmed.len() > 4096 || trimmed.contains('\0') {
        return Err(CpioError::UnsafePath(path.to_string()));
    }
    let parts: Vec<&str> = trimmed.split('/').collect();
    if parts.iter().any(|p| p.is_empty() || *p == "." || *p == "..") {
        return Err(CpioError::UnsafePath(path.to_string()));
    }
    Ok(parts.join("/"))
}

impl Archive {
    /// A new archive whose entries all carry `mtime` (seconds since epoch).
    pub fn new(mtime: u32) -> Archive {
        Archive { entries: BTreeMap::new(), mtime }
    }

    /// Adds an entry, creating missing parent directories (mode 0755).
    /// Adding the same path again with identical contents is a no-op.
    pub fn add(&mut self, path: &str, entry: Entry) -> Result<(), CpioError> {
        let p = clean_path(path)?;
        let mut prefix = String::new();
        let comps: Vec<&str> = p.split('/').collect();
        for comp in &comps[..comps.len() - 1] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(comp);
            match self.entries.get(&prefix) {
                None => {
                    self.entries.insert(prefix.clone(), Entry { mode: 0o755, kind: Kind::Dir });
                }
                Some(Entry { kind: Kind::Dir, .. }) => {}
                Some(_) => return Err(CpioError::NotADirectory(p)),
            }
        }
        match self.entries.get(&p) {
            Some(existing) if *existing == entry => Ok(()),
            Some(Entry { kind: Kind::Dir, .. }) if entry.kind == Kind::Dir => {
                self.entries.insert(p, entry);
                Ok(())
            }
            Some(_) => Err(CpioError::Conflict(p)),
            None => {
                self.entries.insert(p, entry);
                Ok(())
            }
        }
    }

    /// Adds a directory.
    pub fn dir(&mut self, path: &str, mode: u32) -> Result<(), CpioError> {
        self.add(path, Entry { mode, kind: Kind::Dir })
    }

    /// Adds a regular file.
    pub fn file(&mut self, path: &str, mode: u32, data: Vec<u8>) -> Result<(), CpioError> {
        self.add(path, Entry { mode, kind: Kind::File(data) })
    }

    /// Adds a symlink.
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<(), CpioError> {
        self.add(path, Entry { mode: 0o777, kind: Kind::Symlink(target.to_string()) })
    }

    /// True if `path` is in the archive.
    pub fn contains(&self, path: &str) -> bool {
        clean_path(path).map(|p| self.entries.contains_key(&p)).unwrap_or(false)
    }

    /// Entries in output order.
    pub fn entries(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.entries.iter()
    }

    /// Total size of file contents.
    pub fn payload_bytes(&self) -> u64 {
        self.entries.values().map(|e| if let Kind::File(d) = &e.kind { d.len() as u64 } else { 0 }).sum()
    }

    /// Writes the archive, ending with the `TRAILER!!!` record.
    pub fn write_to<W: Write>(&self, w: &mut W) -> io::Result<u64> {
        let mut out = CountingWriter { inner: w, n: 0 };
        for (ino, (path, e)) in self.entries.iter().enumerate() {
            let (ty, data, rdev): (u32, &[u8], (u32, u32)) = match &e.kind {
                Kind::Dir => (0o040000, &[], (0, 0)),
                Kind::File(d) => (0o100000, d, (0, 0)),
                Kind::Symlink(t) => (0o120000, t.as_bytes(), (0, 0)),
                Kind::CharDev { major, minor } => (0o020000, &[], (*major, *minor)),
                Kind::BlockDev { major, minor } => (0o060000, &[], (*major, *minor)),
            };
            let nlink = if e.kind == Kind::Dir { 2 } else { 1 };
            header(&mut out, ino as u32 + 1, ty | (e.mode & 0o7777), nlink, self.mtime, data.len() as u32, rdev, path)?;
            out.write_all(data)?;
            pad(&mut out, data.len())?;
        }
        header(&mut out, 0, 0, 1, 0, 0, (0, 0), "TRAILER!!!")?;
        Ok(out.n)
    }
}

struct CountingWriter<'a, W: Write> {
    inner: &'a mut W,
    n: u64,
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(b)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[allow(clippy::too_many_arguments)]
fn header<W: Write>(
    w: &mut CountingWriter<W>,
    ino: u32,
    mode: u32,
    nlink: u32,
    mtime: u32,
    size: u32,
    rdev: (u32, u32),
    name: &str,
) -> io::Result<()> {
    let namesize = name.len() + 1;
    let h = format!(
        "070701{ino:08x}{mode:08x}{uid:08x}{gid:08x}{nlink:08x}{mtime:08x}{size:08x}{dmaj:08x}{dmin:08x}{rmaj:08x}{rmin:08x}{namesize:08x}{check:08x}",
        uid = 0,
        gid = 0,
        dmaj = 0,
        dmin = 0,
        rmaj = rdev.0,
        rmin = rdev.1,
        check = 0
    );
    w.write_all(h.as_bytes())?;
    w.write_all(name.as_bytes())?;
    w.write_all(&[0])?;
    pad(w, 110 + namesize)
}

fn pad<W: Write>(w: &mut W, len: usize) -> io::Result<()> {
    let rem = (4 - len % 4) % 4;
    w.write_all(&[0u8; 3][..rem])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_paths_that_escape() {
        let mut a = Archive::new(0);
        for bad in ["", "/", "../etc/passwd", "a/../../b", "a/./b", "a//b", "a\0b"] {
            assert!(a.file(bad, 0o644, vec![]).is_err(), "{bad:?} accepted");
        }
        assert_eq!(clean_path("/usr/bin/x").unwrap(), "usr/bin/x");
    }

    #[test]
    fn creates_parents_and_detects_conflicts() {
        let mut a = Archive::new(0);
        a.file("/usr/lib/x.so", 0o644, b"x".to_vec()).unwrap();
        assert!(a.contains("usr") && a.contains("usr/lib"));
        a.file("/usr/lib/x.so", 0o644, b"x".to_vec()).unwrap();
        assert_eq!(a.file("/usr/lib/x.so", 0o644, b"y".to_vec()), Err(CpioError::Conflict("usr/lib/x.so".into())));
        assert!(a.file("/usr/lib/x.so/inner", 0o644, vec![]).is_err());
    }

    #[test]
    fn header_fields_are_hex_and_aligned() {
        let mut a = Archive::new(1_700_000_000);
        a.file("init", 0o755, b"#!/bin/sh\n".to_vec()).unwrap();
        let mut out = Vec::new();
        let n = a.write_to(&mut out).unwrap();
        assert_eq!(n as usize, out.len());
        assert_eq!(out.len() % 4, 0);
        assert!(out.starts_with(b"070701"));
        let mode = std::str::from_utf8(&out[14..22]).unwrap();
        assert_eq!(u32::from_str_radix(mode, 16).unwrap(), 0o100755);
        assert!(out.windows(10).any(|w| w == b"TRAILER!!!"));
    }
}
