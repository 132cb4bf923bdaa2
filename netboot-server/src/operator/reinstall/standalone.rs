//! `metalboot reinstall --standalone`: for a target that cannot reach the
//! metalboot server at all. The SSH session cannot outlive the kexec (the
//! old system's sshd goes with it), so nothing can be tunnelled to the
//! installer; instead everything it needs travels with it, in RAM:
//!
//! - the host's plan, fetched by this command with the install token, with
//!   the image pointed at `file:///metalboot/rootfs.tar.zst`;
//! - the root filesystem image itself (the host's `image`, generic or cloud,
//!   always carried under that one name), checked against the plan's sha256;
//! - new SSH host keys made here, so this command can pin them and later
//!   log in to the new system knowing it is the one it installed.
//!
//! They go into an uncompressed cpio placed before the installer's
//! initramfs (see [`super::payload`]). The installer is started with
//! `metalboot.standalone`: it brings up the carried static network and
//! refuses to write anything unless the gateway answers (then it reboots
//! into the old system), fetches and reports nothing, and enables no
//! phone-home. This command reports for it: `installing` after the kexec,
//! and the host keys and `installed` once the new system answers SSH with
//! the pinned key.

use super::payload::CpioWriter;
use super::ssh::Ssh;
use crate::api::ReinstallBoot;
use crate::operator::client::ApiClient;
use anyhow::{bail, Context, Result};
use metalboot_spec::bootargs::{self, BootArgs};
use std::path::{Path, PathBuf};

/// What a standalone reinstall carries.
pub struct Carried {
    /// The payload archive (plan, image, host keys) to put before the
    /// installer initramfs.
    pub payload: PathBuf,
    /// Its size in bytes.
    pub payload_bytes: u64,
    /// The new system's host public keys (`type base64`).
    pub host_keys: Vec<String>,
    /// The installer's command line.
    pub cmdline: String,
}

/// Where the plan is inside the installer's root filesystem.
pub const PLAN_PATH: &str = "/metalboot/plan.json";
/// Where the image is, whichever asset the host's plan named.
pub const IMAGE_URL: &str = "file:///metalboot/rootfs.tar.zst";

/// The server's command line for a networked install, turned standalone:
/// no server URL or token; the carried plan instead.
pub fn standalone_cmdline(cmdline: &str) -> Result<String> {
    let mut args = BootArgs::parse(cmdline).context("the server's installer command line")?;
    // nothing is fetched: no server, no pin
    args.url = None;
    args.pin = None;
    args.token = None;
    args.plan = Some(PLAN_PATH.into());
    args.standalone = true;
    let mut words: Vec<String> =
        cmdline.split_whitespace().filter(|w| !bootargs::is_ours(w)).map(String::from).collect();
    words.extend(args.to_cmdline());
    Ok(words.join(" "))
}

fn keygen(dir: &Path, name: &str) -> Result<Vec<(String, PathBuf)>> {
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    for (kind, bits) in [("ed25519", None), ("ecdsa", Some("256")), ("rsa", Some("3072"))] {
        let f = dir.join(format!("ssh_host_{kind}_key"));
        let mut c = std::process::Command::new("ssh-keygen");
        c.args(["-q", "-t", kind, "-N", "", "-C", &format!("root@{name}"), "-f"]).arg(&f);
        if let Some(b) = bits {
            c.args(["-b", b]);
        }
        let out = c.output().context("running ssh-keygen (OpenSSH client tools)")?;
        if !out.status.success() {
            bail!("ssh-keygen -t {kind}: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        let base = format!("ssh_host_{kind}_key");
        files.push((base.clone(), f.clone()));
        files.push((format!("{base}.pub"), f.with_extension("pub")));
    }
    Ok(files)
}

/// Fetches the plan and image, makes host keys, writes the payload.
pub fn prepare(client: &ApiClient, session: &Path, name: &str, boot: &ReinstallBoot) -> Result<Carried> {
    let mut plan = client.plan(name, &boot.token).context("fetching the host's plan with its install token")?;
    let image = session.join("rootfs.tar.zst");
    let mut f = std::fs::File::create(&image)?;
    let n = client.download(&plan.image.url, &mut f).with_context(|| format!("downloading {}", plan.image.url))?;
    drop(f);
    let sum = crate::digest::sha256_file(&image)?;
    if n != plan.image.size || sum != plan.image.sha256 {
        bail!(
            "the image downloaded as {n} bytes sha256 {sum}; the plan says {} bytes sha256 {}",
            plan.image.size,
            plan.image.sha256
        );
    }
    plan.image.url = IMAGE_URL.into();
    let keys = keygen(&session.join("ssh"), name)?;
    let mut host_keys = Vec::new();
    for (file, path) in keys.iter().filter(|(f, _)| f.ends_with(".pub")) {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {file}"))?;
        let mut w = text.split_whitespace();
        if let (Some(t), Some(b)) = (w.next(), w.next()) {
            host_keys.push(format!("{t} {b}"));
        }
    }
    let payload = session.join("payload.cpio");
    let mut w = CpioWriter::new(std::io::BufWriter::new(std::fs::File::create(&payload)?));
    w.dir("metalboot", 0o700)?;
    w.bytes("metalboot/plan.json", 0o600, &serde_json::to_vec_pretty(&plan)?)?;
    w.file("metalboot/rootfs.tar.zst", 0o600, &image)?;
    w.dir("metalboot/ssh", 0o700)?;
    for (file, path) in &keys {
        let mode = if file.ends_with(".pub") { 0o644 } else { 0o600 };
        w.file(&format!("metalboot/ssh/{file}"), mode, path)?;
    }
    w.finish()?;
    std::fs::remove_file(&image)?;
    let payload_bytes = std::fs::metadata(&payload)?.len();
    Ok(Carried { payload, payload_bytes, host_keys, cmdline: standalone_cmdline(&boot.cmdline)? })
}

/// Refuses when the target's RAM cannot hold the payload twice (the
/// loaded initrd and the files unpacked from it) plus room to install;
/// three times where the uploaded copy is in RAM as well (`in_ram`: a
/// rescue system, whose `/var/tmp` is memory).
pub fn check_memory(ssh: &Ssh, c: &Carried, in_ram: bool) -> Result<()> {
    let out = ssh.check("reading /proc/meminfo", &["cat", "/proc/meminfo"], b"")?;
    let total_kib: u64 = String::from_utf8_lossy(&out)
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no MemTotal in the target's /proc/meminfo")?;
    let copies = if in_ram { 3 } else { 2 };
    let need = copies * c.payload_bytes + (512 << 20);
    if total_kib * 1024 < need {
        bail!(
            "the target has {} MiB of RAM; a standalone reinstall carries {} MiB in RAM and needs at least {} MiB: \
             let the target reach the server instead (without --standalone)",
            total_kib / 1024,
            c.payload_bytes >> 20,
            need >> 20
        );
    }
    Ok(())
}

/// known_hosts lines pinning the new system's keys at the target address.
pub fn pins(host: &str, port: u16, keys: &[String]) -> String {
    let h = if port == 22 { host.to_string() } else { format!("[{host}]:{port}") };
    keys.iter().map(|k| format!("{h} {k}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_carries_the_plan_and_loses_server_and_token() {
        let c = standalone_cmdline(
            "console=ttyS0 metalboot.url=http://10.0.0.1:8080 metalboot.host=vm1 metalboot.token=abc-123 \
             BOOTIF=01-52-54-00-e2-e0-01 ip=10.99.0.50::10.99.0.1:255.255.255.255::eth0:off metalboot.fallback=reboot",
        )
        .unwrap();
        assert_eq!(
            c,
            "console=ttyS0 BOOTIF=01-52-54-00-e2-e0-01 ip=10.99.0.50::10.99.0.1:255.255.255.255::eth0:off \
             metalboot.host=vm1 metalboot.plan=/metalboot/plan.json metalboot.fallback=reboot metalboot.standalone"
        );
        assert!(standalone_cmdline("metalboot.hots=vm1").is_err());
    }

    #[test]
    fn pins_use_the_bracketed_form_off_port_22() {
        let k = vec!["ssh-ed25519 AAAA".to_string()];
        assert_eq!(pins("10.0.0.5", 22, &k), "10.0.0.5 ssh-ed25519 AAAA\n");
        assert_eq!(pins("2001:db8::5", 2222, &k), "[2001:db8::5]:2222 ssh-ed25519 AAAA\n");
    }

    #[test]
    fn host_keys_are_made_for_every_type_sshd_offers() {
        let dir = tempfile::tempdir().unwrap();
        let files = keygen(dir.path(), "vm1").unwrap();
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "ssh_host_ed25519_key",
                "ssh_host_ed25519_key.pub",
                "ssh_host_ecdsa_key",
                "ssh_host_ecdsa_key.pub",
                "ssh_host_rsa_key",
                "ssh_host_rsa_key.pub"
            ]
        );
        for (_, p) in &files {
            assert!(p.is_file(), "{}", p.display());
        }
    }
}
