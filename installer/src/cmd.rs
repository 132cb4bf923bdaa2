//! Running the real tools the installer calls, always by full path (Debian's
//! busybox runs its own applets for many names, whatever PATH says).

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

/// The first of `candidates` that exists.
pub fn tool(candidates: &[&str]) -> Result<String> {
    candidates
        .iter()
        .find(|c| Path::new(c).exists())
        .map(|c| c.to_string())
        .with_context(|| format!("{} not found", candidates[0]))
}

/// Runs a command; fails with its stderr.
pub fn run(prog: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(prog).args(args).output().with_context(|| format!("running {prog}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.trim().lines().rev().take(12).collect::<Vec<_>>().into_iter().rev().collect();
        bail!("{prog} {} failed ({}): {}", args.join(" "), out.status, tail.join(" | "));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command inside the new system with `chroot`.
pub fn in_target(target: &Path, args: &[&str]) -> Result<String> {
    let chroot = tool(&["/usr/sbin/chroot", "/usr/bin/chroot"])?;
    let mut v = vec![target.to_str().context("target path is not UTF-8")?];
    v.extend_from_slice(args);
    let out = Command::new(chroot)
        .args(&v)
        .env_clear()
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LANG", "C.UTF-8")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .with_context(|| format!("running {} in the new system", args.join(" ")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.trim().lines().rev().take(12).collect::<Vec<_>>().into_iter().rev().collect();
        bail!("{} (in the new system) failed ({}): {}", args.join(" "), out.status, tail.join(" | "));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
