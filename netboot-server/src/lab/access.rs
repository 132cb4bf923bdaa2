//! Following the lab's installs through the server's API, and what reaches
//! the installed hosts: the Ansible inventory, known_hosts with the host
//! keys the installer reported, and an SSH config that goes into the lab's
//! namespace.

use super::netns;
use super::state::LabState;
use crate::files::write_atomically;
use crate::operator::client::ApiClient;
use anyhow::{bail, Context, Result};
use metalboot_spec::api::HostState;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The files `lab run` and `ssh -F` use, in the lab's directory.
pub const INVENTORY: &str = "inventory";
/// known_hosts of the installed hosts.
pub const KNOWN_HOSTS: &str = "known_hosts";
/// `ssh -F` config.
pub const SSH_CONFIG: &str = "ssh_config";
/// The lab's private key.
pub const KEY: &str = "id_ed25519";

/// Seconds since `t`.
pub fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

/// The lab's API token.
pub fn token(st: &LabState) -> Result<String> {
    let p = st.dir.join("api-token");
    Ok(std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?.trim().to_string())
}

/// Waits until every host in `names` is `installed`, printing each state
/// change; fails on `failed`, on a VM that stopped, or at the deadline.
pub fn wait_installed(st: &LabState, token: &str, names: &[String], limit: Duration, clock: Instant) -> Result<()> {
    netns::inside(&st.netns, || {
        let client = ApiClient::new(&st.base, token, None)?;
        let deadline = Instant::now() + limit;
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        loop {
            let list = client.list()?;
            let mut done = 0;
            for name in names {
                let h = list
                    .iter()
                    .find(|h| &h.record.name == name)
                    .with_context(|| format!("the server has no host {name}"))?;
                let state = h.record.state.to_string();
                if seen.get(name) != Some(&state) {
                    println!("[{:6.1}s] {name}: {state}", secs(clock));
                    seen.insert(name.clone(), state);
                }
                let lab_host = st.host(name)?;
                match h.record.state {
                    HostState::Installed => done += 1,
                    HostState::Failed => bail!(
                        "{name} failed at {}: {}\nlast lines of its console:\n{}",
                        h.record.failed_step.as_deref().unwrap_or("?"),
                        h.record.failed_error.as_deref().unwrap_or("?"),
                        console_tail(lab_host, 30)
                    ),
                    _ if !st.owns(lab_host.vm) => bail!(
                        "{name}'s VM stopped (QEMU's messages: {}); last lines of its console:\n{}",
                        lab_host.dir.join("qemu.err").display(),
                        console_tail(lab_host, 30)
                    ),
                    _ => {}
                }
            }
            if done == names.len() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("not every host was installed within {} s", limit.as_secs());
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    })
}

/// The last `n` lines of a host's serial console.
pub fn console_tail(h: &super::state::LabHost, n: usize) -> String {
    let text = std::fs::read(h.dir.join("serial.log")).unwrap_or_default();
    super::vm::tail(&String::from_utf8_lossy(&text), n)
}

/// Writes the inventory, known_hosts and SSH config from the server's
/// record of the installed hosts, and their addresses into the state file.
pub fn refresh(st: &mut LabState, token: &str) -> Result<()> {
    let (hosts, ansible) = netns::inside(&st.netns, || {
        let client = ApiClient::new(&st.base, token, None)?;
        Ok((client.list()?, client.ansible(None)?))
    })?;
    let dir = st.dir.clone();
    let known_hosts = crate::operator::hosts::known_hosts_text(&hosts)?;
    write_atomically(&dir.join(KNOWN_HOSTS), known_hosts.as_bytes(), 0o644)?;
    write_atomically(&dir.join("inventory.json"), serde_json::to_string_pretty(&ansible)?.as_bytes(), 0o644)?;
    // an inventory script: Ansible runs it, it prints what the server said
    let script = format!(
        "#!/bin/sh\n# made by `metalboot lab up`: the lab's hosts as the server's inventory lists them\n\
         case \"$1\" in --host) echo '{{}}' ;; *) cat '{}' ;; esac\n",
        dir.join("inventory.json").display()
    );
    write_atomically(&dir.join(INVENTORY), script.as_bytes(), 0o755)?;
    for h in &mut st.hosts {
        let rec = hosts.iter().find(|v| v.record.name == h.name);
        // addresses are reported with their prefix length
        let v4 = rec.and_then(|v| v.record.addresses.iter().find(|a| !a.contains(':')));
        h.ip = v4.map(|a| a.split('/').next().unwrap_or(a).to_string());
    }
    write_atomically(&dir.join(SSH_CONFIG), ssh_config(st)?.as_bytes(), 0o644)?;
    st.save()
}

/// An SSH config naming every host (and its address), with the lab's key,
/// its known_hosts (no trust on first use), and a ProxyCommand into the
/// lab's namespace, so that it works from outside it too.
pub fn ssh_config(st: &LabState) -> Result<String> {
    let exe: PathBuf = std::env::current_exe().context("finding the metalboot binary")?;
    let d = st.dir.display();
    let mut out = format!("# made by `metalboot lab up`: ssh -F {d}/{SSH_CONFIG} NAME\n");
    for h in &st.hosts {
        let ip = h.ip.as_deref().unwrap_or(&h.name);
        out.push_str(&format!("Host {} {ip}\n  HostName {ip}\n  User {}\n", h.name, h.login));
    }
    out.push_str(&format!(
        "Host *\n  IdentityFile {d}/{KEY}\n  IdentitiesOnly yes\n  UserKnownHostsFile {d}/{KNOWN_HOSTS}\n  \
         StrictHostKeyChecking yes\n  BatchMode yes\n  ServerAliveInterval 15\n  \
         ServerAliveCountMax 3\n  ProxyCommand {} lab --dir {d} relay %h %p\n",
        exe.display()
    ));
    Ok(out)
}

/// `ssh -F <ssh_config> NAME true` for each host until it works (sshd may
/// start after the phone-home): the key, the recorded host key and the
/// ProxyCommand all checked at once.
pub fn wait_ssh(st: &LabState, names: &[String], limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    for name in names {
        loop {
            let out = std::process::Command::new("ssh")
                .arg("-F")
                .arg(st.dir.join(SSH_CONFIG))
                .args(["-o", "ConnectTimeout=10", name, "true"])
                .stdin(std::process::Stdio::null())
                .output()
                .context("running ssh")?;
            if out.status.success() {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "ssh to {name} failed for {} s: {}",
                    limit.as_secs(),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            std::thread::sleep(Duration::from_secs(3));
        }
    }
    Ok(())
}

/// What is up and how to use it.
pub fn print_summary(st: &LabState) {
    let d = st.dir.display();
    println!("\n{:<16} {:<8} {:<16} login", "host", "firmware", "address");
    for h in &st.hosts {
        println!("{:<16} {:<8} {:<16} {}", h.name, h.firmware, h.ip.as_deref().unwrap_or("-"), h.login);
    }
    println!(
        "\nAnsible inventory: {d}/{INVENTORY}\nknown_hosts:       {d}/{KNOWN_HOSTS}\nSSH config:        {d}/{SSH_CONFIG}\n\n\
         run a playbook:    metalboot lab --dir {d} run -- ansible-playbook site.yml\n\
         log in (needs root): ssh -F {d}/{SSH_CONFIG} {}\n\
         console:           metalboot lab --dir {d} console NAME\n\
         tear down:         metalboot lab --dir {d} down",
        st.hosts.first().map_or("NAME", |h| h.name.as_str())
    );
}
