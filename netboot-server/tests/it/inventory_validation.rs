//! Inventory and config validation: good fixtures load; each bad one is
//! refused with an error naming the file, the host and the field.

use crate::common;
use metalboot::inventory::Inventory;

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example";

fn host(extra: &str) -> String {
    format!("[[host]]\nname = \"h1\"\nmacs = [\"52:54:00:00:00:01\"]\ndisk = {{ serial = \"S1\" }}\nssh_authorized_keys = [\"{KEY}\"]\n{extra}")
}

fn load_err(text: &str) -> String {
    match Inventory::from_sources([("hosts.toml", text)]) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn fixture_inventory_loads() {
    let inv = Inventory::load(&common::fixtures().join("inventory")).unwrap();
    let names: Vec<&str> = inv.hosts().iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["di1", "di2", "di3", "web1", "db1", "vps1", "raid1"]);
    assert_eq!(inv.by_mac(&"52:54:00:00:01:02".parse().unwrap()).unwrap().name, "db1");
    let db1 = inv.get("db1").unwrap();
    assert_eq!(db1.layout.subvolumes.len(), 3);
    assert_eq!(db1.disk.as_ref().unwrap().min_size.unwrap().0, 8 << 30);
}

#[test]
fn minimal_host_gets_design_defaults() {
    let inv = Inventory::from_sources([("a.toml", host("").as_str())]).unwrap();
    let h = inv.get("h1").unwrap();
    let subs: Vec<(&str, &str)> =
        h.layout.subvolumes.iter().map(|s| (s.name.as_str(), s.mountpoint.as_str())).collect();
    assert_eq!(subs, [("@", "/"), ("@home", "/home"), ("@var_log", "/var/log"), ("@snapshots", "/.snapshots")]);
    assert_eq!(h.layout.mount_options, "compress=zstd:1,noatime");
    assert_eq!((h.layout.bios_boot_mib, h.layout.esp_mib), (1, 512));
    assert!(!h.arm);
    assert_eq!(h.image, "rootfs.tar.zst");
    assert!(h.admin.is_none());
    assert_eq!(h.sshd_settings(), metalboot_spec::SshdSettings::default(), "root with a key only, no passwords");
    assert_eq!(h.ansible_user(), "root");
}

#[test]
fn errors_name_file_host_and_field() {
    let cases: &[(&str, &str)] = &[
        ("bogus = 1\n", "field `bogus`"),
        ("layout = { esp = 4 }\n", "field `layout.esp`"),
        ("method = \"kickstart\"\n", "field `method`"),
        ("labels = [\"ok\", \"bad label\"]\n", "field `labels[1]`"),
        ("network = { mode = \"static\" }\n", "field `network.addresses`"),
        ("network = { mode = \"dhcp\", addresses = [\"192.0.2.1/24\"] }\n", "field `network.mode`"),
        ("network = { mode = \"static\", addresses = [\"192.0.2.1/40\"] }\n", "field `network.addresses"),
        (
            "network = { mode = \"static\", addresses = [\"192.0.2.1/24\"], gateway = \"2001:db8::1\" }\n",
            "field `network.gateway`",
        ),
        ("network = { mac = \"52:54:00:00:00:09\" }\n", "field `network.mac`"),
        ("layout = { subvolumes = [{ name = \"@\", mountpoint = \"/home\" }] }\n", "field `layout.subvolumes`"),
        ("layout = { esp_mib = 4 }\n", "field `layout.esp_mib`"),
        ("root_password_hash = \"hunter2\"\n", "field `root_password_hash`"),
        ("kernel_args = [\"metalboot.token=x\"]\n", "field `kernel_args[0]`"),
        ("image = \"../state.db\"\n", "field `image`"),
        ("on_failure = \"explode\"\n", "field `on_failure`"),
        ("admin = { name = \"root\" }\n", "field `admin.name`"),
        ("admin = { name = \"ops\", ssh_authorized_keys = [] }\n", "field `admin.ssh_authorized_keys`"),
        ("admin = { name = \"ops\", shell = \"bash\" }\n", "field `admin.shell`"),
        ("admin = { name = \"ops\", sudo = \"yes\" }\n", "field `admin.sudo`"),
        ("ssh = { permit_root_login = false }\n", "field `ssh.permit_root_login`"),
        ("ssh = { password = true }\n", "field `ssh.password`"),
        ("snapshots = { subvolumes = [\"@\"], every = \"5s\" }\n", "field `snapshots.every`"),
        ("snapshots = { subvolumes = [\"@data\"], every = \"1h\" }\n", "field `snapshots.subvolumes[0]`"),
        (
            "snapshots = { subvolumes = [\"@\"], every = \"1h\", keep = { all_within = \"forever\" } }\n",
            "field `snapshots.keep.all_within`",
        ),
        (
            "snapshots = { subvolumes = [\"@\"], every = \"1h\", keep = { hourly = -1 } }\n",
            "field `snapshots.keep.hourly`",
        ),
        (
            "snapshots = { subvolumes = [\"@\"], every = \"1h\", keep = { yearly = 2 } }\n",
            "field `snapshots.keep.yearly`",
        ),
    ];
    for (extra, want) in cases {
        let err = load_err(&host(extra));
        assert!(err.starts_with("hosts.toml: host \"h1\": "), "{extra:?}: {err}");
        assert!(err.contains(want), "{extra:?}: want {want:?} in: {err}");
    }
}

#[test]
fn bad_macs_names_and_duplicates_are_refused() {
    let e = load_err(&host("").replace("52:54:00:00:00:01", "52:54:00:00:00"));
    assert!(e.contains("field `macs[0]`") && e.contains("not a MAC address"), "{e}");
    let e = load_err(&host("").replace("\"h1\"", "\"Web_1\""));
    assert!(e.contains("host \"Web_1\": field `name`"), "{e}");
    let two = format!("{}\n{}", host(""), host("").replace("00:00:01", "00:00:02"));
    let e = load_err(&two);
    assert!(e.contains("duplicate host name"), "{e}");
    let two = format!("{}\n{}", host(""), host("").replace("\"h1\"", "\"h2\""));
    let e = load_err(&two);
    assert!(e.contains("host \"h2\": field `macs[0]`: 52:54:00:00:00:01 already belongs to host \"h1\""), "{e}");
    let e = load_err("[[host]]\nname = \"x\"\nmacs = []\nssh_authorized_keys = []\n");
    assert!(e.contains("field `disk`") || e.contains("missing field `disk`"), "{e}");
    let e = load_err("[[host]]\nname = \"x\"\ndisk = {}\n");
    assert!(e.contains("nobody could log in"), "{e}");
    let e = load_err("[hosts]\n");
    assert!(e.starts_with("hosts.toml: ") && e.contains("hosts"), "{e}");
}

#[test]
fn check_config_cli_exits_nonzero_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hosts.toml"),
        host("disk = { serial = \"a;b\" }\n").replace("disk = { serial = \"S1\" }\n", ""),
    )
    .unwrap();
    std::fs::write(dir.path().join("metalboot.toml"), "[server]\ninventory = \"hosts.toml\"\n").unwrap();
    let out = crate::common::metalboot(dir.path(), &dir.path().join("metalboot.toml"), &["check-config"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hosts.toml: host \"h1\": field `disk.serial`"), "{err}");
    let good = common::metalboot(&common::fixtures(), &common::fixtures().join("metalboot.toml"), &["check-config"]);
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));
    assert!(String::from_utf8_lossy(&good.stdout).contains("OK, 7 host(s)"));
}
