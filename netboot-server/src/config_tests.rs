use super::*;

#[test]
fn embedded_default_loads() {
    let c = Config::load(None).unwrap();
    assert!(c.assets.contains_key("rootfs.tar.zst"));
}

#[test]
fn both_image_flavours_are_default_assets_in_the_asset_dir() {
    let c = Config::parse("[assets]\ndir = \"/srv/mb\"\n", Path::new("/"), None).unwrap();
    assert_eq!(c.assets["rootfs.tar.zst"], PathBuf::from("/srv/mb/rootfs.tar.zst"));
    assert_eq!(c.assets["rootfs-cloud.tar.zst"], PathBuf::from("/srv/mb/rootfs-cloud.tar.zst"));
}

#[test]
fn rejects_unknown_key_naming_it() {
    let e = Config::parse("[server]\nlisten = \"0.0.0.0:1\"\nbogus = 1\n", Path::new("/"), None).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("bogus"), "{msg}");
}

#[test]
fn rejects_hostile_public_url() {
    let e =
        Config::parse("[server]\npublic_url = \"http://x/\\nchain http://evil\"\n", Path::new("/"), None).unwrap_err();
    assert!(format!("{e:#}").contains("server.public_url"), "{e:#}");
    assert!(check_base_url("http://10.0.0.1:8080").is_ok());
    assert!(check_base_url("http://x/${evil}").is_err());
    assert!(check_base_url("ftp://x").is_err());
}

#[test]
fn router_advertisements_default_by_mode() {
    let on = |dhcp: &str| Config::parse(dhcp, Path::new("/"), None).map(|c| c.dhcp.router_advertisements_on());
    assert!(on("[dhcp]\nmode = \"full\"\n").unwrap());
    assert!(!on("[dhcp]\nmode = \"proxy\"\n").unwrap());
    assert!(!on("[dhcp]\n").unwrap());
    assert!(!on("[dhcp]\nmode = \"full\"\nrouter_advertisements = false\n").unwrap());
    assert!(on("[dhcp]\nmode = \"proxy\"\nrouter_advertisements = true\n").unwrap());
    let e = on("[dhcp]\nrouter_advertisements = true\n").unwrap_err();
    assert!(format!("{e:#}").contains("dhcp.router_advertisements"), "{e:#}");
    let e = on("[dhcp]\nmode = \"full\"\nrouter_advertisement = true\n").unwrap_err();
    assert!(format!("{e:#}").contains("router_advertisement"), "{e:#}");
}

#[test]
fn connection_limits_have_defaults_and_are_checked() {
    let c = Config::parse("[server]\n", Path::new("/"), None).unwrap();
    assert_eq!(c.http_limits, HttpLimits::default());
    let c = Config::parse(
        "[server]\nheader_read_timeout_secs = 5\nmax_connections = 100\nmax_connections_per_ip = 10\n",
        Path::new("/"),
        None,
    )
    .unwrap();
    assert_eq!(
        c.http_limits,
        HttpLimits {
            header_read_timeout: std::time::Duration::from_secs(5),
            max_connections: 100,
            max_connections_per_ip: 10
        }
    );
    for (text, field) in [
        ("header_read_timeout_secs = 0", "server.header_read_timeout_secs"),
        ("max_connections = 0", "server.max_connections"),
        ("max_connections_per_ip = 0", "server.max_connections_per_ip"),
        ("max_connections = 10\nmax_connections_per_ip = 11", "server.max_connections_per_ip"),
        ("max_connections = -1", "server.max_connections"),
    ] {
        let e = Config::parse(&format!("[server]\n{text}\n"), Path::new("/"), None).unwrap_err();
        assert!(format!("{e:#}").contains(field), "{text}: {e:#}");
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("metalboot.toml");
    std::fs::write(&f, "[tftp]\nmax_timeout_secs = 0\n").unwrap();
    let e = format!("{:#}", Config::load(Some(&f)).unwrap_err());
    assert!(e.contains(&f.display().to_string()) && e.contains("tftp.max_timeout_secs"), "{e}");
}

#[test]
fn relative_paths_follow_the_config_file() {
    let c =
        Config::parse("[server]\ndata_dir = \"state\"\ninventory = \"hosts\"\n", Path::new("/etc/mb"), None).unwrap();
    assert_eq!(c.data_dir, PathBuf::from("/etc/mb/state"));
    assert_eq!(c.inventory.unwrap(), PathBuf::from("/etc/mb/hosts"));
    assert_eq!(c.assets["vmlinuz"], PathBuf::from("/etc/mb/state/assets/vmlinuz"));
}

#[test]
fn a_hooks_ca_file_must_hold_certificates_and_go_with_https() {
    let d = tempfile::tempdir().unwrap();
    let hook = |url: &str, ca: &str| {
        format!("[[handoff.hooks]]\nname = \"n\"\nurl = \"{url}\"\nsecret_file = \"s\"\nca_file = \"{ca}\"\n")
    };
    let err = |text: String| format!("{:#}", Config::parse(&text, d.path(), None).unwrap_err());
    let e = err(hook("http://hooks.example.org/x", "ca.pem"));
    assert!(e.contains("handoff.hooks[0].ca_file") && e.contains("https://"), "{e}");
    let e = err(hook("https://hooks.example.org/x", "missing.pem"));
    assert!(e.contains("handoff.hooks[0].ca_file") && e.contains("missing.pem"), "{e}");
    std::fs::write(d.path().join("empty.pem"), "not a certificate\n").unwrap();
    let e = err(hook("https://hooks.example.org/x", "empty.pem"));
    assert!(e.contains("no PEM certificate"), "{e}");
    let key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertificateParams::new(vec!["ca".to_string()]).unwrap().self_signed(&key).unwrap();
    std::fs::write(d.path().join("ca.pem"), ca.pem()).unwrap();
    let c = Config::parse(&hook("https://hooks.example.org/x", "ca.pem"), d.path(), None).unwrap();
    assert_eq!(c.handoff.hooks[0].ca_file.as_deref(), Some(d.path().join("ca.pem").as_path()));
}

#[test]
fn relayed_subnets_parse_and_need_full_mode() {
    let parse = |dhcp: &str| Config::parse(dhcp, Path::new("/"), None);
    let c = parse(
        "[dhcp]\nmode = \"full\"\nsubnet = \"10.99.0.0/24\"\n[[dhcp.subnets]]\nsubnet = \"10.98.1.0/24\"\nrange = [\"10.98.1.10\", \"10.98.1.20\"]\nrouter = \"10.98.1.1\"\n",
    )
    .unwrap();
    assert_eq!(c.dhcp.subnets.len(), 1);
    assert_eq!(c.dhcp.subnets[0].router, Some(std::net::Ipv4Addr::new(10, 98, 1, 1)));
    let e = parse("[dhcp]\nmode = \"proxy\"\n[[dhcp.subnets]]\nsubnet = \"10.98.1.0/24\"\nrange = [\"10.98.1.10\", \"10.98.1.20\"]\n")
        .unwrap_err();
    assert!(format!("{e:#}").contains("dhcp.subnets"), "{e:#}");
    let e = parse("[dhcp]\nmode = \"full\"\nsubnet = \"10.99.0.0/24\"\n[[dhcp.subnets]]\nsubnet = \"10.98.1.0/24\"\nrange = [\"10.98.1.10\", \"10.98.1.20\"]\npool = 3\n")
        .unwrap_err();
    assert!(format!("{e:#}").contains("pool"), "{e:#}");
    // checked at load, with no interface: overlap with the interface's subnet
    let e = parse(
        "[dhcp]\nmode = \"full\"\nsubnet = \"10.98.0.0/16\"\n[[dhcp.subnets]]\nsubnet = \"10.98.1.0/24\"\nrange = [\"10.98.1.10\", \"10.98.1.20\"]\n",
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("overlaps dhcp.subnet 10.98.0.0/16"), "{e:#}");
    let e = parse("[dhcp]\nmode = \"full\"\n[[dhcp.subnets]]\nsubnet = \"10.98.1.0/24\"\nrange = [\"10.98.1.10\", \"10.98.1.20\"]\n")
        .unwrap_err();
    assert!(format!("{e:#}").contains("needs dhcp.subnet"), "{e:#}");
}

#[test]
fn state_url_must_be_postgres() {
    let parse = |t: &str| Config::parse(t, Path::new("/"), None);
    let c = parse("[state]\nurl = \"postgresql://metalboot@db.example.org/metalboot\"\n").unwrap();
    assert_eq!(c.state.url.as_deref(), Some("postgresql://metalboot@db.example.org/metalboot"));
    assert!(parse("").unwrap().state.url.is_none());
    let e = parse("[state]\nurl = \"sqlite:///var/lib/x\"\n").unwrap_err();
    assert!(format!("{e:#}").contains("state.url"), "{e:#}");
}
