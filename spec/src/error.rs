//! Validation errors that name the field they are about, and how a value
//! someone else wrote (an inventory field, a config value, a request
//! parameter) is shown in one: on one line, control characters escaped, cut
//! short — so an error can never move the cursor, recolour a terminal, fake
//! a log line or fill a screen.

use std::fmt;

/// Most characters of a value an error shows before cutting it short.
pub const SHOW_MAX: usize = 80;

/// The escaped form of `c`, or `None` if it is shown as it is: `\n`, `\r`,
/// `\t`, and `\u{..}` for the other C0 and C1 controls, DEL, the line and
/// paragraph separators and the bidirectional overrides (which reorder what
/// a terminal shows). With `quotes`, also `\\` and `\"`.
fn escape_char(c: char, quotes: bool) -> Option<String> {
    match c {
        '\n' => Some("\\n".into()),
        '\r' => Some("\\r".into()),
        '\t' => Some("\\t".into()),
        '\\' | '"' if quotes => Some(format!("\\{c}")),
        c if c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
        {
            Some(format!("\\u{{{:x}}}", c as u32))
        }
        _ => None,
    }
}

/// `v` escaped, at most `max` characters of output; the suffix to add when
/// it was cut (`… (N characters)`).
fn shorten(v: &str, max: usize, quotes: bool) -> (String, Option<String>) {
    let mut out = String::new();
    let mut shown = 0;
    for c in v.chars() {
        let piece = escape_char(c, quotes).unwrap_or_else(|| c.to_string());
        let n = piece.chars().count();
        if shown + n > max {
            return (out, Some(format!("… ({} characters)", v.chars().count())));
        }
        out.push_str(&piece);
        shown += n;
    }
    (out, None)
}

/// A value as an error message shows it: in double quotes, with control
/// characters, quotes and backslashes escaped, and past [`SHOW_MAX`]
/// characters cut with an ellipsis and the original length:
/// `"\u{1b}[31mAAAA…" (10012 characters)`.
pub fn quote(v: &str) -> String {
    match shorten(v, SHOW_MAX, true) {
        (s, None) => format!("\"{s}\""),
        (s, Some(rest)) => {
            let (dots, len) = rest.split_at('…'.len_utf8());
            format!("\"{s}{dots}\"{len}")
        }
    }
}

/// Text made from others' input (a parser's message, a field path with a
/// map key in it) on one line and at most `max` characters: control
/// characters escaped as [`quote`] does, quotes and backslashes left alone.
pub fn one_line(s: &str, max: usize) -> String {
    match shorten(s, max, false) {
        (s, None) => s,
        (s, Some(rest)) => s + &rest,
    }
}

/// A deserializer's error at `path` (serde_path_to_error's), as one line
/// naming the field once: `field `path`: message`. serde names an unknown
/// key in its message too (``unknown field `key`, expected …``); the path
/// ends with it already, so the message says `unknown field, expected …`.
pub fn parse_error(path: &str, message: &str) -> String {
    let message = message.trim();
    let message = match message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.rfind("`, expected").map(|i| &rest[i + 1..]))
    {
        Some(tail) => format!("unknown field{tail}"),
        None if message.starts_with("unknown field `") => "unknown field".to_string(),
        None => message.to_string(),
    };
    format!("field `{}`: {}", one_line(path, 2 * SHOW_MAX), one_line(&message, 4 * SHOW_MAX))
}

/// A value in the inventory or a plan that is not acceptable, with the dotted
/// path of the field (`disk.serial`, `ssh_authorized_keys[1]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// Dotted path of the offending field.
    pub field: String,
    /// What is wrong with it, in words an operator can act on.
    pub message: String,
}

impl SpecError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }

    /// The same error, one level deeper: `prefix.field`.
    pub fn under(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() {
            prefix.to_string()
        } else if self.field.starts_with('[') {
            format!("{prefix}{}", self.field)
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}

impl fmt::Display for SpecError {
    /// One line, however the field or the message were made.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", one_line(&self.field, 2 * SHOW_MAX), one_line(&self.message, 4 * SHOW_MAX))
    }
}

impl std::error::Error for SpecError {}

/// Checks an optional field with `f`, naming `field` in the error.
pub(crate) fn opt(v: &Option<String>, field: &str, f: impl Fn(&str) -> Result<(), String>) -> Result<(), SpecError> {
    match v {
        Some(s) => f(s).map_err(|m| SpecError::new(field, m)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_controls_and_shortens() {
        assert_eq!(quote("web1"), "\"web1\"");
        assert_eq!(
            quote("a\nb\tc\r\u{1b}[31m\u{7f}\u{85}\u{202e}\"\\"),
            r#""a\nb\tc\r\u{1b}[31m\u{7f}\u{85}\u{202e}\"\\""#
        );
        let long = format!("\u{1b}[31m\n{}", "A".repeat(10_000));
        let q = quote(&long);
        assert!(q.starts_with(r#""\u{1b}[31m\nAAA"#), "{q}");
        assert!(q.ends_with("…\" (10006 characters)"), "{q}");
        assert!(q.chars().count() < SHOW_MAX + 30, "{q}");
        assert!(!q.chars().any(char::is_control), "{q}");
        // exactly SHOW_MAX characters are shown whole
        assert_eq!(quote(&"x".repeat(SHOW_MAX)), format!("\"{}\"", "x".repeat(SHOW_MAX)));
        // an escape is never cut in half
        let q = quote(&format!("{}\u{1b}", "x".repeat(SHOW_MAX - 2)));
        assert!(q.starts_with(&format!("\"{}…\"", "x".repeat(SHOW_MAX - 2))), "{q}");
    }

    #[test]
    fn one_line_keeps_quotes_and_escapes_controls() {
        assert_eq!(
            one_line("invalid type: string \"x\", expected u32", 80),
            "invalid type: string \"x\", expected u32"
        );
        assert_eq!(one_line("a\nb", 80), "a\\nb");
        assert_eq!(one_line("abcdef", 3), "abc… (6 characters)");
    }

    #[test]
    fn parse_error_names_an_unknown_key_once() {
        assert_eq!(
            parse_error("server.bogus", "unknown field `bogus`, expected `listen` or `data_dir`"),
            "field `server.bogus`: unknown field, expected `listen` or `data_dir`"
        );
        assert_eq!(parse_error("x", "unknown field `x`"), "field `x`: unknown field");
        assert_eq!(
            parse_error("arm", "invalid type: string \"a\\nb\", expected a boolean\n"),
            "field `arm`: invalid type: string \"a\\nb\", expected a boolean"
        );
    }

    #[test]
    fn spec_error_is_one_bounded_line() {
        let e = SpecError::new("labels[0]", format!("{} is bad\n", "\u{1b}".repeat(5000))).under("host");
        let shown = e.to_string();
        assert!(shown.starts_with("field `host.labels[0]`: "), "{shown}");
        assert!(!shown.contains('\n') && shown.chars().count() < 6 * SHOW_MAX, "{shown}");
    }
}
