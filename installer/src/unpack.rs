//! Laying down the root filesystem image: streamed from the server into
//! `tar`, never held in RAM, its checksum checked when the last byte is in.

use crate::cmd::tool;
use crate::fetch::{self, FetchError};
use crate::report::Reporter;
use anyhow::{anyhow, Context, Result};
use metalboot_spec::{InstallPlan, Step};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// `tar` arguments that leave the kept subvolumes' mount points alone (a
/// reinstall with `keep`): neither the directory nor anything under it,
/// with or without the `./` prefix.
pub fn keep_excludes(plan: &InstallPlan) -> Vec<String> {
    let mut args = Vec::new();
    for name in &plan.keep {
        if let Some(s) = plan.layout.subvolumes.iter().find(|s| &s.name == name) {
            let m = s.mountpoint.trim_start_matches('/');
            for p in [format!("./{m}"), format!("./{m}/*"), m.to_string(), format!("{m}/*")] {
                args.push(format!("--exclude={p}"));
            }
        }
    }
    if !args.is_empty() {
        args.insert(0, "--anchored".to_string());
    }
    args
}

/// Streams the image into `tar` (GNU, numeric owners, xattrs, ACLs), with
/// no copy in RAM; the checksum is checked when the last byte has arrived.
pub fn unpack_image(plan: &InstallPlan, target: &Path, rep: &mut Reporter) -> Result<()> {
    let tar = tool(&["/usr/bin/tar", "/bin/tar"])?;
    let zstd = tool(&["/usr/bin/zstd"])?;
    let mut child = Command::new(&tar)
        .args([
            "--extract",
            "--file=-",
            "--numeric-owner",
            "--same-owner",
            "--preserve-permissions",
            "--xattrs",
            "--xattrs-include=*",
            "--acls",
        ])
        .args(keep_excludes(plan))
        .arg(format!("--use-compress-program={zstd}"))
        .arg("--directory")
        .arg(target)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting tar")?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let size = plan.image.size.max(1);
    let http = rep.http().clone();
    let fetched =
        fetch::stream_image(&http, &plan.image.url, plan.image.size, &plan.image.sha256, &mut stdin, &mut |done| {
            rep.progress(Step::Unpack, (done * 100 / size) as u8, done)
        });
    drop(stdin);
    let out = child.wait_with_output().context("waiting for tar")?;
    match fetched {
        Err(FetchError::Checksum { got, want }) => {
            return Err(anyhow!("image checksum mismatch: got sha256 {got}, plan says {want}"))
        }
        Err(FetchError::Other(e)) => return Err(e.context("streaming the image")),
        Ok(_) => {}
    }
    if !out.status.success() {
        return Err(anyhow!("tar failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    let _ = std::io::stdout().flush();
    Ok(())
}
