//! Files the installer writes into the new system, as pure functions of the
//! plan and the filesystem UUIDs: fstab, systemd-networkd config, hosts,
//! GRUB defaults, the phone-home environment.

use metalboot_spec::{InstallPlan, Layout, NetMode, NetworkSpec, PinSet, Raid};
use std::fmt::Write;

/// `/etc/fstab`: every subvolume by the root filesystem's UUID with
/// `subvol=`, parents before children, then the ESP. On several disks
/// (raid1) the ESP is the first disk's, mounted `nofail` with a short device
/// timeout: a host that lost that disk still boots (the other disks' ESPs
/// are copies).
pub fn fstab(root_uuid: &str, esp_uuid: &str, layout: &Layout) -> String {
    let mut subs: Vec<_> = layout.subvolumes.iter().collect();
    subs.sort_by_key(|s| (s.mountpoint.matches('/').count() - usize::from(s.mountpoint == "/"), s.mountpoint.clone()));
    let mut out = String::from(
        "# /etc/fstab: written by metalboot-installer\n# <file system> <mount point> <type> <options> <dump> <pass>\n",
    );
    for s in subs {
        let _ =
            writeln!(out, "UUID={root_uuid} {} btrfs subvol=/{},{} 0 0", s.mountpoint, s.name, layout.mount_options);
    }
    let esp_opts = match layout.raid {
        Raid::None => "umask=0077",
        Raid::Raid1 => "umask=0077,nofail,x-systemd.device-timeout=10s",
    };
    let _ = writeln!(out, "UUID={esp_uuid} /boot/efi vfat {esp_opts} 0 1");
    out
}

/// The systemd-networkd unit for the plan's network, matched by MAC.
pub fn networkd(net: &NetworkSpec) -> String {
    let mut out = String::from("# written by metalboot-installer\n[Match]\n");
    match net.mac {
        Some(m) => {
            let _ = writeln!(out, "MACAddress={m}");
        }
        None => out.push_str("Name=en* eth*\n"),
    }
    out.push_str("\n[Network]\n");
    match net.mode {
        NetMode::Dhcp => out.push_str("DHCP=yes\n"),
        NetMode::Static => {
            for a in &net.addresses {
                let _ = writeln!(out, "Address={a}");
            }
            for d in &net.dns {
                let _ = writeln!(out, "DNS={d}");
            }
            if !net.search.is_empty() {
                let _ = writeln!(out, "Domains={}", net.search.join(" "));
            }
            if net.addresses.iter().all(|a| a.addr.is_ipv4()) {
                out.push_str("IPv6AcceptRA=no\n");
            }
            for gw in [net.gateway, net.gateway6].into_iter().flatten() {
                // Explicit routes with GatewayOnLink cover gateways outside the
                // subnet (a /32 with a provider gateway, a link-local v6 router).
                let _ = writeln!(out, "\n[Route]\nGateway={gw}\nGatewayOnLink=yes");
            }
        }
    }
    out
}

/// `/etc/hosts`.
pub fn hosts(hostname: &str) -> String {
    format!("127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
}

/// `/etc/default/grub.d/metalboot.cfg`: console on screen and serial, the
/// plan's kernel arguments, a short menu timeout.
pub fn grub_defaults(plan: &InstallPlan) -> String {
    let mut args = vec!["console=tty0".to_string(), "console=ttyS0,115200n8".to_string()];
    for a in &plan.kernel_args {
        if !args.contains(a) {
            args.push(a.clone());
        }
    }
    format!(
        "# written by metalboot-installer\nGRUB_TIMEOUT=1\nGRUB_CMDLINE_LINUX=\"{}\"\nGRUB_TERMINAL=\"console serial\"\nGRUB_SERIAL_COMMAND=\"serial --unit=0 --speed=115200\"\nGRUB_DISABLE_OS_PROBER=true\n",
        args.join(" ")
    )
}

/// `/etc/metalboot/phone-home.env` for the first-boot unit, posting to
/// `url` (the plan's `installed` endpoint; `rolled_back` for a previous
/// system that came back). With an `https://` URL it carries the server's
/// pins as curl's `--pinnedpubkey` wants them (`sha256//…;sha256//…`): the
/// installed system trusts the server by the same key the installer did,
/// not by a CA.
pub fn phone_home_env(url: &str, token: &str, pins: Option<&PinSet>) -> String {
    let mut env = format!("METALBOOT_INSTALLED_URL='{url}'\nMETALBOOT_TOKEN='{token}'\n");
    if let Some(p) = pins.filter(|_| url.starts_with("https://")) {
        let _ = writeln!(env, "METALBOOT_PIN='{p}'");
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(src: &str) -> NetworkSpec {
        serde_json::from_str(src).unwrap()
    }

    fn plan(installed: &str) -> InstallPlan {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../netboot-server/tests/golden/web1.plan.json")).unwrap();
        v["endpoints"]["installed"] = installed.into();
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn phone_home_pins_the_server_key_over_https_only() {
        let pins: PinSet =
            format!("{};{}", metalboot_spec::Pin::of_spki(b"a"), metalboot_spec::Pin::of_spki(b"b")).parse().unwrap();
        let https = phone_home_env(
            &plan("https://192.0.2.1:8443/v1/hosts/web1/installed").endpoints.installed,
            "tok",
            Some(&pins),
        );
        assert_eq!(
            https,
            format!(
                "METALBOOT_INSTALLED_URL='https://192.0.2.1:8443/v1/hosts/web1/installed'\nMETALBOOT_TOKEN='tok'\nMETALBOOT_PIN='{pins}'\n"
            )
        );
        assert!(pins.to_string().contains(';'), "curl's separator in the file");
        let http = plan("http://192.0.2.1:8080/v1/hosts/web1/installed");
        assert_eq!(
            phone_home_env(&http.endpoints.installed, "tok", Some(&pins)),
            "METALBOOT_INSTALLED_URL='http://192.0.2.1:8080/v1/hosts/web1/installed'\nMETALBOOT_TOKEN='tok'\n"
        );
        let url = &http.endpoints.installed;
        assert_eq!(phone_home_env(url, "tok", None), phone_home_env(url, "tok", Some(&pins)));
    }

    #[test]
    fn fstab_mounts_parents_first_by_uuid_and_subvol() {
        let f = fstab("R", "E", &Layout::default());
        let lines: Vec<&str> = f.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            [
                "UUID=R / btrfs subvol=/@,compress=zstd:1,noatime 0 0",
                "UUID=R /.snapshots btrfs subvol=/@snapshots,compress=zstd:1,noatime 0 0",
                "UUID=R /home btrfs subvol=/@home,compress=zstd:1,noatime 0 0",
                "UUID=R /var/log btrfs subvol=/@var_log,compress=zstd:1,noatime 0 0",
                "UUID=E /boot/efi vfat umask=0077 0 1",
            ]
        );
    }

    #[test]
    fn fstab_on_two_disks_mounts_the_first_esp_nofail() {
        let f = fstab("R", "E", &Layout { raid: Raid::Raid1, ..Layout::default() });
        assert!(f.contains("UUID=R / btrfs subvol=/@,compress=zstd:1,noatime 0 0\n"), "{f}");
        assert!(f.ends_with("UUID=E /boot/efi vfat umask=0077,nofail,x-systemd.device-timeout=10s 0 1\n"), "{f}");
    }

    #[test]
    fn networkd_dhcp_and_static_with_offlink_gateway() {
        let d = networkd(&net(r#"{"mode":"dhcp","mac":"52:54:00:00:00:01"}"#));
        assert_eq!(
            d,
            "# written by metalboot-installer\n[Match]\nMACAddress=52:54:00:00:00:01\n\n[Network]\nDHCP=yes\n"
        );
        let s = networkd(&net(
            r#"{"mode":"static","mac":"52:54:00:00:00:03","addresses":["203.0.113.7/32","2001:db8:1::7/64"],"gateway":"172.31.1.1","gateway6":"fe80::1","dns":["198.51.100.53"]}"#,
        ));
        assert!(s.contains("Address=203.0.113.7/32\nAddress=2001:db8:1::7/64\nDNS=198.51.100.53\n"), "{s}");
        assert!(s.contains("[Route]\nGateway=172.31.1.1\nGatewayOnLink=yes"), "{s}");
        assert!(s.contains("[Route]\nGateway=fe80::1\nGatewayOnLink=yes"), "{s}");
        assert!(!s.contains("IPv6AcceptRA=no"));
    }
}
