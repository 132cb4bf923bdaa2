//! `grub.cfg` written from what the installer knows, in place of a full
//! `update-grub` (18 s of the 25 s GRUB step under TCG, most of it
//! `grub-probe` runs). Taken only when the result is what `update-grub`
//! would boot: one kernel, the stock `/etc/grub.d` scripts, and
//! `/etc/default/grub` (+ `grub.d/*.cfg`) setting only keys this file
//! renders, to plain values. Anything else (a second kernel, a custom
//! script, a shell expression) and the installer runs `update-grub`. A host
//! on several disks has one script of ours, the degraded entry's
//! ([`crate::degraded`]), rendered here too when it is exactly ours. The
//! installed system's own `update-grub` (on a kernel upgrade) rewrites the
//! file from the same settings.

use std::collections::BTreeMap;
use std::path::Path;

/// The scripts Debian's `grub-common`, `grub2-common` and `grub-pc`/`-efi`
/// install in `/etc/grub.d`. `40_custom` and `41_custom` count only as
/// shipped (see [`stock_custom`]).
const STOCK_SCRIPTS: &[&str] = &[
    "00_header",
    "05_debian_theme",
    "10_linux",
    "20_linux_xen",
    "30_os-prober",
    "30_uefi-firmware",
    "40_custom",
    "41_custom",
    "README",
];

/// `/etc/default/grub` keys this renderer honours.
const KNOWN_KEYS: &[&str] = &[
    "GRUB_DEFAULT",
    "GRUB_TIMEOUT",
    "GRUB_DISTRIBUTOR",
    "GRUB_CMDLINE_LINUX_DEFAULT",
    "GRUB_CMDLINE_LINUX",
    "GRUB_TERMINAL",
    "GRUB_SERIAL_COMMAND",
    "GRUB_DISABLE_OS_PROBER",
];

/// What goes into the file.
#[derive(Debug, PartialEq, Eq)]
pub struct GrubConfig {
    /// Filesystem UUID of the root (btrfs) filesystem.
    pub root_uuid: String,
    /// Subvolume mounted at `/` (`rootflags=subvol=`).
    pub root_subvol: String,
    /// `/boot` as GRUB sees it from the top of the filesystem (`/@/boot`).
    pub boot_path: String,
    /// Kernel version (`vmlinuz-VERSION`, `initrd.img-VERSION`).
    pub kernel: String,
    /// `GRUB_CMDLINE_LINUX`.
    pub cmdline: String,
    /// `GRUB_CMDLINE_LINUX_DEFAULT` (normal entry only).
    pub cmdline_default: String,
    /// `GRUB_TIMEOUT`.
    pub timeout: u32,
    /// `GRUB_SERIAL_COMMAND` when `GRUB_TERMINAL` has `serial`.
    pub serial: Option<String>,
    /// A third entry that mounts the root degraded (a BTRFS raid1 with a
    /// disk missing): `/etc/grub.d` holds [`crate::degraded::grub_script`].
    pub degraded: bool,
}

/// Why the fast path was not taken (printed; `update-grub` runs instead).
pub type Declined = String;

/// `KEY=VALUE` settings in sourcing order: `/etc/default/grub`, then
/// `/etc/default/grub.d/*.cfg` sorted. A value must be a plain word or a
/// quoted string without expansions; `GRUB_DISTRIBUTOR` (a command
/// substitution in Debian's file, shown only in menu titles) is ignored.
pub fn parse_defaults(files: &[(String, String)]) -> Result<BTreeMap<String, String>, Declined> {
    let mut vars = BTreeMap::new();
    for (name, text) in files {
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = || format!("{name}:{}", n + 1);
            let (key, value) = line.split_once('=').ok_or_else(|| format!("{}: not KEY=VALUE: {line}", at()))?;
            if !KNOWN_KEYS.contains(&key) {
                return Err(format!("{}: {key} is not one this installer renders", at()));
            }
            if key == "GRUB_DISTRIBUTOR" {
                continue;
            }
            let value = unquote(value).ok_or_else(|| format!("{}: {key}'s value is not a plain string", at()))?;
            vars.insert(key.to_string(), value);
        }
    }
    Ok(vars)
}

fn unquote(v: &str) -> Option<String> {
    let inner = match v.as_bytes() {
        [b'"', .., b'"'] | [b'\'', .., b'\''] if v.len() >= 2 => &v[1..v.len() - 1],
        _ => v,
    };
    let plain = !inner.chars().any(|c| matches!(c, '$' | '`' | '\\' | '"' | '\'' | ';' | '\n'));
    let word = inner == v && inner.contains(char::is_whitespace);
    (plain && !word).then(|| inner.to_string())
}

/// `41_custom` as Debian ships it, line by line (trimmed, blank lines left out).
const STOCK_41_CUSTOM: &[&str] = &[
    "#!/bin/sh",
    "cat <<EOF",
    "if [ -f  \\${config_directory}/custom.cfg ]; then",
    "source \\${config_directory}/custom.cfg",
    "elif [ -z \"\\${config_directory}\" -a -f  \\$prefix/custom.cfg ]; then",
    "source \\$prefix/custom.cfg",
    "fi",
    "EOF",
];

/// Whether a `40_custom`/`41_custom` is the one Debian ships: `40_custom`
/// nothing but comments and the line that prints them, `41_custom` the
/// `custom.cfg` loader exactly (which [`render`] writes itself).
pub fn stock_custom(name: &str, text: &str) -> bool {
    let lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    match name {
        "40_custom" => lines.filter(|l| !l.starts_with('#')).all(|l| l == "exec tail -n +3 $0"),
        "41_custom" => lines.eq(STOCK_41_CUSTOM.iter().copied()),
        _ => false,
    }
}

/// The settings, if every one is something [`render`] reproduces.
pub fn settings(vars: &BTreeMap<String, String>) -> Result<(String, String, u32, Option<String>), Declined> {
    if let Some(d) = vars.get("GRUB_DEFAULT") {
        if d != "0" {
            return Err(format!("GRUB_DEFAULT={d}"));
        }
    }
    let timeout = match vars.get("GRUB_TIMEOUT") {
        None => 5,
        Some(t) => t.parse().map_err(|_| format!("GRUB_TIMEOUT={t}"))?,
    };
    let serial = match vars.get("GRUB_TERMINAL").map(String::as_str) {
        None | Some("console") => None,
        Some("console serial") | Some("serial console") | Some("serial") => {
            Some(vars.get("GRUB_SERIAL_COMMAND").cloned().unwrap_or_else(|| "serial".to_string()))
        }
        Some(other) => return Err(format!("GRUB_TERMINAL={other}")),
    };
    let cmdline = vars.get("GRUB_CMDLINE_LINUX").cloned().unwrap_or_default();
    let cmdline_default = vars.get("GRUB_CMDLINE_LINUX_DEFAULT").cloned().unwrap_or_else(|| "quiet".into());
    Ok((cmdline, cmdline_default, timeout, serial))
}

/// The one kernel in `/boot` that has an initrd, or why not.
pub fn one_kernel(boot_names: &[String]) -> Result<String, Declined> {
    let kernels: Vec<&str> = boot_names.iter().filter_map(|n| n.strip_prefix("vmlinuz-")).collect();
    match kernels.as_slice() {
        [k] if boot_names.iter().any(|n| n == &format!("initrd.img-{k}")) => Ok(k.to_string()),
        [k] => Err(format!("no initrd.img-{k} in /boot")),
        [] => Err("no kernel in /boot".into()),
        many => Err(format!("{} kernels in /boot", many.len())),
    }
}

/// The subvolume holding `/boot` (the longest mount point above it) and
/// `/boot`'s path from the top of the filesystem.
pub fn boot_path(subvols: &[(String, String)]) -> Option<String> {
    let (name, mp) = subvols
        .iter()
        .filter(|(_, mp)| mp == "/" || mp == "/boot" || "/boot".starts_with(&format!("{}/", mp.trim_end_matches('/'))))
        .max_by_key(|(_, mp)| mp.len())?;
    let rest = "/boot".strip_prefix(mp.trim_end_matches('/')).unwrap_or("/boot");
    Some(format!("/{name}{rest}"))
}

fn entry(c: &GrubConfig, title: &str, id: &str, args: &str) -> String {
    let b = &c.boot_path;
    let (u, k) = (&c.root_uuid, &c.kernel);
    format!(
        "menuentry '{title}' --class debian --class gnu-linux --class gnu --class os $menuentry_id_option '{id}' {{\n\
         \tload_video\n\tinsmod gzio\n\tinsmod part_gpt\n\tinsmod btrfs\n\
         \tsearch --no-floppy --fs-uuid --set=root {u}\n\
         \techo\t'Loading Linux {k} ...'\n\
         \tlinux\t{b}/vmlinuz-{k} {args}\n\
         \techo\t'Loading initial ramdisk ...'\n\
         \tinitrd\t{b}/initrd.img-{k}\n}}\n"
    )
}

fn join(parts: &[&str]) -> String {
    parts.iter().filter(|p| !p.is_empty()).copied().collect::<Vec<_>>().join(" ")
}

/// The file: `update-grub`'s header (grubenv, `next_entry` for
/// `grub-reboot`, video, terminal, timeout), the default entry and a
/// recovery entry, and the `custom.cfg` hook of `41_custom`.
pub fn render(c: &GrubConfig) -> String {
    let root = format!("root=UUID={} ro", c.root_uuid);
    let flags = format!("rootflags=subvol={}", c.root_subvol);
    let normal = join(&[&root, &flags, &c.cmdline, &c.cmdline_default]);
    let recovery = join(&[&root, "single", &flags, &c.cmdline]);
    let terminal = match &c.serial {
        Some(cmd) => format!("{cmd}\nterminal_input console serial\nterminal_output console serial\n"),
        None => "terminal_input console\nterminal_output console\n".to_string(),
    };
    let mut s = String::from(HEADER);
    s.push_str(&terminal);
    s.push_str(&format!(
        "if [ \"${{recordfail}}\" = 1 ] ; then\n  set timeout=30\nelse\n  set timeout_style=menu\n  set timeout={}\nfi\n",
        c.timeout
    ));
    s.push_str(&entry(c, "Debian GNU/Linux", &format!("gnulinux-simple-{}", c.root_uuid), &normal));
    s.push_str(&entry(
        c,
        &format!("Debian GNU/Linux, with Linux {} (recovery mode)", c.kernel),
        &format!("gnulinux-{}-recovery-{}", c.kernel, c.root_uuid),
        &recovery,
    ));
    if c.degraded {
        let args =
            join(&[&root, &format!("{flags},degraded"), &c.cmdline, &c.cmdline_default, crate::degraded::CMDLINE_FLAG]);
        s.push_str(&entry(c, crate::degraded::MENU_TITLE, &format!("metalboot-degraded-{}", c.root_uuid), &args));
    }
    s.push_str(FOOTER);
    s
}

const HEADER: &str = "# written by metalboot-installer; `update-grub` rewrites it from
# /etc/default/grub and /etc/grub.d
if [ -s $prefix/grubenv ]; then
  set have_grubenv=true
  load_env
fi
if [ \"${next_entry}\" ] ; then
   set default=\"${next_entry}\"
   set next_entry=
   save_env next_entry
   set boot_once=true
else
   set default=\"0\"
fi
if [ x\"${feature_menuentry_id}\" = xy ]; then
  menuentry_id_option=\"--id\"
else
  menuentry_id_option=\"\"
fi
export menuentry_id_option
function load_video {
  if [ x$feature_all_video_module = xy ]; then
    insmod all_video
  else
    insmod efi_gop
    insmod efi_uga
    insmod ieee1275_fb
    insmod vbe
    insmod vga
    insmod video_bochs
    insmod video_cirrus
  fi
}
";

const FOOTER: &str = "if [ -f  ${config_directory}/custom.cfg ]; then
  source ${config_directory}/custom.cfg
elif [ -z \"${config_directory}\" -a -f  $prefix/custom.cfg ]; then
  source $prefix/custom.cfg
fi
";

/// Everything [`render`] needs, read from the mounted new system, or why
/// `update-grub` must run instead.
pub fn from_target(target: &Path, root_uuid: &str, subvols: &[(String, String)]) -> Result<GrubConfig, Declined> {
    let names = |dir: &Path| -> Result<Vec<String>, Declined> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map_err(|e| format!("reading {}: {e}", dir.display()))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        Ok(v)
    };
    let kernel = one_kernel(&names(&target.join("boot"))?)?;
    let scripts = target.join("etc/grub.d");
    let mut degraded = false;
    for s in names(&scripts)? {
        if s == crate::degraded::GRUB_SCRIPT_NAME {
            let text = std::fs::read_to_string(scripts.join(&s)).map_err(|e| format!("reading {s}: {e}"))?;
            if text != crate::degraded::grub_script() {
                return Err(format!("/etc/grub.d/{s} is not the one this installer writes"));
            }
            degraded = true;
            continue;
        }
        if !STOCK_SCRIPTS.contains(&s.as_str()) {
            return Err(format!("/etc/grub.d/{s} is not a stock script"));
        }
        if s.ends_with("_custom") {
            let text = std::fs::read_to_string(scripts.join(&s)).map_err(|e| format!("reading {s}: {e}"))?;
            if !stock_custom(&s, &text) {
                return Err(format!("/etc/grub.d/{s} has entries of its own"));
            }
        }
    }
    let mut files = Vec::new();
    let main = target.join("etc/default/grub");
    if main.exists() {
        files.push(("/etc/default/grub".to_string(), read(&main)?));
    }
    let dropins = target.join("etc/default/grub.d");
    if dropins.is_dir() {
        for n in names(&dropins)?.into_iter().filter(|n| n.ends_with(".cfg")) {
            files.push((format!("/etc/default/grub.d/{n}"), read(&dropins.join(&n))?));
        }
    }
    let (cmdline, cmdline_default, timeout, serial) = settings(&parse_defaults(&files)?)?;
    let root_subvol = subvols.iter().find(|(_, mp)| mp == "/").map(|(n, _)| n.clone()).ok_or("no subvolume at /")?;
    let boot_path = boot_path(subvols).ok_or("no subvolume holds /boot")?;
    Ok(GrubConfig {
        root_uuid: root_uuid.to_string(),
        root_subvol,
        boot_path,
        kernel,
        cmdline,
        cmdline_default,
        timeout,
        serial,
        degraded,
    })
}

fn read(p: &Path) -> Result<String, Declined> {
    std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))
}
