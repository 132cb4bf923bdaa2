//! The asset whitelist: kernel, initramfs, root filesystem images and the
//! Debian installer files, by URL name. Only names in the configuration are
//! served; a request never becomes a path. Each file's sha256 is computed once
//! per (size, mtime) and published as `NAME.sha256` and in plans.

use anyhow::{Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

/// What we know about one asset file at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct AssetInfo {
    /// File on disk.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Last modification.
    pub mtime: SystemTime,
    /// Lower-case hex sha256.
    pub sha256: String,
}

/// Why an asset cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    /// Name not in the whitelist.
    #[error("no asset called {0:?}")]
    Unknown(String),
    /// Whitelisted, but the file is not there.
    #[error("asset {name:?} is configured but {path} does not exist")]
    Missing {
        /// Asset name.
        name: String,
        /// Configured path.
        path: PathBuf,
    },
    /// Reading it failed.
    #[error(transparent)]
    Io(#[from] anyhow::Error),
}

/// The whitelist and a hash cache.
pub struct Assets {
    files: BTreeMap<String, PathBuf>,
    cache: Mutex<HashMap<String, AssetInfo>>,
}

impl Assets {
    /// A whitelist of `name → path`.
    pub fn new(files: BTreeMap<String, PathBuf>) -> Assets {
        Assets { files, cache: Mutex::new(HashMap::new()) }
    }

    /// The configured names and paths.
    pub fn files(&self) -> &BTreeMap<String, PathBuf> {
        &self.files
    }

    /// The file `name` is served from and its metadata, without reading it.
    fn file(&self, name: &str) -> Result<(&PathBuf, std::fs::Metadata), AssetError> {
        let path = self.files.get(name).ok_or_else(|| AssetError::Unknown(name.to_string()))?;
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => Ok((path, m)),
            _ => Err(AssetError::Missing { name: name.into(), path: path.clone() }),
        }
    }

    /// Whether `name` can be served now (whitelisted, file present), without hashing it.
    pub fn check_present(&self, name: &str) -> Result<(), AssetError> {
        self.file(name).map(|_| ())
    }

    /// Current facts about `name`, hashing the file if it changed. Blocking.
    pub fn info(&self, name: &str) -> Result<AssetInfo, AssetError> {
        let (path, meta) = self.file(name)?;
        let mtime = meta.modified().context("reading mtime")?;
        if let Some(hit) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(name) {
            if hit.size == meta.len() && hit.mtime == mtime {
                return Ok(hit.clone());
            }
        }
        let sha256 = crate::digest::sha256_file(path)?;
        let info = AssetInfo { path: path.clone(), size: meta.len(), mtime, sha256 };
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), info.clone());
        Ok(info)
    }
}

/// A parsed single-range `Range` header (RFC 9110 §14.1.2), resolved against
/// the file size into an inclusive byte range.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// No (usable) Range header: the whole file.
    Full,
    /// Serve `start..=end`.
    Partial(u64, u64),
    /// The range lies outside the file: 416.
    Unsatisfiable,
}

/// Resolves a `Range` header value for a file of `size` bytes. Multiple
/// ranges and unknown units are ignored (whole file), as RFC 9110 allows.
pub fn parse_range(header: Option<&str>, size: u64) -> RangeSpec {
    let Some(h) = header else { return RangeSpec::Full };
    let Some(spec) = h.trim().strip_prefix("bytes=") else { return RangeSpec::Full };
    if spec.contains(',') {
        return RangeSpec::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return RangeSpec::Full };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // suffix range: last N bytes
        let Ok(n) = b.parse::<u64>() else { return RangeSpec::Full };
        if n == 0 || size == 0 {
            return RangeSpec::Unsatisfiable;
        }
        return RangeSpec::Partial(size.saturating_sub(n), size - 1);
    }
    let Ok(start) = a.parse::<u64>() else { return RangeSpec::Full };
    if start >= size {
        return RangeSpec::Unsatisfiable;
    }
    let end = if b.is_empty() {
        size - 1
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e.min(size - 1),
            _ => return RangeSpec::Full,
        }
    };
    RangeSpec::Partial(start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_unknown_assets_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rootfs.tar.zst"), b"image").unwrap();
        let files = ["rootfs.tar.zst", "rootfs-cloud.tar.zst"].map(|n| (n.to_string(), dir.path().join(n)));
        let a = Assets::new(files.into_iter().collect());
        assert!(a.check_present("rootfs.tar.zst").is_ok());
        assert_eq!(a.info("rootfs.tar.zst").unwrap().size, 5);
        let e = a.check_present("rootfs-cloud.tar.zst").unwrap_err();
        assert!(matches!(e, AssetError::Missing { .. }), "{e}");
        assert!(e.to_string().contains("rootfs-cloud.tar.zst\" is configured but"), "{e}");
        assert!(matches!(a.info("rootfs-cloud.tar.zst"), Err(AssetError::Missing { .. })));
        assert!(matches!(a.check_present("rootfs-trixie.tar.zst"), Err(AssetError::Unknown(_))));
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), RangeSpec::Full);
        assert_eq!(parse_range(Some("bytes=0-3"), 10), RangeSpec::Partial(0, 3));
        assert_eq!(parse_range(Some("bytes=4-"), 10), RangeSpec::Partial(4, 9));
        assert_eq!(parse_range(Some("bytes=-3"), 10), RangeSpec::Partial(7, 9));
        assert_eq!(parse_range(Some("bytes=-30"), 10), RangeSpec::Partial(0, 9));
        assert_eq!(parse_range(Some("bytes=5-100"), 10), RangeSpec::Partial(5, 9));
        assert_eq!(parse_range(Some("bytes=10-"), 10), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), RangeSpec::Full);
        assert_eq!(parse_range(Some("items=0-1"), 10), RangeSpec::Full);
        assert_eq!(parse_range(Some("bytes=5-2"), 10), RangeSpec::Full);
    }
}
