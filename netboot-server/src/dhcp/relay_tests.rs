//! Requests through DHCP relays (RFC 2131 §4.3.1, RFC 3046): the pool is the
//! one whose subnet holds giaddr, an unknown relay is not answered, the
//! answer goes back to the relay with its option 82 as it came, and leases
//! stay in their subnet's pool across a restart.

use super::classify::classify;
use super::decide::{decide, Decision};
use super::ledger::Ledger;
use super::pool::MemoryLeases;
use super::socket::handle;
use super::subnets::{raw_option, relayed, SubnetConfig};
use super::tests::{msg, pxe, settings, yi, A, B};
use super::{DhcpMode, DhcpSettings, Pool};
use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable};
use std::net::{Ipv4Addr, SocketAddr};

const RELAY_1: Ipv4Addr = Ipv4Addr::new(10, 98, 1, 1);
const RELAY_2: Ipv4Addr = Ipv4Addr::new(10, 98, 2, 1);

fn subnet(net: &str, range: [Ipv4Addr; 2], router: Option<Ipv4Addr>) -> SubnetConfig {
    SubnetConfig { subnet: net.into(), range, router, dns: None, lease_secs: Some(120) }
}

/// The test settings with two relayed subnets, 10.98.1.0/24 and 10.98.2.0/24.
fn relayed_settings() -> DhcpSettings {
    let mut s = settings();
    let local = s.local().clone();
    let subnets = [
        subnet("10.98.1.0/24", [Ipv4Addr::new(10, 98, 1, 100), Ipv4Addr::new(10, 98, 1, 101)], Some(RELAY_1)),
        subnet("10.98.2.0/24", [Ipv4Addr::new(10, 98, 2, 100), Ipv4Addr::new(10, 98, 2, 101)], Some(RELAY_2)),
    ];
    s.pools.extend(relayed(&subnets, &local, &local.dns, local.lease_secs).unwrap());
    s
}

fn via(giaddr: Ipv4Addr) -> impl FnOnce(&mut Message) {
    move |m| {
        m.set_giaddr(giaddr);
        m.set_hops(1);
    }
}

fn books(s: &DhcpSettings) -> Vec<MemoryLeases> {
    s.pools.iter().map(|p| MemoryLeases::new(p.range_start, p.range_end)).collect()
}

#[test]
fn relayed_requests_get_addresses_from_the_relays_subnet() {
    let s = relayed_settings();
    let mut b = books(&s);
    let one = yi(&decide(&classify(&msg(A, MessageType::Discover, via(RELAY_1))).unwrap(), &s, &mut b[1], 0));
    let two = yi(&decide(&classify(&msg(B, MessageType::Discover, via(RELAY_2))).unwrap(), &s, &mut b[2], 0));
    assert_eq!((one, two), (Ipv4Addr::new(10, 98, 1, 100), Ipv4Addr::new(10, 98, 2, 100)));
    let here = yi(&decide(&classify(&msg(B, MessageType::Discover, |_| {})).unwrap(), &s, &mut b[0], 0));
    assert_eq!(here, Ipv4Addr::new(10, 99, 0, 100));
    // a relay in a subnet we do not serve is not answered
    let stray = classify(&msg(A, MessageType::Discover, via(Ipv4Addr::new(192, 0, 2, 1)))).unwrap();
    match decide(&stray, &s, &mut b[0], 0) {
        Decision::Ignore(why) => assert!(why.contains("192.0.2.1") && why.contains("dhcp.subnets"), "{why}"),
        d => panic!("answered a relay of no subnet: {d:?}"),
    }
}

#[test]
fn a_relayed_request_for_another_subnets_address_is_refused_and_a_reservation_stays_home() {
    let s = relayed_settings();
    let mut b = books(&s);
    // the client asks the relay on 10.98.1.0/24 for its old local address
    let req = msg(A, MessageType::Request, |m| {
        via(RELAY_1)(m);
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 99, 0, 100)));
    });
    assert!(matches!(
        decide(&classify(&req).unwrap(), &s, &mut b[1], 0),
        Decision::Reply { msg_type: MessageType::Nak, .. }
    ));
    // the host reserved 10.99.0.9 boots behind a relay: a pool address there
    let reserved = [0x52, 0x54, 0, 0, 0, 9];
    let ip = yi(&decide(&classify(&msg(reserved, MessageType::Discover, via(RELAY_2))).unwrap(), &s, &mut b[2], 0));
    assert_eq!(ip, Ipv4Addr::new(10, 98, 2, 100));
    let home = yi(&decide(&classify(&msg(reserved, MessageType::Discover, |_| {})).unwrap(), &s, &mut b[0], 0));
    assert_eq!(home, Ipv4Addr::new(10, 99, 0, 9));
}

/// Option 82 with circuit-id 2 before remote-id 1, and an unknown
/// sub-option 9 (RFC 3046 §2.0): sent back byte for byte.
const AGENT: [u8; 14] = [2, 4, 0, 0, 0, 7, 1, 3, b'e', b't', b'1', 9, 1, 0xaa];

#[test]
fn the_answer_goes_to_the_relay_with_its_option_82_as_it_came_and_its_subnets_options() {
    let dir = tempfile::tempdir().unwrap();
    let s = relayed_settings();
    let ledger = Ledger::open(crate::state::Store::open(dir.path()).unwrap(), &s, 0).unwrap();
    let pxe_via = |m: &mut Message| {
        pxe(0)(m);
        via(RELAY_2)(m);
    };
    let mut disc = msg(A, MessageType::Discover, pxe_via).to_vec().unwrap();
    // append option 82 before End, as a relay does
    assert_eq!(disc.pop(), Some(255));
    disc.extend([82, AGENT.len() as u8]);
    disc.extend(AGENT);
    disc.push(255);
    let src: SocketAddr = "10.98.2.1:67".parse().unwrap();
    let (bytes, dest) = handle(&disc, src, 67, DhcpMode::Full, &s, &ledger).unwrap();
    assert_eq!(dest, "10.98.2.1:67".parse::<SocketAddr>().unwrap());
    assert_eq!(raw_option(&bytes, 82), Some(&AGENT[..]));
    // last before End (RFC 3046 §2.2: SHOULD)
    let tail = [&[82, AGENT.len() as u8][..], &AGENT, &[255]].concat();
    assert!(bytes.windows(tail.len()).any(|w| w == tail), "option 82 is not last: {:?}", &bytes[240..]);
    let back = Message::decode(&mut Decoder::new(&bytes)).unwrap();
    assert_eq!(back.giaddr(), RELAY_2);
    assert_eq!(back.yiaddr(), Ipv4Addr::new(10, 98, 2, 100));
    assert!(matches!(back.opts().get(OptionCode::Router), Some(DhcpOption::Router(r)) if r == &[RELAY_2]));
    assert!(
        matches!(back.opts().get(OptionCode::SubnetMask), Some(DhcpOption::SubnetMask(m)) if *m == Ipv4Addr::new(255, 255, 255, 0))
    );
    assert!(matches!(back.opts().get(OptionCode::AddressLeaseTime), Some(DhcpOption::AddressLeaseTime(120))));
    assert_eq!(back.siaddr(), s.server_ip, "TFTP is still ours, reached through the relay's router");
    // a request with no option 82 gets none back
    let plain = msg(B, MessageType::Discover, via(RELAY_1)).to_vec().unwrap();
    let (bytes, _) = handle(&plain, "10.98.1.1:67".parse().unwrap(), 67, DhcpMode::Full, &s, &ledger).unwrap();
    assert_eq!(raw_option(&bytes, 82), None);
    // nor does one from a relay of no subnet get anything
    let stray = msg(B, MessageType::Discover, via(Ipv4Addr::new(192, 0, 2, 1))).to_vec().unwrap();
    assert!(handle(&stray, "192.0.2.1:67".parse().unwrap(), 67, DhcpMode::Full, &s, &ledger).is_none());
}

#[test]
fn leases_come_back_into_their_own_subnets_pool_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = relayed_settings();
    let ledger = Ledger::open(crate::state::Store::open(dir.path()).unwrap(), &s, 0).unwrap();
    for (mac, relay) in [(A, RELAY_1), (B, Ipv4Addr::UNSPECIFIED)] {
        let ip = yi(&ledger.decide(&classify(&msg(mac, MessageType::Discover, via(relay))).unwrap(), &s, 0).0);
        let req = msg(mac, MessageType::Request, |m| {
            via(relay)(m);
            m.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
            m.opts_mut().insert(DhcpOption::ServerIdentifier(s.server_ip));
        });
        let (ack, changes) = ledger.decide(&classify(&req).unwrap(), &s, 1);
        assert!(matches!(ack, Decision::Reply { msg_type: MessageType::Ack, .. }));
        ledger.commit(&changes).unwrap();
    }
    let again = Ledger::open(crate::state::Store::open(dir.path()).unwrap(), &s, 2).unwrap();
    assert_eq!(again.len(), 2);
    // another client behind relay 1 gets the pool's other address
    let c = [0x52, 0x54, 0, 0, 0, 3];
    let d = again.decide(&classify(&msg(c, MessageType::Discover, via(RELAY_1))).unwrap(), &s, 3).0;
    assert_eq!(yi(&d), Ipv4Addr::new(10, 98, 1, 101));
    let a = again.decide(&classify(&msg(A, MessageType::Discover, via(RELAY_1))).unwrap(), &s, 3).0;
    assert_eq!(yi(&a), Ipv4Addr::new(10, 98, 1, 100));
}

/// A client behind a relay renews by unicast straight to the server, with
/// its address in ciaddr and no giaddr: its own pool answers, not ours.
#[test]
fn a_relayed_client_renewing_by_unicast_keeps_its_lease() {
    let dir = tempfile::tempdir().unwrap();
    let s = relayed_settings();
    let ledger = Ledger::open(crate::state::Store::open(dir.path()).unwrap(), &s, 0).unwrap();
    let ip = yi(&ledger.decide(&classify(&msg(A, MessageType::Discover, via(RELAY_1))).unwrap(), &s, 0).0);
    let req = msg(A, MessageType::Request, |m| {
        via(RELAY_1)(m);
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
        m.opts_mut().insert(DhcpOption::ServerIdentifier(s.server_ip));
    });
    ledger.commit(&ledger.decide(&classify(&req).unwrap(), &s, 1).1).unwrap();
    let renew = msg(A, MessageType::Request, |m| {
        m.set_ciaddr(ip);
    })
    .to_vec()
    .unwrap();
    let src: SocketAddr = SocketAddr::new(ip.into(), 68);
    let (bytes, dest) = handle(&renew, src, 67, DhcpMode::Full, &s, &ledger).unwrap();
    assert_eq!(dest, src, "the answer goes straight back to the renewing client");
    let back = Message::decode(&mut Decoder::new(&bytes)).unwrap();
    assert_eq!((back.opts().msg_type(), back.yiaddr()), (Some(MessageType::Ack), ip));
    assert!(matches!(back.opts().get(OptionCode::Router), Some(DhcpOption::Router(r)) if r == &[RELAY_1]));
}

#[test]
fn subnets_are_checked_against_each_other_and_the_interfaces() {
    let local: Pool = settings().local().clone();
    let r = [Ipv4Addr::new(10, 98, 1, 10), Ipv4Addr::new(10, 98, 1, 20)];
    let err = |subnets: &[SubnetConfig]| format!("{:#}", relayed(subnets, &local, &[], 60).unwrap_err());
    let e = err(&[subnet("10.99.0.128/25", [Ipv4Addr::new(10, 99, 0, 130), Ipv4Addr::new(10, 99, 0, 140)], None)]);
    assert!(e.contains("dhcp.subnets[0].subnet 10.99.0.128/25 overlaps dhcp.subnet 10.99.0.0/24"), "{e}");
    let e = err(&[subnet("10.98.1.0/24", r, None), subnet("10.98.0.0/16", r, None)]);
    assert!(e.contains("dhcp.subnets[1].subnet 10.98.0.0/16 overlaps dhcp.subnets[0].subnet 10.98.1.0/24"), "{e}");
    let e = err(&[subnet("10.98.2.0/24", r, None)]);
    assert!(
        e.contains("dhcp.subnets[0].range address 10.98.1.10 is outside dhcp.subnets[0].subnet 10.98.2.0/24"),
        "{e}"
    );
    let e = err(&[subnet("10.98.1.0/24", [r[1], r[0]], None)]);
    assert!(e.contains("dhcp.subnets[0].range starts after it ends"), "{e}");
    let e = err(&[subnet("10.98.1.0/24", r, Some(Ipv4Addr::new(10, 98, 2, 1)))]);
    assert!(e.contains("dhcp.subnets[0].router 10.98.2.1 is outside"), "{e}");
    let e = err(&[subnet("10.98.1.0/33", r, None)]);
    assert!(e.contains("dhcp.subnets[0].subnet"), "{e}");
    let ok = relayed(&[SubnetConfig { lease_secs: None, ..subnet("10.98.1.0/24", r, None) }], &local, &[], 60).unwrap();
    assert_eq!((ok[0].lease_secs, ok[0].dns.len()), (60, 0), "defaults from [dhcp]");
}

#[test]
fn raw_option_reads_what_is_there_and_nothing_past_the_end() {
    let mut p = msg(A, MessageType::Discover, |_| {}).to_vec().unwrap();
    assert_eq!(raw_option(&p, 53), Some(&[1u8][..]));
    assert_eq!(raw_option(&p, 82), None);
    // a length running past the packet
    p.pop();
    p.extend([0, 0, 82, 40, 1, 2]);
    assert_eq!(raw_option(&p, 82), None);
    assert_eq!(raw_option(&p[..200], 53), None);
    assert_eq!(raw_option(&[], 53), None);
}
