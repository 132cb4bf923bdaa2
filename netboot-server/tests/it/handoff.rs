//! Handoff with a real `metalboot serve`: hosts driven through install over
//! HTTP with real SSH host keys, then `metalboot known-hosts` (checked with
//! `ssh-keygen -F`), `metalboot sshfp` (checked against `ssh-keygen -r`), the
//! Ansible inventory read by the real `ansible-inventory`, a command hook
//! and a signed webhook with retries, and the no-first-boot timeout.

use crate::common;

use hmac::{Hmac, Mac};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "handoff-api-token";
const SECRET: &str = "webhook-secret-123";

fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Three real host key pairs for `name`; returns the public key lines.
fn host_keys(dir: &Path, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for t in ["ed25519", "ecdsa", "rsa"] {
        let f = dir.join(format!("{name}_{t}"));
        sh(Command::new("ssh-keygen").args(["-q", "-t", t, "-N", "", "-C", &format!("root@{name}"), "-f"]).arg(&f));
        out.push(
            std::fs::read_to_string(f.with_extension("pub"))
                .unwrap_or_else(|_| std::fs::read_to_string(format!("{}.pub", f.display())).unwrap()),
        );
    }
    out.into_iter().map(|l| l.trim().to_string()).collect()
}

const INVENTORY: &str = r#"
[[host]]
name = "web1"
macs = ["52:54:00:00:10:01"]
labels = ["web", "prod"]
arm = true
disk = { serial = "WEB1-DISK" }
ssh_authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops"]

[[host]]
name = "db1"
macs = ["52:54:00:00:10:02"]
labels = ["db", "prod"]
arm = true
disk = { min_size = "100G" }
network = { mode = "static", addresses = ["192.0.2.20/24"], gateway = "192.0.2.1" }
ssh_authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops"]
admin = { name = "admin" }

[[host]]
name = "never"
macs = ["52:54:00:00:10:03"]
arm = true
disk = { path = "/dev/vda" }
ssh_authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops"]
"#;

/// A webhook receiver on 127.0.0.1: answers 500 to the first request and
/// 200 after; keeps (headers, body) of each.
type Seen = Arc<Mutex<Vec<(Vec<(String, String)>, Vec<u8>)>>>;
fn receiver() -> (String, Seen) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let (headers, body) = common::read_headers_and_body(&mut r);
            let first = s2.lock().unwrap().is_empty();
            s2.lock().unwrap().push((headers, body));
            let status = if first { "500 Internal Server Error" } else { "200 OK" };
            let _ = write!(c, "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, seen)
}

fn start(dir: &Path, hook_url: &str) -> common::ServerProcess {
    std::fs::write(dir.join("hosts.toml"), INVENTORY).unwrap();
    std::fs::write(dir.join("api-token"), TOKEN).unwrap();
    std::fs::write(dir.join("hook-secret"), format!("{SECRET}\n")).unwrap();
    let cfg = format!(
        r#"[server]
data_dir = "data"
inventory = "hosts.toml"
api_token_file = "api-token"

[handoff]
first_boot_timeout_secs = 10

[[handoff.hooks]]
name = "record"
on = ["installed", "failed"]
command = ["sh", "-c", "cp \"$METALBOOT_KNOWN_HOSTS\" \"hook-$METALBOOT_HOST.known_hosts\"; f=\"hook-$METALBOOT_HOST-$METALBOOT_EVENT.env\"; env | grep ^METALBOOT_ | sort > \"$f.part\" && mv \"$f.part\" \"$f\""]

[[handoff.hooks]]
name = "flaky"
labels = ["db"]
command = ["sh", "-c", "echo trying; exit 3"]
retries = 1

[[handoff.hooks]]
name = "notify"
hosts = ["web1"]
url = "{hook_url}"
secret_file = "hook-secret"
retries = 2
"#
    );
    std::fs::write(dir.join("metalboot.toml"), cfg).unwrap();
    common::spawn_server(dir, Path::new("metalboot.toml"))
}

fn api(base: &str, path: &str) -> serde_json::Value {
    ureq::get(&format!("{base}{path}"))
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .unwrap()
        .into_json()
        .unwrap()
}

/// boot → report → (optionally) first boot, as the installer and the
/// installed host would.
fn install(base: &str, name: &str, mac: &str, keys: &[String], address: Option<&str>) {
    let script =
        ureq::get(&format!("{base}/boot.ipxe?mac={mac}&platform=pcbios")).call().unwrap().into_string().unwrap();
    let token = common::token_of(&script);
    let rep = serde_json::json!({ "host_keys": keys });
    ureq::post(&format!("{base}/v1/hosts/{name}/report?token={token}")).send_json(rep).unwrap();
    if let Some(a) = address {
        let phone = serde_json::json!({ "host_keys": keys, "addresses": [a] });
        ureq::post(&format!("{base}/v1/hosts/{name}/installed?token={token}")).send_json(phone).unwrap();
    }
}

fn metalboot(dir: &Path, base: &str, args: &[&str]) -> String {
    let mut c = Command::new(env!("CARGO_BIN_EXE_metalboot"));
    c.current_dir(dir).args(["--config", "metalboot.toml"]);
    let mut all: Vec<&str> = Vec::new();
    // `--server` belongs to the subcommand: put it after the first word
    all.push(args[0]);
    all.extend(["--server", base]);
    all.extend(&args[1..]);
    sh(c.args(all))
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn timeline_hooks(base: &str, host: &str) -> Vec<String> {
    api(base, &format!("/v1/hosts/{host}"))["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "hook")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn installed_hosts_are_handed_to_ssh_ansible_dns_and_hooks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (url, seen) = receiver();
    let srv = start(dir, &url);
    let web1 = host_keys(dir, "web1");
    let db1 = host_keys(dir, "db1");
    install(&srv.base, "web1", "52:54:00:00:10:01", &web1, Some("10.99.0.101/24"));
    install(&srv.base, "db1", "52:54:00:00:10:02", &db1, Some("192.0.2.20/24"));
    install(&srv.base, "never", "52:54:00:00:10:03", &host_keys(dir, "never"), None);

    // known_hosts: every installed host under its name and address
    let kh = dir.join("known_hosts");
    metalboot(dir, &srv.base, &["known-hosts", "--output", kh.to_str().unwrap()]);
    for (name, addr, keys) in [("web1", "10.99.0.101", &web1), ("db1", "192.0.2.20", &db1)] {
        for who in [name, addr] {
            let found = sh(Command::new("ssh-keygen").args(["-F", who, "-f"]).arg(&kh));
            for k in keys.iter() {
                let b64 = k.split_whitespace().nth(1).unwrap();
                assert!(found.contains(b64), "{who}: key missing from known_hosts:\n{found}");
            }
        }
    }
    assert!(!std::fs::read_to_string(&kh).unwrap().contains("never"), "a host that never booted is in known_hosts");

    // SSHFP: exactly ssh-keygen's SHA-256 records
    let ours = metalboot(dir, &srv.base, &["sshfp"]);
    for (name, _) in [("web1", 0), ("db1", 0)] {
        for t in ["ed25519", "ecdsa", "rsa"] {
            let theirs =
                sh(Command::new("ssh-keygen").args(["-r", name, "-f"]).arg(dir.join(format!("{name}_{t}.pub"))));
            let sha256 = theirs.lines().find(|l| l.split_whitespace().nth(4) == Some("2")).unwrap();
            assert!(ours.lines().any(|l| l == sha256), "{sha256:?} not in:\n{ours}");
        }
    }
    assert_eq!(ours.lines().count(), 6);
    let zoned = metalboot(dir, &srv.base, &["sshfp", "--domain", "example.org"]);
    assert!(zoned
        .lines()
        .all(|l| l.starts_with("web1.example.org. IN SSHFP ") || l.starts_with("db1.example.org. IN SSHFP ")));

    // the real ansible-inventory, through metalboot as an inventory script
    let script = dir.join("inventory.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncd {} && exec {} --config metalboot.toml inventory --server {} ansible \"$@\"\n",
            dir.display(),
            env!("CARGO_BIN_EXE_metalboot"),
            srv.base
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let list: serde_json::Value = serde_json::from_str(&sh(Command::new("ansible-inventory")
        .env("ANSIBLE_LOCAL_TEMP", dir.join("ansible-tmp"))
        .env("HOME", dir)
        .args(["-i"])
        .arg(&script)
        .arg("--list")))
    .unwrap();
    let hv = &list["_meta"]["hostvars"];
    assert_eq!(hv["web1"]["ansible_host"], "10.99.0.101");
    assert_eq!(hv["web1"]["ansible_user"], "root");
    assert!(hv["web1"].get("ansible_become").is_none(), "root needs no sudo");
    assert_eq!(hv["db1"]["ansible_host"], "192.0.2.20");
    assert_eq!(hv["db1"]["ansible_user"], "admin", "the admin user, by default");
    assert_eq!(hv["db1"]["ansible_become"], true, "with its passwordless sudo");
    assert_eq!(hv["db1"]["metalboot_macs"][0], "52:54:00:00:10:02");
    assert!(hv["web1"]["metalboot_disk"].as_str().unwrap().contains("WEB1-DISK"));
    assert!(hv["web1"]["metalboot_installed_at"].is_string());
    assert!(hv.get("never").is_none(), "a host that never booted is in the inventory");
    let members = |g: &str| -> Vec<String> {
        list[g]["hosts"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    assert_eq!(members("prod"), ["db1", "web1"]);
    assert_eq!(members("web"), ["web1"]);
    assert_eq!(members("db"), ["db1"]);
    let one: serde_json::Value = serde_json::from_str(&sh(Command::new(&script).args(["--host", "db1"]))).unwrap();
    assert_eq!(one["ansible_user"], "admin");
    assert_eq!(one["ansible_become"], true);

    // command hook: the facts and a known_hosts file for the host
    wait_until("the web1 installed hook", Duration::from_secs(30), || dir.join("hook-web1-installed.env").exists());
    let env = std::fs::read_to_string(dir.join("hook-web1-installed.env")).unwrap();
    for want in [
        "METALBOOT_HOST=web1",
        "METALBOOT_EVENT=installed",
        "METALBOOT_STATE=installed",
        "METALBOOT_ANSIBLE_HOST=10.99.0.101",
        "METALBOOT_LABELS=web prod",
        "METALBOOT_MACS=52:54:00:00:10:01",
    ] {
        assert!(env.lines().any(|l| l == want), "{want} not in:\n{env}");
    }
    let hook_kh = std::fs::read_to_string(dir.join("hook-web1.known_hosts")).unwrap();
    assert!(hook_kh.starts_with("web1,10.99.0.101 "), "{hook_kh}");
    assert_eq!(hook_kh.lines().count(), 3);

    // a failing hook is retried a bounded number of times; the state stays
    wait_until("two flaky attempts", Duration::from_secs(30), || {
        timeline_hooks(&srv.base, "db1").iter().filter(|m| m.starts_with("hook flaky")).count() == 2
    });
    let flaky: Vec<String> =
        timeline_hooks(&srv.base, "db1").into_iter().filter(|m| m.starts_with("hook flaky")).collect();
    assert!(
        flaky[0].contains("will retry") && flaky[0].contains("exit status: 3") && flaky[0].contains("trying"),
        "{flaky:?}"
    );
    assert!(flaky[1].contains("gave up"), "{flaky:?}");
    assert_eq!(api(&srv.base, "/v1/hosts/db1")["state"], "installed");

    // webhook: refused once (500), delivered on the retry, signed
    wait_until("the webhook retry", Duration::from_secs(30), || seen.lock().unwrap().len() >= 2);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "only web1 matches the webhook, and the second attempt succeeded");
    for (headers, body) in &seen {
        let sig = headers.iter().find(|(k, _)| k == "x-metalboot-signature-256").map(|(_, v)| v.clone()).unwrap();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(body);
        let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(sig, want, "bad signature");
        let j: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(j["host"], "web1");
        assert_eq!(j["event"], "installed");
        assert_eq!(j["host_keys"].as_array().unwrap().len(), 3);
    }
    wait_until("the webhook's timeline entry", Duration::from_secs(10), || {
        timeline_hooks(&srv.base, "web1").iter().any(|m| m.starts_with("hook notify") && m.contains("done"))
    });

    // no first boot: `never` fails after the timeout, with its hook
    wait_until("never -> failed", Duration::from_secs(40), || api(&srv.base, "/v1/hosts/never")["state"] == "failed");
    let h = api(&srv.base, "/v1/hosts/never");
    assert_eq!(h["failed_step"], "first-boot");
    assert!(h["failed_error"].as_str().unwrap().contains("no first boot"));
    wait_until("the failed hook", Duration::from_secs(30), || dir.join("hook-never-failed.env").exists());
    let env = std::fs::read_to_string(dir.join("hook-never-failed.env")).unwrap();
    assert!(env.contains("METALBOOT_FAILED_STEP=first-boot"), "{env}");
}

#[test]
fn bad_hook_config_is_refused_with_the_field_named() {
    let tmp = tempfile::tempdir().unwrap();
    for (hook, want) in [
        ("name = \"x\"\n", "handoff.hooks[0]`: a hook needs a `command` or a `url`"),
        ("name = \"x\"\nurl = \"http://127.0.0.1:1/\"\n", "handoff.hooks[0].secret_file"),
        ("name = \"x\"\ncommand = [\"true\"]\non = [\"booted\"]\n", "handoff.hooks[0].on"),
        ("name = \"x\"\ncommand = [\"true\"]\nretries = 99\n", "handoff.hooks[0].retries"),
        ("name = \"x\"\ncommand = [\"true\"]\nshell = \"rm -rf /\"\n", "field `handoff.hooks[0].shell`: unknown field"),
    ] {
        let cfg = tmp.path().join("bad.toml");
        std::fs::write(&cfg, format!("[[handoff.hooks]]\n{hook}")).unwrap();
        let out = crate::common::metalboot(tmp.path(), &cfg, &["check-config"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{hook}: accepted");
        assert!(err.contains(want), "{hook}: {err}");
    }
}

/// Lines of the file the `count` hook appends to, one per run.
fn hook_runs(dir: &Path, host: &str) -> usize {
    std::fs::read_to_string(dir.join(format!("hook-{host}-failed.log"))).map(|t| t.lines().count()).unwrap_or(0)
}

/// Fifty `status=failed` GETs for one install, sent at once, fail the host
/// once: one is taken (200), 49 are refused (403), and the failure hooks —
/// a command and a webhook — run once. An operator's failure report fires
/// them too, once, however often it is sent; a `failed` event after it is
/// refused. The hooks of a host failed last (`never`) are the marker that
/// every hook started before it has run.
#[test]
fn failure_hooks_fire_once_per_transition_into_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (url, seen) = receiver();
    std::fs::write(dir.join("hosts.toml"), INVENTORY).unwrap();
    std::fs::write(dir.join("api-token"), TOKEN).unwrap();
    std::fs::write(dir.join("hook-secret"), SECRET).unwrap();
    let cfg = format!(
        r#"[server]
data_dir = "data"
inventory = "hosts.toml"
api_token_file = "api-token"

[[handoff.hooks]]
name = "count"
on = ["failed"]
command = ["sh", "-c", "echo \"$METALBOOT_FAILED_STEP\" >> \"hook-$METALBOOT_HOST-failed.log\""]
retries = 0

[[handoff.hooks]]
name = "notify"
on = ["failed"]
hosts = ["web1"]
url = "{url}"
secret_file = "hook-secret"
retries = 0
"#
    );
    std::fs::write(dir.join("metalboot.toml"), cfg).unwrap();
    let srv = common::spawn_server(dir, Path::new("metalboot.toml"));
    let boot = |mac: &str| {
        let s = ureq::get(&format!("{}/boot.ipxe?mac={mac}&platform=pcbios", srv.base)).call().unwrap();
        common::token_of(&s.into_string().unwrap())
    };
    let (web1, db1) = (boot("52:54:00:00:10:01"), boot("52:54:00:00:10:02"));
    boot("52:54:00:00:10:03");

    let url = format!("{}/v1/hosts/web1/events/unpack?token={web1}&status=failed&message=disk%20full", srv.base);
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || match ureq::get(&url).call() {
                Ok(r) => r.status(),
                Err(ureq::Error::Status(c, _)) => c,
                Err(e) => panic!("{e}"),
            })
        })
        .collect();
    let mut codes: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    codes.sort();
    assert_eq!((codes[0], codes[1], codes[49]), (200, 403, 403), "{codes:?}");

    let fail = |host: &str| {
        ureq::post(&format!("{}/v1/hosts/{host}/fail", srv.base))
            .set("Authorization", &format!("Bearer {TOKEN}"))
            .send_json(serde_json::json!({"step": "network", "error": "no network in installer"}))
            .unwrap();
    };
    fail("db1");
    fail("db1");
    let late = format!("{}/v1/hosts/db1/events/unpack?token={db1}&status=failed&message=x", srv.base);
    assert!(matches!(ureq::get(&late).call(), Err(ureq::Error::Status(403, _))));
    fail("never");

    wait_until("the last host's hook", Duration::from_secs(30), || hook_runs(dir, "never") == 1);
    wait_until("the webhook", Duration::from_secs(30), || !seen.lock().unwrap().is_empty());
    assert_eq!(hook_runs(dir, "web1"), 1, "web1's failure hook ran more than once");
    assert_eq!(hook_runs(dir, "db1"), 1, "db1's failure hook ran more than once");
    assert_eq!(std::fs::read_to_string(dir.join("hook-web1-failed.log")).unwrap(), "unpack\n");
    assert_eq!(seen.lock().unwrap().len(), 1, "more than one webhook for one failure");
    let notes = |h: &str| timeline_hooks(&srv.base, h);
    assert_eq!(notes("web1").len(), 2, "{:?}", notes("web1"));
    assert_eq!(notes("db1").len(), 1, "{:?}", notes("db1"));
}
