//! Running external programs with their output captured and a useful error.

use anyhow::{bail, Context, Result};
use std::process::Command;

/// Runs `cmd`, returning stdout; fails with stderr in the message.
pub fn output(cmd: &mut Command) -> Result<String> {
    let desc = format!("{cmd:?}");
    let out = cmd.output().with_context(|| format!("running {desc}"))?;
    if !out.status.success() {
        bail!("{desc} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
