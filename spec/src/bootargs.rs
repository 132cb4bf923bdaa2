//! The kernel command line between the server and the installer: one type,
//! [`BootArgs`], that the server renders with [`BootArgs::to_cmdline`] and the
//! installer reads back with [`BootArgs::parse`].
//!
//! The words are ours (`metalboot.*`), the pxelinux convention `BOOTIF=01-…`
//! (the NIC that booted; Debian's netcfg honours it too) and the kernel's
//! `ip=` syntax (Documentation/admin-guide/nfs/nfsroot.rst):
//! `ip=<client>:<server>:<gw>:<netmask>:<hostname>:<device>:<autoconf>:<dns0>:<dns1>`.
//! Every other word (`console=…`, the host's own kernel arguments) belongs to
//! the kernel and is passed over. An unknown `metalboot.*` word is an error:
//! a misspelt key on the command line of something that wipes disks must not
//! be silently ignored.

use crate::error::quote;
use crate::pin::PinError;
use crate::{MacAddr, PinSet};

mod ip;
pub use ip::{NetConfig, StaticIp, StaticIp6};

/// Every `metalboot.*` key, in the order [`BootArgs::to_cmdline`] writes them.
pub const KEYS: &[&str] = &[
    "metalboot.ip6",
    "metalboot.url",
    "metalboot.pin",
    "metalboot.host",
    "metalboot.token",
    "metalboot.plan",
    "metalboot.action",
    "metalboot.fallback",
    "metalboot.wait",
    "metalboot.standalone",
];

/// How long the installer keeps trying to fetch its plan when
/// `metalboot.wait` is not given.
pub const DEFAULT_WAIT_SECS: u32 = 120;
/// The bounds of `metalboot.wait`.
pub const WAIT_SECS: std::ops::RangeInclusive<u32> = 5..=3600;

/// What the installer is booted for (`metalboot.action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    /// Install the host (default).
    #[default]
    Install,
    /// Print the machine's disks and power off; writes nothing.
    Probe,
}

/// What the installer does when it fails before its first write
/// (`metalboot.fallback`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fallback {
    /// Stop with the error on the console (default).
    #[default]
    Stop,
    /// Reboot: a kexec'd installer, or one a one-shot GRUB entry started,
    /// then comes back up as the old system (reinstall in place).
    Reboot,
}

/// Everything the installer takes from the kernel command line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BootArgs {
    /// NIC that booted, from `BOOTIF=01-aa-bb-…`.
    pub bootif: Option<MacAddr>,
    /// IPv4 network, from `ip=`.
    pub net: NetConfig,
    /// Static IPv6, from `metalboot.ip6`.
    pub ip6: Option<StaticIp6>,
    /// Server base URL (`metalboot.url`, no trailing `/`).
    pub url: Option<String>,
    /// The server's key pins (`metalboot.pin=sha256//…[,sha256//…]`):
    /// required with an `https://` URL, refused without one. The installer
    /// has no CA roots; a pin is the server's whole identity.
    pub pin: Option<PinSet>,
    /// Host name in the inventory (`metalboot.host`).
    pub host: Option<String>,
    /// Install token (`metalboot.token`).
    pub token: Option<String>,
    /// A local plan file instead of fetching one (`metalboot.plan`).
    pub plan: Option<String>,
    /// `metalboot.action`.
    pub action: Action,
    /// `metalboot.fallback`.
    pub fallback: Fallback,
    /// `metalboot.wait=SECONDS`: how long the installer keeps trying to
    /// reach the server for its plan before it gives up (and, with
    /// `metalboot.fallback=reboot`, reboots into the old system); `None` is
    /// [`DEFAULT_WAIT_SECS`].
    pub wait: Option<u32>,
    /// `metalboot.standalone`: the plan, image and host keys came inside the
    /// initramfs (`metalboot.plan`); nothing is fetched or reported. The
    /// carried network is still brought up and must reach its gateway
    /// before anything is written.
    pub standalone: bool,
}

/// Why a command line could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BootArgsError {
    /// A `metalboot.*` key nobody knows.
    #[error("kernel command line: unknown key {} (known: {known})", quote(.0), known = KEYS.join(", "))]
    UnknownKey(String),
    /// A key given twice with different values.
    #[error("kernel command line: {0} is given twice")]
    Repeated(String),
    /// A value did not parse.
    #[error("kernel command line: {0}")]
    Bad(String),
}

pub(crate) fn bad(msg: String) -> BootArgsError {
    BootArgsError::Bad(msg)
}

/// A field of `ip=` or a value of ours: printable, no separators the
/// syntax uses, no whitespace.
fn check_field(what: &str, v: &str) -> Result<(), BootArgsError> {
    if v.is_empty() || v.len() > 255 || !v.bytes().all(|b| b.is_ascii_graphic() && b != b':' && b != b',') {
        return Err(bad(format!("{what} {}: 1 to 255 printable characters, no ':' or ','", quote(v))));
    }
    Ok(())
}

/// True for a word of the command line that [`BootArgs`] owns.
pub fn is_ours(word: &str) -> bool {
    let key = word.split_once('=').map_or(word, |(k, _)| k);
    key == "BOOTIF" || key == "ip" || key.starts_with("metalboot.")
}

/// Checks a token's shape (what [`crate`]'s server issues: letters, digits, `-`).
pub fn check_token(t: &str) -> Result<(), BootArgsError> {
    if t.is_empty() || t.len() > 128 || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(bad("metalboot.token is not a token".into()));
    }
    Ok(())
}

impl BootArgs {
    /// How long to keep trying to fetch the plan (`metalboot.wait`).
    pub fn wait(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.wait.unwrap_or(DEFAULT_WAIT_SECS).into())
    }

    /// Parses a whole command line; words that are not ours are skipped.
    pub fn parse(cmdline: &str) -> Result<BootArgs, BootArgsError> {
        let mut a = BootArgs::default();
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for word in cmdline.split_whitespace().filter(|w| is_ours(w)) {
            let (k, v) = word.split_once('=').unwrap_or((word, ""));
            if let Some((_, prev)) = seen.iter().find(|(sk, _)| *sk == k) {
                if *prev != v {
                    return Err(BootArgsError::Repeated(k.to_string()));
                }
                continue;
            }
            seen.push((k, v));
            match k {
                "BOOTIF" => {
                    let mac = v.strip_prefix("01-").unwrap_or(v);
                    a.bootif = Some(mac.parse().map_err(|e: String| bad(format!("BOOTIF: {e}")))?);
                }
                "ip" => a.net = NetConfig::parse(v)?,
                "metalboot.ip6" => a.ip6 = Some(StaticIp6::parse(v)?),
                "metalboot.url" => a.url = Some(v.trim_end_matches('/').to_string()),
                "metalboot.pin" => a.pin = Some(parse_pins(v)?),
                "metalboot.host" => a.host = Some(v.to_string()),
                "metalboot.token" => a.token = Some(v.to_string()),
                "metalboot.plan" => a.plan = Some(v.to_string()),
                "metalboot.action" => {
                    a.action = match v {
                        "install" => Action::Install,
                        "probe" => Action::Probe,
                        other => return Err(bad(format!("metalboot.action={}: install or probe", quote(other)))),
                    }
                }
                "metalboot.fallback" => {
                    a.fallback = match v {
                        "reboot" => Fallback::Reboot,
                        "stop" => Fallback::Stop,
                        other => return Err(bad(format!("metalboot.fallback={}: reboot or stop", quote(other)))),
                    }
                }
                "metalboot.wait" => {
                    let secs = v.parse::<u32>().ok().filter(|s| WAIT_SECS.contains(s));
                    a.wait = Some(secs.ok_or_else(|| {
                        bad(format!(
                            "metalboot.wait={}: whole seconds from {} to {}",
                            quote(v),
                            WAIT_SECS.start(),
                            WAIT_SECS.end()
                        ))
                    })?);
                }
                "metalboot.standalone" if word == k => a.standalone = true,
                "metalboot.standalone" => return Err(bad("metalboot.standalone takes no value".into())),
                other => return Err(BootArgsError::UnknownKey(other.to_string())),
            }
        }
        a.validate()?;
        Ok(a)
    }

    /// The checks both sides rely on: what [`BootArgs::parse`] accepts and
    /// what [`BootArgs::to_cmdline`] may write.
    pub fn validate(&self) -> Result<(), BootArgsError> {
        if self.standalone && self.plan.is_none() {
            return Err(bad("metalboot.standalone needs metalboot.plan=FILE (the carried plan)".into()));
        }
        if let Some(h) = &self.host {
            crate::safe::check_host_name(h).map_err(|e| bad(format!("metalboot.host: {e}")))?;
        }
        if let Some(t) = &self.token {
            check_token(t)?;
        }
        if let Some(u) = &self.url {
            if u.is_empty() || u.len() > 255 || !u.bytes().all(|b| b.is_ascii_graphic()) || u.ends_with('/') {
                return Err(bad(format!("metalboot.url {}: 1 to 255 printable characters, no trailing '/'", quote(u))));
            }
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(bad(format!("metalboot.url {}: not an http(s) URL", quote(u))));
            }
        }
        match (&self.pin, self.url.as_deref()) {
            (Some(_), Some(u)) if u.starts_with("https://") => {}
            (Some(_), _) => return Err(bad("metalboot.pin is given without an https:// metalboot.url".into())),
            (None, Some(u)) if u.starts_with("https://") => {
                return Err(bad(format!(
                    "metalboot.url {} is https but metalboot.pin is missing: the installer has no CA roots, it trusts only a pinned server key",
                    quote(u)
                )))
            }
            (None, _) => {}
        }
        if let Some(w) = self.wait {
            if !WAIT_SECS.contains(&w) {
                return Err(bad(format!(
                    "metalboot.wait={w}: whole seconds from {} to {}",
                    WAIT_SECS.start(),
                    WAIT_SECS.end()
                )));
            }
        }
        if let Some(p) = &self.plan {
            check_field("metalboot.plan", p)?;
            if !p.starts_with('/') {
                return Err(bad(format!("metalboot.plan {}: not an absolute path", quote(p))));
            }
        }
        if let NetConfig::Static(s) = &self.net {
            if s.prefix > 32 {
                return Err(bad(format!("ip=: prefix /{} is longer than 32", s.prefix)));
            }
            if s.dns.len() > 2 {
                return Err(bad("ip=: at most two dns servers".into()));
            }
            for (what, v) in [("hostname", &s.hostname), ("device", &s.device)] {
                if let Some(v) = v {
                    check_field(&format!("ip= {what}"), v)?;
                }
            }
        }
        Ok(())
    }

    /// The words of the command line, in a fixed order: `BOOTIF`, `ip=`,
    /// then [`KEYS`]. Defaults (`action=install`, `fallback=stop`) are not
    /// written.
    pub fn to_cmdline(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(m) = &self.bootif {
            v.push(format!("BOOTIF=01-{}", m.to_string().replace(':', "-")));
        }
        v.push(self.net.to_arg());
        if let Some(six) = &self.ip6 {
            v.push(format!("metalboot.ip6={six}"));
        }
        if let Some(u) = &self.url {
            v.push(format!("metalboot.url={u}"));
        }
        if let Some(p) = &self.pin {
            v.push(format!("metalboot.pin={}", pins_arg(p)));
        }
        for (k, val) in [("host", &self.host), ("token", &self.token), ("plan", &self.plan)] {
            if let Some(val) = val {
                v.push(format!("metalboot.{k}={val}"));
            }
        }
        if self.action == Action::Probe {
            v.push("metalboot.action=probe".into());
        }
        if self.fallback == Fallback::Reboot {
            v.push("metalboot.fallback=reboot".into());
        }
        if let Some(w) = self.wait {
            v.push(format!("metalboot.wait={w}"));
        }
        if self.standalone {
            v.push("metalboot.standalone".into());
        }
        v
    }
}

/// Separates the pins of `metalboot.pin` on the command line. A pin set is
/// written with `;` elsewhere (curl's `--pinnedpubkey`, [`crate::pin`]), but
/// the iPXE script's safety check ([`crate::safe::check_word`]) refuses `;`,
/// a shell metacharacter: the command line uses `,` instead.
pub const PIN_SEPARATOR: char = ',';

/// Reads `metalboot.pin`: pins separated by `,`.
fn parse_pins(v: &str) -> Result<PinSet, BootArgsError> {
    if v.contains(crate::pin::SEPARATOR) {
        return Err(bad(format!("metalboot.pin={}: separate pins with ',' on the kernel command line", quote(v))));
    }
    v.replace(PIN_SEPARATOR, &crate::pin::SEPARATOR.to_string()).parse().map_err(|e| match e {
        PinError::Empty(_) => bad(format!("metalboot.pin={}: an empty pin; separate pins with a single ','", quote(v))),
        e => bad(format!("metalboot.pin: {e}")),
    })
}

/// The `metalboot.pin` value of `pins`.
pub fn pins_arg(pins: &PinSet) -> String {
    pins.pins().iter().map(ToString::to_string).collect::<Vec<_>>().join(&PIN_SEPARATOR.to_string())
}

/// The command line with the token masked, for logs.
pub fn redact(cmdline: &str) -> String {
    cmdline
        .split_whitespace()
        .map(|w| if w.starts_with("metalboot.token=") { "metalboot.token=<redacted>" } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
#[path = "bootargs_tests.rs"]
mod tests;
