//! The installer's console, also sent to the server. [`ConsoleLog::capture`]
//! routes standard output and error (ours and every child's) through a pipe;
//! a reader passes every byte on to the console as before and keeps the
//! lines in a bounded buffer; a shipper posts them in batches
//! ([`metalboot_spec::log::LogBatch`]) to the host's log URL with the
//! install token. The buffer is bounded: when the server cannot be reached
//! the oldest lines go first and are counted as dropped, and the shipper
//! backs off. Nothing here can stop an install: a log that cannot be sent
//! is only a log. Before the process ends or reboots, [`finish`] gives the
//! console back and lets the reader write out what is still in the pipe.

use anyhow::{Context, Result};
use metalboot_spec::log::{clean_line, LogBatch, MAX_BATCH_LINES};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Lines kept while the server is out of reach.
const MAX_BUFFERED_LINES: usize = 4000;
/// How often a partial batch is sent.
const SEND_EVERY: Duration = Duration::from_secs(2);
/// Most bytes of lines in one batch (the server takes 2 MiB of JSON).
const MAX_BATCH_BYTES: usize = 512 * 1024;
/// Starts a line [`ConsoleLog::flush`] writes through the pipe: the reader
/// neither shows nor keeps it, it only notes that it got that far.
const MARKER: u8 = 0x01;

/// The console log of this process, once captured (for [`finish`]).
static CAPTURED: std::sync::OnceLock<ConsoleLog> = std::sync::OnceLock::new();

/// Where the lines go.
struct Target {
    url: String,
    token: String,
    http: ureq::Agent,
}

#[derive(Default)]
struct Buf {
    /// Lines not yet delivered, with their sequence numbers.
    lines: VecDeque<(u64, String)>,
    /// Sequence number of the next line.
    next_seq: u64,
    /// Lines dropped (buffer full) and not yet reported to the server.
    dropped: u64,
    target: Option<Target>,
    /// The last flush marker the reader got to.
    marker_seen: u64,
    /// The reader reached the end of the pipe.
    reader_done: bool,
}

struct Shared {
    buf: Mutex<Buf>,
    wake: Condvar,
    /// One batch in flight at a time (the shipper or a flush).
    sending: Mutex<()>,
    /// The next flush marker's number.
    next_marker: std::sync::atomic::AtomicU64,
    /// The console, to give fds 1 and 2 back to at [`finish`].
    console: Mutex<Option<OwnedFd>>,
}

/// Handle to the captured console; cheap to clone.
#[derive(Clone)]
pub struct ConsoleLog {
    shared: Arc<Shared>,
}

impl ConsoleLog {
    /// Routes file descriptors 1 and 2 through a pipe and starts the
    /// reader and the shipper. Lines are kept from here on; they are sent
    /// once [`ConsoleLog::ship_to`] names where.
    pub fn capture() -> Result<ConsoleLog> {
        let saved = std::io::stdout().as_fd().try_clone_to_owned().context("duplicating the console")?;
        let console = File::from(saved.try_clone().context("duplicating the console")?);
        let (read, write): (OwnedFd, OwnedFd) = nix::unistd::pipe().context("creating the console pipe")?;
        std::io::stdout().flush().ok();
        std::io::stderr().flush().ok();
        nix::unistd::dup2(write.as_raw_fd(), 1).context("routing standard output")?;
        nix::unistd::dup2(write.as_raw_fd(), 2).context("routing standard error")?;
        drop(write);
        let log = ConsoleLog::new();
        *log.shared.console.lock().unwrap_or_else(|p| p.into_inner()) = Some(saved);
        let reader = log.clone();
        std::thread::spawn(move || reader.read(File::from(read), console));
        let shipper = log.clone();
        std::thread::spawn(move || shipper.ship());
        let _ = CAPTURED.set(log.clone());
        Ok(log)
    }

    fn new() -> ConsoleLog {
        ConsoleLog {
            shared: Arc::new(Shared {
                buf: Mutex::new(Buf::default()),
                wake: Condvar::new(),
                sending: Mutex::new(()),
                next_marker: std::sync::atomic::AtomicU64::new(1),
                console: Mutex::new(None),
            }),
        }
    }

    fn buf(&self) -> std::sync::MutexGuard<'_, Buf> {
        self.shared.buf.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends the lines (those kept so far, and every later one) to `url`
    /// with `token`, through `http`.
    pub fn ship_to(&self, url: &str, token: &str, http: ureq::Agent) {
        self.buf().target = Some(Target { url: url.to_string(), token: token.to_string(), http });
        self.shared.wake.notify_all();
    }

    /// Keeps one line (bounded: the oldest goes when full).
    pub fn push(&self, line: &str) {
        let mut b = self.buf();
        let seq = b.next_seq;
        b.next_seq += 1;
        b.lines.push_back((seq, clean_line(line)));
        if b.lines.len() > MAX_BUFFERED_LINES {
            b.lines.pop_front();
            b.dropped += 1;
        }
        if b.lines.len() >= MAX_BATCH_LINES {
            self.shared.wake.notify_all();
        }
    }

    /// Keeps the lines and copies every byte to the console (kept first, so
    /// a flush never waits on a slow serial console); never ends while
    /// anything can write to the pipe (a dead reader would break every
    /// later write to standard output).
    fn read(&self, mut pipe: File, mut console: File) {
        let mut chunk = [0u8; 8192];
        let mut line = Vec::new();
        let mut marker = false;
        loop {
            let n = match pipe.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            let mut show = Vec::with_capacity(n);
            for &b in &chunk[..n] {
                if line.is_empty() && !marker && b == MARKER {
                    marker = true;
                    continue;
                }
                if b == b'\n' {
                    if marker {
                        self.saw_marker(&String::from_utf8_lossy(&line));
                    } else {
                        self.push(&String::from_utf8_lossy(&line));
                    }
                    line.clear();
                    if !std::mem::take(&mut marker) {
                        show.push(b);
                    }
                    continue;
                }
                if line.len() < 64 * 1024 {
                    line.push(b);
                }
                if !marker {
                    show.push(b);
                }
            }
            let _ = console.write_all(&show);
        }
        self.buf().reader_done = true;
        self.shared.wake.notify_all();
    }

    fn saw_marker(&self, text: &str) {
        if let Ok(n) = text.parse::<u64>() {
            let mut b = self.buf();
            b.marker_seen = b.marker_seen.max(n);
            self.shared.wake.notify_all();
        }
    }

    /// Waits until the reader has kept everything written before this
    /// call (a marker line through the pipe), for at most `limit`.
    fn barrier(&self, limit: Duration) {
        if self.shared.console.lock().unwrap_or_else(|p| p.into_inner()).is_none() {
            return; // not captured (or given back): nothing in a pipe
        }
        let n = self.shared.next_marker.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(format!("{}{n}\n", MARKER as char).as_bytes());
        let _ = out.flush();
        drop(out);
        let b = self.buf();
        let _ = self
            .shared
            .wake
            .wait_timeout_while(b, limit, |b| b.marker_seen < n && !b.reader_done)
            .unwrap_or_else(|p| p.into_inner());
    }

    /// The shipper: a batch every [`SEND_EVERY`], or sooner when one is
    /// full; after a failed send it waits longer each time (up to 30 s).
    fn ship(&self) {
        let mut backoff = Duration::ZERO;
        loop {
            {
                let b = self.buf();
                let wait = SEND_EVERY.max(backoff);
                let full = |b: &mut Buf| b.target.is_none() || b.lines.len() < MAX_BATCH_LINES || !backoff.is_zero();
                let (_b, _) = self.shared.wake.wait_timeout_while(b, wait, full).unwrap_or_else(|p| p.into_inner());
            }
            backoff = match self.send_once() {
                Sent::Failed => (backoff * 2).clamp(Duration::from_secs(1), Duration::from_secs(30)),
                _ => Duration::ZERO,
            };
        }
    }

    /// Sends one batch (at most [`MAX_BATCH_LINES`] lines and about
    /// [`MAX_BATCH_BYTES`]).
    fn send_once(&self) -> Sent {
        let _one = self.shared.sending.lock().unwrap_or_else(|p| p.into_inner());
        let (url, token, http, batch, last) = {
            let b = self.buf();
            let Some(t) = &b.target else { return Sent::Nothing };
            if b.lines.is_empty() && b.dropped == 0 {
                return Sent::Nothing;
            }
            let mut bytes = 0;
            let lines: Vec<_> = b
                .lines
                .iter()
                .take(MAX_BATCH_LINES)
                .take_while(|(_, l)| {
                    bytes += l.len() + 8;
                    bytes <= MAX_BATCH_BYTES || bytes == l.len() + 8
                })
                .collect();
            let last = lines.last().map(|(s, _)| *s);
            let batch = LogBatch { lines: lines.into_iter().map(|(_, l)| l.clone()).collect(), dropped: b.dropped };
            (t.url.clone(), t.token.clone(), t.http.clone(), batch, last)
        };
        let full = format!("{url}?token={token}");
        match http.post(&full).timeout(Duration::from_secs(10)).send_json(&batch) {
            Ok(_) => {
                let mut b = self.buf();
                b.dropped -= batch.dropped.min(b.dropped);
                while b.lines.front().is_some_and(|(s, _)| Some(*s) <= last) {
                    b.lines.pop_front();
                }
                Sent::Delivered
            }
            // the install is over (token refused) or the host is unknown: stop
            Err(ureq::Error::Status(401 | 403 | 404, _)) => {
                self.buf().target = None;
                Sent::Failed
            }
            // not the pinned server: never again
            Err(e) if crate::https::refused(&e).is_some() => {
                self.buf().target = None;
                Sent::Failed
            }
            // a busy server or proxy, or no route yet: later
            Err(_) => Sent::Failed,
        }
    }

    /// Sends everything written so far, for at most `limit`: before a
    /// failure is reported (the server puts the log's tail on the timeline)
    /// and before a reboot.
    pub fn flush(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        self.barrier(Duration::from_secs(5).min(limit));
        while Instant::now() < deadline {
            let pending = {
                let b = self.buf();
                !b.lines.is_empty() || b.dropped > 0
            };
            if !pending || self.send_once() != Sent::Delivered {
                return;
            }
        }
    }

    #[cfg(test)]
    fn pending(&self) -> (Vec<String>, u64) {
        let b = self.buf();
        (b.lines.iter().map(|(_, l)| l.clone()).collect(), b.dropped)
    }
}

/// What one send did.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Sent {
    Nothing,
    Delivered,
    Failed,
}

/// Gives fds 1 and 2 back to the console and lets the reader write out
/// what is still in the pipe (at most `limit`): before the process exits,
/// reboots or powers off. Nothing without a captured console.
pub fn finish(limit: Duration) {
    let Some(log) = CAPTURED.get() else { return };
    let _ = std::io::stdout().flush();
    let Some(console) = log.shared.console.lock().unwrap_or_else(|p| p.into_inner()).take() else { return };
    // the pipe's last write ends go: the reader reads to its end
    let _ = nix::unistd::dup2(console.as_raw_fd(), 1);
    let _ = nix::unistd::dup2(console.as_raw_fd(), 2);
    let b = log.buf();
    let _ = log.shared.wake.wait_timeout_while(b, limit, |b| !b.reader_done).unwrap_or_else(|p| p.into_inner());
}

#[cfg(test)]
#[path = "console_log_tests.rs"]
mod tests;
