//! `make bench`, DHCP under perfdhcp (package kea-admin): metalboot in full
//! mode and dnsmasq `--no-ping`, each started fresh (no leases) for every
//! run, side by side in one process run. perfdhcp runs in a namespace of
//! its own and speaks as a relay (giaddr 10.98.0.5) to a /16 pool, 10 s per
//! run: 90 clients at 1,000/4,000/8,000 exchanges/s targets, and 60,000
//! distinct clients at 1,000 and 2,000 (new-address allocation under a
//! growing lease table). Both servers log warnings only. With
//! `METALBOOT_BENCH_BASELINE=/path/to/metalboot` an older build is measured
//! in the same run as well, for before/after figures.

use crate::harness::{metalboot_bin, Killed};
use crate::netns::Netns;
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// (target exchanges/s, distinct clients).
pub const RUNS: &[(u32, u32)] = &[(1000, 90), (4000, 90), (8000, 90), (1000, 60_000), (2000, 60_000)];
const SECS: u32 = 10;

enum Server {
    Metalboot(PathBuf),
    Dnsmasq,
}

fn start(ns: &Netns, dir: &Path, server: &Server) -> Result<Killed> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    match server {
        Server::Metalboot(bin) => {
            std::fs::write(dir.join("hosts.toml"), "")?;
            std::fs::write(dir.join("api-token"), "bench-api-token")?;
            std::fs::write(
                dir.join("metalboot.toml"),
                "[server]\nlisten = \"10.98.0.1:8081\"\ndata_dir = \"data\"\ninventory = \"hosts.toml\"\n\
                 api_token_file = \"api-token\"\n\n[tftp]\nenabled = false\n\n\
                 [dhcp]\nmode = \"full\"\ninterface = \"br0\"\nsubnet = \"10.98.0.0/16\"\n\
                 range = [\"10.98.1.0\", \"10.98.255.254\"]\nlease_secs = 3600\nrouter_advertisements = false\n",
            )?;
            let child = ns
                .command(bin.to_str().context("binary path")?)
                .args(["--config", "metalboot.toml", "serve", "--ready-file", "ready"])
                .current_dir(dir)
                .env("METALBOOT_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("server.log"))?)
                .spawn()
                .context("starting metalboot serve")?;
            let child = Killed(child);
            let deadline = Instant::now() + Duration::from_secs(30);
            while !dir.join("ready").exists() {
                if Instant::now() > deadline {
                    bail!("metalboot serve did not become ready: {}", std::fs::read_to_string(dir.join("server.log"))?);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(child)
        }
        Server::Dnsmasq => {
            let child = ns
                .command("dnsmasq")
                .args(["--keep-in-foreground", "--conf-file=/dev/null", "--port=0", "--user=root"])
                .args(["--bind-interfaces", "--interface=br0", "--no-ping", "--quiet-dhcp"])
                .arg("--dhcp-range=10.98.1.0,10.98.255.254,255.255.0.0,1h")
                // its default cap is 1,000 leases; the pool (and our server) holds 65,000
                .arg("--dhcp-lease-max=65536")
                .arg(format!("--dhcp-leasefile={}/dnsmasq.leases", dir.display()))
                .arg(format!("--pid-file={}/dnsmasq.pid", dir.display()))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("dnsmasq.err"))?)
                .spawn()
                .context("starting dnsmasq")?;
            let child = Killed(child);
            let deadline = Instant::now() + Duration::from_secs(10);
            while !dir.join("dnsmasq.pid").exists() {
                if Instant::now() > deadline {
                    bail!("dnsmasq did not start: {}", std::fs::read_to_string(dir.join("dnsmasq.err"))?);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(child)
        }
    }
}

/// 4-way exchanges/s perfdhcp measured, and its rate line.
fn perfdhcp(client: &Netns, rate: u32, clients: u32) -> Result<(f64, String)> {
    let out = client
        .command("timeout")
        .args(["60", "perfdhcp", "-4", "-l", "10.98.0.5", "-r", &rate.to_string(), "-R", &clients.to_string()])
        .args(["-p", &SECS.to_string(), "10.98.0.1"])
        .output()
        .context("running perfdhcp")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line =
        text.lines().find(|l| l.starts_with("Rate:")).with_context(|| format!("no rate from perfdhcp: {text}"))?;
    let v = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).context("perfdhcp rate")?;
    Ok((v, line.to_string()))
}

/// Runs every rate against every server; the report section, in markdown.
pub fn section(ns: &Netns, dir: &Path) -> Result<String> {
    ns.exec(&["ip", "addr", "add", "10.98.0.1/16", "dev", "br0"])?;
    let client = ns.peer("pf", "")?;
    client.exec(&["ip", "addr", "add", "10.98.0.5/16", "dev", "eth0"])?;
    let mut servers = vec![("metalboot", Server::Metalboot(metalboot_bin()))];
    if let Some(b) = std::env::var_os("METALBOOT_BENCH_BASELINE") {
        servers.push(("metalboot (baseline)", Server::Metalboot(b.into())));
    }
    servers.push(("dnsmasq --no-ping", Server::Dnsmasq));
    let mut out = String::new();
    writeln!(out, "\n## DHCP under perfdhcp ({SECS} s per run, relayed, /16 pool, fresh server per run)\n")?;
    let names: Vec<&str> = servers.iter().map(|s| s.0).collect();
    writeln!(out, "| target/s | clients | {} | metalboot / dnsmasq |", names.join(" | "))?;
    writeln!(out, "|---|---|{}---|", "---|".repeat(names.len()))?;
    for &(rate, clients) in RUNS {
        let mut got = Vec::new();
        for (name, server) in &servers {
            let _srv = start(ns, &dir.join("perfdhcp"), server)?;
            let (v, line) = perfdhcp(&client, rate, clients)?;
            println!("perfdhcp {rate}/s {clients} clients, {name}: {line}");
            got.push(v);
        }
        let cells: Vec<String> = got.iter().map(|v| format!("{v:.0}")).collect();
        let ratio = got[0] / got[got.len() - 1].max(1.0);
        writeln!(out, "| {rate} | {clients} | {} | {ratio:.2} |", cells.join(" | "))?;
    }
    Ok(out)
}
