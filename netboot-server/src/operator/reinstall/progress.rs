//! How `metalboot reinstall` shows the installer's events. On a terminal a
//! step with a percentage is one bar redrawn in place (`unpack [#####.....]
//! 52% 104.3 MiB`) and everything else is a line above it; to a pipe or a
//! log every event is its own line, so nothing is lost to `\r`.

use crate::api::TimelineEntry;
use std::io::Write;
use std::time::Instant;

/// Width of the bar between the brackets.
const BAR: usize = 30;

/// The bar for one progress event: step, bar, percent, bytes.
pub fn bar_line(step: &str, percent: i64, bytes: Option<i64>) -> String {
    let p = percent.clamp(0, 100) as usize;
    let filled = p * BAR / 100;
    let mb = bytes.map(|b| format!(" {:.1} MiB", b as f64 / 1048576.0)).unwrap_or_default();
    format!("  {step:<10} [{}{}] {p:>3}%{mb}", "#".repeat(filled), ".".repeat(BAR - filled))
}

/// One event as a plain line, as printed to a pipe.
pub fn event_line(e: &TimelineEntry) -> String {
    let pct = e.percent.map(|p| format!(" {p:>3}%")).unwrap_or_default();
    let bytes = e.bytes.map(|b| format!(" {:.1} MiB", b as f64 / 1048576.0)).unwrap_or_default();
    let what = e.step.as_deref().or(e.state.as_deref()).unwrap_or("-");
    format!("  {} {what}{pct}{bytes} {}", e.at, e.message).trim_end().to_string()
}

/// Prints events, as a redrawn bar on a terminal.
pub struct Progress<W: Write> {
    out: W,
    tty: bool,
    /// A bar is drawn and its line not yet ended.
    open: bool,
}

impl<W: Write> Progress<W> {
    /// `tty`: whether `out` is a terminal.
    pub fn new(out: W, tty: bool) -> Self {
        Progress { out, tty, open: false }
    }

    /// Shows one event.
    pub fn event(&mut self, e: &TimelineEntry) {
        match (self.tty, e.kind.as_str(), e.step.as_deref(), e.percent) {
            (true, "progress", Some(step), Some(p)) => {
                let _ = write!(self.out, "\r\x1b[2K{}", bar_line(step, p, e.bytes));
                self.open = true;
                if p >= 100 {
                    self.end_bar();
                }
            }
            _ => self.line(&event_line(e)),
        }
        let _ = self.out.flush();
    }

    /// Prints a line of its own, below any bar in progress.
    pub fn line(&mut self, text: &str) {
        self.end_bar();
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }

    fn end_bar(&mut self) {
        if self.open {
            let _ = writeln!(self.out);
            self.open = false;
        }
    }
}

impl<W: Write> Drop for Progress<W> {
    /// An error printed after the command gives up starts on its own line.
    fn drop(&mut self) {
        self.end_bar();
    }
}

/// Stamps the phases of a reinstall: time since the start, and since the
/// phase before.
pub struct Clock(Instant, Instant);

impl Clock {
    /// A clock started now.
    pub fn start() -> Clock {
        let now = Instant::now();
        Clock(now, now)
    }

    /// `[ 12.3s] what (4.5s)`: since the start, and since the last phase.
    pub fn stamp(&mut self, what: &str) -> String {
        let now = Instant::now();
        let s = format!(
            "[{:>6.1}s] {what} ({:.1}s)",
            now.duration_since(self.0).as_secs_f64(),
            now.duration_since(self.1).as_secs_f64()
        );
        self.1 = now;
        s
    }

    /// Prints a phase as [`Clock::stamp`] words it.
    pub fn phase(&mut self, what: &str) {
        println!("{}", self.stamp(what));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, step: Option<&str>, percent: Option<i64>, bytes: Option<i64>, msg: &str) -> TimelineEntry {
        TimelineEntry {
            at: "2026-11-23T10:00:00.000Z".into(),
            kind: kind.into(),
            state: None,
            step: step.map(Into::into),
            percent,
            bytes,
            message: msg.into(),
        }
    }

    #[test]
    fn the_bar_fills_with_the_percentage_and_clamps() {
        assert_eq!(bar_line("unpack", 0, None), format!("  unpack     [{}]   0%", ".".repeat(30)));
        assert_eq!(
            bar_line("unpack", 50, Some(3 * 1048576 / 2)),
            format!("  unpack     [{}{}]  50% 1.5 MiB", "#".repeat(15), ".".repeat(15))
        );
        assert_eq!(bar_line("unpack", 250, None), format!("  unpack     [{}] 100%", "#".repeat(30)));
        assert_eq!(bar_line("unpack", -3, None), bar_line("unpack", 0, None));
    }

    #[test]
    fn on_a_terminal_percentages_redraw_one_line_and_messages_go_above_it() {
        let mut p = Progress::new(Vec::new(), true);
        p.event(&ev("progress", Some("unpack"), Some(10), Some(1048576), ""));
        p.event(&ev("progress", Some("unpack"), Some(60), Some(6 * 1048576), ""));
        p.event(&ev("log", Some("grub"), None, None, "grub-install for i386-pc"));
        p.event(&ev("progress", Some("unpack"), Some(100), Some(10 * 1048576), ""));
        p.line("host vm -> rebooting");
        let out = String::from_utf8(p.out.clone()).unwrap();
        let lines: Vec<&str> = out.split('\n').collect();
        // the first two draws share a line; the log ends it
        assert_eq!(lines[0].matches("\r\x1b[2K").count(), 2, "{out:?}");
        assert!(lines[0].ends_with(&bar_line("unpack", 60, Some(6 * 1048576))), "{out:?}");
        assert!(lines[1].contains("grub grub-install for i386-pc"), "{out:?}");
        // 100% ends its own line, so the next message is not glued to it
        assert!(lines[2].ends_with(&bar_line("unpack", 100, Some(10 * 1048576))), "{out:?}");
        assert_eq!(lines[3], "host vm -> rebooting");
    }

    #[test]
    fn a_bar_left_open_is_ended_when_the_display_goes() {
        let mut buf = Vec::new();
        {
            let mut p = Progress::new(&mut buf, true);
            p.event(&ev("progress", Some("unpack"), Some(42), None, ""));
        }
        assert!(String::from_utf8(buf).unwrap().ends_with("42%\n"));
    }

    #[test]
    fn to_a_pipe_every_event_is_a_line_without_control_characters() {
        let mut p = Progress::new(Vec::new(), false);
        p.event(&ev("progress", Some("unpack"), Some(10), Some(1048576), ""));
        p.event(&ev("progress", Some("unpack"), Some(60), None, ""));
        let out = String::from_utf8(p.out.clone()).unwrap();
        assert!(!out.contains('\r') && !out.contains('\x1b'), "{out:?}");
        assert_eq!(out, "  2026-11-23T10:00:00.000Z unpack  10% 1.0 MiB\n  2026-11-23T10:00:00.000Z unpack  60%\n");
    }
}
