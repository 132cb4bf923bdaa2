use super::classify::{classify, Firmware};
use super::decide::{decide, decide_proxy, Decision};
use super::ledger::Ledger;
use super::pool::MemoryLeases;
use super::reply::reply;
use super::{DhcpSettings, Pool};
use dhcproto::v4::{Architecture, DhcpOption, Message, MessageType, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable};
use std::net::Ipv4Addr;

pub(super) fn settings() -> DhcpSettings {
    DhcpSettings {
        server_ip: Ipv4Addr::new(10, 99, 0, 1),
        pools: vec![Pool {
            subnet: "10.99.0.0/24".parse().unwrap(),
            range_start: Ipv4Addr::new(10, 99, 0, 100),
            range_end: Ipv4Addr::new(10, 99, 0, 102),
            router: Some(Ipv4Addr::new(10, 99, 0, 1)),
            dns: vec![Ipv4Addr::new(10, 99, 0, 1)],
            lease_secs: 600,
        }],
        bios_file: "undionly.kpxe".into(),
        efi_file: "snponly.efi".into(),
        http_base: "http://10.99.0.1:8080".into(),
        reservations: vec![("52:54:00:00:00:09".parse().unwrap(), Ipv4Addr::new(10, 99, 0, 9))],
    }
}

pub(super) fn msg(mac: [u8; 6], t: MessageType, f: impl FnOnce(&mut Message)) -> Message {
    let mut m =
        Message::new(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &mac);
    m.opts_mut().insert(DhcpOption::MessageType(t));
    f(&mut m);
    // through the wire format, as a real packet would arrive
    Message::decode(&mut Decoder::new(&m.to_vec().unwrap())).unwrap()
}

pub(super) const A: [u8; 6] = [0x52, 0x54, 0, 0, 0, 1];
pub(super) const B: [u8; 6] = [0x52, 0x54, 0, 0, 0, 2];

pub(super) fn pxe(arch: u16) -> impl FnOnce(&mut Message) {
    move |m| {
        m.opts_mut().insert(DhcpOption::ClassIdentifier(format!("PXEClient:Arch:{arch:05}:UNDI:003016").into_bytes()));
        m.opts_mut().insert(DhcpOption::ClientSystemArchitecture(Architecture::from(arch)));
        m.opts_mut().insert(DhcpOption::ClientMachineIdentifier(vec![
            0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
        ]));
    }
}

pub(super) fn yi(d: &Decision) -> Ipv4Addr {
    match d {
        Decision::Reply { yiaddr, .. } => *yiaddr,
        Decision::Ignore(w) => panic!("ignored: {w}"),
    }
}

fn boot_file(d: &Decision) -> Option<String> {
    match d {
        Decision::Reply { boot, .. } => boot.as_ref().map(|b| b.filename.clone()),
        _ => None,
    }
}

#[test]
fn classifies_firmware() {
    assert_eq!(classify(&msg(A, MessageType::Discover, pxe(0))).unwrap().firmware, Firmware::BiosPxe);
    assert_eq!(classify(&msg(A, MessageType::Discover, pxe(7))).unwrap().firmware, Firmware::EfiPxe(7));
    let http = classify(&msg(A, MessageType::Discover, |m| {
        m.opts_mut().insert(DhcpOption::ClassIdentifier(b"HTTPClient:Arch:00016:UNDI:003000".to_vec()));
        m.opts_mut().insert(DhcpOption::ClientSystemArchitecture(Architecture::from(16)));
    }))
    .unwrap();
    assert_eq!(http.firmware, Firmware::EfiHttp(16));
    let ipxe = classify(&msg(A, MessageType::Discover, |m| {
        pxe(0)(m);
        m.opts_mut().insert(DhcpOption::UserClass(b"iPXE".to_vec()));
    }))
    .unwrap();
    assert!(ipxe.ipxe);
    assert_eq!(classify(&msg(A, MessageType::Discover, |_| {})).unwrap().firmware, Firmware::None);
}

#[test]
fn boot_file_per_firmware() {
    let s = settings();
    let mut book = MemoryLeases::new(s.local().range_start, s.local().range_end);
    assert_eq!(
        boot_file(&decide(&classify(&msg(A, MessageType::Discover, pxe(0))).unwrap(), &s, &mut book, 0)).as_deref(),
        Some("undionly.kpxe")
    );
    assert_eq!(
        boot_file(&decide(&classify(&msg(A, MessageType::Discover, pxe(7))).unwrap(), &s, &mut book, 0)).as_deref(),
        Some("snponly.efi")
    );
    let ipxe = msg(A, MessageType::Discover, |m| {
        pxe(0)(m);
        m.opts_mut().insert(DhcpOption::UserClass(b"iPXE".to_vec()));
    });
    assert_eq!(
        boot_file(&decide(&classify(&ipxe).unwrap(), &s, &mut book, 0)).as_deref(),
        Some("http://10.99.0.1:8080/boot.ipxe")
    );
    assert_eq!(boot_file(&decide(&classify(&msg(A, MessageType::Discover, |_| {})).unwrap(), &s, &mut book, 0)), None);
}

#[test]
fn full_exchange_offer_request_ack_release() {
    let s = settings();
    let mut book = MemoryLeases::new(s.local().range_start, s.local().range_end);
    let offer = decide(&classify(&msg(A, MessageType::Discover, |_| {})).unwrap(), &s, &mut book, 0);
    let ip = yi(&offer);
    assert_eq!(ip, Ipv4Addr::new(10, 99, 0, 100));
    // a second client while the offer is outstanding gets another address
    let other = yi(&decide(&classify(&msg(B, MessageType::Discover, |_| {})).unwrap(), &s, &mut book, 1));
    assert_ne!(other, ip);
    let req = msg(A, MessageType::Request, |m| {
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
        m.opts_mut().insert(DhcpOption::ServerIdentifier(s.server_ip));
    });
    let ack = decide(&classify(&req).unwrap(), &s, &mut book, 2);
    assert!(matches!(ack, Decision::Reply { msg_type: MessageType::Ack, .. }));
    // B asking for A's address is refused
    let steal = msg(B, MessageType::Request, |m| {
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
    });
    assert!(matches!(
        decide(&classify(&steal).unwrap(), &s, &mut book, 3),
        Decision::Reply { msg_type: MessageType::Nak, .. }
    ));
    // renew from ciaddr
    let renew = msg(A, MessageType::Request, |m| {
        m.set_ciaddr(ip);
    });
    assert_eq!(yi(&decide(&classify(&renew).unwrap(), &s, &mut book, 4)), ip);
    let rel = msg(A, MessageType::Release, |m| {
        m.set_ciaddr(ip);
    });
    assert!(matches!(decide(&classify(&rel).unwrap(), &s, &mut book, 5), Decision::Ignore(_)));
}

#[test]
fn reservation_wins_and_pool_exhaustion_is_reported() {
    let s = settings();
    let mut book = MemoryLeases::new(s.local().range_start, s.local().range_end);
    let r = msg([0x52, 0x54, 0, 0, 0, 9], MessageType::Discover, |_| {});
    assert_eq!(yi(&decide(&classify(&r).unwrap(), &s, &mut book, 0)), Ipv4Addr::new(10, 99, 0, 9));
    for i in 0..3u8 {
        yi(&decide(&classify(&msg([2, 0, 0, 0, 0, i], MessageType::Discover, |_| {})).unwrap(), &s, &mut book, 0));
    }
    let d = decide(&classify(&msg([2, 0, 0, 0, 0, 9], MessageType::Discover, |_| {})).unwrap(), &s, &mut book, 0);
    assert_eq!(d, Decision::Ignore("address pool exhausted".into()));
    // offers expire
    assert!(matches!(
        decide(&classify(&msg([2, 0, 0, 0, 0, 9], MessageType::Discover, |_| {})).unwrap(), &s, &mut book, 60_000),
        Decision::Reply { .. }
    ));
}

#[test]
fn request_for_another_server_drops_our_offer() {
    let s = settings();
    let mut book = MemoryLeases::new(s.local().range_start, s.local().range_end);
    let ip = yi(&decide(&classify(&msg(A, MessageType::Discover, |_| {})).unwrap(), &s, &mut book, 0));
    let other = msg(A, MessageType::Request, |m| {
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(192, 168, 1, 5)));
        m.opts_mut().insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(192, 168, 1, 1)));
    });
    assert!(matches!(decide(&classify(&other).unwrap(), &s, &mut book, 1), Decision::Ignore(_)));
    // the address is free again for B
    assert_eq!(yi(&decide(&classify(&msg(B, MessageType::Discover, |_| {})).unwrap(), &s, &mut book, 2)), ip);
}

#[test]
fn decline_quarantines_the_address() {
    let s = settings();
    let mut book = MemoryLeases::new(s.local().range_start, s.local().range_end);
    let ip = yi(&decide(&classify(&msg(A, MessageType::Discover, |_| {})).unwrap(), &s, &mut book, 0));
    let dec = msg(A, MessageType::Decline, |m| {
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
    });
    decide(&classify(&dec).unwrap(), &s, &mut book, 1);
    assert_ne!(yi(&decide(&classify(&msg(A, MessageType::Discover, |_| {})).unwrap(), &s, &mut book, 2)), ip);
}

#[test]
fn proxy_mode_answers_pxe_clients_only_and_never_with_an_address() {
    let s = settings();
    let d = decide_proxy(&classify(&msg(A, MessageType::Discover, pxe(7))).unwrap(), &s, false);
    assert_eq!(yi(&d), Ipv4Addr::UNSPECIFIED);
    assert_eq!(boot_file(&d).as_deref(), Some("snponly.efi"));
    assert!(matches!(
        decide_proxy(&classify(&msg(A, MessageType::Discover, |_| {})).unwrap(), &s, false),
        Decision::Ignore(_)
    ));
}

#[test]
fn reply_carries_options_guid_and_no_pxedhcp() {
    let s = settings();
    let mut book = MemoryLeases::new(s.local().range_start, s.local().range_end);
    let req = msg(A, MessageType::Discover, pxe(0));
    let info = classify(&req).unwrap();
    let d = decide(&info, &s, &mut book, 0);
    let out = reply(&req, &d, &s, info.guid.as_deref(), false).unwrap();
    let back = Message::decode(&mut Decoder::new(&out.to_vec().unwrap())).unwrap();
    assert_eq!(back.xid(), req.xid());
    assert_eq!(back.opts().msg_type(), Some(MessageType::Offer));
    assert_eq!(back.siaddr(), s.server_ip);
    assert_eq!(back.fname_str().unwrap().unwrap().trim_end_matches(char::from(0)), "undionly.kpxe");
    assert!(
        matches!(back.opts().get(OptionCode::ClientMachineIdentifier), Some(DhcpOption::ClientMachineIdentifier(g)) if g.len() == 17)
    );
    assert!(
        matches!(back.opts().get(OptionCode::ClassIdentifier), Some(DhcpOption::ClassIdentifier(v)) if v == b"PXEClient")
    );
    assert!(matches!(back.opts().get(OptionCode::AddressLeaseTime), Some(DhcpOption::AddressLeaseTime(600))));
    let enc = out.to_vec().unwrap();
    assert!(enc.windows(5).any(|w| w == [175, 3, 176, 1, 1]), "no-pxedhcp encapsulated option");
}

/// UEFI PXE (EDK2) treats an offer carrying `PXEClient` as a BINL offer and
/// asks for its boot file again on port 4011: in full mode too, that request
/// gets boot information only, sent back to where it came from, and never
/// touches the lease table.
#[test]
fn boot_server_port_answers_binl_requests_in_full_mode() {
    use super::socket::handle;
    use super::DhcpMode;
    let dir = tempfile::tempdir().unwrap();
    let store = crate::state::Store::open(dir.path()).unwrap();
    let s = settings();
    let ledger = Ledger::open(store, &s, 0).unwrap();
    let req = msg(A, MessageType::Request, |m| {
        pxe(7)(m);
        m.set_ciaddr(Ipv4Addr::new(10, 99, 0, 100));
    });
    let src: std::net::SocketAddr = "10.99.0.100:4011".parse().unwrap();
    let (bytes, dest) = handle(&req.to_vec().unwrap(), src, 4011, DhcpMode::Full, &s, &ledger).unwrap();
    assert_eq!(dest, src);
    let back = Message::decode(&mut Decoder::new(&bytes)).unwrap();
    assert_eq!(back.opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(back.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert!(back.opts().get(OptionCode::AddressLeaseTime).is_none());
    assert!(
        matches!(back.opts().get(OptionCode::BootfileName), Some(DhcpOption::BootfileName(f)) if f == b"snponly.efi")
    );
    let mac = "52:54:00:00:00:01".parse().unwrap();
    let lease = ledger.lease_of(&mac, 0);
    assert!(lease.is_none(), "a boot-server request must not create a lease: {lease:?}");
    // the same request on port 67 is a lease renewal
    let src67: std::net::SocketAddr = "10.99.0.100:68".parse().unwrap();
    let (bytes, _) = handle(&req.to_vec().unwrap(), src67, 67, DhcpMode::Full, &s, &ledger).unwrap();
    let back = Message::decode(&mut Decoder::new(&bytes)).unwrap();
    assert!(
        back.opts().get(OptionCode::AddressLeaseTime).is_some() || back.opts().msg_type() == Some(MessageType::Nak)
    );
}

/// iPXE only treats an answer as a ProxyDHCP offer when it carries option 60
/// `PXEClient` (QEMU's iPXE ROM said "Nothing to boot" without it); and a
/// proxy never answers a REQUEST on port 67 meant for the DHCP server.
#[test]
fn proxy_offers_to_ipxe_say_pxeclient_and_requests_for_the_dhcp_server_are_left_alone() {
    use super::socket::handle;
    use super::DhcpMode;
    let dir = tempfile::tempdir().unwrap();
    let store = crate::state::Store::open(dir.path()).unwrap();
    let s = settings();
    let ledger = Ledger::open(store, &s, 0).unwrap();
    let ipxe = |m: &mut Message| {
        pxe(0)(m);
        m.opts_mut().insert(DhcpOption::UserClass(b"iPXE".to_vec()));
    };
    let src: std::net::SocketAddr = "0.0.0.0:68".parse().unwrap();
    let disc = msg(A, MessageType::Discover, ipxe);
    let (bytes, _) = handle(&disc.to_vec().unwrap(), src, 67, DhcpMode::Proxy, &s, &ledger).unwrap();
    let back = Message::decode(&mut Decoder::new(&bytes)).unwrap();
    assert_eq!(back.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert!(
        matches!(back.opts().get(OptionCode::ClassIdentifier), Some(DhcpOption::ClassIdentifier(v)) if v == b"PXEClient")
    );
    assert_eq!(back.siaddr(), s.server_ip);
    let req = msg(A, MessageType::Request, |m| {
        ipxe(m);
        m.opts_mut().insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 99, 0, 2)));
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 99, 0, 85)));
    });
    assert!(handle(&req.to_vec().unwrap(), src, 67, DhcpMode::Proxy, &s, &ledger).is_none());
    // the same client's ProxyDHCPREQUEST on 4011 is answered
    let src4011: std::net::SocketAddr = "10.99.0.85:68".parse().unwrap();
    let (bytes, dest) = handle(&req.to_vec().unwrap(), src4011, 4011, DhcpMode::Proxy, &s, &ledger).unwrap();
    assert_eq!(dest, src4011);
    let back = Message::decode(&mut Decoder::new(&bytes)).unwrap();
    assert_eq!(back.opts().msg_type(), Some(MessageType::Ack));
    assert!(
        matches!(back.opts().get(OptionCode::BootfileName), Some(DhcpOption::BootfileName(f)) if f == b"http://10.99.0.1:8080/boot.ipxe")
    );
}
