//! `make bench`: metalboot's TFTP and DHCP side by side with dnsmasq on this
//! machine, in network namespaces of our own (as root). Prints a table and
//! writes it to `target/bench/report.md`. Figures are ratios of runs on the
//! same machine a moment apart, never absolute claims.
//!
//! TFTP: a 50 MiB file fetched with atftp at blksize 512, 1468, and 1468 with
//! windowsize 8 (dnsmasq has no windowsize: it answers with 1).
//! DHCP: `CLIENTS` distinct clients each doing DISCOVER/OFFER/REQUEST/ACK,
//! at most 16 in flight, bounded at 60 s, against metalboot (full mode),
//! dnsmasq as shipped (pings each new address first) and dnsmasq --no-ping.
//! DHCP under perfdhcp at several rates: see `metalboot_e2e::perfdhcp`.
//! PXE power-on to the installer, with and without router advertisements,
//! and the installer's step times: see `metalboot_e2e::boot_bench`.

use anyhow::{ensure, Context, Result};
use metalboot_e2e::harness::{workspace, Killed, Scenario};
use metalboot_e2e::netns::Netns;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;
const SIZE: usize = 50 * MIB;
const CLIENTS: u32 = 200;
const RUNS: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// MiB/s of `RUNS` atftp fetches of `file` from `server`, median.
fn tftp_rate(client: &Netns, server: &str, file: &str, opts: &[&str], out: &Path, want: &[u8]) -> Result<f64> {
    let mut rates = Vec::new();
    for _ in 0..RUNS {
        let _ = std::fs::remove_file(out);
        let mut cmd = client.command("atftp");
        for o in opts {
            cmd.args(["--option", o]);
        }
        cmd.args(["-g", "-r", file, "-l"]).arg(out).arg(server);
        let t = Instant::now();
        let o = cmd.output()?;
        let secs = t.elapsed().as_secs_f64();
        ensure!(o.status.success(), "atftp {opts:?} from {server}: {}", String::from_utf8_lossy(&o.stderr));
        ensure!(std::fs::read(out)? == want, "atftp {opts:?} from {server}: the file differs");
        rates.push(SIZE as f64 / MIB as f64 / secs);
    }
    Ok(median(rates))
}

fn dnsmasq(ns: &Netns, dir: &Path, extra: &[&str], tag: &str) -> Result<Killed> {
    let child = ns
        .command("dnsmasq")
        .args(["--keep-in-foreground", "--conf-file=/dev/null", "--port=0", "--user=root", "--bind-interfaces"])
        .args(extra)
        .arg(format!("--pid-file={}/dnsmasq-{tag}.pid", dir.display()))
        .arg(format!("--dhcp-leasefile={}/dnsmasq-{tag}.leases", dir.display()))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("dnsmasq-{tag}.err")))?)
        .spawn()
        .context("starting dnsmasq")?;
    std::thread::sleep(Duration::from_millis(500));
    Ok(Killed(child))
}

fn dhcp_load(client: &Netns) -> Result<(f64, String)> {
    let out = client
        .command(workspace().join("target/release/metalboot-dhcp-client").to_str().context("path")?)
        .args(["load", "eth0", &CLIENTS.to_string(), "16", "60"])
        .output()?;
    ensure!(out.status.success(), "load client: {}", String::from_utf8_lossy(&out.stderr));
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let v: serde_json::Value = serde_json::from_str(&line)?;
    Ok((v["per_sec"].as_f64().unwrap_or(0.0), line))
}

fn main() -> Result<()> {
    let mut s = Scenario::new("bench", 0)?;
    let dir = s.dir.clone();
    let data: Vec<u8> = (0..SIZE).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    std::fs::create_dir_all(dir.join("tftp"))?;
    std::fs::write(dir.join("tftp/bench.bin"), &data)?;
    let inv = "";
    let tftp_cfg = format!(
        "[dhcp]\nmode = \"full\"\ninterface = \"br0\"\nsubnet = \"10.99.0.0/24\"\nrange = [\"10.99.0.10\", \"10.99.0.250\"]\nlease_secs = 3600\n\n\
         [tftp.files]\n\"bench.bin\" = \"{}\"\n",
        dir.join("tftp/bench.bin").display()
    );
    std::fs::write(dir.join("hosts.toml"), inv)?;
    s.start_server(inv, &tftp_cfg)?;
    let client = s.ns.peer("cl", "10.99.0.5")?;
    let peer = s.ns.peer("dq", "10.99.0.3")?;
    let _tftpd = dnsmasq(
        &peer,
        &dir,
        &["--interface=eth0", "--enable-tftp", &format!("--tftp-root={}/tftp", dir.display())],
        "tftp",
    )?;

    let mut report = String::new();
    writeln!(report, "## TFTP, 50 MiB file, atftp client, median of {RUNS} (MiB/s)\n")?;
    writeln!(report, "| options | metalboot | dnsmasq | ratio |\n|---|---|---|---|")?;
    let out = dir.join("fetched.bin");
    for (label, opts) in [
        ("blksize 512 (none)", vec![]),
        ("blksize 1468", vec!["blksize 1468"]),
        ("blksize 1468, windowsize 8", vec!["blksize 1468", "windowsize 8"]),
    ] {
        let ours = tftp_rate(&client, "10.99.0.1", "bench.bin", &opts, &out, &data)?;
        let theirs = tftp_rate(&client, "10.99.0.3", "bench.bin", &opts, &out, &data)?;
        let line = format!("| {label} | {ours:.1} | {theirs:.1} | {:.2} |", ours / theirs);
        println!("{line}");
        writeln!(report, "{line}")?;
    }
    drop(_tftpd);
    s.phase("tftp done");

    writeln!(report, "\n## DHCP, {CLIENTS} clients, full DORA each, 16 in flight, 60 s bound\n")?;
    writeln!(report, "| server | exchanges/s | ratio to metalboot | raw |\n|---|---|---|---|")?;
    let (ours, raw) = dhcp_load(&client)?;
    writeln!(report, "| metalboot (full mode, SQLite leases) | {ours:.1} | 1.00 | `{raw}` |")?;
    println!("metalboot: {raw}");
    s.stop_server();
    for (label, extra) in [("dnsmasq --no-ping", vec!["--no-ping"]), ("dnsmasq (pings first, as shipped)", vec![])] {
        let mut args = vec!["--interface=br0", "--dhcp-range=10.99.0.10,10.99.0.250,255.255.255.0,1h"];
        args.extend(extra);
        let d = dnsmasq(&s.ns, &dir, &args, "dhcp")?;
        let (theirs, raw) = dhcp_load(&client)?;
        drop(d);
        let _ = std::fs::remove_file(dir.join("dnsmasq-dhcp.leases"));
        writeln!(report, "| {label} | {theirs:.1} | {:.2} | `{raw}` |", theirs / ours)?;
        println!("{label}: {raw}");
    }
    s.phase("dhcp done");
    report.push_str(&metalboot_e2e::perfdhcp::section(&s.ns, &dir)?);
    s.phase("perfdhcp done");
    drop(peer);
    drop(client);
    s.finish();
    drop(s);
    report.push_str(&metalboot_e2e::boot_bench::section()?);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
        .unwrap_or_default();
    let header = format!(
        "# metalboot bench\n\nOne machine ({} CPUs, {cpu}), veth pairs between network namespaces; \
         each figure is a ratio of runs side by side, not a claim about other machines.\n\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    let full = header + &report;
    let out_dir = workspace().join("target/bench");
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(out_dir.join("report.md"), &full)?;
    println!("\n{full}");
    Ok(())
}
