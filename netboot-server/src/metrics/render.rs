//! The Prometheus text exposition format (version 0.0.4) of a
//! [`Snapshot`]: `# HELP` and `# TYPE` before each family, label values
//! escaped, histogram buckets cumulative with `+Inf`.

use super::{Snapshot, STEP_BUCKETS};
use std::fmt::Write;

/// A label value with `\`, `"` and newlines escaped.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Seconds as Prometheus reads them: no exponent, no trailing noise.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The snapshot in the text format.
pub fn render(s: &Snapshot) -> String {
    let mut o = String::new();
    head(&mut o, "metalboot_dhcp_requests_total", "counter", "DHCP datagrams received, by message type and outcome.");
    for ((msg, outcome), n) in &s.dhcp {
        let _ = writeln!(o, "metalboot_dhcp_requests_total{{message=\"{msg}\",outcome=\"{outcome}\"}} {n}");
    }
    head(&mut o, "metalboot_tftp_requests_total", "counter", "TFTP requests received, by outcome.");
    for (outcome, n) in &s.tftp {
        let _ = writeln!(o, "metalboot_tftp_requests_total{{outcome=\"{outcome}\"}} {n}");
    }
    head(&mut o, "metalboot_tftp_sent_bytes_total", "counter", "File data sent over TFTP, in bytes.");
    let _ = writeln!(o, "metalboot_tftp_sent_bytes_total {}", s.tftp_bytes);
    head(&mut o, "metalboot_http_requests_total", "counter", "HTTP responses, by route and status code.");
    for ((route, code), n) in &s.http {
        let _ = writeln!(o, "metalboot_http_requests_total{{route=\"{}\",code=\"{code}\"}} {n}", esc(route));
    }
    head(&mut o, "metalboot_http_response_bytes_total", "counter", "HTTP response bodies of known length, in bytes.");
    let _ = writeln!(o, "metalboot_http_response_bytes_total {}", s.http_bytes);
    head(&mut o, "metalboot_installs_total", "counter", "Installs that ended, by result.");
    for result in ["installed", "failed"] {
        let _ = writeln!(o, "metalboot_installs_total{{result=\"{result}\"}} {}", s.installs.get(result).unwrap_or(&0));
    }
    head(&mut o, "metalboot_install_step_duration_seconds", "histogram", "How long each install step took.");
    for (step, h) in &s.steps {
        let step = esc(step);
        let mut cumulative = 0;
        for (le, n) in STEP_BUCKETS.iter().zip(h.buckets) {
            cumulative += n;
            let _ = writeln!(
                o,
                "metalboot_install_step_duration_seconds_bucket{{step=\"{step}\",le=\"{}\"}} {cumulative}",
                num(*le)
            );
        }
        let _ =
            writeln!(o, "metalboot_install_step_duration_seconds_bucket{{step=\"{step}\",le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(o, "metalboot_install_step_duration_seconds_sum{{step=\"{step}\"}} {}", num(h.sum));
        let _ = writeln!(o, "metalboot_install_step_duration_seconds_count{{step=\"{step}\"}} {}", h.count);
    }
    head(&mut o, "metalboot_hosts", "gauge", "Hosts of the inventory, by state.");
    for (state, n) in &s.hosts {
        let _ = writeln!(o, "metalboot_hosts{{state=\"{}\"}} {n}", esc(state));
    }
    o
}
