//! A DHCP relay between the provisioning network and subnets of its own: a
//! namespace on `br0` at [`RELAY_IP`] that routes between them and runs
//! ISC `dhcrelay` with option 82 (`-a`: circuit id = the link's name). The
//! server reaches the relayed subnets through it (10.96.0.0/12).

use crate::harness::Scenario;
use crate::netns::Netns;
use anyhow::{bail, Context, Result};
use std::process::{Child, Stdio};
use std::time::Duration;

/// The relay's address on the provisioning network.
pub const RELAY_IP: &str = "10.99.0.254";

/// The relay, with one bridge `lanN` per entry of `lans` (its address on
/// that subnet, as `a.b.c.d/len`; addresses in 10.96.0.0/12) and `dhcrelay`
/// serving them; clients join with [`Netns::peer_on`].
pub fn start_relay(s: &Scenario, lans: &[&str]) -> Result<(Netns, Child)> {
    let r = s.ns.peer("relay", RELAY_IP)?;
    let mut args = vec!["-4".to_string(), "-d".into(), "-a".into(), "-pf".into()];
    args.push(s.dir.join("dhcrelay.pid").display().to_string());
    for (i, cidr) in lans.iter().enumerate() {
        let lan = format!("lan{}", i + 1);
        r.exec(&["ip", "link", "add", &lan, "type", "bridge", "stp_state", "0", "forward_delay", "0"])?;
        r.exec(&["ip", "addr", "add", cidr, "dev", &lan])?;
        r.exec(&["ip", "link", "set", &lan, "up"])?;
        args.extend(["-id".into(), lan]);
    }
    args.extend(["-iu".into(), "eth0".into(), s.ns.server_ip.clone()]);
    r.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
    s.ns.exec(&["ip", "route", "add", "10.96.0.0/12", "via", RELAY_IP])?;
    let log = s.dir.join("dhcrelay.log");
    let mut child = r
        .command("dhcrelay")
        .args(&args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("starting dhcrelay (apt-get install isc-dhcp-relay)")?;
    std::thread::sleep(Duration::from_millis(300));
    if let Some(st) = child.try_wait()? {
        bail!("dhcrelay exited ({st}): {}", std::fs::read_to_string(&log).unwrap_or_default());
    }
    Ok((r, child))
}

/// Puts the scenario's VM network (`tap0`) behind a relay on 10.98.1.0/24:
/// the tap leaves `br0` for a bridge of its own, joined to the relay's
/// `lan1` (10.98.1.1), so everything the VM sends, DHCP included, crosses
/// the relay. The server's `[dhcp]` needs `[[dhcp.subnets]]` for it
/// (`scenarios::Dhcp::FullBehindRelay`).
pub fn vm_behind_relay(s: &mut Scenario) -> Result<()> {
    let (r, child) = start_relay(s, &["10.98.1.1/24"])?;
    for args in [
        &["ip", "link", "add", "vmlan", "type", "bridge", "stp_state", "0", "forward_delay", "0"][..],
        &["ip", "link", "set", "vmlan", "up"],
        &["ip", "link", "set", "tap0", "nomaster"],
        &["ip", "link", "set", "tap0", "master", "vmlan"],
        &["ip", "link", "add", "vrl", "type", "veth", "peer", "name", "vrlp"],
        &["ip", "link", "set", "vrl", "master", "vmlan"],
        &["ip", "link", "set", "vrl", "up"],
        &["ip", "link", "set", "vrlp", "netns", &r.name],
    ] {
        s.ns.exec(args)?;
    }
    r.exec(&["ip", "link", "set", "vrlp", "master", "lan1"])?;
    r.exec(&["ip", "link", "set", "vrlp", "up"])?;
    s.helpers.push(child);
    s.peers.push(r);
    s.phase("the VM's network is behind dhcrelay (10.98.1.0/24, option 82)");
    Ok(())
}
