//! DHCP requests captured from real clients (see `fixtures/dhcp/capture.sh`)
//! through the whole handler: classification, decision and the reply bytes.

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};
use dhcproto::{Decodable, Decoder};
use metalboot::dhcp::classify::{classify, Firmware};
use metalboot::dhcp::ledger::Ledger;
use metalboot::dhcp::socket::handle;
use metalboot::dhcp::{DhcpMode, DhcpSettings, Pool};
use metalboot::state::Store;
use std::net::{Ipv4Addr, SocketAddr};

fn capture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/dhcp/{name}.bin", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn settings() -> DhcpSettings {
    DhcpSettings {
        server_ip: Ipv4Addr::new(10, 99, 0, 1),
        pools: vec![Pool {
            subnet: "10.99.0.0/24".parse().unwrap(),
            range_start: Ipv4Addr::new(10, 99, 0, 100),
            range_end: Ipv4Addr::new(10, 99, 0, 150),
            router: None,
            dns: vec![],
            lease_secs: 600,
        }],
        bios_file: "undionly.kpxe".into(),
        efi_file: "snponly.efi".into(),
        http_base: "http://10.99.0.1:8080".into(),
        reservations: vec![],
    }
}

/// Runs the capture through `handle` in `mode`; the decoded reply, if any.
fn answer(name: &str, mode: DhcpMode) -> Option<Message> {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(Store::open(dir.path()).unwrap(), &settings(), 0).unwrap();
    let src: SocketAddr = "0.0.0.0:68".parse().unwrap();
    let (bytes, dest) = handle(&capture(name), src, 67, mode, &settings(), &ledger)?;
    assert_eq!(dest, "255.255.255.255:68".parse::<SocketAddr>().unwrap(), "{name}: reply not broadcast");
    Some(Message::decode(&mut Decoder::new(&bytes)).unwrap())
}

fn boot_file(m: &Message) -> Option<String> {
    match m.opts().get(OptionCode::BootfileName) {
        Some(DhcpOption::BootfileName(b)) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

fn class(m: &Message) -> Option<String> {
    match m.opts().get(OptionCode::ClassIdentifier) {
        Some(DhcpOption::ClassIdentifier(b)) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

fn info(name: &str) -> metalboot::dhcp::classify::ClientInfo {
    classify(&Message::decode(&mut Decoder::new(&capture(name))).unwrap()).unwrap()
}

#[test]
fn seabios_ipxe_rom_goes_straight_to_the_http_script() {
    let i = info("seabios-ipxe-discover");
    assert!(i.ipxe, "QEMU's SeaBIOS NIC ROM is iPXE");
    assert_eq!(i.firmware, Firmware::BiosPxe);
    assert_eq!(i.msg_type, MessageType::Discover);
    let full = answer("seabios-ipxe-discover", DhcpMode::Full).unwrap();
    assert_eq!(full.opts().msg_type(), Some(MessageType::Offer));
    assert_eq!(boot_file(&full).as_deref(), Some("http://10.99.0.1:8080/boot.ipxe"));
    assert!((Ipv4Addr::new(10, 99, 0, 100)..=Ipv4Addr::new(10, 99, 0, 150)).contains(&full.yiaddr()));
    let proxy = answer("seabios-ipxe-discover", DhcpMode::Proxy).unwrap();
    assert_eq!(proxy.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(boot_file(&proxy).as_deref(), Some("http://10.99.0.1:8080/boot.ipxe"));
}

#[test]
fn ovmf_pxe_gets_snponly_over_tftp_with_its_guid_echoed() {
    let i = info("ovmf-pxe-discover");
    assert!(!i.ipxe);
    assert_eq!(i.firmware, Firmware::EfiPxe(7));
    assert_eq!(i.guid.as_ref().map(Vec::len), Some(17));
    let full = answer("ovmf-pxe-discover", DhcpMode::Full).unwrap();
    assert_eq!(boot_file(&full).as_deref(), Some("snponly.efi"));
    assert_eq!(class(&full).as_deref(), Some("PXEClient"));
    assert_eq!(full.siaddr(), Ipv4Addr::new(10, 99, 0, 1));
    assert!(matches!(full.opts().get(OptionCode::ClientMachineIdentifier),
        Some(DhcpOption::ClientMachineIdentifier(g)) if Some(g) == i.guid.as_ref()));
    let proxy = answer("ovmf-pxe-discover", DhcpMode::Proxy).unwrap();
    assert_eq!(proxy.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(boot_file(&proxy).as_deref(), Some("snponly.efi"));
}

#[test]
fn os_dhcp_clients_get_an_address_and_no_boot_file_and_proxy_ignores_them() {
    for name in ["udhcpc-discover", "dhclient-discover"] {
        let i = info(name);
        assert_eq!(i.firmware, Firmware::None, "{name}");
        assert!(!i.ipxe, "{name}");
        let full = answer(name, DhcpMode::Full).unwrap();
        assert_eq!(full.opts().msg_type(), Some(MessageType::Offer), "{name}");
        assert!(boot_file(&full).is_none(), "{name}");
        assert!(class(&full).is_none(), "{name}");
        assert!(matches!(full.opts().get(OptionCode::AddressLeaseTime), Some(DhcpOption::AddressLeaseTime(600))));
        assert!(answer(name, DhcpMode::Proxy).is_none(), "{name}: proxy mode answered an OS client");
    }
}

/// Inputs the fuzz target found that once crashed the handler: each is
/// now ignored. The first byte is the fuzz target's mode selector.
#[test]
fn fuzz_findings_are_ignored_not_fatal() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    let tmp = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(Store::open(tmp.path()).unwrap(), &settings(), 0).unwrap();
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if !p.to_string_lossy().contains("dhcp-") {
            continue;
        }
        let data = std::fs::read(&p).unwrap();
        for mode in [DhcpMode::Full, DhcpMode::Proxy] {
            for port in [67, 4011] {
                let src: SocketAddr = "0.0.0.0:68".parse().unwrap();
                assert!(handle(&data[1..], src, port, mode, &settings(), &ledger).is_none(), "{}", p.display());
            }
        }
        n += 1;
    }
    assert!(n >= 1);
}
