//! The installer booted by a one-shot GRUB entry, for a target where kexec
//! cannot be used (not installable, or refused by the kernel): the kernel
//! and initramfs go to `/boot/metalboot`, a `metalboot-installer` entry is
//! appended to GRUB's `custom.cfg`, `grub-reboot` makes it the next boot
//! only, and the target reboots.
//!
//! Never strand the host: GRUB clears `next_entry` with `save_env` as it
//! boots the entry, so a reboot from the installer (it could not reach the
//! server) lands in the default entry, the old system. GRUB can only write
//! its environment block on a plain filesystem it can write (ext2/3/4,
//! xfs) outside LVM, RAID or encryption; anywhere else (btrfs, as on a
//! metalboot-installed host) `next_entry` would stay set and every reboot
//! would start the installer again, so the entry is refused by name there,
//! before anything changes.

use super::remote::sections;
use super::ssh::shell_quote;
use anyhow::{bail, Context, Result};
use metalboot_spec::quote;

/// The GRUB menu entry id `grub-reboot` selects.
pub const ENTRY_ID: &str = "metalboot-installer";

/// Where the installer's files go: under `/boot`, which GRUB reads.
pub const BOOT_DIR: &str = "/boot/metalboot";

/// Read-only probe of the target's GRUB, in `### name` sections.
pub const GRUB_PROBE_SCRIPT: &str = r#"set -u
export LC_ALL=C
echo '### metalboot-grub 1'
first() { for c in "$@"; do command -v "$c" 2>/dev/null && return 0; done; echo none; }
reboot=$(first grub-reboot grub2-reboot)
editenv=$(first grub-editenv grub2-editenv)
probe=$(first grub-probe grub2-probe)
mkrel=$(first grub-mkrelpath grub2-mkrelpath)
dir=none
for d in /boot/grub /boot/grub2; do if [ -f "$d/grub.cfg" ]; then dir=$d; break; fi; done
echo '### reboot'; echo "$reboot"
echo '### editenv'; echo "$editenv"
echo '### dir'; echo "$dir"
if [ "$dir" != none ] && [ "$probe" != none ] && [ "$mkrel" != none ]; then
  echo '### fs'; "$probe" --target=fs "$dir" 2>&1
  echo '### abstraction'; "$probe" --target=abstraction "$dir" 2>&1
  echo '### boot_fs'; "$probe" --target=fs /boot 2>&1
  echo '### boot_uuid'; "$probe" --target=fs_uuid /boot 2>&1
  echo '### boot_rel'; "$mkrel" /boot 2>&1
  echo '### cfg'; grep -E 'save_env next_entry|custom\.cfg|set timeout=' "$dir/grub.cfg"
  echo '### env'
  if [ -f "$dir/grubenv" ] && [ "$editenv" != none ]; then "$editenv" "$dir/grubenv" list 2>&1; fi
fi
echo '### boot_free_kib'; df -Pk /boot | awk 'NR==2 {print $4}'
echo '### end'
"#;

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrubFacts {
    /// `grub-reboot` (or `grub2-reboot`), if installed.
    pub reboot: Option<String>,
    /// `grub-editenv`, if installed.
    pub editenv: Option<String>,
    /// The directory holding `grub.cfg` and `grubenv`.
    pub dir: Option<String>,
    /// GRUB's name for the filesystem of `dir` (`ext2` for ext2/3/4).
    pub fs: String,
    /// LVM, RAID or encryption under `dir`, as `grub-probe` names them.
    pub abstraction: String,
    /// GRUB's name for the filesystem of `/boot`.
    pub boot_fs: String,
    /// Its UUID, for `search --fs-uuid`.
    pub boot_uuid: String,
    /// `/boot` as GRUB sees it on that filesystem (`/` for a separate
    /// `/boot`, `/boot` or `/@/boot` inside the root filesystem).
    pub boot_rel: String,
    /// The lines of `grub.cfg` that matter here.
    pub cfg: String,
    /// `grub-editenv list`.
    pub env: String,
    /// Free KiB in `/boot`.
    pub boot_free_kib: Option<u64>,
}

fn tool(s: Option<&String>) -> Option<String> {
    s.map(|t| t.trim().to_string()).filter(|t| !t.is_empty() && t != "none")
}

impl GrubFacts {
    /// Parses the output of [`GRUB_PROBE_SCRIPT`].
    pub fn parse(text: &str) -> Result<GrubFacts> {
        let s = sections(text, "metalboot-grub", "GRUB probe")?;
        let get = |k: &str| s.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
        Ok(GrubFacts {
            reboot: tool(s.get("reboot")),
            editenv: tool(s.get("editenv")),
            dir: tool(s.get("dir")),
            fs: get("fs"),
            abstraction: get("abstraction"),
            boot_fs: get("boot_fs"),
            boot_uuid: get("boot_uuid"),
            boot_rel: get("boot_rel"),
            cfg: get("cfg"),
            env: get("env"),
            boot_free_kib: get("boot_free_kib").parse().ok(),
        })
    }

    /// Why a one-shot entry is not safe here, or `Ok` if it is.
    pub fn usable(&self) -> Result<()> {
        let Some(dir) = &self.dir else {
            bail!("no /boot/grub/grub.cfg or /boot/grub2/grub.cfg: GRUB 2 does not boot it")
        };
        if self.reboot.is_none() || self.editenv.is_none() {
            bail!("grub-reboot or grub-editenv is not installed");
        }
        let word = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !word(&self.fs) || !word(&self.boot_fs) {
            bail!("grub-probe cannot name the filesystem of {dir} or /boot: {} / {}", self.fs, self.boot_fs);
        }
        if !matches!(self.fs.as_str(), "ext2" | "xfs") {
            bail!(
                "{dir} is on {}, where GRUB cannot write its environment block: the one-shot entry would never be \
                 cleared and every reboot would start the installer again (a one-shot entry needs {dir} on \
                 ext2/3/4 or xfs)",
                self.fs
            );
        }
        if !self.abstraction.is_empty() {
            bail!(
                "{dir} is on {} (LVM, RAID or encryption), where GRUB cannot write its environment block: the \
                 one-shot entry would never be cleared",
                self.abstraction.split_whitespace().collect::<Vec<_>>().join(" ")
            );
        }
        if !self.cfg.contains("save_env next_entry") {
            bail!("{dir}/grub.cfg does not clear next_entry after one boot (not made by grub-mkconfig?)");
        }
        if !self.cfg.contains("custom.cfg") {
            bail!("{dir}/grub.cfg does not read custom.cfg (no /etc/grub.d/41_custom when it was made)");
        }
        if self.cfg.lines().any(|l| l.trim() == "set timeout=-1") {
            bail!("the GRUB menu waits for a key (timeout=-1): nothing would boot the installer unattended");
        }
        if let Some(pending) = self.env.lines().find_map(|l| l.strip_prefix("next_entry=")).filter(|v| !v.is_empty()) {
            bail!("a one-shot boot is already pending in {dir}/grubenv: next_entry={pending}");
        }
        if self.boot_uuid.is_empty() || !self.boot_uuid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            bail!("grub-probe gives no filesystem UUID for /boot: {:?}", self.boot_uuid);
        }
        if !self.boot_rel.starts_with('/') || self.boot_rel.contains(['\'', '\n', ' ']) {
            bail!("grub-mkrelpath /boot gave {:?}", self.boot_rel);
        }
        Ok(())
    }

    /// The directory holding `grub.cfg`.
    pub fn dir(&self) -> &str {
        self.dir.as_deref().unwrap_or("/boot/grub")
    }

    /// `BOOT_DIR/name` as GRUB finds it on the `/boot` filesystem.
    fn grub_path(&self, name: &str) -> String {
        format!("{}/metalboot/{name}", self.boot_rel.trim_end_matches('/'))
    }

    /// The menu entry booting `vmlinuz` with `initrds` (in order) and the
    /// installer's command line, one single-quoted word per argument.
    pub fn menuentry(&self, cmdline: &str, initrds: &[&str]) -> Result<String> {
        let mut args = Vec::new();
        for w in cmdline.split_whitespace() {
            if w.contains('\'') || w.chars().any(char::is_control) {
                bail!("kernel argument {} cannot be put in a GRUB entry", quote(w));
            }
            args.push(format!("'{w}'"));
        }
        let initrd: Vec<String> = initrds.iter().map(|n| format!("'{}'", self.grub_path(n))).collect();
        Ok(format!(
            "### metalboot one-shot installer entry: removed by metalboot if the reinstall fails\n\
             menuentry 'metalboot installer (one-shot reinstall)' --id {ENTRY_ID} {{\n\
             \tinsmod part_gpt\n\tinsmod part_msdos\n\tinsmod {fs}\n\
             \tsearch --no-floppy --fs-uuid --set=root {uuid}\n\
             \techo 'Loading the metalboot installer ...'\n\
             \tlinux '{kernel}' {args}\n\
             \tinitrd {initrd}\n}}\n",
            fs = self.boot_fs,
            uuid = self.boot_uuid,
            kernel = self.grub_path("vmlinuz"),
            args = args.join(" "),
            initrd = initrd.join(" "),
        ))
    }

    /// Shell script: appends the entry (on standard input) to
    /// `custom.cfg`, keeping any the operator has, and makes it the next
    /// boot only.
    pub fn arm_script(&self) -> String {
        let (d, reboot, editenv) = self.tools();
        format!(
            "set -eu\nd={d}\nc=\"$d/custom.cfg\"\n\
             if [ -e \"$c\" ] && [ ! -e \"$c.metalboot-saved\" ] && [ ! -e \"$c.metalboot-created\" ]; then cp -p \"$c\" \"$c.metalboot-saved\"; fi\n\
             if [ ! -e \"$c\" ]; then : > \"$c.metalboot-created\"; fi\n\
             {{ if [ -e \"$c.metalboot-saved\" ]; then cat \"$c.metalboot-saved\"; fi; cat; }} > \"$c.new\"\n\
             mv \"$c.new\" \"$c\"\n\
             {reboot} {ENTRY_ID}\n\
             {editenv} \"$d/grubenv\" list | grep -qx 'next_entry={ENTRY_ID}' || \
             {{ echo 'grub-reboot did not set next_entry' >&2; exit 6; }}\n\
             sync\n"
        )
    }

    /// Shell script: takes the entry back (custom.cfg as it was, no
    /// pending one-shot, no `files` directory, [`BOOT_DIR`] on the
    /// target); prints `pending` if the one-shot was still set.
    pub fn disarm_script(&self, files: &str) -> String {
        let (d, _, editenv) = self.tools();
        format!(
            "set -u\nd={d}\nc=\"$d/custom.cfg\"\n\
             if {editenv} \"$d/grubenv\" list 2>/dev/null | grep -qx 'next_entry={ENTRY_ID}'; then \
             echo pending; {editenv} \"$d/grubenv\" unset next_entry; fi\n\
             if [ -e \"$c.metalboot-saved\" ]; then mv \"$c.metalboot-saved\" \"$c\"; \
             elif [ -e \"$c.metalboot-created\" ]; then rm -f \"$c\" \"$c.metalboot-created\"; fi\n\
             rm -rf {files}\nsync\n",
            files = shell_quote(files)
        )
    }

    fn tools(&self) -> (String, String, String) {
        (
            shell_quote(self.dir()),
            shell_quote(self.reboot.as_deref().unwrap_or("grub-reboot")),
            shell_quote(self.editenv.as_deref().unwrap_or("grub-editenv")),
        )
    }

    /// Checks `/boot` has room for `bytes` more (and some to spare).
    pub fn check_space(&self, bytes: u64) -> Result<()> {
        let need = bytes / 1024 + 8192;
        let free = self.boot_free_kib.context("free space in /boot unknown")?;
        if free < need {
            bail!("/boot has {free} KiB free; the installer needs {need} KiB there for a one-shot GRUB entry");
        }
        Ok(())
    }
}
