//! Two metalboot servers on one PostgreSQL database (`[state] url`): server
//! A in the scenario's namespace, server B on another host of the network
//! (10.99.0.2), both serving full DHCP, the same inventory and the same
//! TLS key, behind one service address (10.99.0.10, on A) the way an HA
//! pair runs behind a floating address. A BIOS VM boots; while it boots,
//! the boot script is asked of both servers at once, and only one install
//! goes on: every other token is dead when the host is installed. Mid-image,
//! A is killed (`kill -9`) and the service address moves to B (with a
//! gratuitous ARP, as keepalived does): the installer resumes its image
//! from B, reports to B, and the installed system phones home to B; the
//! host is `installed` once, with one timeline.

use crate::harness::{assets, metalboot_bin, Killed, Scenario, TLS_PORT};
use crate::postgres::Cluster;
use crate::scenarios::{inventory, known_hosts, Disks, MAC, TEST_IMAGE};
use crate::vm::{accel, Firmware, Vm};
use anyhow::{bail, ensure, Context, Result};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The address both servers are reached at.
pub const SERVICE_IP: &str = "10.99.0.10";

/// One server's `metalboot.toml`: HTTP and HTTPS on every address, TFTP
/// and DHCP on its own address and interface with its own part of the
/// subnet's addresses (a split scope: two servers never offer one address),
/// the state in `url`.
fn config(own_ip: &str, iface: &str, range: [&str; 2], url: &str, shared: &str) -> String {
    format!(
        "[server]\nlisten = \"0.0.0.0:8080\"\npublic_url = \"http://{SERVICE_IP}:8080\"\ndata_dir = \"data\"\n\
         inventory = \"{shared}hosts.toml\"\napi_token_file = \"{shared}api-token\"\n\n\
         [server.tls]\nlisten = \"0.0.0.0:{TLS_PORT}\"\n\n[assets]\ndir = \"{assets}\"\n\n\
         [tftp]\nlisten = \"{own_ip}:69\"\n\n[state]\nurl = \"{url}\"\n\n\
         [dhcp]\nmode = \"full\"\ninterface = \"{iface}\"\nserver_ip = \"{own_ip}\"\nsubnet = \"10.99.0.0/24\"\nrange = [\"{}\", \"{}\"]\n",
        range[0],
        range[1],
        assets = assets().display(),
    )
}

/// Starts `metalboot serve` with `dir/metalboot.toml` in namespace `ns`.
fn serve(ns: &crate::netns::Netns, dir: &Path) -> Result<Killed> {
    let ready = dir.join("ready");
    let _ = std::fs::remove_file(&ready);
    let mut child = ns
        .command(metalboot_bin().to_str().context("binary path")?)
        .args(["--config", "metalboot.toml", "serve", "--ready-file", "ready"])
        .current_dir(dir)
        .env("METALBOOT_LOG", "info,metalboot=debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("server.log"))?)
        .spawn()
        .context("starting metalboot serve")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready.exists() {
        if let Some(st) = child.try_wait()? {
            bail!("metalboot serve in {} exited ({st})", dir.display());
        }
        ensure!(Instant::now() < deadline, "metalboot serve in {} did not become ready", dir.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Killed(child))
}

/// `GET /boot.ipxe?mac=…` of the VM at `base`: the script's token, if it
/// is an installer script.
fn boot_token(ns: &crate::netns::Netns, base: &str) -> Result<Option<String>> {
    let script = ns.exec(&["curl", "-sf", &format!("{base}/boot.ipxe?mac={MAC}")])?;
    Ok(script.split("metalboot.token=").nth(1).map(|t| t.split_whitespace().next().unwrap_or("").to_string()))
}

/// Runs the scenario; returns it (timeline, logs).
pub fn two_servers(name: &str) -> Result<Scenario> {
    crate::harness::require_assets()?;
    let mut s = Scenario::new(name, 1)?;
    let accel = accel();
    s.phase(&format!("accelerator {accel}"));
    let pg = Cluster::start(&s.dir.join("postgres"))?;
    s.phase("PostgreSQL cluster running");
    std::fs::write(s.dir.join("hosts.toml"), inventory(&s, "{ serial = \"E2E-DISK\" }", TEST_IMAGE)?)?;
    std::fs::write(s.dir.join("api-token"), &s.api_token)?;
    s.ns.exec(&["ip", "addr", "add", &format!("{SERVICE_IP}/24"), "dev", "br0"])?;
    std::fs::write(
        s.dir.join("metalboot.toml"),
        config("10.99.0.1", "br0", ["10.99.0.100", "10.99.0.124"], &pg.url, ""),
    )?;
    let mut a = Some(serve(&s.ns, &s.dir)?);
    // B: its own directory, the same inventory and token, A's TLS key
    let bdir = s.dir.join("b");
    std::fs::create_dir_all(bdir.join("data/tls"))?;
    for f in ["cert.pem", "key.pem"] {
        std::fs::copy(s.dir.join("data/tls").join(f), bdir.join("data/tls").join(f))?;
    }
    std::fs::write(
        bdir.join("metalboot.toml"),
        config("10.99.0.2", "eth0", ["10.99.0.125", "10.99.0.150"], &pg.url, "../"),
    )?;
    let b_ns = s.ns.peer("b", "10.99.0.2")?;
    let _b = serve(&b_ns, &bdir)?;
    s.base = format!("http://{SERVICE_IP}:8080");
    s.phase("servers A (10.99.0.1, service address 10.99.0.10) and B (10.99.0.2) on one database");

    let (disks, _) = Disks::One.create(&s)?;
    let mut vm = Vm::start(&s.ns, &s.dir, accel, Firmware::Bios, "tap0", MAC, &disks)?;
    let limit = Duration::from_secs(if accel == "kvm" { 300 } else { 900 });
    s.wait_state("vm1", "booting", &mut vm, limit)?;
    // the boot script asked of both servers at once, as two boots would
    let ns = &s.ns;
    let (ta, tb) = std::thread::scope(|sc| {
        let one = sc.spawn(|| boot_token(ns, "http://10.99.0.1:8080"));
        let two = sc.spawn(|| boot_token(ns, "http://10.99.0.2:8080"));
        (one.join(), two.join())
    });
    let extra: Vec<String> = [ta, tb]
        .into_iter()
        .map(|r| r.map_err(|_| anyhow::anyhow!("boot script fetch panicked"))?)
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    s.phase(&format!("boot script asked of A and B at once: {} installer script(s)", extra.len()));

    // mid-image, A dies and the service address moves to B
    let deadline = Instant::now() + limit;
    loop {
        let h = s.host("vm1")?;
        if h["progress"]["step"].as_str() == Some("unpack") && h["progress"]["bytes"].as_i64().unwrap_or(0) > 0 {
            break;
        }
        ensure!(h["state"] != "failed", "install failed before the image: {h}");
        ensure!(Instant::now() < deadline, "the image never started: {h}");
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(a.take());
    s.ns.exec(&["ip", "addr", "del", &format!("{SERVICE_IP}/24"), "dev", "br0"])?;
    b_ns.exec(&["ip", "addr", "add", &format!("{SERVICE_IP}/24"), "dev", "eth0"])?;
    b_ns.exec(&["busybox", "arping", "-U", "-c", "2", "-I", "eth0", SERVICE_IP])?;
    s.phase("server A killed mid-image (kill -9); the service address moved to B");

    let host = s.wait_state("vm1", "installed", &mut vm, limit)?;
    let ip = host["addresses"][0].as_str().context("no address reported")?.split('/').next().unwrap_or("").to_string();
    let kh = known_hosts(&s, &ip)?;
    s.wait_ssh(&ip, &kh, Duration::from_secs(120))?;
    let serial = vm.serial();
    ensure!(serial.contains("resuming at"), "the installer did not resume its image after A died");
    let timeline = s.host("vm1")?["timeline"].clone();
    let states: Vec<&str> =
        timeline.as_array().context("no timeline")?.iter().filter_map(|e| e["state"].as_str()).collect();
    ensure!(states.iter().filter(|st| **st == "installed").count() == 1, "states: {states:?}");
    // every script handed out besides the one installed is dead
    for t in &extra {
        let code = s.ns.exec(&[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{}/v1/hosts/vm1/plan?token={t}", s.base),
        ])?;
        ensure!(code.trim() == "403", "a second script's token still answers ({code})");
    }
    s.phase("installed once through B; SSH with the host key B recorded; the other scripts' tokens are dead");
    vm.stop();
    drop(pg);
    s.finish();
    Ok(s)
}
