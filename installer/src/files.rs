//! Writing a file into the new system, which is mounted at the target
//! directory: parents made, an old file or link replaced (never followed),
//! the mode set after writing.

use anyhow::{Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Enables the systemd unit at `unit` (its path inside the system at
/// `root`) for `wanted_by`, as `systemctl enable` would: a link in
/// `/etc/systemd/system/<wanted_by>.wants`.
pub fn enable(root: &Path, wanted_by: &str, unit: &str) -> Result<()> {
    let wants = root.join(format!("etc/systemd/system/{wanted_by}.wants"));
    std::fs::create_dir_all(&wants).with_context(|| format!("creating {}", wants.display()))?;
    let name = unit.rsplit('/').next().unwrap_or(unit);
    let link = wants.join(name);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(unit, &link).with_context(|| format!("enabling {name} in {}", root.display()))
}

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
