//! The installer's console, also sent to the server. [`ConsoleLog::capture`]
//! routes standard output and error (ours and every child's) through a pipe;
//! a reader passes every byte on to the console as before and keeps the
//! lines in a bounded buffer; a shipper posts them in batches
//! ([`metalboot_spec::log::LogBatch`]) to the host's log URL with the
//! install token. The buffer is bounded: when the server cannot be reached
//! the oldest lines go first and are counted as dropped. Nothing here can
//! stop an install: a log that cannot be sent is only a log.

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
}

struct Shared {
    buf: Mutex<Buf>,
    wake: Condvar,
    /// One batch in flight at a time (the shipper or a flush).
    sending: Mutex<()>,
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
        let console = File::from(std::io::stdout().as_fd().try_clone_to_owned().context("duplicating the console")?);
        let (read, write): (OwnedFd, OwnedFd) = nix::unistd::pipe().context("creating the console pipe")?;
        std::io::stdout().flush().ok();
        std::io::stderr().flush().ok();
        nix::unistd::dup2(write.as_raw_fd(), 1).context("routing standard output")?;
        nix::unistd::dup2(write.as_raw_fd(), 2).context("routing standard error")?;
        drop(write);
        let log = ConsoleLog::new();
        let reader = log.clone();
        std::thread::spawn(move || reader.read(File::from(read), console));
        let shipper = log.clone();
        std::thread::spawn(move || shipper.ship());
        Ok(log)
    }

    fn new() -> ConsoleLog {
        ConsoleLog {
            shared: Arc::new(Shared { buf: Mutex::new(Buf::default()), wake: Condvar::new(), sending: Mutex::new(()) }),
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

    /// Copies every byte to the console and keeps the lines; never ends
    /// while anything can write to the pipe (a dead reader would break
    /// every later write to standard output).
    fn read(&self, mut pipe: File, mut console: File) {
        let mut chunk = [0u8; 8192];
        let mut line = Vec::new();
        loop {
            let n = match pipe.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            let _ = console.write_all(&chunk[..n]);
            for &b in &chunk[..n] {
                if b == b'\n' {
                    self.push(&String::from_utf8_lossy(&line));
                    line.clear();
                } else if line.len() < 64 * 1024 {
                    line.push(b);
                }
            }
        }
    }

    /// The shipper: a batch every [`SEND_EVERY`], or sooner when one is full.
    fn ship(&self) {
        loop {
            {
                let b = self.buf();
                let (_b, _) = self
                    .shared
                    .wake
                    .wait_timeout_while(b, SEND_EVERY, |b| b.target.is_none() || b.lines.len() < MAX_BATCH_LINES)
                    .unwrap_or_else(|p| p.into_inner());
            }
            self.send_once();
        }
    }

    /// Sends one batch; true if something was delivered.
    fn send_once(&self) -> bool {
        let _one = self.shared.sending.lock().unwrap_or_else(|p| p.into_inner());
        let (url, token, http, batch, last) = {
            let b = self.buf();
            let Some(t) = &b.target else { return false };
            if b.lines.is_empty() && b.dropped == 0 {
                return false;
            }
            let lines: Vec<_> = b.lines.iter().take(MAX_BATCH_LINES).collect();
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
                true
            }
            // refused (the install is over, or not the pinned server): stop
            Err(ureq::Error::Status(..)) => {
                self.buf().target = None;
                false
            }
            Err(e) if crate::https::refused(&e).is_some() => {
                self.buf().target = None;
                false
            }
            Err(_) => false,
        }
    }

    /// Sends everything kept so far, for at most `limit`: before a failure
    /// is reported (the server puts the log's tail on the timeline) and
    /// before a reboot.
    pub fn flush(&self, limit: Duration) {
        std::io::stdout().flush().ok();
        // what was just written may still be in the pipe
        std::thread::sleep(Duration::from_millis(200));
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.buf().lines.is_empty() || !self.send_once() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_is_bounded_and_counts_what_it_dropped() {
        let log = ConsoleLog::new();
        for i in 0..MAX_BUFFERED_LINES + 3 {
            log.push(&format!("line {i}"));
        }
        let (lines, dropped) = log.pending();
        assert_eq!(lines.len(), MAX_BUFFERED_LINES);
        assert_eq!(dropped, 3);
        assert_eq!(lines[0], "line 3");
    }

    #[test]
    fn nothing_is_sent_without_a_target_and_lines_are_cleaned() {
        let log = ConsoleLog::new();
        log.push("grub-install: error\r");
        assert!(!log.send_once());
        assert_eq!(log.pending().0, vec!["grub-install: error".to_string()]);
    }

    /// A one-request HTTP server answering `status`; the request line and body.
    fn one_request(status: u16) -> (String, std::sync::mpsc::Receiver<(String, String)>) {
        use std::io::BufRead;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/hosts/vm1/log", l.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = std::io::BufReader::new(s.try_clone().unwrap());
            let mut first = String::new();
            r.read_line(&mut first).unwrap();
            let mut len = 0;
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let mut s = s;
            write!(s, "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").unwrap();
            tx.send((first, String::from_utf8(body).unwrap())).unwrap();
        });
        (url, rx)
    }

    #[test]
    fn a_flush_delivers_the_kept_lines_with_the_token() {
        let log = ConsoleLog::new();
        log.push("metalboot: [   1.0s] disk: chose /dev/vda");
        log.push("metalboot: FAILED at step disk: 2 disks match");
        let (url, rx) = one_request(200);
        log.ship_to(&url, "s3cret", ureq::agent());
        log.flush(Duration::from_secs(5));
        let (first, body) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(first.starts_with("POST /v1/hosts/vm1/log?token=s3cret "), "{first}");
        let batch: LogBatch = serde_json::from_str(&body).unwrap();
        assert_eq!(batch.lines.len(), 2);
        assert!(batch.lines[1].contains("2 disks match"));
        assert_eq!(log.pending(), (vec![], 0));
    }

    #[test]
    fn a_refused_batch_stops_the_shipping_and_keeps_the_lines() {
        let log = ConsoleLog::new();
        log.push("late line");
        let (url, rx) = one_request(403);
        log.ship_to(&url, "revoked", ureq::agent());
        assert!(!log.send_once());
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(log.buf().target.is_none());
        assert_eq!(log.pending().0, vec!["late line".to_string()]);
    }
}
