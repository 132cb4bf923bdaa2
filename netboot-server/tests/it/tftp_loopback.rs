//! TFTP on 127.0.0.1 against the real server, with a client that loses ACKs on
//! purpose. RFC 1350 §2: the sender retransmits a block whose ACK does not
//! come within its timeout; RFC 2347: the OACK is acknowledged with ACK 0, and
//! is retransmitted like a block; RFC 2349: the client proposes the timeout (1 s
//! here, the smallest allowed, so each test takes seconds). A client that stops
//! answering is given up after the server's retry limit and frees its transfer
//! slot.
//!
//! A flood of read requests from one address that never acknowledge the
//! OACK (asking for the longest timeout, 255 s) takes at most that address's
//! share of the transfers, each for a few seconds, and another client is
//! served at once.
//!
//! The client is written by hand from the RFCs (not with the server's packet
//! module), so the two sides cannot share a misreading.

use metalboot::tftp::{serve, TftpConfig};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::time::{timeout, Instant};

/// Longest wait for any one packet; the server's timeout is 1 s.
const PATIENCE: Duration = Duration::from_secs(5);

/// A server on 127.0.0.1, serving `boot.bin` (`len` bytes) with at most `max`
/// transfers at once; the task ends with the test's runtime.
async fn start_server(len: usize, max: usize) -> (SocketAddr, Vec<u8>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..len as u32).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8).collect();
    std::fs::write(dir.path().join("boot.bin"), &data).unwrap();
    let files = BTreeMap::from([("boot.bin".to_string(), dir.path().join("boot.bin"))]);
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let cfg = TftpConfig { enabled: Some(true), listen: addr, files, max_transfers: max, ..TftpConfig::default() };
    tokio::spawn(serve(sock, Arc::new(cfg), Default::default()));
    (addr, data, dir)
}

/// What the server sent, decoded by hand (opcodes of RFC 1350 and 2347).
#[derive(Debug, PartialEq)]
enum Got {
    Data(u16, Vec<u8>),
    Oack(Vec<(String, String)>),
    Error(u16, String),
}

fn decode(b: &[u8]) -> Got {
    assert!(b.len() >= 4, "runt packet {b:?}");
    let n = u16::from_be_bytes([b[2], b[3]]);
    let strings = |s: &[u8]| -> Vec<String> {
        s.split(|c| *c == 0).filter(|p| !p.is_empty()).map(|p| String::from_utf8_lossy(p).into_owned()).collect()
    };
    match u16::from_be_bytes([b[0], b[1]]) {
        3 => Got::Data(n, b[4..].to_vec()),
        5 => Got::Error(n, strings(&b[4..]).concat()),
        6 => Got::Oack(strings(&b[2..]).chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect()),
        op => panic!("unexpected opcode {op} in {b:?}"),
    }
}

fn rrq(file: &str, options: &[(&str, &str)]) -> Vec<u8> {
    let mut v = vec![0, 1];
    for s in [file, "octet"].into_iter().chain(options.iter().flat_map(|(k, val)| [*k, *val])) {
        v.extend_from_slice(s.as_bytes());
        v.push(0);
    }
    v
}

fn ack(block: u16) -> [u8; 4] {
    let b = block.to_be_bytes();
    [0, 4, b[0], b[1]]
}

/// One client socket; `tid` is the server's transfer port once it has spoken.
struct Client {
    sock: UdpSocket,
    server: SocketAddr,
    tid: Option<SocketAddr>,
}

impl Client {
    async fn request(server: SocketAddr, options: &[(&str, &str)]) -> Client {
        Self::request_from("127.0.0.1", server, options).await
    }

    /// A request from `ip` (any address of 127.0.0.0/8 is loopback).
    async fn request_from(ip: &str, server: SocketAddr, options: &[(&str, &str)]) -> Client {
        let sock = UdpSocket::bind((ip, 0)).await.unwrap();
        sock.send_to(&rrq("boot.bin", options), server).await.unwrap();
        Client { sock, server, tid: None }
    }

    /// The next packet within `wait`, or None; remembers the server's TID.
    async fn recv_within(&mut self, wait: Duration) -> Option<Got> {
        let mut buf = vec![0u8; 65536];
        let (n, from) = timeout(wait, self.sock.recv_from(&mut buf)).await.ok()?.unwrap();
        let got = decode(&buf[..n]);
        if from == self.server {
            // a refused request is answered from the listening port
            assert!(matches!(got, Got::Error(..)), "a transfer must come from a port of its own (RFC 1350 TID)");
            return Some(got);
        }
        assert_eq!(*self.tid.get_or_insert(from), from, "a packet from a second TID");
        Some(got)
    }

    async fn recv(&mut self) -> Got {
        self.recv_within(PATIENCE).await.expect("the server answers within the deadline")
    }

    async fn ack(&self, block: u16) {
        self.sock.send_to(&ack(block), self.tid.expect("server has spoken")).await.unwrap();
    }
}

/// Receives a whole file of `blksize` blocks, once leaving each block in
/// `drop` unacknowledged; checks that exactly that block comes again, after
/// about the server's timeout. `first` is block 1, already received.
async fn receive(c: &mut Client, first: Got, blksize: usize, drop: &[u16]) -> Vec<u8> {
    let mut file = Vec::new();
    let mut got = first;
    let mut dropped = Vec::new();
    loop {
        let Got::Data(block, bytes) = got else { panic!("expected DATA, got {got:?}") };
        assert_eq!(block as usize, file.len() / blksize + 1, "blocks come in order");
        if drop.contains(&block) && !dropped.contains(&block) {
            dropped.push(block);
            let sent = Instant::now();
            let again = c.recv().await;
            let waited = sent.elapsed();
            assert_eq!(again, Got::Data(block, bytes.clone()), "the unacknowledged block is sent again");
            assert!(waited >= Duration::from_millis(700), "retransmitted after its timeout, not at once: {waited:?}");
        }
        c.ack(block).await;
        file.extend_from_slice(&bytes);
        if bytes.len() < blksize {
            break;
        }
        got = c.recv().await;
    }
    assert_eq!(dropped, drop, "every block meant to be dropped was seen");
    file
}

#[tokio::test]
async fn plain_rrq_retransmits_unacknowledged_blocks_and_completes() {
    let (server, data, _dir) = start_server(512 * 5 + 100, 4).await;
    let mut c = Client::request(server, &[]).await;
    let first = c.recv().await;
    let file = receive(&mut c, first, 512, &[2, 4]).await;
    assert_eq!(file, data);
    assert_eq!(c.recv_within(Duration::from_millis(1500)).await, None, "nothing after the last ACK");
}

#[tokio::test]
async fn options_oack_and_blocks_are_retransmitted_until_acknowledged() {
    let (server, data, _dir) = start_server(1024 * 4, 4).await;
    let mut c = Client::request(server, &[("blksize", "1024"), ("tsize", "0"), ("timeout", "1")]).await;
    let oack = c.recv().await;
    let want = Got::Oack(vec![
        ("blksize".into(), "1024".into()),
        ("tsize".into(), data.len().to_string()),
        ("timeout".into(), "1".into()),
    ]);
    assert_eq!(oack, want);
    // drop the ACK for the OACK once: the OACK comes again
    let sent = Instant::now();
    assert_eq!(c.recv().await, want, "the unacknowledged OACK is sent again");
    assert!(sent.elapsed() >= Duration::from_millis(700), "after the timeout: {:?}", sent.elapsed());
    c.ack(0).await;
    let first = c.recv().await;
    // a multiple of blksize ends with an empty block (RFC 1350 §6)
    let file = receive(&mut c, first, 1024, &[3, 5]).await;
    assert_eq!(file, data);
}

/// Every packet until the server falls silent for three of its timeouts.
async fn ignore_until_silent(c: &mut Client, deadline: Instant) -> Vec<Got> {
    let mut seen = Vec::new();
    while let Some(p) = c.recv_within(Duration::from_secs(3)).await {
        seen.push(p);
        assert!(Instant::now() < deadline, "the server keeps retransmitting: {} packets", seen.len());
    }
    seen
}

/// Requests until the server has a free slot (it answers "server busy" while
/// it has none), then receives the whole file.
async fn fetch_when_free(server: SocketAddr, deadline: Instant) -> Vec<u8> {
    loop {
        let mut c = Client::request(server, &[]).await;
        match c.recv().await {
            Got::Error(0, msg) if msg.contains("busy") => {
                assert!(Instant::now() < deadline, "the slot was never freed");
                // poll interval, bounded by the deadline above
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            first => return receive(&mut c, first, 512, &[]).await,
        }
    }
}

#[tokio::test]
async fn client_that_never_acks_is_dropped_and_its_slot_freed() {
    let (server, data, _dir) = start_server(3000, 1).await;
    let mut silent = Client::request(server, &[("timeout", "1"), ("tsize", "0")]).await;
    assert!(matches!(silent.recv().await, Got::Oack(_)));
    // the only slot is taken: a second client is turned away
    let mut other = Client::request(server, &[]).await;
    assert!(matches!(other.recv().await, Got::Error(0, _)), "a second transfer is refused while the slot is held");
    let seen = ignore_until_silent(&mut silent, Instant::now() + Duration::from_secs(20)).await;
    assert!(!seen.is_empty() && seen.iter().all(|p| matches!(p, Got::Oack(_))), "only OACKs again: {seen:?}");
    let file = fetch_when_free(server, Instant::now() + Duration::from_secs(10)).await;
    assert_eq!(file, data);
}

#[tokio::test]
async fn client_that_stops_acking_data_is_dropped_and_its_slot_freed() {
    let (server, data, _dir) = start_server(3000, 1).await;
    let mut c = Client::request(server, &[]).await;
    let Got::Data(1, _) = c.recv().await else { panic!("block 1 first") };
    c.ack(1).await;
    assert!(matches!(c.recv().await, Got::Data(2, _)));
    // from here on, nothing: block 2 comes again until the server gives up
    let seen = ignore_until_silent(&mut c, Instant::now() + Duration::from_secs(30)).await;
    assert!(!seen.is_empty() && seen.iter().all(|p| matches!(p, Got::Data(2, _))), "only block 2 again: {seen:?}");
    let file = fetch_when_free(server, Instant::now() + Duration::from_secs(10)).await;
    assert_eq!(file, data);
}

/// 64 requests from 127.0.0.2 for the longest timeout, none acknowledged.
/// Returns the clients that got an OACK (the rest were refused as busy).
async fn flood_of_unacknowledged_requests(server: SocketAddr) -> Vec<Client> {
    let mut clients = Vec::new();
    for _ in 0..64 {
        clients.push(Client::request_from("127.0.0.2", server, &[("timeout", "255"), ("tsize", "0")]).await);
    }
    let mut answered = Vec::new();
    for mut c in clients {
        match c.recv().await {
            Got::Oack(opts) => {
                assert!(opts.iter().all(|(k, _)| k != "timeout"), "a 255 s timeout is not acknowledged: {opts:?}");
                answered.push(c);
            }
            Got::Error(0, msg) => assert!(msg.contains("busy"), "{msg}"),
            other => panic!("unexpected answer {other:?}"),
        }
    }
    answered
}

#[tokio::test]
async fn unacknowledged_requests_from_one_address_do_not_lock_out_another() {
    let (server, data, _dir) = start_server(3000, 64).await;
    let flood = flood_of_unacknowledged_requests(server).await;
    assert_eq!(flood.len(), 8, "one address gets its share (max_transfers_per_client), not every slot");
    let started = Instant::now();
    let mut c = Client::request(server, &[]).await;
    let first = c.recv().await;
    let file = receive(&mut c, first, 512, &[]).await;
    let took = started.elapsed();
    eprintln!("TFTP read beside 64 unacknowledged requests: {took:?}");
    assert_eq!(file, data);
    assert!(took < Duration::from_secs(5), "served at once, not refused as busy: {took:?}");
    // the unacknowledged OACKs stop within seconds (not 5 x 255 s)
    let deadline = Instant::now() + Duration::from_secs(10);
    let drains: Vec<_> = flood
        .into_iter()
        .map(|mut f| tokio::spawn(async move { ignore_until_silent(&mut f, deadline).await }))
        .collect();
    for d in drains {
        let seen = d.await.unwrap();
        assert!(seen.len() <= 2 && seen.iter().all(|p| matches!(p, Got::Oack(_))), "OACK retransmits: {seen:?}");
    }
}

#[tokio::test]
async fn unacknowledged_requests_hold_every_slot_for_seconds_not_minutes() {
    let (server, data, _dir) = start_server(3000, 4).await;
    let flood = flood_of_unacknowledged_requests(server).await;
    assert_eq!(flood.len(), 4, "every slot taken");
    let mut other = Client::request_from("127.0.0.3", server, &[]).await;
    assert!(matches!(other.recv().await, Got::Error(0, _)), "refused while every slot is held");
    let started = Instant::now();
    let file = fetch_when_free(server, Instant::now() + Duration::from_secs(10)).await;
    eprintln!("TFTP read after 4 unacknowledged requests took every slot: {:?}", started.elapsed());
    assert_eq!(file, data);
    drop(flood);
}

#[tokio::test]
async fn plain_request_whose_first_block_is_never_acknowledged_frees_its_slot_within_seconds() {
    let (server, data, _dir) = start_server(3000, 1).await;
    let started = Instant::now();
    let mut silent = Client::request_from("127.0.0.2", server, &[]).await;
    assert!(matches!(silent.recv().await, Got::Data(1, _)));
    let seen = ignore_until_silent(&mut silent, Instant::now() + Duration::from_secs(10)).await;
    assert!(seen.len() <= 2 && seen.iter().all(|p| matches!(p, Got::Data(1, _))), "block 1 again: {seen:?}");
    let file = fetch_when_free(server, Instant::now() + Duration::from_secs(10)).await;
    assert_eq!(file, data);
    // 5 s of retransmits and 3 s of the client's own wait for silence
    assert!(started.elapsed() < Duration::from_secs(10), "slot held {:?}", started.elapsed());
}
