//! Network and disk discovery on outputs recorded from real `ip -j` and
//! `lsblk -J` (see `fixtures/discover/record.sh`), and the kernel `ip=`
//! argument the reinstalled host's installer boots with.

use metalboot::cmdline::ip_arg;
use metalboot::operator::reinstall::discover::{parse_lsblk, parse_resolv_conf, NetFacts};
use std::net::IpAddr;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/discover/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn facts(case: &str, resolv: &str) -> NetFacts {
    NetFacts::parse(
        &fixture(&format!("{case}.addr.json")),
        &fixture(&format!("{case}.route4.json")),
        &fixture(&format!("{case}.route6.json")),
        resolv,
    )
    .unwrap()
}

#[test]
fn rented_server_with_slash32_and_off_subnet_gateway() {
    let f = facts(
        "slash32",
        "nameserver 127.0.0.53\nnameserver 185.12.64.1\nnameserver 2a01:4ff:ff00::add:1\nsearch example.org\n",
    );
    assert_eq!(f.interfaces.len(), 1, "loopback is not an interface to keep");
    let net = f.network_spec().unwrap();
    assert_eq!(net.mac.unwrap().to_string(), "96:00:00:aa:bb:01");
    let addrs: Vec<String> = net.addresses.iter().map(|a| a.to_string()).collect();
    assert_eq!(addrs, ["203.0.113.7/32", "2001:db8:1::7/64"], "link-local addresses are not kept");
    assert_eq!(net.gateway, Some("172.31.1.1".parse().unwrap()));
    assert_eq!(net.gateway6, Some("fe80::1".parse().unwrap()));
    assert_eq!(net.dns, ["185.12.64.1".parse::<IpAddr>().unwrap(), "2a01:4ff:ff00::add:1".parse().unwrap()]);
    assert_eq!(net.search, ["example.org"]);
    assert_eq!(ip_arg(&net, "vps1"), "ip=203.0.113.7::172.31.1.1:255.255.255.255:vps1::off:185.12.64.1");
    metalboot::operator::reinstall::policy::installer_can_carry(&net, false).expect("dual-stack /32 is carried");
}

#[test]
fn several_interfaces_keep_the_one_with_the_default_route() {
    let f = facts("multi", "nameserver 192.0.2.53\n");
    assert_eq!(f.interfaces.len(), 2);
    let net = f.network_spec().unwrap();
    assert_eq!(net.mac.unwrap().to_string(), "0c:c4:7a:00:00:01");
    assert_eq!(net.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(), ["192.0.2.10/24"]);
    assert_eq!(net.gateway, Some("192.0.2.1".parse().unwrap()));
    assert_eq!(net.gateway6, None);
    assert_eq!(ip_arg(&net, "db1"), "ip=192.0.2.10::192.0.2.1:255.255.255.0:db1::off:192.0.2.53");
    // the other interface is still reported, for the operator to see
    assert_eq!(f.interfaces[1].addresses[0].to_string(), "10.20.0.10/16");
}

#[test]
fn ipv6_only_vps() {
    let f = facts("v6only", "nameserver 2001:db8:2::53\n");
    let net = f.network_spec().unwrap();
    assert_eq!(net.mac.unwrap().to_string(), "52:54:00:12:34:56");
    assert_eq!(net.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(), ["2001:db8:2::42/64"]);
    assert_eq!(net.gateway, None);
    assert_eq!(net.gateway6, Some("2001:db8:2::1".parse().unwrap()));
    // no IPv4 to put on `ip=`: the installer keeps the IPv6 by
    // metalboot.ip6, and without IPv4 it cannot reach the server, so only
    // a standalone reinstall is allowed
    assert_eq!(ip_arg(&net, "v6"), "ip=dhcp");
    let e = metalboot::operator::reinstall::policy::installer_can_carry(&net, false).unwrap_err().to_string();
    assert!(e.contains("no IPv4 address (2001:db8:2::42/64)") && e.contains("--standalone"), "{e}");
    metalboot::operator::reinstall::policy::installer_can_carry(&net, true).expect("standalone carries IPv6 alone");
    assert_eq!(
        metalboot::cmdline::reinstall_net_args(&net, "v6"),
        ["ip=off", "metalboot.ip6=2001:db8:2::42/64,2001:db8:2::1"]
    );
}

#[test]
fn no_route_and_many_interfaces_is_an_error_that_names_them() {
    let f = facts("multi", "");
    let f = NetFacts { gateway4: None, ..f };
    let e = f.network_spec().unwrap_err().to_string();
    assert!(e.contains("eno1") && e.contains("eno2"), "{e}");
}

#[test]
fn resolv_conf_skips_stubs_and_zone_ids() {
    let (dns, search) = parse_resolv_conf("# c\nnameserver 127.0.0.1\nnameserver ::1\nnameserver fe80::1%eth0\noptions edns0\nsearch a.example b.example\n");
    assert_eq!(dns, ["fe80::1".parse::<IpAddr>().unwrap()]);
    assert_eq!(search, ["a.example", "b.example"]);
    // systemd-resolved's upstream file on a host without a search domain
    let (dns, search) = parse_resolv_conf("# This is /run/systemd/resolve/resolv.conf\nsearch .\n");
    assert!(dns.is_empty() && search.is_empty(), "{dns:?} {search:?}");
    let (_, search) = parse_resolv_conf("search corp.example. corp.example\ndomain corp.example\n");
    assert_eq!(search, ["corp.example"]);
}

#[test]
fn lsblk_disks_and_the_root_disk() {
    let disks = parse_lsblk(&fixture("lsblk-vm.json")).unwrap();
    let vda = disks.iter().find(|d| d.path == "/dev/vda").unwrap();
    assert!(vda.holds_root);
    assert_eq!(vda.size, 274_877_906_944);
    let nested = r#"{"blockdevices":[{"name":"nvme0n1","path":"/dev/nvme0n1","size":"512110190592","type":"disk","serial":"S4EVNX0N","model":"Samsung SSD 980 ","mountpoint":null,
        "children":[{"name":"nvme0n1p1","path":"/dev/nvme0n1p1","size":"536870912","type":"part","mountpoint":"/boot/efi"},
                    {"name":"nvme0n1p2","path":"/dev/nvme0n1p2","size":"511571770880","type":"part","mountpoint":null,
                     "children":[{"name":"vg-root","path":"/dev/mapper/vg-root","size":"511571770880","type":"lvm","mountpoint":"/"}]}]}]}"#;
    let d = &parse_lsblk(nested).unwrap()[0];
    assert!(d.holds_root, "root on LVM inside a partition still marks the disk");
    assert_eq!(d.model.as_deref(), Some("Samsung SSD 980"));
    assert_eq!(d.partitions.len(), 2);
    assert_eq!(d.size, 512_110_190_592);
}

#[test]
fn btrfs_root_mounted_once_per_subvolume_is_found_in_mountpoints() {
    // util-linux 2.38 as on a metalboot-installed host: `/` is not listed first
    let json = r#"{"blockdevices":[{"name":"vda","path":"/dev/vda","size":8589934592,"type":"disk","serial":"E2E-DISK","model":null,"mountpoints":[null],
        "children":[{"name":"vda1","path":"/dev/vda1","size":1048576,"type":"part","mountpoints":[null]},
                    {"name":"vda2","path":"/dev/vda2","size":268435456,"type":"part","mountpoints":["/boot/efi"]},
                    {"name":"vda3","path":"/dev/vda3","size":8319401472,"type":"part","mountpoints":["/var/log","/home","/.snapshots","/"]}]},
        {"name":"vdb","path":"/dev/vdb","size":1073741824,"type":"disk","serial":"DATA","model":null,"mountpoints":["/srv"]}]}"#;
    let disks = parse_lsblk(json).unwrap();
    assert_eq!(disks.iter().filter(|d| d.holds_root).map(|d| d.path.as_str()).collect::<Vec<_>>(), ["/dev/vda"]);
    assert_eq!(disks[0].partitions[2].2.as_deref(), Some("/var/log,/home,/.snapshots,/"));
    assert_eq!(disks[0].partitions[0].2, None);
}

mod remote {
    use metalboot::operator::reinstall::remote::{summary, BootMode, Discovered, DISCOVER_SCRIPT};

    fn recorded() -> String {
        super::fixture("debian12-host.txt")
    }

    /// The script's output recorded on a Debian 12 host (this project's
    /// build machine): `sh -s < script`.
    #[test]
    fn discovery_output_parses_into_boot_mode_root_disk_and_network() {
        let d = Discovered::parse(&recorded()).unwrap();
        assert_eq!(d.boot, BootMode::Bios);
        assert_eq!(d.hostname, "vm");
        assert!(d.kernel.ends_with("x86_64"));
        assert!(d.kexec.is_none());
        let root = d.root_disk().unwrap();
        assert_eq!(root.path, "/dev/vda");
        let net = d.net.network_spec().unwrap();
        assert_eq!(net.gateway, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(net.gateway6, Some("fd00::1".parse().unwrap()));
        assert!(net.addresses.iter().any(|a| a.to_string() == "192.0.2.2/24"));
        let text = summary("root@192.0.2.2", "vps1", &d, &[root], &net, "kexec (to be installed)", false);
        assert!(text.contains("WIPES:    /dev/vda 256.0 GiB"), "{text}");
        assert!(text.contains("gateway 192.0.2.1"), "{text}");
        assert!(text.contains("boots via: kexec (to be installed)"), "{text}");
    }

    /// The `boots via:` line: kexec where it is, else what the GRUB probe
    /// allows, with the reason when it does not.
    #[test]
    fn the_summary_says_how_the_installer_will_start() {
        use metalboot::operator::reinstall::oneshot::GrubFacts;
        use metalboot::operator::reinstall::start::{boots_via, BootVia};
        let mut d = Discovered::parse(&recorded()).unwrap();
        let probe = super::fixture("../grub/ext4.probe");
        let ext4 = GrubFacts::parse(&probe).unwrap();
        let btrfs = GrubFacts::parse(&probe.replace("### fs\next2", "### fs\nbtrfs")).unwrap();
        assert_eq!(
            boots_via(BootVia::Auto, &d, Some(&ext4)),
            "kexec (kexec-tools to be installed), else a one-shot GRUB entry (/boot/grub on ext2) and a reboot"
        );
        let refused = boots_via(BootVia::Grub, &d, Some(&btrfs));
        assert!(refused.starts_with("no one-shot GRUB entry: /boot/grub is on btrfs"), "{refused}");
        assert_eq!(boots_via(BootVia::Kexec, &d, None), "kexec (kexec-tools to be installed)");
        d.kexec = Some("/usr/sbin/kexec".into());
        assert_eq!(boots_via(BootVia::Auto, &d, None), "kexec");
    }

    #[test]
    fn cut_or_foreign_output_is_refused_with_the_reason() {
        let full = recorded();
        let cut: String = full.lines().take(12).map(|l| format!("{l}\n")).collect();
        let e = Discovered::parse(&cut).unwrap_err().to_string();
        assert!(e.contains("ends early"), "{e}");
        let e = Discovered::parse("Welcome to rbash\n").unwrap_err().to_string();
        assert!(e.contains("not from metalboot's discovery"), "{e}");
        let no_lsblk = full.replace("### lsblk", "### lsblk-missing");
        let e = format!("{:#}", Discovered::parse(&no_lsblk).unwrap_err());
        assert!(e.contains("no `lsblk` section"), "{e}");
    }

    #[test]
    fn the_script_only_reads() {
        for word in ["rm ", "dd ", "mkfs", "wipefs", "sgdisk", "parted", ">"] {
            let writes = DISCOVER_SCRIPT.lines().any(|l| l.contains(word) && !l.contains("2>/dev/null"));
            assert!(!writes, "the discovery script contains {word:?}");
        }
    }

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFwC0mL6IcgzOB9v98a03pAs+6hA9ahGvVbMAoDTHuCF ops@laptop";

    fn with_keys(keys: &str) -> String {
        recorded().replace("### end", &format!("### authorized_keys\n{keys}### end"))
    }

    #[test]
    fn authorized_keys_are_read_when_the_section_is_there_and_empty_when_not() {
        assert!(Discovered::parse(&recorded()).unwrap().authorized_keys.is_empty());
        let d = Discovered::parse(&with_keys(&format!("# comment\n\n{KEY}\n"))).unwrap();
        assert_eq!(d.authorized_keys, vec![KEY.to_string()]);
    }

    #[test]
    fn restricted_or_foreign_keys_are_left_out_and_odd_comments_dropped() {
        use metalboot::operator::reinstall::entry::usable_keys;
        let blob = KEY.split(' ').nth(1).unwrap();
        let lines = vec![
            KEY.to_string(),
            format!("command=\"/bin/backup\",no-pty ssh-ed25519 {blob} backup"),
            format!("ssh-ed25519 {blob} weird;comment$(x)"),
            "ssh-dss AAAAB3NzaC1kc3MAAACBAP old".to_string(),
            format!("ssh-rsa {blob}  two  spaces"),
        ];
        let (keys, skipped) = usable_keys(&lines);
        assert_eq!(skipped, 2, "{keys:?}");
        assert_eq!(keys, vec![KEY.to_string(), format!("ssh-ed25519 {blob}"), format!("ssh-rsa {blob} two spaces")]);
    }

    #[test]
    fn print_host_makes_an_inventory_entry_that_loads_and_keeps_disk_network_and_keys() {
        use metalboot::inventory::Inventory;
        use metalboot::operator::reinstall::entry::host_entry;
        let d = Discovered::parse(&with_keys(&format!("{KEY}\n"))).unwrap();
        let net = d.net.network_spec().unwrap();
        let text = host_entry("root@192.0.2.2", "vps1", &d, &net, &[]).unwrap();
        assert!(text.starts_with("# vps1: discovered on root@192.0.2.2"), "{text}");
        let inv = Inventory::from_sources([("printed.toml", text.as_str())]).unwrap();
        let h = inv.get("vps1").expect("the entry names the host");
        assert_eq!(h.macs, vec![net.mac.unwrap()]);
        assert_eq!(h.network, net);
        assert_eq!(h.ssh_authorized_keys, vec![KEY.to_string()]);
        assert!(!h.arm, "a printed entry is not armed by itself");
        assert!(h.disk.as_ref().unwrap().wipe, "the disk holds the old system, so the entry must allow wiping it");
        let root = d.root_disk().unwrap();
        match &h.disk.as_ref().unwrap().serial {
            Some(s) => assert_eq!(Some(s), root.serial.as_ref()),
            None => assert_eq!(h.disk.as_ref().unwrap().path.as_deref(), Some(root.path.as_str())),
        }
    }

    /// The recorded output as a rescue system booted into RAM on the same
    /// machine would give it: a tmpfs root, and `/` on no disk.
    fn rescue() -> String {
        let r = recorded();
        let (head, rest) = r.split_once("### mounts\n").unwrap();
        let (_, tail) = rest.split_once("### disk_links\n").unwrap();
        format!("{head}### mounts\ntmpfs / tmpfs rw,relatime,size=2097152k,mode=755 0 0\nproc /proc proc rw,relatime 0 0\n### disk_links\n{tail}")
            .replace(r#""mountpoint": "/""#, r#""mountpoint": null"#)
    }

    #[test]
    fn a_rescue_system_is_recognised_and_refused_without_the_flag() {
        use metalboot::operator::reinstall::{choose, rescue};
        let d = Discovered::parse(&recorded()).unwrap();
        assert!(!d.root.off_disk(), "{:?}", d.root);
        assert_eq!(d.root.what, "ext4 on /dev/vda");
        let d = Discovered::parse(&rescue()).unwrap();
        assert!(d.root.off_disk());
        let e = d.root_disk().unwrap_err().to_string();
        assert_eq!(e, "no disk holds the root filesystem (root is tmpfs): refusing to guess");
        let e = rescue::allowed("root@192.0.2.2", &d.root, false).unwrap_err().to_string();
        assert!(
            e.starts_with("root@192.0.2.2 runs from RAM (root is tmpfs): a rescue system;")
                && e.contains("--rescue-ok"),
            "{e}"
        );
        assert!(rescue::allowed("root@192.0.2.2", &d.root, true).unwrap());
        // zram0 is a disk to lsblk but has no size; vda is the one
        let sel = metalboot_spec::DiskSelector { path: Some("/dev/vda".into()), wipe: true, ..Default::default() };
        let chosen = choose::choose(&sel, &d.disks, &d.disk_links, choose::From::Rescue).unwrap();
        assert_eq!(chosen.path, "/dev/vda");
    }

    #[test]
    fn print_host_from_a_rescue_system_pins_the_free_disk_or_says_to_write_it() {
        use metalboot::operator::reinstall::entry::host_entry;
        let d = Discovered::parse(&rescue()).unwrap();
        let net = d.net.network_spec().unwrap();
        // the recorded machine has zram0 besides vda, never a target
        let text = host_entry("root@h", "vps1", &d, &net, &[KEY.into()]).unwrap();
        assert!(text.contains("# discovered from a rescue system (runs from RAM (root is tmpfs))"), "{text}");
        assert!(text.contains("path = \"/dev/vda\""), "{text}");
        // a second free disk: the entry cannot say which
        let two = rescue().replace(r#""path": "/dev/zram0""#, r#""path": "/dev/vdb""#);
        let d = Discovered::parse(&two).unwrap();
        let e = format!("{:#}", host_entry("root@h", "vps1", &d, &net, &[KEY.into()]).unwrap_err());
        assert!(
            e.contains("runs from RAM (root is tmpfs)")
                && e.contains("write the entry's disk selector by hand")
                && e.contains("2 disks are free to install on (/dev/vdb, /dev/vda)"),
            "{e}"
        );
    }

    #[test]
    fn print_host_refuses_without_a_key_and_with_a_bad_name() {
        use metalboot::operator::reinstall::entry::host_entry;
        let d = Discovered::parse(&recorded()).unwrap();
        let net = d.net.network_spec().unwrap();
        let e = format!("{:#}", host_entry("root@h", "vps1", &d, &net, &[]).unwrap_err());
        assert!(e.contains("no SSH public key to enrol for vps1"), "{e}");
        let e = format!("{:#}", host_entry("root@h", "Bad_Name!", &d, &net, &[KEY.into()]).unwrap_err());
        assert!(e.contains("does not validate") && e.contains("name"), "{e}");
        // the operator's own key is enough
        assert!(host_entry("root@h", "vps1", &d, &net, &[KEY.into()]).is_ok());
    }

    /// The recorded host with the lsblk of a metalboot raid1 install
    /// (recorded in the uefi-raid1 scenario: the root's mounts show on the
    /// NVMe member only) and `/` mounted from it.
    fn raid1() -> String {
        let r = recorded();
        let (head, rest) = r.split_once("### lsblk\n").unwrap();
        let (_, rest) = rest.split_once("### mounts\n").unwrap();
        let (_, tail) = rest.split_once("### disk_links\n").unwrap();
        format!(
            "{head}### lsblk\n{}### mounts\n/dev/nvme0n1p3 / btrfs rw,relatime,subvol=/@ 0 0\n### disk_links\n{tail}",
            super::fixture("raid1-lsblk.json")
        )
    }

    #[test]
    fn a_raid1_root_holds_both_disks_and_print_host_keeps_them_as_raid1() {
        use metalboot::inventory::Inventory;
        use metalboot::operator::reinstall::entry::host_entry;
        let d = Discovered::parse(&raid1()).unwrap();
        let roots: Vec<&str> = d.disks.iter().filter(|x| x.holds_root).map(|x| x.path.as_str()).collect();
        assert_eq!(roots, ["/dev/vda", "/dev/nvme0n1"]);
        let e = d.root_disk().unwrap_err().to_string();
        assert!(e.starts_with("the root filesystem spans 2 disks (/dev/vda, /dev/nvme0n1)"), "{e}");
        assert!(e.contains("layout = { raid = \"raid1\" }"), "{e}");
        let net = d.net.network_spec().unwrap();
        let text = host_entry("root@h", "raid", &d, &net, &[KEY.into()]).unwrap();
        assert!(text.contains("the entry installs btrfs raid1 across them"), "{text}");
        let inv = Inventory::from_sources([("printed.toml", text.as_str())]).unwrap();
        let h = inv.get("raid").unwrap();
        assert!(h.disk.is_none() && !h.layout.raid.is_none(), "{text}");
        let serials: Vec<_> = h.disks.iter().map(|x| (x.serial.as_deref().unwrap(), x.wipe)).collect();
        assert_eq!(serials, [("E2E-DISK2", true), ("E2E-DISK", true)]);
    }
}
