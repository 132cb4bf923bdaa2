//! Starting the installer on the target: by kexec (installing kexec-tools
//! if it is missing), else by a one-shot GRUB entry where that is safe
//! ([`super::oneshot`]); uploading kernel, initramfs and any standalone
//! payload over SSH, checked with sha256 there; and taking back what was
//! put on the old system if it comes back.

use super::oneshot::{GrubFacts, BOOT_DIR, GRUB_PROBE_SCRIPT};
use super::remote::Discovered;
use super::ssh::{shell_quote, Ssh};
use super::standalone::Carried;
use crate::api::ReinstallBoot;
use crate::digest::sha256_file;
use crate::operator::client::ApiClient;
use anyhow::{bail, Context, Result};

/// `--boot-via`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BootVia {
    /// kexec, else a one-shot GRUB entry.
    Auto,
    /// kexec only.
    Kexec,
    /// A one-shot GRUB entry only.
    Grub,
}

/// How this reinstall starts the installer.
#[derive(Debug, Clone)]
pub enum Boot {
    /// `kexec -l` + `kexec -e`: a reboot afterwards is the old system.
    Kexec,
    /// `grub-reboot` into an entry in `custom.cfg`, then a reboot.
    Grub(Box<GrubFacts>),
}

impl Boot {
    /// For the host's timeline.
    pub fn name(&self) -> &'static str {
        match self {
            Boot::Kexec => "kexec",
            Boot::Grub(_) => "grub-reboot",
        }
    }

    /// The step a failure to start this way is recorded at.
    pub fn step(&self) -> metalboot_spec::Step {
        match self {
            Boot::Kexec => metalboot_spec::Step::Kexec,
            Boot::Grub(_) => metalboot_spec::Step::GrubReboot,
        }
    }
}

const ENSURE_KEXEC: &str = r#"set -u
[ "$(id -u)" = 0 ] || { echo "not root: kexec and a reinstall need root (log in as root, or as a user with passwordless sudo)" >&2; exit 3; }
command -v kexec >/dev/null 2>&1 && exit 0
if command -v apt-get >/dev/null 2>&1; then DEBIAN_FRONTEND=noninteractive apt-get install -y -q kexec-tools >&2
elif command -v dnf >/dev/null 2>&1; then dnf install -y kexec-tools >&2
elif command -v yum >/dev/null 2>&1; then yum install -y kexec-tools >&2
elif command -v apk >/dev/null 2>&1; then apk add kexec-tools >&2
fi
command -v kexec >/dev/null 2>&1 || { echo "kexec is not installed and the package manager could not install kexec-tools" >&2; exit 4; }
"#;

fn ensure_kexec(ssh: &Ssh, d: &Discovered) -> Result<()> {
    if d.kexec.is_none() {
        println!("kexec not found on the target: installing kexec-tools with its package manager");
    }
    ssh.check_root("preparing kexec", &["sh", "-s"], ENSURE_KEXEC.as_bytes())?;
    Ok(())
}

/// The target's GRUB facts, from a probe script run over SSH as root
/// (`grub-probe` opens the block devices).
pub fn probe_grub(ssh: &Ssh) -> Result<GrubFacts> {
    let out = ssh.run_root(&["sh", "-s"], GRUB_PROBE_SCRIPT.as_bytes())?;
    if out.code.is_none() {
        bail!("probing GRUB on {}: SSH failed: {}", ssh.target(), out.stderr);
    }
    GrubFacts::parse(&String::from_utf8_lossy(&out.stdout)).context("probing the target's GRUB")
}

/// The summary's `boots via:` line (before anything is installed).
pub fn boots_via(via: BootVia, d: &Discovered, grub: Option<&GrubFacts>) -> String {
    let kexec = if d.kexec.is_some() { "kexec".to_string() } else { "kexec (kexec-tools to be installed)".to_string() };
    let grub_text = |g: Option<&GrubFacts>| match g.map(|g| (g, g.usable())) {
        Some((g, Ok(()))) => format!("a one-shot GRUB entry ({} on {}) and a reboot", g.dir(), g.fs),
        Some((_, Err(e))) => format!("no one-shot GRUB entry: {e:#}"),
        None => "no one-shot GRUB entry: not probed".into(),
    };
    match via {
        BootVia::Kexec => kexec,
        BootVia::Grub => grub_text(grub),
        BootVia::Auto if d.kexec.is_some() => kexec,
        BootVia::Auto => format!("{kexec}, else {}", grub_text(grub)),
    }
}

/// Makes sure the installer can be started: kexec (installed if it can
/// be), else, with `auto`, the one-shot GRUB entry where that is safe.
pub fn choose_boot(ssh: &Ssh, d: &Discovered, via: BootVia, grub: Option<GrubFacts>) -> Result<Boot> {
    let grub_ok = |g: Option<GrubFacts>| -> Result<GrubFacts> {
        let g = g.context("GRUB was not probed")?;
        g.usable()?;
        Ok(g)
    };
    match via {
        BootVia::Kexec => ensure_kexec(ssh, d).map(|()| Boot::Kexec),
        BootVia::Grub => grub_ok(grub)
            .map(|g| Boot::Grub(Box::new(g)))
            .context("a one-shot GRUB entry is not safe on this target; nothing was changed"),
        BootVia::Auto => match ensure_kexec(ssh, d) {
            Ok(()) => Ok(Boot::Kexec),
            // kexec is there but unusable (not root): no GRUB either
            Err(e) if grub.is_none() => Err(e),
            Err(e) => match grub_ok(grub) {
                Ok(g) => {
                    println!("kexec cannot be used ({e:#}): starting the installer with a one-shot GRUB entry");
                    Ok(Boot::Grub(Box::new(g)))
                }
                Err(ge) => bail!(
                    "cannot start the installer: {e:#}; and a one-shot GRUB entry is not safe here: {ge:#}; \
                     nothing was changed"
                ),
            },
        },
    }
}

/// Where a standalone payload is uploaded: on disk, since `/run` is small.
pub const STANDALONE_DIR: &str = "/var/tmp/metalboot";

/// Uploads the installer's kernel and initramfs (and a carried payload) and
/// starts it by `method`; on failure cleans up what it left on the target.
pub fn boot_installer(
    client: &ApiClient,
    ssh: &Ssh,
    session: &std::path::Path,
    boot: &ReinstallBoot,
    method: &Boot,
    carried: Option<&Carried>,
) -> Result<()> {
    // GRUB reads /boot; a standalone payload is too big for the tmpfs
    // /run: it goes on the disk that is about to be wiped anyway
    let dir = match (method, carried) {
        (Boot::Grub(_), _) => BOOT_DIR,
        (Boot::Kexec, Some(_)) => STANDALONE_DIR,
        (Boot::Kexec, None) => "/run/metalboot",
    };
    ssh.check_root(&format!("creating {dir}"), &["mkdir", "-p", dir], b"")?;
    let result = upload_and_start(client, ssh, session, boot, method, carried, dir);
    if result.is_err() {
        if let Err(e) = clean_old_system(ssh, method, carried.is_some()) {
            println!("  could not clean up on the target: {e:#}");
        }
    }
    result
}

fn upload_and_start(
    client: &ApiClient,
    ssh: &Ssh,
    session: &std::path::Path,
    boot: &ReinstallBoot,
    method: &Boot,
    carried: Option<&Carried>,
    dir: &str,
) -> Result<()> {
    let mut files = Vec::new();
    for (url, name) in [(&boot.kernel_url, "vmlinuz"), (&boot.initramfs_url, "initramfs.img")] {
        let local = session.join(name);
        let mut f = std::fs::File::create(&local)?;
        client.download(url, &mut f)?;
        files.push((local, name));
    }
    if let Some(c) = carried {
        files.push((c.payload.clone(), "payload.cpio"));
    }
    let bytes: u64 = files.iter().map(|(p, _)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum();
    match method {
        Boot::Grub(g) => g.check_space(bytes)?,
        Boot::Kexec if carried.is_some() => {
            let need_kib = bytes / 1024 + 65536;
            let df = format!(
                "avail=$(df -Pk {dir} | awk 'NR==2 {{print $4}}'); [ \"$avail\" -ge {need_kib} ] || \
                 {{ echo \"only $avail KiB free in {dir}; the standalone payload needs {need_kib} KiB\" >&2; exit 5; }}"
            );
            ssh.check("checking free space for the payload", &["sh", "-c", &shell_quote(&df)], b"")?;
        }
        Boot::Kexec => {}
    }
    let mut sums = Vec::new();
    for (local, name) in &files {
        ssh.upload(local, &format!("{dir}/{name}"))?;
        println!("  sent {name}: {} bytes{}", std::fs::metadata(local)?.len(), ssh.privilege().suffix());
        sums.push(format!("{}  {dir}/{name}\n", sha256_file(local)?));
    }
    ssh.check_root(
        "checking the uploaded files (sha256sum -c)",
        &["sha256sum", "-c", "--quiet", "-"],
        sums.concat().as_bytes(),
    )?;
    let cmdline = carried.map_or(boot.cmdline.as_str(), |c| c.cmdline.as_str());
    match method {
        Boot::Grub(g) => {
            // GRUB loads the uncompressed payload first, then the initramfs
            let initrds: &[&str] =
                if carried.is_some() { &["payload.cpio", "initramfs.img"] } else { &["initramfs.img"] };
            let entry = g.menuentry(cmdline, initrds)?;
            ssh.check_root(
                "adding the one-shot GRUB entry (custom.cfg, grub-reboot)",
                &["sh", "-c", &shell_quote(&g.arm_script())],
                entry.as_bytes(),
            )?;
            println!("  GRUB boots {} once, then its default entry again", super::oneshot::ENTRY_ID);
            let exec =
                "nohup sh -c 'sleep 2; sync; systemctl reboot 2>/dev/null || reboot' </dev/null >/dev/null 2>&1 &";
            ssh.check_root("rebooting", &["sh", "-c", &shell_quote(exec)], b"")?;
        }
        Boot::Kexec => {
            let initrd = match carried {
                // the uncompressed payload first, the compressed initramfs after it
                Some(_) => {
                    let join = format!("cat {dir}/initramfs.img >> {dir}/payload.cpio");
                    let what = "joining the payload and the installer initramfs";
                    ssh.check_root(what, &["sh", "-c", &shell_quote(&join)], b"")?;
                    format!("{dir}/payload.cpio")
                }
                None => format!("{dir}/initramfs.img"),
            };
            let load = format!("kexec -l {dir}/vmlinuz --initrd={initrd} --command-line={}", shell_quote(cmdline));
            ssh.check_root("loading the installer (kexec -l)", &["sh", "-c", &shell_quote(&load)], b"").context(
                "a kernel that refuses kexec (Secure Boot lockdown, kexec_load_disabled) can boot the installer \
                 with --boot-via grub",
            )?;
            // detached, so the SSH session ends cleanly before the system goes
            let exec =
                "nohup sh -c 'sleep 2; sync; systemctl kexec 2>/dev/null || kexec -e' </dev/null >/dev/null 2>&1 &";
            ssh.check_root("starting kexec", &["sh", "-c", &shell_quote(exec)], b"")?;
        }
    }
    Ok(())
}

/// Takes back what this command put on the old system: the one-shot
/// GRUB entry and its files, or a standalone payload.
pub fn clean_old_system(ssh: &Ssh, method: &Boot, standalone: bool) -> Result<()> {
    match method {
        Boot::Grub(g) => {
            let out = ssh.check_root(
                "removing the one-shot GRUB entry",
                &["sh", "-c", &shell_quote(&g.disarm_script(BOOT_DIR))],
                b"",
            )?;
            if String::from_utf8_lossy(&out).contains("pending") {
                println!("  the one-shot GRUB entry was still pending on the old system: removed");
            }
        }
        Boot::Kexec if standalone => {
            ssh.check_root("removing the payload", &["rm", "-rf", STANDALONE_DIR], b"")?;
        }
        Boot::Kexec => {}
    }
    Ok(())
}
