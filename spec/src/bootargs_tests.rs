use super::*;
use crate::Pin;
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

#[test]
fn parses_metalboot_args_bootif_and_dhcp() {
    let a = BootArgs::parse("console=ttyS0 BOOTIF=01-52-54-00-ab-cd-ef ip=dhcp metalboot.url=http://10.0.0.1:8080/ metalboot.host=web1 metalboot.token=abc123").unwrap();
    assert_eq!(a.url.as_deref(), Some("http://10.0.0.1:8080"));
    assert_eq!(a.host.as_deref(), Some("web1"));
    assert_eq!(a.token.as_deref(), Some("abc123"));
    assert_eq!(a.bootif.unwrap().to_string(), "52:54:00:ab:cd:ef");
    assert_eq!(a.net, NetConfig::Dhcp);
    assert_eq!(a.fallback, Fallback::Stop);
    assert_eq!(a.action, Action::Install);
}

#[test]
fn unknown_metalboot_key_is_an_error_naming_it() {
    let e = BootArgs::parse("console=ttyS0 metalboot.fallbak=reboot").unwrap_err();
    assert_eq!(e, BootArgsError::UnknownKey("metalboot.fallbak".into()));
    assert!(e.to_string().contains("metalboot.fallbak") && e.to_string().contains("metalboot.fallback"));
    // words that are not ours stay the kernel's
    assert_eq!(BootArgs::parse("quiet root=/dev/sda metalboots=1 ipv6.disable=1").unwrap(), BootArgs::default());
}

#[test]
fn a_key_twice_with_two_values_is_refused() {
    assert_eq!(
        BootArgs::parse("metalboot.host=a metalboot.host=b").unwrap_err(),
        BootArgsError::Repeated("metalboot.host".into())
    );
    assert_eq!(BootArgs::parse("metalboot.host=a metalboot.host=a").unwrap().host.as_deref(), Some("a"));
}

#[test]
fn ip6_parses_with_and_without_a_gateway_and_refuses_junk() {
    let a = BootArgs::parse("ip=off metalboot.ip6=2001:db8:2::42/64,fe80::1").unwrap();
    assert_eq!(a.net, NetConfig::Off);
    let six = a.ip6.unwrap();
    assert_eq!((six.address.to_string(), six.prefix), ("2001:db8:2::42".into(), 64));
    assert_eq!(six.gateway, Some("fe80::1".parse().unwrap()));
    assert_eq!(StaticIp6::parse("fd00::5/128").unwrap().gateway, None);
    for bad in ["fd00::5", "10.0.0.1/24", "fd00::5/129", "fd00::5/64,10.0.0.1", "fd00::5/64;reboot"] {
        assert!(StaticIp6::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn standalone_needs_a_carried_plan_and_no_value() {
    let a = BootArgs::parse("metalboot.standalone metalboot.plan=/metalboot/plan.json").unwrap();
    assert!(a.standalone && a.plan.as_deref() == Some("/metalboot/plan.json"));
    assert!(!BootArgs::parse("metalboot.plan=/p.json").unwrap().standalone);
    assert!(BootArgs::parse("metalboot.standalone").unwrap_err().to_string().contains("metalboot.plan"));
    assert!(BootArgs::parse("metalboot.standalone=0 metalboot.plan=/p").is_err());
    assert!(BootArgs::parse("metalboot.plan=relative.json").is_err());
}

#[test]
fn fallback_and_action_are_checked() {
    assert_eq!(BootArgs::parse("metalboot.fallback=reboot").unwrap().fallback, Fallback::Reboot);
    assert_eq!(BootArgs::parse("metalboot.fallback=stop").unwrap().fallback, Fallback::Stop);
    assert!(BootArgs::parse("metalboot.fallback=shell").is_err());
    assert_eq!(BootArgs::parse("metalboot.action=probe").unwrap().action, Action::Probe);
    assert!(BootArgs::parse("metalboot.action=wipe").is_err());
}

#[test]
fn wait_is_whole_seconds_in_bounds_and_defaults_to_two_minutes() {
    assert_eq!(BootArgs::parse("metalboot.wait=20").unwrap().wait(), std::time::Duration::from_secs(20));
    assert_eq!(BootArgs::parse("").unwrap().wait(), std::time::Duration::from_secs(120));
    for bad in ["0", "4", "3601", "20s", "-1", ""] {
        let e = BootArgs::parse(&format!("metalboot.wait={bad}")).unwrap_err().to_string();
        assert!(e.contains("metalboot.wait") && e.contains("5 to 3600"), "{bad}: {e}");
    }
    let out = BootArgs { wait: Some(4), ..BootArgs::default() };
    assert!(out.validate().is_err(), "to_cmdline must not write what parse refuses");
}

#[test]
fn parses_static_ip_forms() {
    let NetConfig::Static(s) =
        NetConfig::parse("192.0.2.10::192.0.2.1:255.255.255.0:web1:eth0:off:192.0.2.53:198.51.100.53").unwrap()
    else {
        panic!()
    };
    assert_eq!(s.address.to_string(), "192.0.2.10");
    assert_eq!(s.prefix, 24);
    assert_eq!(s.gateway.unwrap().to_string(), "192.0.2.1");
    assert_eq!(s.device.as_deref(), Some("eth0"));
    assert_eq!(s.dns.len(), 2);
    let NetConfig::Static(h) = NetConfig::parse("203.0.113.7::172.31.1.1:255.255.255.255:vps::off").unwrap() else {
        panic!()
    };
    assert_eq!(h.prefix, 32);
    assert_eq!(NetConfig::parse("off").unwrap(), NetConfig::Off);
    assert!(NetConfig::parse("192.0.2.10::192.0.2.1:255.0.255.0::").is_err());
    assert!(NetConfig::parse("300.0.2.10").is_err());
}

#[test]
fn static_ip_is_written_in_kernel_syntax() {
    let s = StaticIp {
        address: "203.0.113.7".parse().unwrap(),
        prefix: 32,
        gateway: Some("172.31.1.1".parse().unwrap()),
        hostname: Some("vps".into()),
        device: None,
        dns: vec![],
    };
    assert_eq!(NetConfig::Static(s).to_arg(), "ip=203.0.113.7::172.31.1.1:255.255.255.255:vps::off");
}

#[test]
fn rejects_hostile_host_and_token_and_redacts() {
    assert!(BootArgs::parse("metalboot.host=../x").is_err());
    assert!(BootArgs::parse("metalboot.token=a;b").is_err());
    assert!(BootArgs::parse("metalboot.url=ftp://x").is_err());
    assert_eq!(redact("a metalboot.token=secret b"), "a metalboot.token=<redacted> b");
}

#[test]
fn defaults_are_not_written_and_every_key_is_known() {
    assert_eq!(BootArgs::default().to_cmdline(), ["ip=dhcp"]);
    let full = BootArgs {
        bootif: Some("52:54:00:00:00:01".parse().unwrap()),
        net: NetConfig::Off,
        ip6: Some(StaticIp6::parse("fd00::1/64").unwrap()),
        url: Some("https://h:1".into()),
        pin: Some(pins(&[b"a", b"b"])),
        host: Some("h".into()),
        token: Some("t".into()),
        plan: Some("/p".into()),
        action: Action::Probe,
        fallback: Fallback::Reboot,
        wait: Some(20),
        standalone: true,
    };
    let words = full.to_cmdline();
    let keys: Vec<&str> =
        words.iter().filter(|w| w.starts_with("metalboot.")).map(|w| w.split('=').next().unwrap()).collect();
    assert_eq!(keys, KEYS, "to_cmdline writes every key of KEYS, in order");
    assert_eq!(BootArgs::parse(&words.join(" ")).unwrap(), full);
}

fn pins(spkis: &[&[u8]]) -> PinSet {
    spkis.iter().map(|k| Pin::of_spki(k).to_string()).collect::<Vec<_>>().join(";").parse().unwrap()
}

#[test]
fn pins_use_commas_on_the_command_line_and_need_https() {
    let two = pins(&[b"a", b"b"]);
    let a = BootArgs { url: Some("https://10.0.0.1:8443".into()), pin: Some(two.clone()), ..BootArgs::default() };
    let words = a.to_cmdline();
    let pin_word = words.iter().find(|w| w.starts_with("metalboot.pin=")).unwrap();
    assert_eq!(pin_word, &format!("metalboot.pin={}", two.to_string().replace(';', ",")));
    crate::safe::check_word(pin_word, 255).unwrap();
    assert_eq!(BootArgs::parse(&words.join(" ")).unwrap(), a);
    let one = Pin::of_spki(b"a");
    let e = |line: &str| BootArgs::parse(line).unwrap_err().to_string();
    let semi = e(&format!("metalboot.url=https://h metalboot.pin={two}"));
    assert!(semi.contains("metalboot.pin") && semi.contains("','"), "{semi}");
    let junk = e("metalboot.url=https://h metalboot.pin=sha256//abc");
    assert!(junk.contains("metalboot.pin") && junk.contains("sha256//abc"), "{junk}");
    let empty = e(&format!("metalboot.url=https://h metalboot.pin={one},"));
    assert!(empty.contains("metalboot.pin") && empty.contains("empty"), "{empty}");
    let plain = e(&format!("metalboot.url=http://h metalboot.pin={one}"));
    assert!(plain.contains("metalboot.pin") && plain.contains("https://"), "{plain}");
    assert!(e(&format!("metalboot.pin={one}")).contains("without an https://"));
    let unpinned = e("metalboot.url=https://h");
    assert!(unpinned.contains("metalboot.pin") && unpinned.contains("no CA roots"), "{unpinned}");
}

fn word() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,14}[a-z0-9]"
}

fn net() -> impl Strategy<Value = NetConfig> {
    let stat = (
        any::<u32>(),
        0u8..=32,
        proptest::option::of(any::<u32>()),
        proptest::option::of(word()),
        proptest::option::of(word()),
        proptest::collection::vec(any::<u32>(), 0..=2),
    )
        .prop_map(|(a, prefix, gw, hostname, device, dns)| {
            NetConfig::Static(StaticIp {
                address: Ipv4Addr::from(a),
                prefix,
                gateway: gw.map(Ipv4Addr::from),
                hostname,
                device,
                dns: dns.into_iter().map(Ipv4Addr::from).collect(),
            })
        });
    prop_oneof![Just(NetConfig::Dhcp), Just(NetConfig::Off), stat]
}

fn ip6() -> impl Strategy<Value = StaticIp6> {
    (any::<u128>(), 0u8..=128, proptest::option::of(any::<u128>())).prop_map(|(a, prefix, gw)| StaticIp6 {
        address: Ipv6Addr::from(a),
        prefix,
        gateway: gw.map(Ipv6Addr::from),
    })
}

fn mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(|mut b| {
        b[0] &= 0xfe;
        b[5] |= 1;
        MacAddr(b)
    })
}

prop_compose! {
    fn boot_args()(
        bootif in proptest::option::of(mac()),
        net in net(),
        ip6 in proptest::option::of(ip6()),
        url in proptest::option::of(("(http|https)", "[a-z0-9.-]{1,20}", proptest::option::of(1u16..)).prop_map(
            |(s, h, p)| format!("{s}://{h}{}", p.map(|p| format!(":{p}")).unwrap_or_default()))),
        spkis in proptest::collection::vec(any::<[u8; 8]>(), 1..=3),
        host in proptest::option::of(word()),
        token in proptest::option::of("[A-Za-z0-9-]{1,64}"),
        plan in proptest::option::of("(/[a-z0-9._-]{1,12}){1,4}"),
        probe in any::<bool>(),
        reboot in any::<bool>(),
        wait in proptest::option::of(WAIT_SECS),
        standalone in any::<bool>(),
    ) -> BootArgs {
        let https = url.as_deref().is_some_and(|u| u.starts_with("https://"));
        let pin = https.then(|| pins(&spkis.iter().map(|k| &k[..]).collect::<Vec<_>>()));
        BootArgs {
            bootif, net, ip6, url, pin, host, token,
            standalone: standalone && plan.is_some(),
            plan,
            action: if probe { Action::Probe } else { Action::Install },
            fallback: if reboot { Fallback::Reboot } else { Fallback::Stop },
            wait,
        }
    }
}

proptest! {
    #[test]
    fn to_cmdline_then_parse_gives_the_same_args(a in boot_args()) {
        prop_assert!(a.validate().is_ok(), "{:?}", a.validate());
        let line = a.to_cmdline().join(" ");
        prop_assert_eq!(BootArgs::parse(&line).unwrap(), a.clone());
        // the kernel's own words around ours change nothing
        let framed = format!("console=ttyS0,115200n8 {line} quiet");
        prop_assert_eq!(BootArgs::parse(&framed).unwrap(), a);
    }

    #[test]
    fn parse_never_panics(s in "\\PC{0,200}") {
        let _ = BootArgs::parse(&s);
    }
}
