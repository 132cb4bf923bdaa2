//! HTTP limits against a real `metalboot serve` on loopback: one address
//! holding a thousand idle connections cannot lock another address out, and a
//! connection that sends part of a request and stalls, or sits idle after a
//! response, is closed after the header-read timeout. Any address of
//! 127.0.0.0/8 is loopback, so 127.0.0.2 stands for a second client.

use crate::common::{spawn_server_with_nofile, ServerProcess};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// A server in `dir` with `[server]` settings `extra`, DHCP and TFTP off.
fn start(dir: &Path, extra: &str, nofile: Option<u64>) -> (ServerProcess, SocketAddr) {
    let config = dir.join("metalboot.toml");
    std::fs::write(&config, format!("[server]\ndata_dir = \"data\"\n{extra}\n")).unwrap();
    let srv = spawn_server_with_nofile(dir, &config, nofile);
    let addr = srv.base.trim_start_matches("http://").parse().unwrap();
    (srv, addr)
}

/// GET /healthz from 127.0.0.1 on a fresh connection; the whole response.
fn healthz(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).expect("an answer within 10 s");
    out
}

/// Reads until the server closes the connection; how long that took, or
/// None if it was still open after `limit`.
fn wait_for_close(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut buf = [0u8; 4096];
    while started.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {} // a 408, or the end of an earlier response
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Some(started.elapsed()), // reset
        }
    }
    None
}

/// Still open from our side's view: no end of stream has arrived.
fn is_open(s: &tokio::net::TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(s.try_read(&mut b), Err(e) if e.kind() == ErrorKind::WouldBlock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_from_one_address_do_not_lock_out_another() {
    // the test holds 1,100 sockets itself
    metalboot::http::listen::raise_fd_limit().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // 1,024 open files, as many service managers start a process with: enough
    // for 1,100 idle connections to lock every client out without limits
    // a header timeout longer than the test, so the count below is the cap's doing
    let (srv, addr) = start(dir.path(), "header_read_timeout_secs = 120", Some(1024));
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    assert!(log.contains("max_connections=384") && log.contains("nofile=1024"), "{log}");
    let mut flood = Vec::new();
    let started = Instant::now();
    for _ in 0..1100 {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        flood.push(tokio::time::timeout(Duration::from_secs(10), sock.connect(addr)).await.unwrap().unwrap());
    }
    eprintln!("1,100 connections from 127.0.0.2 opened in {:?}", started.elapsed());
    let started = Instant::now();
    let resp = tokio::task::spawn_blocking(move || healthz(addr)).await.unwrap();
    let took = started.elapsed();
    eprintln!("GET /healthz from 127.0.0.1 beside them: {took:?}");
    assert!(resp.starts_with("HTTP/1.1 200") && resp.ends_with("ok\n"), "{resp}");
    assert!(took < Duration::from_secs(5), "answered at once: {took:?}");
    // the server keeps its per-address share and closes the rest; on a loaded
    // machine part of the flood may still wait in the listen queue (or for a
    // retried handshake) when our request is answered, so the count settles
    let settle = Instant::now();
    let mut open = flood.iter().filter(|s| is_open(s)).count();
    while open != 64 && settle.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        open = flood.iter().filter(|s| is_open(s)).count();
    }
    eprintln!("{open} connections of 127.0.0.2 open after {:?}", settle.elapsed());
    assert_eq!(open, 64, "connections 127.0.0.2 still holds (server.max_connections_per_ip)");
    drop(flood);
    drop(srv);
}

#[test]
fn stalled_request_headers_and_idle_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, addr) = start(dir.path(), "header_read_timeout_secs = 1", None);
    // a partial request line, then nothing
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /healthz HT").unwrap();
    let slow_closed = wait_for_close(&mut slow, Duration::from_secs(5)).expect("stalled headers cut off");
    eprintln!("stalled request headers closed after {slow_closed:?}");
    assert!(slow_closed >= Duration::from_millis(800), "not before the timeout: {slow_closed:?}");
    // a keep-alive connection left idle after one answered request
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let mut resp = Vec::new();
    let mut buf = [0u8; 1024];
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    while !resp.ends_with(b"ok\n") {
        let n = idle.read(&mut buf).unwrap();
        assert!(n > 0, "closed before answering: {}", String::from_utf8_lossy(&resp));
        resp.extend_from_slice(&buf[..n]);
    }
    assert!(resp.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&resp));
    let idle_closed = wait_for_close(&mut idle, Duration::from_secs(5)).expect("idle keep-alive closed");
    eprintln!("idle keep-alive connection closed {idle_closed:?} after its response");
    assert!(idle_closed >= Duration::from_millis(800), "not before the timeout: {idle_closed:?}");
    // the server still answers, and shuts down on SIGTERM with a connection open
    assert!(healthz(addr).starts_with("HTTP/1.1 200"));
    let _open = TcpStream::connect(addr).unwrap();
    stop_within(srv, Duration::from_secs(5));
}

/// SIGTERM, then the process must exit on its own within `limit`.
fn stop_within(mut srv: ServerProcess, limit: Duration) {
    let sent = std::process::Command::new("kill").args(["-TERM", &srv.child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let started = Instant::now();
    loop {
        if let Some(status) = srv.child.try_wait().unwrap() {
            assert!(status.success(), "exit status after SIGTERM: {status}");
            return;
        }
        assert!(started.elapsed() < limit, "still running {limit:?} after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}
