//! Tests of the console log: the buffer, the reader, the shipper.
use super::*;

#[test]
fn the_reader_keeps_lines_shows_them_and_hides_flush_markers() {
    let log = ConsoleLog::new();
    let (read, write): (OwnedFd, OwnedFd) = nix::unistd::pipe().unwrap();
    let shown = tempfile::NamedTempFile::new().unwrap();
    let console = shown.reopen().unwrap();
    let reader = log.clone();
    let t = std::thread::spawn(move || reader.read(File::from(read), console));
    let mut w = File::from(write);
    w.write_all(b"mkfs: one\n\x017\npartial ").unwrap();
    w.write_all(b"line\n\x01not-a-number\n").unwrap();
    drop(w);
    t.join().unwrap();
    assert_eq!(std::fs::read_to_string(shown.path()).unwrap(), "mkfs: one\npartial line\n");
    assert_eq!(log.pending().0, vec!["mkfs: one".to_string(), "partial line".to_string()]);
    let b = log.buf();
    assert_eq!((b.marker_seen, b.reader_done), (7, true));
}

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
    assert_eq!(log.send_once(), Sent::Nothing);
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
    assert_eq!(log.send_once(), Sent::Failed);
    rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(log.buf().target.is_none());
    assert_eq!(log.pending().0, vec!["late line".to_string()]);
}
