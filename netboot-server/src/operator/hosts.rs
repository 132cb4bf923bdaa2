//! The operator commands that read and change hosts through the API:
//! `metalboot hosts …`, `known-hosts` and `sshfp`. They print what the
//! server answers; they know nothing of how it keeps it.

use super::client::ApiClient;
use crate::api::{HostState, HostView};
use crate::sshkey;
use anyhow::{Context, Result};
use clap::Subcommand;
use std::path::Path;

/// `hosts` actions.
#[derive(Subcommand, Debug)]
pub enum HostsAction {
    /// List hosts with their state.
    List,
    /// Show one host with its timeline.
    Show {
        /// Host name.
        name: String,
    },
    /// Arm a host: install it at its next network boot.
    Arm {
        /// Host name.
        name: String,
    },
    /// Disarm a host: it boots its local disk.
    Disarm {
        /// Host name.
        name: String,
    },
    /// The installer's console log of a host, as sent while it ran.
    Logs {
        /// Host name.
        name: String,
        /// Keep printing new lines as they arrive (until interrupted).
        #[arg(short, long)]
        follow: bool,
    },
    /// Every host's state and progress, redrawn until interrupted.
    Watch {
        /// Seconds between redraws.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=3600))]
        interval: u64,
    },
}

/// `metalboot known-hosts`: every installed host's keys, to `output`
/// (written whole, through a temporary file) or standard output.
pub fn known_hosts_command(client: &ApiClient, output: Option<&Path>) -> Result<()> {
    let text = known_hosts_text(&client.list()?)?;
    match output {
        Some(p) => {
            crate::files::write_atomically(p, text.as_bytes(), 0o644)?;
            eprintln!("{}: {} key(s)", p.display(), text.lines().count());
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// known_hosts text for every installed host: name and addresses, each key.
pub fn known_hosts_text(hosts: &[HostView]) -> Result<String> {
    let mut out = String::new();
    for h in hosts.iter().filter(|h| h.record.state == HostState::Installed) {
        let mut names = vec![h.record.name.clone()];
        names.extend(h.record.addresses.iter().cloned());
        for l in
            sshkey::known_hosts_lines(&names, &h.record.host_keys).with_context(|| format!("host {}", h.record.name))?
        {
            out.push_str(&l);
            out.push('\n');
        }
    }
    Ok(out)
}

/// SSHFP records for every installed host's keys; owner `name.domain.` (or
/// the bare name, relative to the zone, without a domain).
pub fn sshfp_text(hosts: &[HostView], domain: Option<&str>) -> Result<String> {
    let mut out = String::new();
    for h in hosts.iter().filter(|h| h.record.state == HostState::Installed) {
        let owner = match domain {
            Some(d) => format!("{}.{}.", h.record.name, d.trim_end_matches('.')),
            None => h.record.name.clone(),
        };
        for k in &h.record.host_keys {
            let key = sshkey::parse_key(k).with_context(|| format!("host {}", h.record.name))?;
            if let Some(r) = sshkey::sshfp_record(&owner, &key) {
                out.push_str(&r);
                out.push('\n');
            }
        }
    }
    Ok(out)
}

fn printable(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// Runs one `metalboot hosts` action and prints the result.
pub fn hosts_command(client: &ApiClient, action: HostsAction, json: bool) -> Result<()> {
    match action {
        HostsAction::List => {
            let hosts = client.list()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&hosts)?);
            } else {
                println!("{:<20} {:<11} {:<18} {:<17} DISK", "NAME", "STATE", "METHOD", "MAC");
                for h in hosts {
                    let method = serde_json::to_value(h.method)?.as_str().unwrap_or("").to_string();
                    println!(
                        "{:<20} {:<11} {:<18} {:<17} {}",
                        h.record.name,
                        h.record.state,
                        method,
                        h.macs.first().map(String::as_str).unwrap_or("-"),
                        printable(&h.disk)
                    );
                }
            }
        }
        HostsAction::Show { name } => {
            let d = client.show(&name)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                println!("host:   {}", d.host.record.name);
                println!("state:  {}", d.host.record.state);
                if let (Some(step), Some(err)) = (&d.host.record.failed_step, &d.host.record.failed_error) {
                    println!("failed: step {} — {}", printable(step), printable(err));
                }
                if let Some(p) = &d.host.record.progress {
                    let pct = p.percent.map(|p| format!(" {p}%")).unwrap_or_default();
                    println!(
                        "step:   {}{pct} — {}",
                        printable(p.step.as_deref().unwrap_or("-")),
                        printable(&p.message)
                    );
                }
                println!("macs:   {}", d.host.macs.join(", "));
                println!("disk:   {}", printable(&d.host.disk));
                for k in &d.host.record.host_keys {
                    println!("key:    {}", printable(k));
                }
                if let Some(k) = &d.host.record.backup_key {
                    println!("backup: {} (authorise it on the send targets)", printable(k));
                }
                if let Some(st) = &d.host.record.status {
                    super::status::print(st);
                }
                println!("timeline:");
                for e in d.timeline {
                    let what = match (&e.state, &e.step) {
                        (Some(s), _) => format!("-> {s}"),
                        (None, Some(step)) => {
                            format!("   {}{}", printable(step), e.percent.map(|p| format!(" {p}%")).unwrap_or_default())
                        }
                        _ => "   ".into(),
                    };
                    println!("  {}  {:<24} {}", e.at, what, printable(&e.message));
                }
            }
        }
        HostsAction::Arm { name } => {
            let h = client.set_armed(&name, true)?;
            println!("{}: {}", h.record.name, h.record.state);
        }
        HostsAction::Disarm { name } => {
            let h = client.set_armed(&name, false)?;
            println!("{}: {}", h.record.name, h.record.state);
        }
        HostsAction::Logs { name, follow } => super::watch::logs(client, &name, follow)?,
        HostsAction::Watch { interval } => super::watch::watch(client, std::time::Duration::from_secs(interval))?,
    }
    Ok(())
}
