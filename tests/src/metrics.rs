//! The server's `/metrics` after a real install: well-formed for Prometheus
//! (`promtool check metrics`) and counting what the scenario did.

use crate::harness::Scenario;
use anyhow::{ensure, Context, Result};
use std::io::Write;

/// The value of one series (`name{labels}`), or 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0.0)
}

/// After a UEFI network install of `vm1` (OVMF's PXE: DHCP, TFTP, then
/// iPXE over HTTP): DHCP offered and acknowledged, TFTP sent iPXE, one
/// install ended `installed` and none `failed`, every installer step was
/// timed once, the boot script and assets were served, and `vm1` is
/// counted as installed.
pub fn check_after_install(s: &mut Scenario) -> Result<()> {
    let text = s.metrics()?;
    std::fs::write(s.dir.join("metrics.txt"), &text)?;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running promtool (make deps installs prometheus)")?;
    child.stdin.take().context("promtool stdin")?.write_all(text.as_bytes())?;
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let at_least = [
        ("metalboot_dhcp_requests_total{message=\"discover\",outcome=\"offer\"}", 1.0),
        ("metalboot_dhcp_requests_total{message=\"request\",outcome=\"ack\"}", 1.0),
        ("metalboot_tftp_requests_total{outcome=\"sent\"}", 1.0),
        ("metalboot_tftp_sent_bytes_total", 10_000.0),
        ("metalboot_http_requests_total{route=\"/boot.ipxe\",code=\"200\"}", 1.0),
        ("metalboot_http_requests_total{route=\"/assets/{name}\",code=\"200\"}", 3.0),
        ("metalboot_http_response_bytes_total", 50_000_000.0),
    ];
    for (series, min) in at_least {
        ensure!(value(&text, series) >= min, "{series} is {}, not at least {min}:\n{text}", value(&text, series));
    }
    let exactly = [
        ("metalboot_installs_total{result=\"installed\"}", 1.0),
        ("metalboot_installs_total{result=\"failed\"}", 0.0),
        ("metalboot_install_step_duration_seconds_count{step=\"unpack\"}", 1.0),
        ("metalboot_install_step_duration_seconds_count{step=\"bootloader\"}", 1.0),
        ("metalboot_hosts{state=\"installed\"}", 1.0),
    ];
    for (series, n) in exactly {
        ensure!(value(&text, series) == n, "{series} is {}, not {n}:\n{text}", value(&text, series));
    }
    s.phase(&format!(
        "/metrics passes promtool: {} DHCP offers, {} TFTP bytes, {:.0} MiB over HTTP, 1 install, unpack took {:.0} s",
        value(&text, "metalboot_dhcp_requests_total{message=\"discover\",outcome=\"offer\"}"),
        value(&text, "metalboot_tftp_sent_bytes_total"),
        value(&text, "metalboot_http_response_bytes_total") / 1048576.0,
        value(&text, "metalboot_install_step_duration_seconds_sum{step=\"unpack\"}")
    ));
    Ok(())
}
