//! Any datagram through the DHCP handler (decode, classify, decide against a
//! real lease table, reply, encode), in full and proxy mode, on 67 and 4011.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metalboot::dhcp::ledger::Ledger;
use metalboot::dhcp::socket::handle;
use metalboot::dhcp::{DhcpMode, DhcpSettings, Pool};
use metalboot::state::Store;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::OnceLock;

struct World {
    _dir: tempfile::TempDir,
    ledger: Ledger,
    settings: DhcpSettings,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let settings = DhcpSettings {
            server_ip: Ipv4Addr::new(10, 99, 0, 1),
            // the interface's subnet, and one behind a relay at 10.98.1.1
            pools: vec![
                Pool {
                    subnet: "10.99.0.0/24".parse().expect("subnet"),
                    range_start: Ipv4Addr::new(10, 99, 0, 100),
                    range_end: Ipv4Addr::new(10, 99, 0, 103),
                    router: Some(Ipv4Addr::new(10, 99, 0, 1)),
                    dns: vec![Ipv4Addr::new(10, 99, 0, 1)],
                    lease_secs: 600,
                },
                Pool {
                    subnet: "10.98.1.0/24".parse().expect("subnet"),
                    range_start: Ipv4Addr::new(10, 98, 1, 100),
                    range_end: Ipv4Addr::new(10, 98, 1, 103),
                    router: Some(Ipv4Addr::new(10, 98, 1, 1)),
                    dns: vec![],
                    lease_secs: 60,
                },
            ],
            bios_file: "undionly.kpxe".into(),
            efi_file: "snponly.efi".into(),
            http_base: "http://10.99.0.1:8080".into(),
            reservations: vec![("52:54:00:00:00:09".parse().expect("mac"), Ipv4Addr::new(10, 99, 0, 9))],
        };
        let ledger = Ledger::open(store, &settings, 0).expect("ledger");
        World { _dir: dir, ledger, settings }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, packet)) = data.split_first() else { return };
    let w = world();
    let mode = if sel & 1 == 0 { DhcpMode::Full } else { DhcpMode::Proxy };
    let port = if sel & 2 == 0 { 67 } else { 4011 };
    let src: SocketAddr = if sel & 4 == 0 { "0.0.0.0:68".parse().unwrap() } else { "10.99.0.77:4011".parse().unwrap() };
    if let Some((reply, _dest)) = handle(packet, src, port, mode, &w.settings, &w.ledger) {
        assert!(reply.len() >= 240, "a reply shorter than a BOOTP header");
    }
});
