//! DHCP, TFTP and router advertisements on the wire, with real clients
//! (busybox `udhcpc`, ISC `dhclient`, `atftp`, `curl`, `rdisc6`) and a real
//! peer DHCP server (dnsmasq), each test in network namespaces of its own
//! (run as root by `make netns`).

// a test may unwrap: a panic is its failure report
#![allow(clippy::unwrap_used)]

use anyhow::{Context, Result};
use metalboot_e2e::harness::{Killed, Scenario};
use metalboot_e2e::netns::Netns;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

mod relay;

const HOST: &str = "[[host]]\nname = \"static1\"\nmacs = [\"02:dc:00:00:00:63\"]\ndisk = { path = \"/dev/vda\" }\n\
                    network = { mode = \"static\", addresses = [\"10.99.0.9/24\"], gateway = \"10.99.0.1\" }\n\
                    ssh_authorized_keys = [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl t@netns\"]\n";

fn full(lease: u32) -> String {
    format!(
        "[dhcp]\nmode = \"full\"\ninterface = \"br0\"\nsubnet = \"10.99.0.0/24\"\nrange = [\"10.99.0.100\", \"10.99.0.110\"]\nlease_secs = {lease}\n"
    )
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> Option<String>) -> String {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// busybox udhcpc in the foreground, logging every event to `log` and
/// configuring the address (so renewals go out unicast, as on a real host).
fn udhcpc(peer: &Netns, dir: &Path, tag: &str) -> Result<(Killed, std::path::PathBuf)> {
    let log = dir.join(format!("udhcpc-{tag}.log"));
    let script = dir.join(format!("udhcpc-{tag}.sh"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$1 ip=$ip lease=$lease serverid=$serverid router=${{router%% *}}\" >> {log}\n\
             case $1 in bound|renew) ip addr flush dev $interface; ip addr add $ip/24 dev $interface\n\
             [ -z \"$router\" ] || ip route replace default via ${{router%% *}} dev $interface;; esac\n",
            log = log.display()
        ),
    )?;
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let child = peer
        .command("busybox")
        .args(["udhcpc", "-f", "-i", "eth0", "-t", "10", "-T", "1", "-s"])
        .arg(&script)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("busybox udhcpc")?;
    Ok((Killed(child), log))
}

/// ISC dhclient in the foreground, once; the lease file's text once it
/// holds an address.
fn dhclient(peer: &Netns, dir: &Path, tag: &str) -> (Killed, String) {
    let lease_file = dir.join(format!("dhclient-{tag}.leases"));
    let child = Killed(
        peer.command("dhclient")
            .args(["-d", "-1", "-sf", "/bin/true", "-pf"])
            .arg(dir.join(format!("dhclient-{tag}.pid")))
            .arg("-lf")
            .arg(&lease_file)
            .arg("eth0")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("dhclient-{tag}.log"))).unwrap())
            .spawn()
            .unwrap(),
    );
    let lease = wait_for("dhclient lease", Duration::from_secs(30), || {
        std::fs::read_to_string(&lease_file).ok().filter(|t| t.contains("fixed-address"))
    });
    (child, lease)
}

/// The address of a dhclient lease file.
fn ip_of_lease(lease: &str) -> Ipv4Addr {
    let a = lease.lines().find_map(|l| l.trim().strip_prefix("fixed-address ")).expect("fixed-address");
    a.trim_end_matches(';').parse().expect("an address")
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p).unwrap_or_default().lines().map(String::from).collect()
}

fn ip_of(line: &str) -> Ipv4Addr {
    line.split_whitespace().find_map(|w| w.strip_prefix("ip=")).and_then(|v| v.parse().ok()).expect("ip= in line")
}

/// Full mode: udhcpc gets a lease and renews it; dhclient and a second
/// udhcpc get other addresses; a host with a static address in the
/// inventory gets that one; after a kill -9 and restart, a new client does
/// not get an address that is still leased.
#[test]
#[ignore = "network namespaces, as root: run by `make netns`"]
fn full_mode_leases_renews_and_never_hands_out_an_address_twice() {
    let mut s = Scenario::new("dhcp-full", 0).unwrap();
    s.start_server(HOST, &full(8)).unwrap();
    let peers: Vec<Netns> = (1..=4).map(|i| s.ns.peer(&format!("c{i}"), "").unwrap()).collect();

    // udhcpc: bound, then renewed (lease 8 s: T1 at 4 s) with the same address
    let (_c1, log1) = udhcpc(&peers[0], &s.dir, "c1").unwrap();
    let bound =
        wait_for("udhcpc bound", Duration::from_secs(20), || lines(&log1).into_iter().find(|l| l.starts_with("bound")));
    let renewed =
        wait_for("udhcpc renew", Duration::from_secs(30), || lines(&log1).into_iter().find(|l| l.starts_with("renew")));
    let a1 = ip_of(&bound);
    assert_eq!(ip_of(&renewed), a1, "renewal moved the client");
    assert!(bound.contains("lease=8") && bound.contains("serverid=10.99.0.1"), "{bound}");
    s.phase(&format!("udhcpc bound {a1} and renewed it"));

    // dhclient on a second client
    let (_c2, lease) = dhclient(&peers[1], &s.dir, "c2");
    let a2 = ip_of_lease(&lease);
    s.phase(&format!("dhclient got {a2}"));

    // the inventory host with a static address gets it (reservation)
    let out = peers[2]
        .command(env!("CARGO_BIN_EXE_metalboot-dhcp-client"))
        .args(["discover", "eth0", "99", "-", "2"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"yiaddr\":\"10.99.0.9\""), "reservation not honoured: {text}");

    // kill -9 and restart: the leases survive, a new client gets a third address
    s.start_server(HOST, &full(8)).unwrap();
    let (_c4, log4) = udhcpc(&peers[3], &s.dir, "c4").unwrap();
    let b4 = wait_for("udhcpc bound after restart", Duration::from_secs(20), || {
        lines(&log4).into_iter().find(|l| l.starts_with("bound"))
    });
    let a4 = ip_of(&b4);
    s.phase(&format!("after a restart a new client got {a4}"));
    let all = [a1, a2, a4];
    for (i, a) in all.iter().enumerate() {
        assert!((Ipv4Addr::new(10, 99, 0, 100)..=Ipv4Addr::new(10, 99, 0, 110)).contains(a), "{a} outside the pool");
        assert!(!all[i + 1..].contains(a), "{a} handed out twice: {all:?}");
    }
    s.finish();
}

fn discover(peer: &Netns, mac: u32, arch: &str) -> Vec<String> {
    let out = peer
        .command(env!("CARGO_BIN_EXE_metalboot-dhcp-client"))
        // dnsmasq pings an address (up to 3 s) before it offers it
        .args(["discover", "eth0", &mac.to_string(), arch, "5"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect()
}

/// Proxy mode beside dnsmasq: a PXE client gets its address from dnsmasq
/// and its boot file from metalboot (which never offers an address); a
/// plain client hears only dnsmasq.
#[test]
#[ignore = "network namespaces, as root: run by `make netns`"]
fn proxy_mode_beside_dnsmasq_gives_boot_info_only() {
    let mut s = Scenario::new("dhcp-proxy", 0).unwrap();
    s.start_dnsmasq().unwrap();
    s.start_server(HOST, "[dhcp]\nmode = \"proxy\"\ninterface = \"br0\"\n").unwrap();
    let c = s.ns.peer("c1", "").unwrap();

    for (arch, file) in [("0", "undionly.kpxe"), ("7", "snponly.efi")] {
        let answers = discover(&c, 7, arch);
        let ours: Vec<&String> = answers.iter().filter(|l| l.contains("\"server\":\"10.99.0.1\"")).collect();
        let theirs: Vec<&String> = answers.iter().filter(|l| l.contains("\"server\":\"10.99.0.2\"")).collect();
        assert_eq!(ours.len(), 1, "arch {arch}: {answers:?}");
        assert!(ours[0].contains("\"yiaddr\":\"0.0.0.0\""), "proxy offered an address: {}", ours[0]);
        assert!(ours[0].contains(&format!("\"boot_file\":\"{file}\"")), "{}", ours[0]);
        assert!(ours[0].contains("\"class\":\"PXEClient\""), "{}", ours[0]);
        assert!(ours[0].contains("\"lease_secs\":null"), "{}", ours[0]);
        assert_eq!(theirs.len(), 1, "arch {arch}: {answers:?}");
        assert!(theirs[0].contains("\"yiaddr\":\"10.99.0."), "{}", theirs[0]);
        assert!(theirs[0].contains("\"boot_file\":\"\""), "{}", theirs[0]);
    }
    let plain = discover(&c, 8, "-");
    assert!(
        plain.iter().all(|l| !l.contains("\"server\":\"10.99.0.1\"")),
        "proxy answered a non-PXE client: {plain:?}"
    );
    assert!(plain.iter().any(|l| l.contains("\"server\":\"10.99.0.2\"")), "{plain:?}");
    assert!(s.server_log().contains("not a PXE client"), "the reason for ignoring is not logged");
    s.finish();
}

fn tftp_source(name: &str) -> Vec<u8> {
    std::fs::read(Path::new("/usr/lib/ipxe").join(name)).unwrap()
}

/// TFTP: atftp and curl fetch the iPXE binaries byte-identical with default
/// 512-byte blocks and with blksize 1468 (+ windowsize 8); traversal and
/// unknown names are refused; writes are refused.
#[test]
#[ignore = "network namespaces, as root: run by `make netns`"]
fn tftp_serves_ipxe_byte_identical_and_refuses_everything_else() {
    let mut s = Scenario::new("tftp", 0).unwrap();
    s.start_server(HOST, &full(600)).unwrap();
    let c = s.ns.peer("c1", "10.99.0.50").unwrap();
    let d = s.dir.clone();
    let fetch = |tool: &str, file: &str, opts: &[&str], out: &str| -> Result<Vec<u8>> {
        let dest = d.join(out);
        let _ = std::fs::remove_file(&dest);
        let mut cmd = c.command(tool);
        if tool == "atftp" {
            for o in opts {
                cmd.args(["--option", o]);
            }
            cmd.args(["-g", "-r", file, "-l"]).arg(&dest).arg("10.99.0.1");
        } else {
            cmd.args(["-sS", "--fail"]).args(opts).arg(format!("tftp://10.99.0.1/{file}")).arg("-o").arg(&dest);
        }
        let o = cmd.output()?;
        anyhow::ensure!(o.status.success(), "{tool} {file} {opts:?}: {}", String::from_utf8_lossy(&o.stderr));
        Ok(std::fs::read(&dest)?)
    };
    for file in ["undionly.kpxe", "snponly.efi", "ipxe.efi"] {
        let want = tftp_source(file);
        assert!(fetch("atftp", file, &[], "a512").unwrap() == want, "atftp 512 {file}");
        assert!(
            fetch("atftp", file, &["blksize 1468", "windowsize 8"], "a1468").unwrap() == want,
            "atftp 1468/8 {file}"
        );
        assert!(fetch("curl", file, &[], "c512").unwrap() == want, "curl 512 {file}");
        assert!(fetch("curl", file, &["--tftp-blksize", "1468"], "c1468").unwrap() == want, "curl 1468 {file}");
    }
    let log = s.server_log();
    assert!(log.contains("blksize=1468 windowsize=8"), "atftp's windowsize was not negotiated:\n{log}");
    assert!(log.contains("blksize=512 windowsize=1"));
    for bad in ["../../../etc/passwd", "/etc/passwd", "..%2fetc/passwd", "undionly.kpxe/..", "UNDIONLY.KPXE.bak", ""] {
        assert!(fetch("atftp", bad, &[], "bad").is_err(), "{bad:?} was served");
        assert!(!d.join("bad").exists() || std::fs::read(d.join("bad")).unwrap().is_empty());
    }
    // writes are refused
    std::fs::write(d.join("up"), b"x").unwrap();
    let o = c.command("atftp").args(["-p", "-l"]).arg(d.join("up")).args(["-r", "up", "10.99.0.1"]).output().unwrap();
    assert!(!o.status.success(), "a write was accepted");
    s.phase("tftp checks passed");
    s.finish();
}

/// Waits until `eth0` in `peer` has a link-local address past duplicate
/// address detection (rdisc6 solicits from it), and returns it.
fn link_local(peer: &Netns) -> String {
    wait_for("a link-local address on eth0", Duration::from_secs(10), || {
        let out = peer.exec(&["ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"]).ok()?;
        let line = out.lines().find(|l| !l.contains("tentative"))?;
        let addr = line.split_whitespace().skip_while(|w| *w != "inet6").nth(1)?;
        Some(addr.split('/').next()?.to_string())
    })
}

fn wait_log(s: &Scenario, what: &str) {
    wait_for(what, Duration::from_secs(10), || s.server_log().contains(what).then_some(String::new()));
}

/// `rdisc6` (package ndisc6) in `peer`: one solicitation, the first answer;
/// its output and how long it took.
fn rdisc6(peer: &Netns) -> (std::process::Output, Duration) {
    let start = Instant::now();
    let out = peer.command("rdisc6").args(["-1", "-n", "-r", "1", "-w", "2000", "eth0"]).output().expect("rdisc6");
    (out, start.elapsed())
}

/// Full mode: a host soliciting routers gets, within half a second, an
/// advertisement that announces nothing (router lifetime 0, no prefix, no
/// DHCPv6 flags) from the server's link-local address.
#[test]
#[ignore = "network namespaces, as root: run by `make netns`"]
fn router_solicitation_gets_an_advertisement_that_announces_nothing() {
    let mut s = Scenario::new("ra", 0).unwrap();
    s.start_server(HOST, &full(600)).unwrap();
    let c = s.ns.peer("c1", "").unwrap();
    link_local(&c);
    wait_log(&s, "router advertisements on");
    s.phase("advertising");
    let mut took = Vec::new();
    for _ in 0..5 {
        let (out, t) = rdisc6(&c);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "no advertisement: {text}{}", String::from_utf8_lossy(&out.stderr));
        let field = |name: &str| {
            text.lines().find(|l| l.trim_start().starts_with(name)).unwrap_or_else(|| panic!("{name} in {text}"))
        };
        assert!(field("Router lifetime").contains(" 0 (0x0000"), "{text}");
        assert!(field("Stateful address conf.").trim_end().ends_with("No"), "{text}");
        assert!(field("Stateful other conf.").trim_end().ends_with("No"), "{text}");
        assert!(field("Hop limit").contains("undefined"), "{text}");
        assert!(!text.contains("Prefix"), "an advertised prefix: {text}");
        assert!(field("from").contains("fe80::"), "{text}");
        took.push(t);
    }
    s.phase(&format!("5 solicitations answered in {took:.2?}"));
    assert!(took.iter().all(|t| *t < Duration::from_millis(1500)), "{took:?}");
    let log = s.server_log();
    assert!(log.contains("router solicitation: advertisement scheduled"), "{log}");
    s.finish();
}

/// A router advertisement as a real router sends one: default router for
/// 1800 s, prefix 2001:db8:99::/64, sent once to ff02::1 from `peer`'s
/// `eth0` with hop limit 255 (from a thread that enters the namespace).
// setns and if_nametoindex have no safe wrapper among our dependencies
#[allow(unsafe_code)]
fn send_router_advertisement(peer: &Netns) -> Result<()> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let ns_path = format!("/var/run/netns/{}", peer.name);
    std::thread::scope(|t| {
        t.spawn(|| -> Result<()> {
            let ns = std::fs::File::open(&ns_path).with_context(|| format!("opening {ns_path}"))?;
            // SAFETY: setns on this thread only, with an open namespace file.
            if unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&ns), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error()).context("entering the namespace");
            }
            // SAFETY: a NUL-terminated constant name; the lookup runs in the
            // namespace this thread has just entered.
            let ifindex = unsafe { libc::if_nametoindex(c"eth0".as_ptr()) };
            anyhow::ensure!(ifindex != 0, "no eth0 in {}", ns_path);
            let sock = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
            sock.set_multicast_hops_v6(255)?;
            sock.set_multicast_if_v6(ifindex)?;
            let mut ra = vec![134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
            ra.extend_from_slice(&[3, 4, 64, 0xc0, 0, 1, 0x51, 0x80, 0, 0, 0x38, 0x40, 0, 0, 0, 0]);
            ra.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            let to = std::net::SocketAddrV6::new("ff02::1".parse().expect("constant"), 0, 0, ifindex);
            sock.send_to(&ra, &SockAddr::from(to)).context("sending the router advertisement")?;
            Ok(())
        })
        .join()
        .expect("RA sender thread")
    })
}

/// Another router advertising on the link silences ours for good, with one
/// warning naming it; solicitations then go unanswered by metalboot.
#[test]
#[ignore = "network namespaces, as root: run by `make netns`"]
fn another_router_on_the_link_silences_our_advertisements() {
    let mut s = Scenario::new("ra-other", 0).unwrap();
    s.start_server(HOST, &full(600)).unwrap();
    let c = s.ns.peer("c1", "").unwrap();
    let r = s.ns.peer("r1", "").unwrap();
    link_local(&c);
    let router = link_local(&r);
    wait_log(&s, "router advertisements on");
    let (first, _) = rdisc6(&c);
    assert!(first.status.success(), "no advertisement before the other router appeared");
    send_router_advertisement(&r).unwrap();
    wait_log(&s, "another router advertises on this link");
    let log = s.server_log();
    let line = log.lines().find(|l| l.contains("another router advertises")).unwrap();
    assert!(line.contains("WARN") && line.contains(&router), "{line}");
    s.phase(&format!("silenced by {router}"));
    let (after, t) = rdisc6(&c);
    assert!(!after.status.success(), "still answering: {}", String::from_utf8_lossy(&after.stdout));
    assert_eq!(log.matches("another router advertises").count(), 1, "{log}");
    s.phase(&format!("a solicitation went unanswered ({t:.1?})"));
    s.finish();
}
