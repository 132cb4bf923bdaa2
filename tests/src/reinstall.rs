//! Scenario 7: `metalboot reinstall` of a running server in place over SSH.
//!
//! The "old system" is Debian installed the classic way (an ext4 root made
//! by `tests/images/ext4-debian.sh`, with kexec-tools), with a static `/32`
//! address, a gateway outside it and a static IPv6, and an admin user with
//! passwordless sudo: the rented-server shape. There is no DHCP server on
//! the network; the VM boots from its disk and a marker file is written on
//! it. `metalboot reinstall` runs, among other steps:
//!
//! 1. with the server unreachable from the target (an nftables rule in the
//!    namespace): the installer cannot fetch its plan, reboots, and the old
//!    system comes back untouched; the host is `failed` with the reason;
//! 2. with the rule gone: the target is wiped, installed and back on the same
//!    address with new host keys (the ones reported to the server), without
//!    the marker.

use crate::harness::{metalboot_bin, Scenario};
use crate::scenarios::{check_installed, inventory, known_hosts, Disks, Installed, MAC, TEST_IMAGE};
use crate::vm::{accel, Firmware, Vm};
use anyhow::{ensure, Context, Result};
use std::time::Duration;

pub(crate) const IP: &str = "10.99.0.50";
const IP6: &str = "fd00:99::50";
const GW6: &str = "fd00:99::1";
pub(crate) const MARKER: &str = "/root/old-system-marker";
const TRIAL_OVER: &str = "for i in $(seq 30); do [ -e /etc/metalboot/trial.env ] || break; sleep 1; done; ls /boot/grub/custom.cfg 2>/dev/null";

fn reinstall(s: &Scenario, log: &str) -> Result<(bool, String)> {
    reinstall_with(s, log, &["--yes"])
}

fn reinstall_with(s: &Scenario, log: &str, extra: &[&str]) -> Result<(bool, String)> {
    let (ok, stdout, stderr) = reinstall_as(s, log, "vm1", extra)?;
    Ok((ok, format!("{stdout}{stderr}")))
}

/// `metalboot reinstall root@ADDR --as vm1 EXTRA…`: success and output.
fn reinstall_at(s: &Scenario, log: &str, addr: &str, extra: &[&str]) -> Result<(bool, String)> {
    let (ok, stdout, stderr) = reinstall_to(s, log, addr, "vm1", extra)?;
    Ok((ok, format!("{stdout}{stderr}")))
}

/// `metalboot reinstall root@IP --as NAME EXTRA…`: success, stdout, stderr.
fn reinstall_as(s: &Scenario, log: &str, name: &str, extra: &[&str]) -> Result<(bool, String, String)> {
    reinstall_to(s, log, IP, name, extra)
}

pub(crate) fn reinstall_to(
    s: &Scenario,
    log: &str,
    addr: &str,
    name: &str,
    extra: &[&str],
) -> Result<(bool, String, String)> {
    let out = reinstall_command(s, addr, name, extra)?.output().context("running metalboot reinstall")?;
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    std::fs::write(s.dir.join(log), format!("{stdout}{stderr}"))?;
    Ok((out.status.success(), stdout.into_owned(), stderr.into_owned()))
}

/// `metalboot reinstall LOGIN@ADDR --as NAME EXTRA…` from the operator's
/// side of the namespace, with the scenario's key and short limits.
pub(crate) fn reinstall_command(s: &Scenario, addr: &str, name: &str, extra: &[&str]) -> Result<std::process::Command> {
    let home = s.dir.join("operator-home");
    std::fs::create_dir_all(&home)?;
    let mut c = s.ns.command(metalboot_bin().to_str().context("binary path")?);
    c.current_dir(&s.dir)
        .env("HOME", &home)
        .stdin(std::process::Stdio::null())
        .args(["--config", "metalboot.toml", "reinstall", &format!("{}@{addr}", s.login), "--as", name])
        .args(extra)
        .arg("-i")
        .arg(&s.ssh_key)
        .args(["--server", &s.base, "--server-wait", "20", "--installer-timeout", "600", "--install-timeout", "1200"]);
    Ok(c)
}

/// `--print-host` for a server the inventory does not know: the entry it
/// prints loads as an inventory (`metalboot check-config`) and keeps the
/// VM's MAC, disk serial, /32 address and the key that logs in today.
fn print_host(s: &Scenario) -> Result<()> {
    let (ok, entry, err) = reinstall_as(s, "reinstall-print-host.log", "newbox", &["--print-host"])?;
    ensure!(ok, "--print-host failed:\n{entry}{err}");
    let mac = MAC.to_ascii_lowercase();
    for want in [
        "name = \"newbox\"".to_string(),
        format!("macs = [\"{mac}\"]"),
        "serial = \"E2E-DISK\"".to_string(),
        format!("addresses = [\"{IP}/32\", \"{IP6}/64\"]"),
        format!("gateway6 = \"{GW6}\""),
        "gateway = \"10.99.0.1\"".to_string(),
        "mode = \"static\"".to_string(),
    ] {
        ensure!(entry.contains(&want), "printed entry lacks {want}:\n{entry}");
    }
    let pubkey = std::fs::read_to_string(format!("{}.pub", s.ssh_key.display()))?;
    let blob = pubkey.split_whitespace().nth(1).context("operator public key")?;
    ensure!(entry.contains(blob), "printed entry does not enrol the key that logs in today:\n{entry}");
    let dir = s.dir.join("print-host");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("newbox.toml"), &entry)?;
    std::fs::write(dir.join("metalboot.toml"), "[server]\ninventory = \"newbox.toml\"\n")?;
    let check = std::process::Command::new(metalboot_bin())
        .current_dir(&dir)
        .args(["--config", "metalboot.toml", "check-config"])
        .output()?;
    ensure!(
        check.status.success(),
        "the printed entry does not load: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    ensure!(err.contains("nothing was changed"), "--print-host stderr: {err}");
    Ok(())
}

fn block_server_from_target(s: &Scenario, on: bool) -> Result<()> {
    if !on {
        return s.ns.exec(&["nft", "delete", "table", "inet", "mbe2e"]).map(drop);
    }
    // nft joins its arguments into one command
    let rule = "tcp dport { 8080, 8443 } reject with icmpx type host-unreachable";
    s.ns.exec(&["nft", "add", "table", "inet", "mbe2e"])?;
    s.ns.exec(&["nft", "add", "chain", "inet", "mbe2e", "input", "{ type filter hook input priority 0 ; }"])?;
    s.ns.exec(&["nft", "add", "rule", "inet", "mbe2e", "input", "ip", "saddr", IP, rule]).map(drop)
}

/// Runs `f` with the server unreachable from the target, and makes it
/// reachable again whatever `f` returned.
pub(crate) fn with_server_blocked<T>(s: &Scenario, f: impl FnOnce() -> Result<T>) -> Result<T> {
    block_server_from_target(s, true)?;
    let r = f();
    block_server_from_target(s, false)?;
    r
}

/// [`new_system`] after a standalone install, which must have left the
/// phone-home unit off (the new system cannot reach the server).
pub(crate) fn new_standalone_system(
    s: &mut Scenario,
    old_keys: &serde_json::Value,
    old_kh: &std::path::Path,
    what: &str,
) -> Result<(serde_json::Value, std::path::PathBuf)> {
    let (keys, kh) = new_system(s, old_keys, old_kh, what)?;
    let wants = "/etc/systemd/system/multi-user.target.wants/metalboot-phone-home.service";
    let phoned = s.ssh(IP, &kh, &format!("test -e {wants} && echo on || echo off"))?;
    ensure!(phoned.trim() == "off", "{what} enabled the phone-home unit");
    Ok((keys, kh))
}

/// After `what`: the host is installed with new host keys, the new system
/// presents them (SSH pinned to what the server holds) on the same /32, the
/// old key no longer answers and the old marker is gone. Returns the keys
/// and the known_hosts file.
pub(crate) fn new_system(
    s: &mut Scenario,
    old_keys: &serde_json::Value,
    old_kh: &std::path::Path,
    what: &str,
) -> Result<(serde_json::Value, std::path::PathBuf)> {
    let h = s.host("vm1")?;
    ensure!(h["state"] == "installed", "host is {} after {what}", h["state"]);
    ensure!(&h["host_keys"] != old_keys, "host keys did not change in {what}");
    let kh = known_hosts(s, IP)?;
    s.wait_ssh(IP, &kh, Duration::from_secs(300))?;
    ensure!(s.ssh(IP, old_kh, "true").is_err(), "the old host key still answers after {what}");
    let gone = s.ssh(IP, &kh, &format!("test -e {MARKER} && echo present || echo gone"))?;
    ensure!(gone.trim() == "gone", "the old system's marker survived {what}");
    let addr = s.ssh(IP, &kh, "ip -4 -o addr show scope global")?;
    ensure!(addr.contains(&format!("{IP}/32")), "address after {what}: {addr}");
    Ok((h["host_keys"].clone(), kh))
}

/// A scenario whose host `vm1` has the static /32 [`IP`] with an off-link
/// gateway, served with no DHCP on the network: the rented-server shape.
pub(crate) fn static_host_without_dhcp(name: &str, disk_lines: &str) -> Result<(Scenario, &'static str)> {
    crate::harness::require_assets()?;
    let mut s = Scenario::new(name, 1)?;
    let accel = accel();
    s.phase(&format!("accelerator {accel}"));
    let inv = format!(
        "{}network = {{ mode = \"static\", addresses = [\"{IP}/32\"], gateway = \"10.99.0.1\" }}\n",
        crate::scenarios::inventory_with(&s, disk_lines, TEST_IMAGE)?
    );
    s.start_server(&inv, "[dhcp]\nmode = \"off\"\n")?;
    Ok((s, accel))
}

/// The admin user of the reinstall scenario's host.
const ADMIN: &str = "ops";

/// Runs the whole scenario; returns it (timeline, logs).
pub fn reinstall_in_place(name: &str) -> Result<Scenario> {
    crate::harness::require_assets()?;
    let mut s = Scenario::new(name, 1)?;
    let accel = accel();
    s.phase(&format!("accelerator {accel}"));
    // dual stack: every reinstall carries the IPv6 too (metalboot.ip6=);
    // an admin user, so root does not log in over SSH: every login, every
    // reinstall and every check below goes through `ops` and `sudo -n`
    let inv = format!(
        "{}network = {{ mode = \"static\", addresses = [\"{IP}/32\", \"{IP6}/64\"], gateway = \"10.99.0.1\", \
         gateway6 = \"{GW6}\" }}\n[host.admin]\nname = \"{ADMIN}\"\n",
        inventory(&s, "{ serial = \"E2E-DISK\" }", TEST_IMAGE)?
    );
    s.login = ADMIN.into();
    s.ns.exec(&["ip", "-6", "addr", "add", &format!("{GW6}/64"), "dev", "br0", "nodad"])?;
    s.start_server(&inv, "[dhcp]\nmode = \"off\"\n")?;

    // the old system: ext4, static /32 with an off-subnet gateway and a
    // static IPv6, `ops` with sudo; no DHCP server: it boots its disk
    let ip6 = format!("{IP6}/64");
    let env = [("IP6", ip6.as_str()), ("GATEWAY6", GW6), ("ADMIN", ADMIN), ("KEXEC", "keep")];
    let (disk, old_kh) = crate::old_system::ext4_debian(&s, Firmware::Bios, IP, &env)?;
    let vm = Vm::start_from_disk(&s.ns, &s.dir, accel, "tap0", MAC, &[disk])?;
    s.wait_ssh(IP, &old_kh, Duration::from_secs(900))?;
    s.ssh(IP, &old_kh, &format!("echo old-system > {MARKER} && sync"))?;
    let old_keys = keys_in(&old_kh)?;
    let had = s.ssh(IP, &old_kh, "findmnt -n -o FSTYPE /; command -v kexec; sudo -n true && echo sudo-ok")?;
    ensure!(had.contains("ext4") && had.contains("/kexec") && had.contains("sudo-ok"), "the old system: {had}");
    s.phase("old system up from its ext4 disk: static /32 and IPv6, no DHCP server, ops with sudo; marker written");

    // --dry-run shows the disk and network and changes nothing; without
    // --yes and without a terminal to type the name in, nothing happens
    let before = s.host("vm1")?;
    let (ok, out) = reinstall_with(&s, "reinstall-dry-run.log", &["--dry-run"])?;
    ensure!(ok && out.contains("WIPES:    /dev/vda") && out.contains("serial=E2E-DISK"), "dry run:\n{out}");
    ensure!(out.contains(&format!("{IP}/32")) && out.contains("gateway 10.99.0.1"), "dry run network:\n{out}");
    ensure!(out.contains("nothing was changed"), "dry run:\n{out}");
    let (ok, out) = reinstall_with(&s, "reinstall-unconfirmed.log", &[])?;
    ensure!(!ok && out.contains("without confirmation"), "unconfirmed reinstall:\n{out}");
    print_host(&s)?;
    ensure!(s.host("vm1")?["timeline"] == before["timeline"], "dry run or refusal changed the host");
    s.phase(
        "--dry-run shows disk and network; no --yes and no terminal: refused; --print-host entry loads; host unchanged",
    );

    // 1. the server unreachable from the target: nothing may be lost
    let (ok, out) = with_server_blocked(&s, || reinstall(&s, "reinstall-unreachable.log"))?;
    ensure!(!ok, "reinstall succeeded although the target could not reach the server:\n{out}");
    ensure!(out.contains("no network in installer"), "reinstall did not say why:\n{out}");
    let h = s.host("vm1")?;
    ensure!(h["state"] == "failed", "host is {} not failed", h["state"]);
    let err = h["failed_error"].as_str().unwrap_or("");
    ensure!(err.contains("no network in installer") && err.contains("ip="), "failed_error: {err}");
    ensure!(err.contains(":8443 answers no TLS"), "no key probe in failed_error: {err}");
    s.phase("unreachable server: reinstall failed with the reason");
    let marker = s.ssh(IP, &old_kh, &format!("cat {MARKER}"))?;
    ensure!(marker.trim() == "old-system", "marker: {marker:?}");
    s.phase("old system back on its disk, untouched (marker present, old host key)");

    // 1b. a man in the middle presents another certificate where the
    // server's HTTPS is: the installer refuses it before anything is
    // written, says why on its console, and the old system comes back
    let (ok, out, pin) = {
        let m = crate::mitm::Mitm::start(&s, IP)?;
        let (ok, out) = reinstall(&s, "reinstall-mitm.log")?;
        (ok, out, m.pin.clone())
    };
    ensure!(!ok && out.contains("did not present the pinned key"), "reinstall past a man in the middle:\n{out}");
    // the command looked from the old system, and says so with both pins
    ensure!(out.contains(&format!("presents key pin {pin}, not the pinned sha256//")), "no key probe in:\n{out}");
    let err = s.host("vm1")?["failed_error"].as_str().unwrap_or("").to_string();
    ensure!(err.contains(&pin) && err.contains("a man in the middle"), "failed_error: {err}");
    let console = vm.serial();
    let refused = console.lines().find(|l| l.contains("not the pinned server")).unwrap_or_default();
    ensure!(refused.contains(&format!("presented key pin {pin}")), "the console does not name the stand-in's pin");
    ensure!(refused.contains("metalboot.pin trusts only sha256//"), "the console does not name the pinned key");
    let marker = s.ssh(IP, &old_kh, &format!("cat {MARKER}"))?;
    ensure!(marker.trim() == "old-system", "marker after the man in the middle: {marker:?}");
    s.phase("another certificate on the server's address: refused before any write, both pins named; old system back");

    // 2a. standalone with a gateway that does not answer: the old system,
    // changed at runtime only, routes by a dead gateway (and reaches us by
    // a host route); the carried network fails its ARP proof, the
    // installer reboots, and the old system comes back with its own config
    let dead_gateway = format!(
        "d=$(ip -o -4 addr show to {IP} | awk '{{print $2}}') && ip route add 10.99.0.1/32 dev $d && \
         ip route replace default via 10.99.0.254 dev $d onlink"
    );
    s.ssh(IP, &old_kh, &dead_gateway)?;
    let (ok, out) = reinstall_with(&s, "reinstall-standalone-dead-gateway.log", &["--yes", "--standalone"])?;
    ensure!(!ok && out.contains("no network in installer"), "standalone with a dead gateway:\n{out}");
    ensure!(out.contains("metalboot.standalone") && out.contains("10.99.0.254"), "what was tried:\n{out}");
    let h = s.host("vm1")?;
    ensure!(h["state"] == "failed", "host is {} not failed", h["state"]);
    let marker = s.ssh(IP, &old_kh, &format!("cat {MARKER}"))?;
    ensure!(marker.trim() == "old-system", "marker: {marker:?}");
    let route = s.ssh(IP, &old_kh, "ip -4 route show default")?;
    ensure!(route.contains("10.99.0.1"), "the old system did not come back with its own gateway: {route}");
    let left = s.ssh(IP, &old_kh, "test -e /var/tmp/metalboot && echo left || echo clean")?;
    ensure!(left.trim() == "clean", "the uploaded payload was left on the old system");
    s.phase("standalone, dead gateway: failed with the reason; old system back, untouched");

    // 2b. standalone, the server still unreachable from the target: plan,
    // image and new host keys travel over SSH into the installer's RAM
    let (ok, out) =
        with_server_blocked(&s, || reinstall_with(&s, "reinstall-standalone.log", &["--yes", "--standalone"]))?;
    ensure!(ok, "standalone reinstall failed:\n{out}");
    for line in out.lines().filter(|l| l.starts_with('[')) {
        println!("  standalone: {line}");
    }
    let (keys, kh) = new_standalone_system(&mut s, &old_keys, &old_kh, "the standalone reinstall")?;
    s.ssh(IP, &kh, &format!("echo standalone-system > {MARKER} && sync"))?;
    s.phase("standalone: installed with the server unreachable; pinned host keys reported; marker gone");
    let old_kh = s.dir.join("known_hosts.standalone-system");
    std::fs::copy(&kh, &old_kh)?;
    let old_keys = keys;

    // 3. reachable, keeping /home: a new root on the same filesystem,
    // back on the same address; the old root read-only under @snapshots
    s.ssh(IP, &old_kh, "echo kept-by-reinstall > /home/kept && sync")?;
    let (ok, out) = reinstall_with(&s, "reinstall-keep-nosuch.log", &["--yes", "--keep", "@home,@data"])?;
    ensure!(!ok && out.contains("no subvolume @data"), "a keep of a missing subvolume:\n{out}");
    ensure!(s.host("vm1")?["state"] == "installed", "a refused keep changed the host");
    let (ok, out) = reinstall_with(&s, "reinstall.log", &["--yes", "--keep", "@home"])?;
    ensure!(ok, "reinstall failed:\n{out}");
    for line in out.lines().filter(|l| l.starts_with('[')) {
        println!("  reinstall: {line}");
    }
    ensure!(out.contains("is installed; new host keys"), "reinstall output:\n{out}");
    ensure!(out.contains("KEEPS:    @home") && out.contains("REWRITES: /dev/vda"), "no keep in:\n{out}");
    s.phase("reinstall --keep @home finished (a missing @data refused first): the host phoned home");
    let (_, kh) = new_system(&mut s, &old_keys, &old_kh, "the reinstall")?;
    s.phase("same static address, new host keys, marker gone");
    let kept = s.ssh(IP, &kh, "cat /home/kept; ls /.snapshots; cat /.snapshots/@.replaced.*/root/old-system-marker")?;
    ensure!(kept.starts_with("kept-by-reinstall\n") && kept.contains("@.replaced."), "after --keep @home: {kept}");
    ensure!(kept.trim_end().ends_with("standalone-system"), "the old root is not under @snapshots: {kept}");
    let ro = s.ssh(IP, &kh, &format!("{TRIAL_OVER}; btrfs property get -ts /.snapshots/@.replaced.* ro"))?;
    ensure!(ro.trim() == "ro=true", "the trial did not commit (custom.cfg gone, the old root read-only): {ro}");
    s.phase("/home kept; the old root read-only under /.snapshots with the old marker");
    let six = s.ssh(IP, &kh, "ip -6 -o addr show scope global")?;
    ensure!(six.contains(&format!("{IP6}/64")), "the reinstalled host lost its IPv6: {six}");
    let mut i = Installed { s, vm, ip: IP.into(), known_hosts: kh, disks: Disks::One, spare: None, backup: None };
    check_installed(&mut i)?;
    i.check_kernel(TEST_IMAGE)?;
    let Installed { mut s, mut vm, known_hosts: kh, .. } = i;

    // 4. IPv6 only (IPv4 removed at runtime), standalone: the installer keeps the IPv6 alone
    let keys = s.host("vm1")?["host_keys"].clone();
    let host = crate::rollback::Host {
        ip: IP,
        marker: MARKER,
        reinstall: &|s, a| reinstall_command(s, IP, "vm1", a),
        block: &block_server_from_target,
    };
    crate::rollback::failed_trial_rolls_back(&mut s, &mut vm, &host, &kh, &keys)?;
    let flush = format!(
        "echo v6-system > {MARKER} && sync && d=$(ip -o -6 addr show to {IP6} | awk '{{print $2}}') && \
         ip -4 route flush default && ip -4 addr flush dev $d"
    );
    s.ssh(IP6, &kh, &flush)?;
    let (ok, out) = reinstall_at(&s, "reinstall-ipv6-only.log", IP6, &["--yes", "--standalone"])?;
    ensure!(ok, "IPv6-only standalone reinstall failed:\n{out}");
    for line in out.lines().filter(|l| l.starts_with('[')) {
        println!("  ipv6-only: {line}");
    }
    let h = s.host("vm1")?;
    ensure!(h["state"] == "installed" && h["host_keys"] != keys, "after the IPv6-only reinstall: {h}");
    let kh = known_hosts_for(&s, IP6, &h)?;
    s.wait_ssh(IP6, &kh, Duration::from_secs(300))?;
    let gone = s.ssh(IP6, &kh, &format!("test -e {MARKER} && echo present || echo gone"))?;
    ensure!(gone.trim() == "gone", "the marker survived the IPv6-only reinstall");
    let addrs = s.ssh(IP6, &kh, "ip -o addr show scope global")?;
    ensure!(addrs.contains(&format!("{IP6}/64")) && !addrs.contains(" inet "), "addresses: {addrs}");
    let route = s.ssh(IP6, &kh, "ip -6 route show default")?;
    ensure!(route.contains(GW6), "IPv6 default route: {route}");
    s.phase("IPv6 only, standalone: installed, same IPv6 and gateway6, no IPv4, marker gone");
    vm.stop();
    s.finish();
    Ok(s)
}

/// The host keys in a known_hosts file, as the server holds them (`TYPE
/// BASE64`).
fn keys_in(kh: &std::path::Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(kh)?;
    let keys: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3).then(|| format!("{} {}", f[1], f[2]))
        })
        .collect();
    ensure!(!keys.is_empty(), "no host keys in {}", kh.display());
    Ok(serde_json::json!(keys))
}

/// known_hosts pinning the keys the server holds for vm1 at `ip`.
fn known_hosts_for(s: &Scenario, ip: &str, h: &serde_json::Value) -> Result<std::path::PathBuf> {
    let keys = h["host_keys"].as_array().context("host_keys")?;
    let text: String = keys.iter().filter_map(|k| k.as_str()).map(|k| format!("{ip} {k}\n")).collect();
    let p = s.dir.join(format!("known_hosts.{}", ip.replace(':', "_")));
    std::fs::write(&p, text)?;
    Ok(p)
}
