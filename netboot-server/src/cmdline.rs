//! Kernel command lines for what we boot: our installer (the contract is
//! [`metalboot_spec::BootArgs`], which the installer parses back) and the
//! Debian installer. Values come from the validated inventory; the iPXE
//! renderer checks every argument again.

use metalboot_spec::bootargs::{Fallback, NetConfig, StaticIp, StaticIp6};
use metalboot_spec::{BootArgs, HostSpec, MacAddr, NetMode, NetworkSpec, Pin, PinSet};
use std::net::IpAddr;

/// `BOOTIF=01-aa-bb-cc-dd-ee-ff`, the pxelinux convention that tells an
/// installer which NIC booted (Debian's netcfg honours it too).
pub fn bootif(mac: &MacAddr) -> String {
    BootArgs { bootif: Some(*mac), ..BootArgs::default() }.to_cmdline().remove(0)
}

/// The IPv4 network of a host as the installer's `ip=`: static where the
/// inventory has a static IPv4, DHCP otherwise. IPv6-only static hosts get
/// DHCP here and their addresses from the plan.
pub fn net_config(net: &NetworkSpec, hostname: &str) -> NetConfig {
    if net.mode == NetMode::Dhcp {
        return NetConfig::Dhcp;
    }
    let Some(v4) = net.ipv4() else { return NetConfig::Dhcp };
    let IpAddr::V4(address) = v4.addr else { return NetConfig::Dhcp };
    NetConfig::Static(StaticIp {
        address,
        prefix: v4.prefix,
        gateway: match net.gateway {
            Some(IpAddr::V4(g)) => Some(g),
            _ => None,
        },
        hostname: Some(hostname.to_string()),
        device: None,
        dns: net
            .dns
            .iter()
            .filter_map(|d| match d {
                IpAddr::V4(a) => Some(*a),
                IpAddr::V6(_) => None,
            })
            .take(2)
            .collect(),
    })
}

/// The kernel's `ip=` argument for `net` (see [`net_config`]).
pub fn ip_arg(net: &NetworkSpec, hostname: &str) -> String {
    net_config(net, hostname).to_arg()
}

/// What our installer is booted with for a network install of `host`:
/// `base_url` is where its API calls go, `pin` the server key it trusts
/// there (with an `https://` `base_url`, and only then).
pub fn installer_boot_args(host: &HostSpec, base_url: &str, pin: Option<Pin>, token: &str, mac: &MacAddr) -> BootArgs {
    BootArgs {
        bootif: Some(*mac),
        net: net_config(&host.network, &host.name),
        url: Some(base_url.trim_end_matches('/').to_string()),
        pin: pin.map(PinSet::one),
        host: Some(host.name.clone()),
        token: Some(token.to_string()),
        ..BootArgs::default()
    }
}

/// Arguments for our installer kernel, after the console arguments.
pub fn installer_args(host: &HostSpec, base_url: &str, pin: Option<Pin>, token: &str, mac: &MacAddr) -> Vec<String> {
    installer_boot_args(host, base_url, pin, token, mac).to_cmdline()
}

/// A reinstall in place: [`installer_boot_args`] keeping the target's
/// static network, IPv6 included (`metalboot.ip6=ADDR/LEN[,GATEWAY6]`
/// beside `ip=`, and `ip=off` instead of `ip=dhcp` when there is no IPv4 to
/// keep: an IPv6-only server has no DHCP to ask), and
/// `metalboot.fallback=reboot`: no server reachable means back to the old
/// system, not a stranded host (after `wait` seconds, `metalboot.wait`).
pub fn reinstall_boot_args(
    host: &HostSpec,
    base_url: &str,
    pin: Option<Pin>,
    token: &str,
    mac: &MacAddr,
    wait: Option<u32>,
) -> BootArgs {
    let mut a = installer_boot_args(host, base_url, pin, token, mac);
    a.wait = wait;
    let (net, ip6) = reinstall_net(&host.network, &host.name);
    a.net = net;
    a.ip6 = ip6;
    a.fallback = Fallback::Reboot;
    a
}

fn reinstall_net(net: &NetworkSpec, hostname: &str) -> (NetConfig, Option<StaticIp6>) {
    let six = match net.mode {
        NetMode::Static => net.addresses.iter().find_map(|a| match a.addr {
            IpAddr::V6(x) => Some((x, a.prefix)),
            IpAddr::V4(_) => None,
        }),
        NetMode::Dhcp => None,
    };
    let Some((address, prefix)) = six else { return (net_config(net, hostname), None) };
    let v4 = if net.ipv4().is_some() { net_config(net, hostname) } else { NetConfig::Off };
    let gateway = match net.gateway6 {
        Some(IpAddr::V6(g)) => Some(g),
        _ => None,
    };
    (v4, Some(StaticIp6 { address, prefix, gateway }))
}

/// The network words of [`reinstall_boot_args`] alone.
pub fn reinstall_net_args(net: &NetworkSpec, hostname: &str) -> Vec<String> {
    let (v4, six) = reinstall_net(net, hostname);
    let mut v = vec![v4.to_arg()];
    v.extend(six.map(|s| format!("metalboot.ip6={s}")));
    v
}

/// Arguments for the Debian installer kernel.
pub fn debian_installer_args(host: &HostSpec, preseed_url: &str, mac: &MacAddr) -> Vec<String> {
    let mut v = vec![
        "auto=true".to_string(),
        "priority=critical".to_string(),
        format!("url={preseed_url}"),
        bootif(mac),
        "netcfg/choose_interface=auto".to_string(),
        // Provisioning networks often have no router, only the server and a
        // local mirror: netcfg would stop and ask before the preseed loads.
        "netcfg/no_default_route=true".to_string(),
        format!("hostname={}", host.name),
        "domain=".to_string(),
    ];
    let net = &host.network;
    if net.mode == NetMode::Static {
        if let Some(v4) = net.ipv4() {
            v.push("netcfg/disable_autoconfig=true".into());
            v.push(format!("netcfg/get_ipaddress={}", v4.addr));
            if let Some(m) = v4.netmask_v4() {
                v.push(format!("netcfg/get_netmask={m}"));
            }
            if let Some(gw) = net.gateway {
                v.push(format!("netcfg/get_gateway={gw}"));
            }
            if let Some(d) = net.dns.first() {
                v.push(format!("netcfg/get_nameservers={d}"));
            }
            v.push("netcfg/confirm_static=true".into());
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(toml_src: &str) -> NetworkSpec {
        toml::from_str(toml_src).unwrap()
    }

    #[test]
    fn static_ip_arg_follows_kernel_syntax() {
        let n = net("mode = \"static\"\naddresses = [\"192.0.2.10/24\"]\ngateway = \"192.0.2.1\"\ndns = [\"192.0.2.53\", \"2001:db8::53\", \"198.51.100.53\"]\n");
        assert_eq!(ip_arg(&n, "web1"), "ip=192.0.2.10::192.0.2.1:255.255.255.0:web1::off:192.0.2.53:198.51.100.53");
    }

    #[test]
    fn slash32_with_offlink_gateway_and_dhcp() {
        let n = net("mode = \"static\"\naddresses = [\"203.0.113.7/32\"]\ngateway = \"172.31.1.1\"\n");
        assert_eq!(ip_arg(&n, "vps"), "ip=203.0.113.7::172.31.1.1:255.255.255.255:vps::off");
        assert_eq!(ip_arg(&NetworkSpec::default(), "x"), "ip=dhcp");
        let v6 = net("mode = \"static\"\naddresses = [\"2001:db8::7/64\"]\ngateway6 = \"fe80::1\"\n");
        assert_eq!(ip_arg(&v6, "x"), "ip=dhcp");
    }

    #[test]
    fn reinstall_keeps_ipv6_beside_ipv4_or_alone() {
        let v6 = net("mode = \"static\"\naddresses = [\"2001:db8::7/64\"]\ngateway6 = \"fe80::1\"\n");
        assert_eq!(reinstall_net_args(&v6, "x"), ["ip=off", "metalboot.ip6=2001:db8::7/64,fe80::1"]);
        let dual =
            net("mode = \"static\"\naddresses = [\"203.0.113.7/32\", \"2001:db8::7/64\"]\ngateway = \"172.31.1.1\"\n");
        assert_eq!(
            reinstall_net_args(&dual, "vps"),
            ["ip=203.0.113.7::172.31.1.1:255.255.255.255:vps::off", "metalboot.ip6=2001:db8::7/64"]
        );
        let v4 = net("mode = \"static\"\naddresses = [\"203.0.113.7/32\"]\ngateway = \"172.31.1.1\"\n");
        assert_eq!(reinstall_net_args(&v4, "vps"), [ip_arg(&v4, "vps")]);
        assert_eq!(reinstall_net_args(&NetworkSpec::default(), "x"), ["ip=dhcp"]);
    }

    fn host(network: &str) -> HostSpec {
        toml::from_str(&format!(
            "name = \"web1\"\nmacs = [\"52:54:00:00:00:01\"]\ndisk = {{ serial = \"S1\" }}\nroot_password_hash = \"$6$x$y\"\n[network]\n{network}"
        ))
        .unwrap()
    }

    /// Every command line the server writes for our installer (PXE,
    /// reinstall, standalone reinstall) is read back by the installer's
    /// parser into exactly what was meant, and together they use every key
    /// of the contract but `metalboot.action` (which only the tests' probe
    /// boot sets).
    #[test]
    fn every_key_the_server_emits_parses_back() {
        let mac: MacAddr = "52:54:00:00:00:01".parse().unwrap();
        let nets = [
            "",
            "mode = \"static\"\naddresses = [\"192.0.2.10/24\"]\ngateway = \"192.0.2.1\"\ndns = [\"192.0.2.53\"]",
            "mode = \"static\"\naddresses = [\"203.0.113.7/32\", \"2001:db8::7/64\"]\ngateway = \"172.31.1.1\"\ngateway6 = \"fe80::1\"",
            "mode = \"static\"\naddresses = [\"2001:db8::7/64\"]\ngateway6 = \"fe80::1\"",
        ];
        let mut emitted = std::collections::BTreeSet::new();
        for n in nets {
            let h = host(n);
            h.validate().unwrap();
            let pin = Some(Pin::of_spki(b"the server key"));
            let pxe = installer_boot_args(&h, "http://10.0.0.1:8080", None, "tok-1", &mac);
            let re = reinstall_boot_args(&h, "https://10.0.0.1:8443", pin, "tok-2", &mac, Some(30));
            let console = "console=tty0 console=ttyS0,115200n8";
            let standalone_line = crate::operator::reinstall::standalone::standalone_cmdline(&format!(
                "{console} {}",
                re.to_cmdline().join(" ")
            ))
            .unwrap();
            for (args, line) in [
                (Some(&pxe), format!("{console} {}", pxe.to_cmdline().join(" "))),
                (Some(&re), format!("{console} {}", re.to_cmdline().join(" "))),
                (None, standalone_line),
            ] {
                for w in line.split_whitespace() {
                    metalboot_spec::safe::check_word(w, 255).unwrap_or_else(|e| panic!("{w}: {e}"));
                    if let Some(k) = w.strip_prefix("metalboot.") {
                        emitted.insert(format!("metalboot.{}", k.split('=').next().unwrap()));
                    }
                }
                let parsed = BootArgs::parse(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
                if let Some(a) = args {
                    assert_eq!(&parsed, a, "{line}");
                } else {
                    assert!(parsed.standalone && parsed.token.is_none() && parsed.url.is_none());
                    assert_eq!(parsed.fallback, Fallback::Reboot);
                }
                assert!(line.starts_with(console), "the console words stay first: {line}");
            }
            assert_eq!(pxe.fallback, Fallback::Stop);
            assert_eq!(re.fallback, Fallback::Reboot);
        }
        let want: std::collections::BTreeSet<String> = metalboot_spec::bootargs::KEYS
            .iter()
            .filter(|k| **k != "metalboot.action")
            .map(|k| k.to_string())
            .collect();
        assert_eq!(emitted, want);
    }

    #[test]
    fn bootif_uses_dashes() {
        assert_eq!(bootif(&"52:54:00:ab:cd:ef".parse().unwrap()), "BOOTIF=01-52-54-00-ab-cd-ef");
    }
}
