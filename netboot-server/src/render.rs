//! Rendering of everything a booting host is served from templates: iPXE
//! scripts and Debian preseeds, from `preseed-templates/` (embedded in the
//! binary, or a directory given in the config).
//!
//! One `minijinja::Environment`, built at start-up with strict undefined
//! behaviour. Its formatter checks every printed value against the context it
//! lands in: in iPXE scripts only a narrow character set (no space, `$`, `#`,
//! quotes, `||`, `&&`, newline) is allowed, so no value can add an iPXE command
//! or argument; in preseeds no control character is allowed, so no value can
//! add a debconf line. A value that fails the check fails the render (HTTP 500).

use anyhow::{Context, Result};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior, Value};
use serde::Serialize;
use std::path::Path;

/// Template names.
pub mod names {
    /// iPXE script that boots our installer.
    pub const IPXE_INSTALL_IMAGE: &str = "ipxe/install-image.ipxe.j2";
    /// iPXE script that boots the Debian installer.
    pub const IPXE_INSTALL_DEBIAN: &str = "ipxe/install-debian.ipxe.j2";
    /// iPXE script that boots the local disk.
    pub const IPXE_LOCAL: &str = "ipxe/local.ipxe.j2";
    /// Debian installer preseed.
    pub const PRESEED: &str = "debian/preseed.cfg.j2";
    /// The Debian installer's disk selector (`partman/early_command`).
    pub const DI_SELECT_DISK: &str = "debian/select-disk.sh.j2";
    /// The Debian installer's subvolume layout (`preseed/late_command`).
    pub const DI_SUBVOLUMES: &str = "debian/subvolumes.sh.j2";
    /// The Debian installer's keys, phone-home unit and report (`preseed/late_command`).
    pub const DI_FINISH: &str = "debian/finish.sh.j2";
    /// The status page.
    pub const UI_PAGE: &str = "ui/page.html.j2";
    /// One host's section of the status page (also a live update).
    pub const UI_HOST: &str = "ui/host.html.j2";
    /// The status page's hosts-per-state line.
    pub const UI_SUMMARY: &str = "ui/summary.html.j2";
    /// The status page's login form.
    pub const UI_LOGIN: &str = "ui/login.html.j2";
    /// The status page's confirmation of an arm or disarm (without JavaScript).
    pub const UI_CONFIRM: &str = "ui/confirm.html.j2";
}

const EMBEDDED: &[(&str, &str)] = &[
    (names::IPXE_INSTALL_IMAGE, include_str!("../../preseed-templates/ipxe/install-image.ipxe.j2")),
    (names::IPXE_INSTALL_DEBIAN, include_str!("../../preseed-templates/ipxe/install-debian.ipxe.j2")),
    (names::IPXE_LOCAL, include_str!("../../preseed-templates/ipxe/local.ipxe.j2")),
    (names::PRESEED, include_str!("../../preseed-templates/debian/preseed.cfg.j2")),
    (names::DI_SELECT_DISK, include_str!("../../preseed-templates/debian/select-disk.sh.j2")),
    (names::DI_SUBVOLUMES, include_str!("../../preseed-templates/debian/subvolumes.sh.j2")),
    (names::DI_FINISH, include_str!("../../preseed-templates/debian/finish.sh.j2")),
];

/// The status page's templates: taken from a template directory when it
/// has them, else these (a directory made for an older metalboot lacks them).
const EMBEDDED_UI: &[(&str, &str)] = &[
    (names::UI_PAGE, include_str!("../../preseed-templates/ui/page.html.j2")),
    (names::UI_HOST, include_str!("../../preseed-templates/ui/host.html.j2")),
    (names::UI_SUMMARY, include_str!("../../preseed-templates/ui/summary.html.j2")),
    (names::UI_LOGIN, include_str!("../../preseed-templates/ui/login.html.j2")),
    (names::UI_CONFIRM, include_str!("../../preseed-templates/ui/confirm.html.j2")),
];

/// The template environment.
pub struct Renderer {
    env: Environment<'static>,
}

impl Renderer {
    /// Templates embedded in the binary.
    pub fn embedded() -> Result<Renderer> {
        let mut env = base_env();
        for (name, src) in EMBEDDED.iter().chain(EMBEDDED_UI) {
            env.add_template(name, src).with_context(|| format!("compiling embedded template {name}"))?;
        }
        Ok(Renderer { env })
    }

    /// Templates from `dir` (same relative names as the embedded ones). Every
    /// known template must exist and compile, so a broken one stops start-up.
    pub fn from_dir(dir: &Path) -> Result<Renderer> {
        let mut env = base_env();
        for (name, _) in EMBEDDED {
            let path = dir.join(name);
            let src = std::fs::read_to_string(&path).with_context(|| format!("reading template {}", path.display()))?;
            env.add_template_owned(name.to_string(), src)
                .with_context(|| format!("compiling template {}", path.display()))?;
        }
        for (name, embedded) in EMBEDDED_UI {
            let path = dir.join(name);
            let src = match std::fs::read_to_string(&path) {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => embedded.to_string(),
                Err(e) => return Err(e).with_context(|| format!("reading template {}", path.display())),
            };
            env.add_template_owned(name.to_string(), src)
                .with_context(|| format!("compiling template {}", path.display()))?;
        }
        Ok(Renderer { env })
    }

    /// Renders template `name` with `ctx`.
    pub fn render<S: Serialize>(&self, name: &str, ctx: &S) -> Result<String> {
        let tmpl = self.env.get_template(name).with_context(|| format!("looking up template {name}"))?;
        let mut out = tmpl.render(Value::from_serialize(ctx)).map_err(|e| {
            let mut msg = format!("rendering {name}: {e}");
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            anyhow::anyhow!(msg)
        })?;
        if !out.ends_with('\n') {
            out.push('\n');
        }
        Ok(out)
    }
}

fn base_env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html.j2") {
            minijinja::AutoEscape::Html
        } else {
            minijinja::AutoEscape::None
        }
    });
    env.set_formatter(|out, state, value| {
        let name = state.name();
        let text = if value.is_none() { String::new() } else { value.to_string() };
        if name.ends_with(".html.j2") {
            // HTML: every value escaped (auto-escape), pre-rendered fragments marked safe
            return minijinja::escape_formatter(out, state, value);
        }
        if value.is_safe() {
            // produced by one of our own checking filters (`echo_text`)
        } else if name.starts_with("ipxe/") {
            check_ipxe_value(&text)?;
        } else if name.ends_with(".sh.j2") {
            check_shell_word(&text)?;
        } else {
            check_line_value(&text)?;
        }
        out.write_str(&text).map_err(Error::from)
    });
    env.add_filter("echo_text", |v: String| -> Result<Value, Error> {
        if let Some(c) = v.chars().find(|c| !(c.is_ascii_alphanumeric() || " .,:()_-".contains(*c))) {
            return Err(Error::new(ErrorKind::InvalidOperation, format!("{c:?} is not allowed in iPXE echo text")));
        }
        Ok(Value::from_safe_string(v))
    });
    env.add_filter("heredoc", |v: String| -> Result<Value, Error> {
        // trusted file contents (our own phone-home unit) inside a quoted here-document
        if v.lines().any(|l| l == "METALBOOT_EOF") || v.contains('\0') {
            return Err(Error::new(ErrorKind::InvalidOperation, "here-document body contains its terminator or NUL"));
        }
        Ok(Value::from_safe_string(v))
    });
    env.add_filter("shell", |v: Value| -> Result<Value, Error> {
        let v = if v.is_none() || v.is_undefined() { String::new() } else { v.to_string() };
        check_line_value(&v)?;
        Ok(Value::from_safe_string(shell_quote(&v)))
    });
    env
}

/// True for characters allowed in a value printed into an iPXE script.
fn ipxe_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._:/,=+@-%?&()[]".contains(c)
}

/// Checks a value bound for an iPXE script: one word, no expansion, no
/// command chaining. Empty is fine.
pub fn check_ipxe_value(s: &str) -> Result<(), Error> {
    if let Some(c) = s.chars().find(|c| !ipxe_char(*c)) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("value {:?} contains {c:?}, which is not allowed in an iPXE script", truncated(s)),
        ));
    }
    if s.contains("&&") {
        return Err(Error::new(ErrorKind::InvalidOperation, "value contains '&&' (iPXE command chaining)"));
    }
    if s.contains("..") {
        return Err(Error::new(ErrorKind::InvalidOperation, "value contains '..' (path traversal)"));
    }
    Ok(())
}

/// Checks a value printed unquoted into a shell script: one word that no
/// shell expands. Anything else must go through the `shell` filter.
pub fn check_shell_word(s: &str) -> Result<(), Error> {
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || "._/@:=,+%-".contains(*c))) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("value {:?} contains {c:?}; quote it with the shell filter", truncated(s)),
        ));
    }
    Ok(())
}

/// Checks a value bound for a line-oriented file (preseed): no control characters.
pub fn check_line_value(s: &str) -> Result<(), Error> {
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("value {:?} contains control character {c:?}", truncated(s)),
        ));
    }
    Ok(())
}

/// POSIX shell single-quoting.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn truncated(s: &str) -> String {
    s.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipxe_formatter_rejects_injection() {
        for bad in ["a b", "x\nchain http://evil", "${x}", "a#b", "a&&b", "a||b", "a'b", "a;b"] {
            assert!(check_ipxe_value(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_ipxe_value("http://10.0.0.1:8080/assets/vmlinuz").is_ok());
        assert!(check_ipxe_value("console=ttyS0,115200n8").is_ok());
    }

    #[test]
    fn shell_quote_is_inert() {
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
        assert_eq!(shell_quote("$(reboot)"), "'$(reboot)'");
    }

    #[test]
    fn embedded_templates_compile() {
        Renderer::embedded().unwrap();
    }
}
