//! Kernel command lines for what we boot: our installer and the Debian
//! installer. Values come from the validated inventory; the iPXE renderer
//! checks every argument again.

use metalboot_spec::{HostSpec, MacAddr, NetMode, NetworkSpec};
use std::net::IpAddr;

/// `BOOTIF=01-aa-bb-cc-dd-ee-ff`, the pxelinux convention that tells an
/// installer which NIC booted (Debian's netcfg honours it too).
pub fn bootif(mac: &MacAddr) -> String {
    format!("BOOTIF=01-{}", mac.to_string().replace(':', "-"))
}

/// The kernel's `ip=` argument (Documentation/admin-guide/nfs/nfsroot.rst):
/// `ip=<client>:<server>:<gw>:<netmask>:<hostname>:<device>:<autoconf>:<dns0>:<dns1>`
/// for a static IPv4 config, `ip=dhcp` otherwise. IPv6-only static hosts get
/// `ip=dhcp` here and their addresses from the plan.
pub fn ip_arg(net: &NetworkSpec, hostname: &str) -> String {
    if net.mode == NetMode::Dhcp {
        return "ip=dhcp".into();
    }
    let Some(v4) = net.ipv4() else { return "ip=dhcp".into() };
    let gw = net.gateway.map(|g| g.to_string()).unwrap_or_default();
    let mask = v4.netmask_v4().map(|m| m.to_string()).unwrap_or_default();
    let dns: Vec<String> = net.dns.iter().filter(|d| d.is_ipv4()).take(2).map(IpAddr::to_string).collect();
    let mut s = format!("ip={}::{gw}:{mask}:{hostname}::off", v4.addr);
    for d in dns {
        s.push(':');
        s.push_str(&d);
    }
    s
}

/// Arguments for our installer kernel, after the console arguments.
pub fn installer_args(host: &HostSpec, base_url: &str, token: &str, mac: &MacAddr) -> Vec<String> {
    installer_args_with_net(host, base_url, token, mac, vec![ip_arg(&host.network, &host.name)])
}

/// [`installer_args`] with the network arguments given (a reinstall in
/// place passes [`reinstall_net_args`]).
pub fn installer_args_with_net(
    host: &HostSpec,
    base_url: &str,
    token: &str,
    mac: &MacAddr,
    net: Vec<String>,
) -> Vec<String> {
    let mut v = vec![bootif(mac)];
    v.extend(net);
    v.extend([
        format!("metalboot.url={base_url}"),
        format!("metalboot.host={}", host.name),
        format!("metalboot.token={token}"),
    ]);
    v
}

/// A reinstall in place keeps the target's static network, IPv6 included:
/// `metalboot.ip6=ADDR/LEN[,GATEWAY6]` beside `ip=`, and `ip=off` instead
/// of `ip=dhcp` when there is no IPv4 to keep (an IPv6-only server has no
/// DHCP to ask).
pub fn reinstall_net_args(net: &NetworkSpec, hostname: &str) -> Vec<String> {
    let six = (net.mode == NetMode::Static).then(|| net.addresses.iter().find(|a| a.addr.is_ipv6())).flatten();
    let Some(six) = six else { return vec![ip_arg(net, hostname)] };
    let v4 = if net.ipv4().is_some() { ip_arg(net, hostname) } else { "ip=off".into() };
    let gw = net.gateway6.map(|g| format!(",{g}")).unwrap_or_default();
    vec![v4, format!("metalboot.ip6={}/{}{gw}", six.addr, six.prefix)]
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

    #[test]
    fn bootif_uses_dashes() {
        assert_eq!(bootif(&"52:54:00:ab:cd:ef".parse().unwrap()), "BOOTIF=01-52-54-00-ab-cd-ef");
    }
}
