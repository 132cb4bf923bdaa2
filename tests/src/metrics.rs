//! The server's `/metrics` after a real install: well-formed for Prometheus
//! (`promtool check metrics`) and counting what the scenario did.

use crate::harness::Scenario;
use anyhow::{ensure, Context, Result};
use std::io::Write;

/// The value of one series (`name{labels}`), or 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0.0)
}

/// How OVMF fetched iPXE: the first boot option its console says it
/// started. PXE (TFTP) is first in its boot order; when that try fails
/// (seen once under load: the firmware declined its lease), OVMF goes on to
/// HTTP Boot, and the server answers that too, with iPXE over HTTP.
fn first_uefi_boot(console: &str) -> Option<&str> {
    console.lines().find(|l| l.contains("BdsDxe: starting Boot")).map(str::trim)
}

/// After a UEFI network install of `vm1` (OVMF's PXE: DHCP, TFTP, then
/// iPXE over HTTP; or OVMF's HTTP Boot when its PXE try failed): DHCP
/// offered and acknowledged, iPXE sent by TFTP (or over HTTP, one more
/// asset), one install ended `installed` and none `failed`, every installer
/// step was timed once, the boot script and assets were served, and `vm1`
/// is counted as installed.
pub fn check_after_install(s: &mut Scenario, console: &str) -> Result<()> {
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
    let first = first_uefi_boot(console).context("OVMF's console names no boot option it started")?;
    let pxe = first.contains("PXEv4");
    if !pxe {
        s.phase(&format!("OVMF's PXE try failed; it went on: {first}"));
    }
    let mut at_least = vec![
        ("metalboot_dhcp_requests_total{message=\"discover\",outcome=\"offer\"}", 1.0),
        ("metalboot_dhcp_requests_total{message=\"request\",outcome=\"ack\"}", 1.0),
        ("metalboot_http_requests_total{route=\"/boot.ipxe\",code=\"200\"}", 1.0),
        ("metalboot_http_response_bytes_total", 50_000_000.0),
    ];
    if pxe {
        at_least.push(("metalboot_tftp_requests_total{outcome=\"sent\"}", 1.0));
        at_least.push(("metalboot_tftp_sent_bytes_total", 10_000.0));
        at_least.push(("metalboot_http_requests_total{route=\"/assets/{name}\",code=\"200\"}", 3.0));
    } else {
        // kernel, initramfs and image, and iPXE itself
        at_least.push(("metalboot_http_requests_total{route=\"/assets/{name}\",code=\"200\"}", 4.0));
    }
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

#[cfg(test)]
mod tests {
    use super::first_uefi_boot;

    #[test]
    fn the_first_boot_option_started_names_the_path() {
        let pxe = "BdsDxe: failed to load Boot0002 \"UEFI QEMU NVMe Ctrl\"\r\n>>Start PXE over IPv4.\r\nBdsDxe: starting Boot0004 \"UEFI PXEv4 (MAC:525400E2E001)\" from PciRoot(0x0)\r\nBdsDxe: starting Boot0002 \"UEFI QEMU NVMe Ctrl E2E-DISK 1\"\r\n";
        assert!(first_uefi_boot(pxe).unwrap().contains("PXEv4"));
        let http = "BdsDxe: failed to load Boot0004 \"UEFI PXEv4 (MAC:525400E2E001)\"\r\nBdsDxe: starting Boot0006 \"UEFI HTTPv4 (MAC:525400E2E001)\"\r\n";
        assert!(first_uefi_boot(http).unwrap().contains("HTTPv4"));
        assert_eq!(first_uefi_boot("iPXE 1.0.0\r\n"), None);
    }
}
