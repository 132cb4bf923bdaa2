//! The installer's console log on the wire: the installer posts its console
//! lines in batches ([`LogBatch`]) while it runs; the server keeps the last
//! [`LOG_LINES_KEPT`] per host and hands them out in pages ([`LogPage`]).

use serde::{Deserialize, Serialize};

/// Most lines one batch may carry.
pub const MAX_BATCH_LINES: usize = 500;
/// Longest line the server keeps; longer ones are cut (on a char boundary).
pub const MAX_LINE_CHARS: usize = 2000;
/// Lines the server keeps per host; older ones are dropped.
pub const LOG_LINES_KEPT: usize = 5000;

/// Console lines, oldest first, from the installer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct LogBatch {
    /// The lines, without their line ends.
    pub lines: Vec<String>,
    /// Lines the installer could not deliver and dropped before these
    /// (its buffer is bounded).
    #[serde(default)]
    pub dropped: u64,
}

/// One stored line.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LogLine {
    /// Position in the host's log, increasing.
    pub id: i64,
    /// When the server received it (RFC 3339, milliseconds).
    pub at: String,
    /// The line.
    pub line: String,
}

/// A page of a host's log: the lines after `?after=`, and where the next
/// page starts (the last id, or `after` when there was nothing new).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LogPage {
    /// The lines, oldest first.
    pub lines: Vec<LogLine>,
    /// Pass as `?after=` for what comes next.
    pub next: i64,
}

/// `line` cut to [`MAX_LINE_CHARS`] characters (marked with `…`), control
/// characters other than tab replaced: what the server stores.
pub fn clean_line(line: &str) -> String {
    let mut out: String = line
        .trim_end_matches(['\r', '\n'])
        .chars()
        .take(MAX_LINE_CHARS)
        .map(|c| if c.is_control() && c != '\t' { '\u{fffd}' } else { c })
        .collect();
    if line.chars().count() > MAX_LINE_CHARS {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_and_control_characters_replaced() {
        assert_eq!(clean_line("mkfs.btrfs: done\r\n"), "mkfs.btrfs: done");
        assert_eq!(clean_line("a\x1b[1mb\tc"), "a\u{fffd}[1mb\tc");
        let long = "x".repeat(MAX_LINE_CHARS + 10);
        let cut = clean_line(&long);
        assert_eq!(cut.chars().count(), MAX_LINE_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(clean_line(&"é".repeat(MAX_LINE_CHARS)).chars().count(), MAX_LINE_CHARS);
    }

    #[test]
    fn a_batch_without_dropped_reads_as_none_dropped_and_unknown_fields_are_refused() {
        let b: LogBatch = serde_json::from_str(r#"{"lines":["a","b"]}"#).unwrap();
        assert_eq!(b, LogBatch { lines: vec!["a".into(), "b".into()], dropped: 0 });
        assert!(serde_json::from_str::<LogBatch>(r#"{"lines":[],"level":1}"#).is_err());
    }
}
