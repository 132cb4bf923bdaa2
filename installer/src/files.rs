//! Writing a file into the new system, which is mounted at the target
//! directory: parents made, an old file or link replaced (never followed),
//! the mode set after writing.

use anyhow::{Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `data` to `rel` (a path inside the new system) with `mode`.
pub fn write(target: &Path, rel: &str, data: &str, mode: u32) -> Result<()> {
    let p = target.join(rel.trim_start_matches('/'));
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let _ = std::fs::remove_file(&p);
    std::fs::write(&p, data).with_context(|| format!("writing {rel}"))?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).with_context(|| format!("chmod {rel}"))?;
    Ok(())
}
