//! Running a test system builder of `tests/images/` (as root): its
//! standard error kept in the scenario's directory, and the host keys it
//! prints pinned in a known_hosts file.

use crate::harness::Scenario;
use anyhow::{ensure, Context, Result};
use std::ffi::OsStr;
use std::path::PathBuf;

/// Runs `tests/images/SCRIPT` (`NAME.sh`) with `args` and `env`, which
/// builds `what`; its standard error goes to `NAME.log` in the scenario's
/// directory. Returns `known_hosts.KH` there, pinning the host keys the
/// script printed at `ip`.
pub(crate) fn run(
    s: &Scenario,
    script: &str,
    args: &[&OsStr],
    env: &[(&str, &str)],
    what: &str,
    ip: &str,
    kh: &str,
) -> Result<PathBuf> {
    let path = crate::harness::workspace().join("tests/images").join(script);
    let out = std::process::Command::new("bash")
        .envs(env.iter().copied())
        .arg(&path)
        .args(args)
        .output()
        .with_context(|| format!("running tests/images/{script}"))?;
    std::fs::write(s.dir.join(format!("{}.log", script.trim_end_matches(".sh"))), &out.stderr)?;
    ensure!(out.status.success(), "building {what}: {}", String::from_utf8_lossy(&out.stderr));
    let keys: String = String::from_utf8_lossy(&out.stdout).lines().map(|k| format!("{ip} {k}\n")).collect();
    let p = s.dir.join(format!("known_hosts.{kh}"));
    std::fs::write(&p, keys)?;
    Ok(p)
}
