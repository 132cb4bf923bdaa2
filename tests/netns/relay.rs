//! DHCP through a real relay (ISC `dhcrelay`, adding option 82): clients on
//! two subnets behind it get addresses from their own subnet's pool, with
//! that subnet's router; a PXE client there gets its boot file and fetches
//! it over TFTP through the relay's routing; a relayed subnet with no pool
//! gets nothing, and the server says why.

use super::{dhclient, discover, ip_of_lease, lines, udhcpc, wait_for, HOST};
use metalboot_e2e::harness::{Killed, Scenario};
use metalboot_e2e::relay::start_relay;
use std::net::Ipv4Addr;
use std::time::Duration;

/// The server's own subnet and two behind the relay at 10.99.0.254.
const RELAYED: &str = "[dhcp]\nmode = \"full\"\ninterface = \"br0\"\nsubnet = \"10.99.0.0/24\"\n\
                       range = [\"10.99.0.100\", \"10.99.0.110\"]\nlease_secs = 600\n\n\
                       [[dhcp.subnets]]\nsubnet = \"10.98.1.0/24\"\nrange = [\"10.98.1.100\", \"10.98.1.110\"]\nrouter = \"10.98.1.1\"\n\n\
                       [[dhcp.subnets]]\nsubnet = \"10.98.2.0/24\"\nrange = [\"10.98.2.100\", \"10.98.2.110\"]\nrouter = \"10.98.2.1\"\nlease_secs = 300\n";

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace().find_map(|w| w.strip_prefix(key)).unwrap_or("")
}

#[test]
#[ignore = "network namespaces, as root: run by `make netns`"]
fn relayed_subnets_get_addresses_from_their_own_pools() {
    let mut s = Scenario::new("dhcp-relay", 0).unwrap();
    s.start_server(HOST, RELAYED).unwrap();
    // lan3 (10.97.3.0/24) is routed, but no pool serves it
    let (r, relay) = start_relay(&s, &["10.98.1.1/24", "10.98.2.1/24", "10.97.3.1/24"]).unwrap();
    let _relay = Killed(relay);
    let c1 = r.peer_on("lan1", "c1", "").unwrap();
    let c2 = r.peer_on("lan2", "c2", "").unwrap();
    let c3 = r.peer_on("lan3", "c3", "").unwrap();
    let pxe = r.peer_on("lan1", "c4", "").unwrap();

    // udhcpc behind lan1, dhclient behind lan2
    let (_u, log) = udhcpc(&c1, &s.dir, "relay1").unwrap();
    let bound = wait_for("udhcpc bound through the relay", Duration::from_secs(30), || {
        lines(&log).into_iter().find(|l| l.starts_with("bound"))
    });
    let a1: Ipv4Addr = field(&bound, "ip=").parse().unwrap();
    assert!((Ipv4Addr::new(10, 98, 1, 100)..=Ipv4Addr::new(10, 98, 1, 110)).contains(&a1), "{bound}");
    assert_eq!(field(&bound, "router="), "10.98.1.1", "{bound}");
    assert_eq!(field(&bound, "serverid="), "10.99.0.1", "{bound}");
    assert_eq!(field(&bound, "lease="), "600", "{bound}");
    // dhcrelay's option 82 (circuit id 1 = "lan1") came back from us
    let log = std::fs::read_to_string(s.dir.join("server.log")).unwrap();
    assert!(log.contains("agent=01046c616e31") && log.contains("option 82 echoed"), "no option 82 echoed");
    s.phase(&format!("udhcpc behind the relay's lan1 bound {a1}, option 82 echoed"));

    let (_d, lease) = dhclient(&c2, &s.dir, "relay2");
    let a2 = ip_of_lease(&lease);
    assert!((Ipv4Addr::new(10, 98, 2, 100)..=Ipv4Addr::new(10, 98, 2, 110)).contains(&a2), "{lease}");
    assert!(lease.contains("option routers 10.98.2.1;"), "{lease}");
    assert!(lease.contains("option dhcp-lease-time 300;"), "{lease}");
    s.phase(&format!("dhclient behind lan2 got {a2}"));

    // a BIOS PXE client behind lan1: boot file and next server, then the
    // file over TFTP from its address, routed by the relay
    let answers = discover(&pxe, 41, "0");
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert!(answers[0].contains("\"yiaddr\":\"10.98.1.1"), "{}", answers[0]);
    assert!(answers[0].contains("\"siaddr\":\"10.99.0.1\""), "{}", answers[0]);
    assert!(answers[0].contains("\"boot_file\":\"undionly.kpxe\""), "{}", answers[0]);
    let got = s.dir.join("undionly-relayed.kpxe");
    let out =
        c1.command("atftp").args(["-g", "-r", "undionly.kpxe", "-l"]).arg(&got).arg("10.99.0.1").output().unwrap();
    assert!(out.status.success(), "TFTP through the relay: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read("/usr/lib/ipxe/undionly.kpxe").unwrap());
    s.phase("a PXE client behind lan1 got undionly.kpxe and fetched it over TFTP");

    // lan3 (10.97.3.0/24) has no pool: no answer, and the log says why
    assert!(discover(&c3, 43, "0").is_empty(), "a subnet with no pool was answered");
    let log = std::fs::read_to_string(s.dir.join("server.log")).unwrap();
    assert!(log.lines().any(|l| l.contains("WARN") && l.contains("10.97.3.1")), "no log line for the unknown relay");
    s.phase("a client behind lan3, a subnet with no pool, got no answer");
    s.finish();
}
