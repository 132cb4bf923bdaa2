//! The install-once guard and token checks, through the real router.

use crate::common;
use axum::http::StatusCode;
use common::{token_of, TestServer};
use serde_json::json;

const WEB1: &str = "/boot.ipxe?mac=52:54:00:00:00:01&platform=pcbios&buildarch=i386";

async fn state_of(s: &TestServer, host: &str) -> String {
    s.api("GET", &format!("/v1/hosts/{host}")).await.1["state"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn armed_host_gets_installer_then_local_boot_after_install() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let s = TestServer::new();
    let (st, script) = s.get(WEB1).await;
    assert_eq!(st, StatusCode::OK);
    assert!(script.starts_with("#!ipxe\n"), "{script}");
    assert!(script.contains("kernel http://192.0.2.1:8080/assets/vmlinuz initrd=initramfs.img "), "{script}");
    assert!(script.contains("metalboot.host=web1"));
    let token = token_of(&script);
    assert_eq!(token.len(), 64);
    assert_eq!(state_of(&s, "web1").await, "booting");

    let (st, plan) = s.get(&format!("/v1/hosts/web1/plan?token={token}")).await;
    assert_eq!(st, StatusCode::OK, "{plan}");
    let plan: metalboot_spec::InstallPlan = serde_json::from_str(&plan).unwrap();
    plan.validate().unwrap();
    assert_eq!(plan.image.sha256, hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&s.rootfs)));
    assert_eq!(plan.image.size, s.rootfs.len() as u64);
    assert_eq!(plan.image.url, "http://192.0.2.1:8080/assets/rootfs.tar.zst");

    let ev = json!({"step": "partition", "percent": 5, "message": "writing GPT"});
    assert_eq!(s.post_json(&format!("/v1/hosts/web1/events?token={token}"), ev).await.0, StatusCode::OK);
    assert_eq!(state_of(&s, "web1").await, "installing");
    let rep =
        json!({"host_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"]});
    assert_eq!(s.post_json(&format!("/v1/hosts/web1/report?token={token}"), rep.clone()).await.0, StatusCode::OK);
    assert_eq!(state_of(&s, "web1").await, "rebooting");

    // Rebooting into the installed system: the same MAC now gets local boot.
    let (_, script) = s.get(WEB1).await;
    assert!(script.contains("sanboot --no-describe --drive 0x80 || sanboot --no-describe --drive 0x81"), "{script}");
    assert!(!script.contains("metalboot.token"));

    let phone = json!({"host_keys": rep["host_keys"], "addresses": ["192.0.2.101"]});
    assert_eq!(s.post_json(&format!("/v1/hosts/web1/installed?token={token}"), phone.clone()).await.0, StatusCode::OK);
    let (_, host) = s.api("GET", "/v1/hosts/web1").await;
    assert_eq!(host["state"], "installed");
    assert_eq!(host["addresses"][0], "192.0.2.101");
    let states: Vec<&str> = host["timeline"].as_array().unwrap().iter().filter_map(|e| e["state"].as_str()).collect();
    assert_eq!(states, ["armed", "booting", "installing", "rebooting", "installed"]);

    // Install once: local boot on every later boot, and the token is dead.
    for platform in ["pcbios", "efi"] {
        let (_, script) = s.get(&format!("/boot.ipxe?mac=52:54:00:00:00:01&platform={platform}")).await;
        assert!(!script.contains("kernel"), "{script}");
    }
    // Each local boot of a known host is on its timeline, with the reason.
    let (_, host) = s.api("GET", "/v1/hosts/web1").await;
    let boots: Vec<&str> = host["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "boot")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert_eq!(boots.len(), 3, "{boots:?}");
    assert!(boots.iter().all(|m| m.starts_with("local boot served")), "{boots:?}");
    assert!(boots[2].contains("installed"), "{boots:?}");
    // the same phone-home again (its answer lost) gets the same answer and
    // changes nothing; the token opens nothing else any more
    let (st, _) = s.post_json(&format!("/v1/hosts/web1/installed?token={token}"), phone.clone()).await;
    assert_eq!(st, StatusCode::OK);
    let (_, again) = s.api("GET", "/v1/hosts/web1").await;
    assert_eq!((&again["state"], &again["timeline"]), (&host["state"], &host["timeline"]));
    let (st, _) = s.post_json("/v1/hosts/web1/installed?token=0123", phone).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(s.get(&format!("/v1/hosts/web1/plan?token={token}")).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn unknown_mac_gets_local_boot_per_platform() {
    let s = TestServer::new();
    let (st, bios) = s.get("/boot.ipxe?mac=52:54:00:99:99:99&platform=pcbios").await;
    assert_eq!(st, StatusCode::OK);
    assert!(bios.contains("unknown machine") && bios.contains("sanboot"), "{bios}");
    let (_, efi) = s.get("/boot.ipxe?mac=52-54-00-99-99-99&platform=efi").await;
    assert!(efi.lines().any(|l| l == "exit 1"), "{efi}");
}

#[tokio::test]
async fn unarmed_host_gets_local_boot_until_armed_and_disarm_stops_it() {
    let s = TestServer::new();
    let db1 = "/boot.ipxe?mac=52:54:00:00:01:02&platform=efi";
    assert!(s.get(db1).await.1.contains("host is not armed"));
    assert_eq!(s.api("POST", "/v1/hosts/db1/arm").await.1["state"], "armed");
    let (_, script) = s.get(db1).await;
    assert!(script.contains("metalboot.host=db1"), "{script}");
    let token = token_of(&script);
    assert_eq!(s.api("POST", "/v1/hosts/db1/disarm").await.1["state"], "disarmed");
    assert!(s.get(db1).await.1.contains("host is disarmed"));
    assert_eq!(s.get(&format!("/v1/hosts/db1/plan?token={token}")).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn wrong_or_old_token_is_403_and_changes_nothing() {
    let s = TestServer::new();
    let old = token_of(&s.get(WEB1).await.1);
    let current = token_of(&s.get(WEB1).await.1); // a second boot issues a new token
    assert_ne!(old, current);
    // its first use revokes the old one
    assert_eq!(s.get(&format!("/v1/hosts/web1/plan?token={current}")).await.0, StatusCode::OK);
    let before = s.api("GET", "/v1/hosts/web1").await.1;
    let ev = json!({"step": "partition", "status": "failed", "message": "x"});
    for bad in [old.as_str(), "", "0000", &current[..63]] {
        for path in ["events", "report", "installed"] {
            let body = if path == "events" { ev.clone() } else { json!({}) };
            let (st, _) = s.post_json(&format!("/v1/hosts/web1/{path}?token={bad}"), body).await;
            assert_eq!(st, StatusCode::FORBIDDEN, "{path} with {bad:?}");
        }
        assert_eq!(s.get(&format!("/v1/hosts/web1/plan?token={bad}")).await.0, StatusCode::FORBIDDEN);
    }
    // another host's token does not work either
    let (st, _) = s.post_json(&format!("/v1/hosts/db1/events?token={current}"), ev.clone()).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(before, s.api("GET", "/v1/hosts/web1").await.1);
    assert_eq!(s.post_json(&format!("/v1/hosts/web1/events?token={current}"), ev).await.0, StatusCode::OK);
    assert_eq!(s.api("GET", "/v1/hosts/web1").await.1["state"], "failed");
}

#[tokio::test]
async fn failed_install_is_recorded_and_boots_local() {
    let s = TestServer::new();
    let t = token_of(&s.get(WEB1).await.1);
    let ev =
        json!({"step": "select-disk", "status": "failed", "message": "2 disks match serial=WD-WCC4N0123456: vda, vdb"});
    assert_eq!(s.post_json(&format!("/v1/hosts/web1/events?token={t}"), ev).await.0, StatusCode::OK);
    let (_, h) = s.api("GET", "/v1/hosts/web1").await;
    assert_eq!(h["state"], "failed");
    assert_eq!(h["failed_step"], "select-disk");
    assert!(s.get(WEB1).await.1.contains("last install failed"));
}

#[tokio::test]
async fn bad_requests_are_4xx_with_a_reason() {
    let s = TestServer::new();
    // no mac: iPXE came from DHCP's boot file name; it is sent back with its facts
    let (st, body) = s.get("/boot.ipxe").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        body,
        "#!ipxe\nchain http://192.0.2.1:8080/boot.ipxe?mac=${netX/mac}&platform=${platform}&buildarch=${buildarch}&uuid=${uuid}\n"
    );
    let (st, body) = s.get("/boot.ipxe?mac=zz:54:00:00:00:01").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(body.contains("not a MAC address"), "{body}");
    assert_eq!(s.get("/boot.ipxe?mac=52:54:00:00:00:01&platform=arm").await.0, StatusCode::BAD_REQUEST);
    let t = token_of(&s.get(WEB1).await.1);
    let (st, _) = s.post_json(&format!("/v1/hosts/web1/events?token={t}"), json!({"step": "a b"})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = s.post_json(&format!("/v1/hosts/web1/report?token={t}"), json!({"host_keys": ["rm -rf /"]})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(s.get("/v1/hosts/nosuch/plan?token=x").await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn operator_api_needs_the_bearer_token() {
    let s = TestServer::new();
    assert_eq!(s.get("/v1/hosts").await.0, StatusCode::UNAUTHORIZED);
    let req = axum::http::Request::post("/v1/hosts/db1/arm")
        .header("authorization", "Bearer wrong")
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(s.send(req).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(state_of(&s, "db1").await, "absent");
    let (st, list) = s.api("GET", "/v1/hosts").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 7);
    assert_eq!(s.api("POST", "/v1/hosts/nosuch/arm").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn debian_installer_host_gets_di_kernel_and_its_preseed() {
    let s = TestServer::new();
    s.api("POST", "/v1/hosts/di1/arm").await;
    let (_, script) = s.get("/boot.ipxe?mac=52:54:00:00:00:11&platform=efi").await;
    assert!(script.contains("kernel http://192.0.2.1:8080/assets/di-linux initrd=di-initrd.gz "), "{script}");
    let i = script.find("preseed?token=").unwrap() + "preseed?token=".len();
    let token: String = script[i..].chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    let (st, preseed) = s.get(&format!("/v1/hosts/di1/preseed?token={token}")).await;
    assert_eq!(st, StatusCode::OK);
    assert!(preseed.contains("d-i netcfg/get_ipaddress string 192.0.2.31"), "{preseed}");
    assert_eq!(s.get("/v1/hosts/di1/preseed?token=wrong").await.0, StatusCode::FORBIDDEN);

    // the scripts its commands fetch, with the same token
    for name in ["select-disk.sh", "subvolumes.sh", "finish.sh"] {
        let (st, body) = s.get(&format!("/v1/hosts/di1/di/{name}?token={token}")).await;
        assert_eq!(st, StatusCode::OK, "{name}: {body}");
        assert!(body.starts_with("#!/bin/sh\n# metalboot "), "{name}: {body}");
        assert!(preseed.contains(&format!("/v1/hosts/di1/di/{name}?token={token}")), "{name} not in the preseed");
        assert_eq!(s.get(&format!("/v1/hosts/di1/di/{name}?token=wrong")).await.0, StatusCode::FORBIDDEN);
    }
    assert_eq!(s.get(&format!("/v1/hosts/di1/di/other.sh?token={token}")).await.0, StatusCode::NOT_FOUND);

    // its busybox wget reports progress with GETs
    let (st, _) =
        s.get(&format!("/v1/hosts/di1/events/preseed-early?token={token}&message=debian-installer%20started")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(state_of(&s, "di1").await, "installing");
    let (_, host) = s.api("GET", "/v1/hosts/di1").await;
    let timeline = host.to_string();
    assert!(timeline.contains("debian-installer started"), "{timeline}");
    assert_eq!(s.get("/v1/hosts/di1/events/x?token=wrong").await.0, StatusCode::FORBIDDEN);
    let (st, _) =
        s.get(&format!("/v1/hosts/di1/events/select-disk?token={token}&status=failed&message=2%20disks")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(state_of(&s, "di1").await, "failed");
}
