//! Test and benchmark DHCP client (see `metalboot_e2e::dhcp_client`).
//!
//! ```text
//! metalboot-dhcp-client discover IFACE MAC_NUMBER [PXE_ARCH|-] [WAIT_SECS]
//! metalboot-dhcp-client load IFACE CLIENTS WINDOW LIMIT_SECS
//! ```
//! `discover` prints one JSON line per answer; `load` prints one JSON line
//! with the counts and the exchanges per second.

use anyhow::{bail, Context, Result};
use metalboot_e2e::dhcp_client::{discover, load, mac, socket};
use std::time::Duration;

fn arg<T: std::str::FromStr>(v: &[String], i: usize, what: &str) -> Result<T> {
    v.get(i).with_context(|| format!("missing {what}"))?.parse().map_err(|_| anyhow::anyhow!("bad {what}: {:?}", v[i]))
}

fn main() -> Result<()> {
    let v: Vec<String> = std::env::args().skip(1).collect();
    match v.first().map(String::as_str) {
        Some("discover") => {
            let sock = socket(v.get(1).context("missing IFACE")?)?;
            let n: u32 = arg(&v, 2, "MAC_NUMBER")?;
            let arch = match v.get(3).map(String::as_str) {
                None | Some("-") => None,
                Some(a) => Some(a.parse().context("bad PXE_ARCH")?),
            };
            let wait: f64 = if v.len() > 4 { arg(&v, 4, "WAIT_SECS")? } else { 3.0 };
            for a in discover(&sock, &mac(n), arch, Duration::from_secs_f64(wait))? {
                println!("{}", a.json());
            }
        }
        Some("load") => {
            let sock = socket(v.get(1).context("missing IFACE")?)?;
            let clients: u32 = arg(&v, 2, "CLIENTS")?;
            let window: usize = arg(&v, 3, "WINDOW")?;
            let limit: f64 = arg(&v, 4, "LIMIT_SECS")?;
            let r = load(&sock, clients, window, Duration::from_secs_f64(limit))?;
            println!(
                "{{\"done\":{},\"failed\":{},\"distinct\":{},\"secs\":{:.3},\"per_sec\":{:.1}}}",
                r.done,
                r.failed,
                r.distinct,
                r.secs,
                r.done as f64 / r.secs
            );
        }
        _ => bail!("usage: metalboot-dhcp-client discover IFACE MAC_NUMBER [PXE_ARCH|-] [WAIT_SECS] | load IFACE CLIENTS WINDOW LIMIT_SECS"),
    }
    Ok(())
}
