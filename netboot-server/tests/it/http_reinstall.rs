//! `POST /v1/hosts/{name}/reinstall` and `/fail` through the real router:
//! what a reinstall in place hands the target, and what it refuses.

use crate::common;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{TestServer, API_TOKEN};
use serde_json::{json, Value};

async fn api_post(s: &TestServer, uri: &str, body: Value, auth: bool) -> (StatusCode, String) {
    let mut req = Request::post(uri).header("content-type", "application/json");
    if auth {
        req = req.header("authorization", format!("Bearer {API_TOKEN}"));
    }
    let (st, _, b) = s.send(req.body(Body::from(body.to_string())).unwrap()).await;
    (st, String::from_utf8_lossy(&b).into_owned())
}

fn discovered() -> Value {
    json!({
        "mac": "52:54:00:00:00:03",
        "network": { "mode": "static", "addresses": ["203.0.113.7/32"], "gateway": "172.31.1.1",
                     "dns": ["185.12.64.1"] },
        "disk": { "serial": "VPS-ROOT", "wipe": true },
        "via": "kexec"
    })
}

#[tokio::test]
async fn reinstall_hands_out_the_installer_with_the_discovered_network_and_the_plan_follows_it() {
    let s = TestServer::new();
    let (st, body) = api_post(&s, "/v1/hosts/vps1/reinstall", discovered(), true).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let boot: Value = serde_json::from_str(&body).unwrap();
    let cmdline = boot["cmdline"].as_str().unwrap();
    let token = boot["token"].as_str().unwrap();
    assert_eq!(boot["kernel_url"], "http://192.0.2.1:8080/assets/vmlinuz");
    assert_eq!(boot["initramfs_url"], "http://192.0.2.1:8080/assets/initramfs.img");
    for want in [
        "BOOTIF=01-52-54-00-00-00-03",
        "ip=203.0.113.7::172.31.1.1:255.255.255.255:vps1::off:185.12.64.1",
        "metalboot.url=http://192.0.2.1:8080",
        "metalboot.host=vps1",
        &format!("metalboot.token={token}"),
        "metalboot.fallback=reboot",
    ] {
        assert!(cmdline.split(' ').any(|w| w == want), "{want} not in {cmdline}");
    }
    let (_, host) = s.api("GET", "/v1/hosts/vps1").await;
    assert_eq!(host["state"], "booting");
    // the inventory's selector as such, for a reinstall from a rescue
    // system, where it chooses the disk
    let view: metalboot::api::HostView = serde_json::from_value(host.clone()).unwrap();
    assert_eq!(view.disk_selector.map(|d| d.describe()), Some(view.disk.clone()), "{host}");

    // the plan carries the discovered network (by MAC) and the confirmed disk
    let (st, plan) = s.get(&format!("/v1/hosts/vps1/plan?token={token}")).await;
    assert_eq!(st, StatusCode::OK, "{plan}");
    let plan: metalboot_spec::InstallPlan = serde_json::from_str(&plan).unwrap();
    plan.validate().unwrap();
    assert_eq!(plan.network.addresses[0].to_string(), "203.0.113.7/32");
    assert_eq!(plan.network.gateway.unwrap().to_string(), "172.31.1.1");
    assert_eq!(plan.network.mac.unwrap().to_string(), "52:54:00:00:00:03");
    assert_eq!(
        (plan.disk.as_ref().unwrap().serial.as_deref(), plan.disk.as_ref().unwrap().wipe),
        (Some("VPS-ROOT"), true)
    );

    // the command records what the installer could not: it never got here
    let fail = json!({"step": "network", "error": "no network in installer: it tried ip=203.0.113.7::…"});
    let (st, body) = api_post(&s, "/v1/hosts/vps1/fail", fail, true).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (_, host) = s.api("GET", "/v1/hosts/vps1").await;
    assert_eq!((host["state"].as_str(), host["failed_step"].as_str()), (Some("failed"), Some("network")));
    assert_eq!(s.get(&format!("/v1/hosts/vps1/plan?token={token}")).await.0, StatusCode::FORBIDDEN);

    // re-arming for a network boot forgets the discovered settings
    assert_eq!(s.api("POST", "/v1/hosts/vps1/arm").await.0, StatusCode::OK);
    let (_, script) = s.get("/boot.ipxe?mac=52:54:00:00:00:03&platform=pcbios").await;
    let t2 = common::token_of(&script);
    let (_, plan) = s.get(&format!("/v1/hosts/vps1/plan?token={t2}")).await;
    let plan: metalboot_spec::InstallPlan = serde_json::from_str(&plan).unwrap();
    assert_ne!(plan.disk.as_ref().unwrap().serial.as_deref(), Some("VPS-ROOT"));
}

#[tokio::test]
async fn reinstall_refuses_bad_input_and_changes_nothing() {
    let s = TestServer::new();
    let before = s.api("GET", "/v1/hosts/vps1").await.1;
    let mut cases: Vec<(Value, bool, StatusCode, &str, &str)> = vec![];
    cases.push((discovered(), false, StatusCode::UNAUTHORIZED, "vps1", ""));
    cases.push((discovered(), true, StatusCode::NOT_FOUND, "nosuch", "no host"));
    cases.push((discovered(), true, StatusCode::BAD_REQUEST, "di1", "debian-installer"));
    let mut wrong_mac = discovered();
    wrong_mac["mac"] = json!("52:54:00:99:99:99");
    cases.push((wrong_mac, true, StatusCode::BAD_REQUEST, "vps1", "right machine"));
    let mut no_addr = discovered();
    no_addr["network"]["addresses"] = json!([]);
    cases.push((no_addr, true, StatusCode::BAD_REQUEST, "vps1", "addresses"));
    let mut bad_disk = discovered();
    bad_disk["disk"] = json!({"path": "/etc/passwd", "wipe": true});
    cases.push((bad_disk, true, StatusCode::BAD_REQUEST, "vps1", "disk.path"));
    let mut bad_via = discovered();
    bad_via["via"] = json!("kexec; reboot");
    cases.push((bad_via, true, StatusCode::BAD_REQUEST, "vps1", "via"));
    let mut hostile_dns = discovered();
    hostile_dns["network"]["dns"] = json!(["1.1.1.1 metalboot.url=http://evil"]);
    cases.push((hostile_dns, true, StatusCode::UNPROCESSABLE_ENTITY, "vps1", ""));
    for (body, auth, want, host, says) in cases {
        let (st, text) = api_post(&s, &format!("/v1/hosts/{host}/reinstall"), body.clone(), auth).await;
        assert_eq!(st, want, "{body}: {text}");
        assert!(text.contains(says), "{body}: {text}");
    }
    assert_eq!(s.api("GET", "/v1/hosts/vps1").await.1, before);
    let (st, _) = api_post(&s, "/v1/hosts/vps1/fail", json!({"step": "x\ny", "error": "e"}), true).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(s.api("GET", "/v1/hosts/vps1").await.1, before);
}

#[tokio::test]
async fn reinstall_is_refused_while_the_hosts_image_is_missing() {
    let s = TestServer::new();
    std::fs::remove_file(s.dir.path().join("assets/rootfs.tar.zst")).unwrap();
    let (_, before) = s.api("GET", "/v1/hosts/vps1").await;
    let (st, body) = api_post(&s, "/v1/hosts/vps1/reinstall", discovered(), true).await;
    // our failure: a 500 with the detail in the log, and no installer issued
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(!body.contains("rootfs"), "{body}");
    let (_, after) = s.api("GET", "/v1/hosts/vps1").await;
    assert_eq!(before, after);
}

#[tokio::test]
async fn a_host_on_two_disks_is_reinstalled_onto_both_confirmed_disks_and_no_fewer() {
    let s = TestServer::new();
    let (_, host) = s.api("GET", "/v1/hosts/raid1").await;
    let view: metalboot::api::HostView = serde_json::from_value(host.clone()).unwrap();
    assert_eq!(view.disk, "raid1 of [serial=S4EVNX0N000001] + [serial=S4EVNX0N000002]");
    assert_eq!((view.disk_selector.is_none(), view.selectors().len()), (true, 2), "{host}");
    let mut one = discovered();
    one["mac"] = "52:54:00:00:00:0b".into();
    let pinned = |serial: &str| json!({ "serial": serial, "wipe": true });
    // one disk confirmed (an older command), or three: refused, nothing issued
    let mut three = one.clone();
    three["disks"] = json!([pinned("A"), pinned("B"), pinned("C")]);
    for body in [one.clone(), three] {
        let (st, text) = api_post(&s, "/v1/hosts/raid1/reinstall", body, true).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{text}");
        assert!(text.contains("is installed on 2 disk(s)") && text.contains("but the reinstall confirmed"), "{text}");
        assert_ne!(s.api("GET", "/v1/hosts/raid1").await.1["state"], "booting", "nothing issued");
    }
    // both: the plan installs raid1 onto exactly the disks discovery pinned
    let mut two = one;
    two["disk"] = pinned("S4EVNX0N000002");
    two["disks"] = json!([pinned("S4EVNX0N000002"), pinned("S4EVNX0N000001")]);
    let (st, text) = api_post(&s, "/v1/hosts/raid1/reinstall", two, true).await;
    assert_eq!(st, StatusCode::OK, "{text}");
    let token = serde_json::from_str::<Value>(&text).unwrap()["token"].as_str().unwrap().to_string();
    let (st, plan) = s.get(&format!("/v1/hosts/raid1/plan?token={token}")).await;
    assert_eq!(st, StatusCode::OK, "{plan}");
    let plan: metalboot_spec::InstallPlan = serde_json::from_str(&plan).unwrap();
    plan.validate().unwrap();
    assert!(plan.disk.is_none() && !plan.layout.raid.is_none(), "raid1 kept: {:?}", plan.layout);
    let serials: Vec<_> = plan.disks.iter().map(|d| (d.serial.clone().unwrap(), d.wipe)).collect();
    assert_eq!(serials, [("S4EVNX0N000002".to_string(), true), ("S4EVNX0N000001".to_string(), true)]);
}

#[tokio::test]
async fn a_reinstall_keeping_home_carries_it_in_the_plan_and_a_bad_keep_is_refused() {
    let s = TestServer::new();
    for (keep, why) in [
        (json!(["@data"]), "field `keep[0]`: \"@data\" is not a subvolume of the layout"),
        (json!(["@"]), "is the root"),
    ] {
        let mut req = discovered();
        req["keep"] = keep;
        let (st, body) = api_post(&s, "/v1/hosts/vps1/reinstall", req, true).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains(why), "{body}");
    }
    let (_, host) = s.api("GET", "/v1/hosts/vps1").await;
    assert_ne!(host["state"], "booting", "a refused keep armed the host");
    let mut req = discovered();
    req["keep"] = json!(["@home"]);
    let (st, body) = api_post(&s, "/v1/hosts/vps1/reinstall", req, true).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let token = serde_json::from_str::<Value>(&body).unwrap()["token"].as_str().unwrap().to_string();
    let (st, plan) = s.get(&format!("/v1/hosts/vps1/plan?token={token}")).await;
    assert_eq!(st, StatusCode::OK, "{plan}");
    let plan: metalboot_spec::InstallPlan = serde_json::from_str(&plan).unwrap();
    plan.validate().unwrap();
    assert_eq!(plan.keep, ["@home"]);
}
