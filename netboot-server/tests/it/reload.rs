//! SIGHUP reloads the inventory of a real `metalboot serve` process: a host
//! added is served (and armed) without a restart, an install in flight
//! keeps going with its token, and a file that does not load, or an
//! inventory that drops a host mid-install, is refused with the error
//! logged while the previous inventory keeps serving.

use crate::common;
use std::path::Path;
use std::time::{Duration, Instant};

const NEWBOX: &str = r#"[[host]]
name = "newbox"
macs = ["52:54:00:00:00:99"]
arm = true
disk = { serial = "NEW-DISK" }
ssh_authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example"]
"#;

fn hup(pid: u32) {
    let st = std::process::Command::new("kill").args(["-HUP", &pid.to_string()]).status().unwrap();
    assert!(st.success());
}

/// Waits until the server log has `count` lines containing `what`.
fn wait_log(dir: &Path, what: &str, count: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        if log.lines().filter(|l| l.contains(what)).count() >= count {
            return log;
        }
        assert!(Instant::now() < deadline, "no {what:?} in the server log:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn status(url: &str) -> u16 {
    match ureq::get(url).set("Authorization", "Bearer reload-api-token").call() {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("{url}: {e}"),
    }
}

#[test]
fn sighup_reloads_the_inventory_and_refuses_a_bad_one_keeping_the_old() {
    let dir = tempfile::tempdir().unwrap();
    common::write_assets(&dir.path().join("data"));
    let inv = dir.path().join("inventory");
    std::fs::create_dir(&inv).unwrap();
    for f in ["image-hosts.toml", "debian-hosts.toml"] {
        std::fs::copy(common::fixtures().join("inventory").join(f), inv.join(f)).unwrap();
    }
    let cfg = dir.path().join("metalboot.toml");
    std::fs::write(&cfg, "[server]\ndata_dir = \"data\"\ninventory = \"inventory\"\napi_token_file = \"api-token\"\n")
        .unwrap();
    std::fs::write(dir.path().join("api-token"), "reload-api-token\n").unwrap();
    let srv = common::spawn_server(dir.path(), &cfg);
    let base = srv.base.clone();
    let pid = srv.child.id();
    assert_eq!(status(&format!("{base}/v1/hosts/newbox")), 404);

    // an install of web1 under way
    let script = ureq::get(&format!("{base}/boot.ipxe?mac=52:54:00:00:00:01&platform=pcbios"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let token = common::token_of(&script);
    let event = |n: u8| {
        ureq::post(&format!("{base}/v1/hosts/web1/events?token={token}"))
            .send_json(serde_json::json!({"step": "unpack", "percent": n}))
            .map(|r| r.status())
            .unwrap_or_else(|e| panic!("event during reloads: {e}"))
    };
    assert_eq!(event(10), 200);

    // a host added: served and armed after SIGHUP, no restart
    std::fs::write(inv.join("new.toml"), NEWBOX).unwrap();
    hup(pid);
    let log = wait_log(dir.path(), "inventory reloaded", 1);
    assert!(log.contains("added newbox") && log.contains("armed newbox"), "{log}");
    assert_eq!(status(&format!("{base}/v1/hosts/newbox")), 200);
    let boot = ureq::get(&format!("{base}/boot.ipxe?mac=52:54:00:00:00:99&platform=pcbios"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(boot.contains("metalboot.host=newbox") && boot.contains("metalboot.token="), "{boot}");
    assert_eq!(event(20), 200, "the install in flight goes on");

    // a file that does not load: refused, the previous inventory serves on
    std::fs::write(inv.join("broken.toml"), "[[host]]\nname = \"half\"\nmacs = [\n").unwrap();
    hup(pid);
    let log = wait_log(dir.path(), "reload refused", 1);
    assert!(log.contains("broken.toml"), "the error names the file:\n{log}");
    std::fs::remove_file(inv.join("broken.toml")).unwrap();
    assert_eq!(status(&format!("{base}/v1/hosts/newbox")), 200);
    assert_eq!(event(30), 200);

    // dropping a host mid-install: refused, naming it
    let web = std::fs::read_to_string(inv.join("image-hosts.toml")).unwrap();
    std::fs::write(inv.join("image-hosts.toml"), web.replace("name = \"web1\"", "name = \"web9\"")).unwrap();
    hup(pid);
    let log = wait_log(dir.path(), "reload refused", 2);
    assert!(log.contains("host \\\"web1\\\" is installing") || log.contains("host \"web1\" is installing"), "{log}");
    assert_eq!(event(40), 200);
    assert_eq!(status(&format!("{base}/v1/hosts/web9")), 404);

    // `metalboot reload` (the unit's ExecReload): waits, and fails on refusal
    let reload = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_metalboot"))
            .args(["--config", cfg.to_str().unwrap(), "reload", "--server", &base])
            .current_dir(dir.path())
            .output()
            .unwrap();
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let (ok, said) = reload();
    assert!(!ok && said.contains("reload refused") && said.contains("web1"), "{said}");
    std::fs::write(inv.join("image-hosts.toml"), &web).unwrap();
    // newbox fetched its installer above: it is booting, so it stays
    let (ok, said) = reload();
    assert!(ok && said.starts_with("inventory reloaded: ") && !said.contains("removed"), "{said}");
    assert_eq!(status(&format!("{base}/v1/hosts/newbox")), 200);
    assert_eq!(event(50), 200);
}
