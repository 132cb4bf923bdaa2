//! What the lab makes from an operator's config and inventory.

use super::*;
use crate::inventory::Inventory;

const INV: &str = r#"
[[host]]
name = "web1"
macs = ["52:54:00:00:00:01"]
disk = { serial = "WEB1" }
ssh_authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperatorOperatorOperatorOperatorOperatorOp op@desk"]
handoff = { ansible_host = "192.0.2.10" }

[[host]]
name = "db1"
macs = ["52:54:00:00:00:02"]
disks = [{ serial = "DB1-A", min_size = "20G" }, { path = "/dev/nvme0n1", max_size = "4G" }]
layout = { raid = "raid1" }
admin = { name = "ops", ssh_authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperatorOperatorOperatorOperatorOperatorOp op@desk"] }

[[host]]
name = "edge1"
macs = ["52:54:00:00:00:03"]
disk = { serial = "E1" }
ssh_authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperatorOperatorOperatorOperatorOperatorOp op@desk"]
network = { mode = "static", addresses = ["192.0.2.30/24"], gateway = "192.0.2.1" }
"#;

fn inv() -> Inventory {
    Inventory::from_sources([("hosts.toml", INV)]).unwrap()
}

#[test]
fn selects_named_hosts_and_refuses_unknown_or_static_ones() {
    let inv = inv();
    let names = |v: Vec<&HostSpec>| v.iter().map(|h| h.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(select(inv.hosts(), &["db1".into(), "web1".into()]).unwrap()), ["web1", "db1"]);
    let e = select(inv.hosts(), &["nope".into()]).unwrap_err().to_string();
    assert!(e.contains("no host \"nope\"") && e.contains("web1, db1, edge1"), "{e}");
    let e = select(inv.hosts(), &[]).unwrap_err().to_string();
    assert!(e.contains("edge1") && e.contains("static"), "{e}");
}

#[test]
fn firmware_for_all_and_for_one() {
    let inv = inv();
    let hosts = select(inv.hosts(), &["web1".into(), "db1".into()]).unwrap();
    let fw = firmware(&hosts, &[]).unwrap();
    assert_eq!(fw["web1"], Firmware::Bios);
    let fw = firmware(&hosts, &["uefi".into(), "db1=bios".into()]).unwrap();
    assert_eq!((fw["web1"], fw["db1"]), (Firmware::Uefi, Firmware::Bios));
    assert!(firmware(&hosts, &["arm".into()]).unwrap_err().to_string().contains("\"arm\""));
    assert!(firmware(&hosts, &["edge1=uefi".into()]).unwrap_err().to_string().contains("not a host of this lab"));
}

#[test]
fn disks_match_their_selectors() {
    let inv = inv();
    let web = disks(inv.get("web1").unwrap(), 8 << 30).unwrap();
    assert_eq!(web, [LabDisk { file: "disk1.img".into(), serial: "WEB1".into(), bus: Bus::Virtio, size: 8 << 30 }]);
    let db = disks(inv.get("db1").unwrap(), 8 << 30).unwrap();
    assert_eq!((db[0].serial.as_str(), db[0].bus, db[0].size), ("DB1-A", Bus::Virtio, 20 << 30));
    assert_eq!((db[1].serial.as_str(), db[1].bus, db[1].size), ("LAB2-db1", Bus::Nvme, 4 << 30));
    let mut h = inv.get("web1").unwrap().clone();
    h.disk.as_mut().unwrap().path = Some("/dev/disk/by-id/ata-X".into());
    assert!(disks(&h, 1 << 30).unwrap_err().to_string().contains("/dev/disk/by-id/ata-X"));
    h.disk.as_mut().unwrap().path = None;
    h.disk.as_mut().unwrap().serial = Some("S".repeat(21));
    assert!(disks(&h, 1 << 30).unwrap_err().to_string().contains("at most 20"));
    h.disk.as_mut().unwrap().serial = None;
    h.disk.as_mut().unwrap().model = Some("SAMSUNG".into());
    assert!(disks(&h, 1 << 30).unwrap_err().to_string().contains("model or WWN"));
    assert_eq!(bus_of("/dev/sdb"), Some(Bus::Sata));
    assert_eq!(bus_of("/dev/vdaa"), None);
}

#[test]
fn lab_inventory_arms_adds_the_key_and_drops_the_production_address() {
    let inv = inv();
    let hosts = select(inv.hosts(), &["web1".into(), "db1".into()]).unwrap();
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILabLabLabLabLabLabLabLabLabLabLabLabLabLabLab metalboot-lab";
    let text = inventory(&hosts, key).unwrap();
    let back = Inventory::from_sources([("lab", text.as_str())]).unwrap();
    assert_eq!(back.hosts().len(), 2);
    let web = back.get("web1").unwrap();
    assert!(web.arm && web.ssh_authorized_keys.len() == 2 && web.ssh_authorized_keys[1] == key);
    assert_eq!(web.handoff.ansible_host, None);
    let db = back.get("db1").unwrap();
    assert_eq!(db.admin.as_ref().unwrap().ssh_authorized_keys.as_ref().unwrap().last().unwrap(), key);
    // everything else as the operator wrote it
    assert_eq!(db.disks, inv.get("db1").unwrap().disks);
    assert_eq!(db.layout, inv.get("db1").unwrap().layout);
}

#[test]
fn lab_config_keeps_the_operators_settings_and_replaces_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("etc");
    std::fs::create_dir_all(&base).unwrap();
    let text = r#"
[server]
listen = "192.0.2.1:80"
public_url = "http://boot.example"
data_dir = "/var/lib/metalboot"
inventory = "hosts"
templates = "tpl"
console = ["console=ttyS1,115200n8"]

[assets]
dir = "assets"
files = { "custom.tar.zst" = "images/custom.tar.zst", "initramfs.img" = "/srv/boot/initramfs.img" }

[dhcp]
mode = "proxy"
interface = "eno1"

[state]
url = "postgresql://db.example/metalboot"

[handoff]
first_boot_timeout_secs = 900
hooks = [{ name = "dns", command = ["/usr/local/bin/dns-add"] }]
"#;
    let cfg = Config::parse(text, &base, Some(base.join("metalboot.toml"))).unwrap();
    let lab = dir.path().join("lab");
    let out = server_config(text, &base, &cfg, &lab).unwrap();
    let back = Config::parse(&out, Path::new("/nowhere"), None).unwrap();
    assert_eq!(back.listen.to_string(), "10.99.0.1:8080");
    assert_eq!(back.public_url.as_deref(), Some("http://10.99.0.1:8080"));
    assert_eq!(back.data_dir, lab.join("data"));
    assert_eq!(back.inventory.as_deref(), Some(lab.join("hosts.toml").as_path()));
    assert_eq!(back.templates.as_deref(), Some(base.join("tpl").as_path()));
    assert_eq!(back.console, ["console=ttyS1,115200n8"]);
    assert_eq!(back.assets["vmlinuz"], base.join("assets/vmlinuz"));
    assert_eq!(back.assets["custom.tar.zst"], base.join("images/custom.tar.zst"));
    assert_eq!(back.assets["initramfs.img"], Path::new("/srv/boot/initramfs.img"));
    assert_eq!(back.assets, cfg.assets);
    assert_eq!(back.dhcp.mode, crate::dhcp::DhcpMode::Full);
    assert_eq!(back.dhcp.interface.as_deref(), Some("br0"));
    assert_eq!(back.tftp.listen.to_string(), "10.99.0.1:69");
    assert!(back.tls.is_some());
    assert_eq!(back.state.url, None);
    assert_eq!(back.handoff.first_boot_timeout_secs, 900);
    assert!(back.handoff.hooks.is_empty());
}
