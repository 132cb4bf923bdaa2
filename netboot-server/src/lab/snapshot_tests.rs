use super::*;
use crate::lab::vm::Bus;
use std::os::unix::fs::PermissionsExt;

fn disk(size: u64) -> Vec<LabDisk> {
    vec![LabDisk { file: "disk1.img".into(), serial: "WEB1".into(), bus: Bus::Virtio, size }]
}

#[test]
fn the_key_follows_every_part_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = dir.path().join("vmlinuz");
    std::fs::write(&kernel, b"kernel one").unwrap();
    let d8 = disk(8 << 30);
    let base = || KeyParts {
        config: "[server]\ninventory = \"hosts.toml\"\n",
        inventory: "[[host]]\nname = \"web1\"\n",
        hosts: vec![("web1", "bios", d8.as_slice())],
        assets: vec![kernel.clone()],
    };
    let k = key(&base()).unwrap();
    assert_eq!(k.len(), 24);
    assert_eq!(key(&base()).unwrap(), k, "the same parts, the same key");
    let d9 = disk(9 << 30);
    let changed = [
        KeyParts { config: "[server]\n", ..base() },
        KeyParts { inventory: "[[host]]\nname = \"web2\"\n", ..base() },
        KeyParts { hosts: vec![("web1", "uefi", d8.as_slice())], ..base() },
        KeyParts { hosts: vec![("web1", "bios", d9.as_slice())], ..base() },
        KeyParts { hosts: vec![], ..base() },
    ];
    for (i, p) in changed.iter().enumerate() {
        assert_ne!(key(p).unwrap(), k, "change {i} kept the key");
    }
    std::fs::write(&kernel, b"kernel two").unwrap();
    assert_ne!(key(&base()).unwrap(), k, "another kernel, the same key");
    std::fs::remove_file(&kernel).unwrap();
    let e = key(&base()).unwrap_err().to_string();
    assert!(e.contains("vmlinuz"), "{e}");
}

#[test]
fn an_entry_is_whole_or_absent_and_its_disks_read_only() {
    let cache = tempfile::tempdir().unwrap();
    let lab = tempfile::tempdir().unwrap();
    let l = lab.path();
    std::fs::write(l.join("id_ed25519"), "private").unwrap();
    std::fs::write(l.join("id_ed25519.pub"), "public").unwrap();
    std::fs::create_dir_all(l.join("data/tls")).unwrap();
    std::fs::write(l.join("data/tls/cert.pem"), "cert").unwrap();
    std::fs::write(l.join("disk1.qcow2"), "disk").unwrap();
    assert!(lookup(cache.path(), "k1").is_none());
    let hosts = vec![("web1".to_string(), vec![(l.join("disk1.qcow2"), "disk1.qcow2".to_string())])];
    let entry = store(cache.path(), "k1", l, &hosts).unwrap();
    assert_eq!(lookup(cache.path(), "k1"), Some(entry.clone()));
    let kept = entry.join("hosts/web1/disk1.qcow2");
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "disk");
    assert!(!l.join("disk1.qcow2").exists(), "the disk is moved, not copied");
    assert_eq!(std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777, 0o444);
    assert!(describe(&entry).contains("hosts web1"), "{}", describe(&entry));
    // a store that fails after a disk moved: the disk is back, nothing is left
    std::fs::write(l.join("disk1.qcow2"), "disk two").unwrap();
    let half = vec![(
        "web1".to_string(),
        vec![(l.join("disk1.qcow2"), "disk1.qcow2".to_string()), (l.join("gone.qcow2"), "disk2.qcow2".to_string())],
    )];
    let e = format!("{:#}", store(cache.path(), "k2", l, &half).unwrap_err());
    assert!(e.contains("the disks are back in the lab"), "{e}");
    assert_eq!(std::fs::read_to_string(l.join("disk1.qcow2")).unwrap(), "disk two");
    assert!(lookup(cache.path(), "k2").is_none());
    let left: Vec<_> = std::fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["k1"]);
    // another lab made k1 meanwhile: ours stays beside it, whole
    let hosts = vec![("web1".to_string(), vec![(l.join("disk1.qcow2"), "disk1.qcow2".to_string())])];
    let ours = store(cache.path(), "k1", l, &hosts).unwrap();
    assert_eq!(ours, cache.path().join(format!("k1-{}", std::process::id())));
    assert_eq!(std::fs::read_to_string(ours.join("hosts/web1/disk1.qcow2")).unwrap(), "disk two");
    assert_eq!(lookup(cache.path(), "k1"), Some(entry.clone()), "later labs use the first");
    // what a store that died left is cleared by the next one
    let dead = cache.path().join(".k3.999999999");
    std::fs::create_dir(&dead).unwrap();
    std::fs::write(l.join("disk1.qcow2"), "disk three").unwrap();
    store(cache.path(), "k4", l, &hosts).unwrap();
    assert!(!dead.exists());
    // restored into another lab: the key and the server's data
    let other = tempfile::tempdir().unwrap();
    restore(&entry, other.path()).unwrap();
    assert_eq!(std::fs::read_to_string(other.path().join("data/tls/cert.pem")).unwrap(), "cert");
    assert_eq!(std::fs::read_to_string(other.path().join("id_ed25519")).unwrap(), "private");
}

#[test]
fn an_overlay_reads_through_to_its_base() {
    if Command::new("qemu-img").arg("--version").output().is_err() {
        panic!("qemu-img is needed (apt-get install qemu-utils)");
    }
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.qcow2");
    create_blank(&base, 64 << 20).unwrap();
    let top = dir.path().join("top.qcow2");
    create_overlay(&base, &top).unwrap();
    let info = Command::new("qemu-img").args(["info", "--output=json"]).arg(&top).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(v["virtual-size"], 64 << 20);
    assert_eq!(v["backing-filename"], base.display().to_string());
    assert_eq!(qcow2_name("disk2.img"), "disk2.qcow2");
}

#[test]
fn a_cache_others_can_write_to_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = cache_dir(Some(dir.path())).unwrap_err().to_string();
    assert!(e.contains("owned by root and writable by root only"), "{e}");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    if nix::unistd::geteuid().is_root() {
        assert_eq!(cache_dir(Some(dir.path())).unwrap(), dir.path());
    }
}

#[test]
fn the_cache_is_named_by_an_absolute_path() {
    let c = cache_dir(Some(Path::new("rel/cache"))).unwrap();
    assert!(c.is_absolute() && c.ends_with("rel/cache"), "{}", c.display());
    assert_eq!(cache_dir(Some(Path::new("/x/y"))).unwrap(), PathBuf::from("/x/y"));
}
