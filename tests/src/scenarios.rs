//! The scenarios, shared by the e2e tests and `make demo`.

pub(crate) use crate::dhcp_setup::dhcp_config;
pub use crate::dhcp_setup::Dhcp;
pub(crate) use crate::disks::blank_disk;
use crate::disks::check_disks;
pub use crate::disks::Disks;
use crate::harness::{assets, metalboot_bin, Image, Scenario};
use crate::ssh::check_logins;
use crate::vm::{accel, Firmware, Vm};
use anyhow::{ensure, Context, Result};
use std::path::PathBuf;
use std::time::Duration;

/// MAC of the test VM.
pub const MAC: &str = "52:54:00:e2:e0:01";

/// What the VM scenarios install (a quarter of the generic kernel's modules:
/// some 40% less to fetch and unpack), as `make demo` does; the BIOS
/// scenario keeps the generic image so its kernel stays covered.
pub const TEST_IMAGE: Image = Image::Cloud;

/// The scenario's one host; the generic image is left to the inventory's default.
pub(crate) fn inventory(s: &Scenario, disk: &str, image: Image) -> Result<String> {
    inventory_with(s, &format!("disk = {disk}\n"), image)
}

/// The scenario's one host with `disk_lines` (`disk = …`, or `disks = […]`
/// and a layout) for its disks.
pub(crate) fn inventory_with(s: &Scenario, disk_lines: &str, image: Image) -> Result<String> {
    let image = match image {
        Image::Generic => String::new(),
        other => format!("image = \"{}\"\n", other.asset()),
    };
    Ok(format!(
        "[[host]]\nname = \"vm1\"\nmacs = [\"{MAC}\"]\nlabels = [\"e2e\"]\narm = true\n{disk_lines}{image}ssh_authorized_keys = [\"{}\"]\n",
        s.public_key()?
    ))
}

/// `metalboot known-hosts`: the host keys the server recorded, under the
/// host's name and address.
pub(crate) fn known_hosts(s: &Scenario, ip: &str) -> Result<PathBuf> {
    let out =
        s.ns.command(metalboot_bin().to_str().context("binary path")?)
            .current_dir(&s.dir)
            .args(["--config", "metalboot.toml", "known-hosts", "--server", &s.base, "--output", "known_hosts"])
            .output()?;
    ensure!(out.status.success(), "metalboot known-hosts: {}", String::from_utf8_lossy(&out.stderr));
    let p = s.dir.join("known_hosts");
    let text = std::fs::read_to_string(&p)?;
    let names = |l: &str| l.split(' ').next().unwrap_or("").split(',').map(String::from).collect::<Vec<_>>();
    ensure!(
        text.lines().any(|l| names(l).first().map(String::as_str) == Some("vm1") && names(l).iter().any(|n| n == ip)),
        "known_hosts lacks vm1 at {ip}:\n{text}"
    );
    Ok(p)
}

/// `ansible -m ping` through metalboot's inventory script, with the
/// generated known_hosts and host-key checking on.
fn ansible_ping(i: &Installed) -> Result<String> {
    let script = i.s.dir.join("inventory.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncd {} && exec {} --config metalboot.toml inventory --server {} ansible \"$@\"\n",
            i.s.dir.display(),
            metalboot_bin().display(),
            i.s.base
        ),
    )?;
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let out = i
        .s
        .ns
        .command("ansible")
        .current_dir(&i.s.dir)
        .env("HOME", &i.s.dir)
        .env("ANSIBLE_HOST_KEY_CHECKING", "True")
        .args(["vm1", "-i", "inventory.sh", "-m", "ping", "--private-key"])
        .arg(&i.s.ssh_key)
        .arg(format!("--ssh-extra-args=-o UserKnownHostsFile={} -o StrictHostKeyChecking=yes", i.known_hosts.display()))
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success() && text.contains("\"ping\": \"pong\""),
        "ansible ping failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(text)
}

/// An installed VM reached over SSH.
pub struct Installed {
    /// The scenario (server, namespace, timeline).
    pub s: Scenario,
    /// The VM.
    pub vm: Vm,
    /// Its address.
    pub ip: String,
    /// known_hosts with the host keys the server recorded.
    pub known_hosts: PathBuf,
    /// The disks the VM was given.
    pub disks: Disks,
    /// The disk that must stay all zeros, if any.
    pub spare: Option<PathBuf>,
    /// Where the host sends its snapshots, if it does.
    pub backup: Option<crate::backup::BackupTarget>,
}

impl Installed {
    /// Runs `cmd` on the host.
    pub fn ssh(&self, cmd: &str) -> Result<String> {
        self.s.ssh(&self.ip, &self.known_hosts, cmd)
    }

    /// Checks the host runs `image`'s kernel, and records which.
    pub fn check_kernel(&mut self, image: Image) -> Result<()> {
        let release = self.ssh("uname -r")?.trim().to_string();
        ensure!(image.is_its_kernel(&release), "kernel {release} is not {}'s", image.asset());
        self.s.phase(&format!("kernel {release}, from {}", image.asset()));
        Ok(())
    }
}

pub(crate) fn start(name: &str, dhcp: Dhcp, disk_lines: &str, image: Image) -> Result<(Scenario, &'static str)> {
    start_with(name, dhcp, image, |_| Ok(disk_lines.to_string()))
}

/// [`start`], the host's inventory lines made by `lines` once the
/// scenario's directory exists.
pub(crate) fn start_with(
    name: &str,
    dhcp: Dhcp,
    image: Image,
    lines: impl FnOnce(&Scenario) -> Result<String>,
) -> Result<(Scenario, &'static str)> {
    crate::harness::require_assets()?;
    let mut s = Scenario::new(name, 1)?;
    let accel = accel();
    s.phase(&format!("accelerator {accel}"));
    if dhcp == Dhcp::ProxyBesideDnsmasq {
        s.start_dnsmasq()?;
    }
    let disk_lines = lines(&s)?;
    let inv = inventory_with(&s, &disk_lines, image)?;
    s.start_server(&inv, dhcp_config(dhcp))?;
    if dhcp == Dhcp::FullBehindRelay {
        crate::relay::vm_behind_relay(&mut s)?;
    }
    Ok((s, accel))
}

/// PXE-installs `image` on one VM on `fw`, waits for it to phone home from
/// its disk and for SSH with the enrolled key against the recorded host
/// keys, and checks it runs the image's kernel.
pub fn install(fw: Firmware, name: &str, dhcp: Dhcp, image: Image, disks: Disks) -> Result<Installed> {
    Ok(install_watched(fw, name, dhcp, image, disks, false)?.0)
}

/// [`install`], with the status page open in a browser from before the VM
/// starts when `watch` (see [`crate::status_page`]); the caller checks it
/// ([`crate::status_page::Watcher::check_install`]) once done with the host
/// as installed (the check arms and disarms it).
pub fn install_watched(
    fw: Firmware,
    name: &str,
    dhcp: Dhcp,
    image: Image,
    disks: Disks,
    watch: bool,
) -> Result<(Installed, Option<crate::status_page::Watcher>)> {
    // the BIOS scenario's host sends @home's snapshots to a second machine
    let mut backup = None;
    let (mut s, accel) = start_with(name, dhcp, image, |s| {
        let mut lines = disks.inventory_lines().to_string();
        if disks == Disks::SataThenNvme {
            let b = crate::backup::BackupTarget::prepare(s)?;
            lines.push_str(&crate::backup::inventory_line(&b.send_entry()));
            backup = Some(b);
        }
        Ok(lines)
    })?;
    if let Some(b) = backup.as_mut() {
        b.start(&s, false)?;
        s.phase(&format!("backup target: sshd on {}:{}", crate::backup::BACKUP_IP, crate::backup::BACKUP_PORT))
    }
    let mut watcher = if watch { Some(crate::status_page::Watcher::open(&mut s, "vm1")?) } else { None };
    let (attached, spare_path) = disks.create(&s)?;
    let mut vm = Vm::start(&s.ns, &s.dir, accel, fw, "tap0", MAC, &attached)?;
    s.phase(&format!("vm started ({disks:?})"));
    let limit = Duration::from_secs(if accel == "kvm" { 300 } else { 900 });
    s.wait_serial(&mut vm, "metalboot-installer", Duration::from_secs(600))?;
    s.wait_state("vm1", "installing", &mut vm, limit)?;
    if let Some(w) = watcher.as_mut() {
        w.shot_while_installing(&mut s)?;
    }
    let rebooting = s.wait_state("vm1", "rebooting", &mut vm, limit)?;
    if let Some(b) = &backup {
        // the installer reported the host's backup key: the target lets it in
        let key = rebooting["backup_key"].as_str().context("no backup key reported")?;
        b.authorise(key)?;
        s.phase("backup key reported and authorised on the target");
    }
    let host = s.wait_state("vm1", "installed", &mut vm, limit)?;
    let ip = host["addresses"][0].as_str().context("no address reported")?.split('/').next().unwrap_or("").to_string();
    if dhcp == Dhcp::ProxyBesideDnsmasq {
        let leases = std::fs::read_to_string(s.dir.join("dnsmasq.leases")).unwrap_or_default();
        ensure!(leases.contains(&ip), "the installed host's address {ip} is not a dnsmasq lease:\n{leases}");
    }
    let kh = known_hosts(&s, &ip)?;
    s.wait_ssh(&ip, &kh, Duration::from_secs(120))?;
    let mut i = Installed { s, vm, ip, known_hosts: kh, disks, spare: spare_path, backup };
    i.check_kernel(image)?;
    Ok((i, watcher))
}

/// The checks every installed host must pass; returns the host's facts.
pub fn check_installed(i: &mut Installed) -> Result<String> {
    // the installer was pointed at the pinned HTTPS listener, and the
    // installed system's phone-home pins it too
    let console = i.vm.serial();
    let tls = format!("metalboot.url=https://{}:{}", i.s.ns.server_ip, crate::harness::TLS_PORT);
    ensure!(console.contains(&tls) && console.contains("metalboot.pin=sha256//"), "no {tls} and pin on the console");
    let home = i.ssh("journalctl -b 0 -o cat -u metalboot-phone-home.service | grep 'phoned home' || true")?;
    ensure!(home.contains(&format!("phoned home to https://{}:", i.s.ns.server_ip)), "phone-home: {home}");
    let root = i.ssh("findmnt -n -o FSTYPE,OPTIONS /")?;
    ensure!(root.starts_with("btrfs") && root.contains("subvol=/@"), "root mount: {root}");
    let subs = i.ssh("btrfs subvolume list /")?;
    for sv in ["@", "@home", "@var_log", "@snapshots"] {
        ensure!(subs.lines().any(|l| l.ends_with(&format!("path {sv}"))), "{sv} missing: {subs}");
    }
    ensure!(i.ssh("hostname")?.trim() == "vm1", "hostname is not vm1");
    check_disks(&mut i.s, &i.ip, &i.known_hosts, i.disks, i.spare.as_deref())?;
    check_logins(&mut i.s, &i.ip, &i.known_hosts)?;
    // a key other than the recorded one is refused (no trust on first use)
    let wrong = i.s.dir.join("known_hosts.wrong");
    std::fs::write(
        &wrong,
        format!("{} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n", i.ip),
    )?;
    ensure!(i.s.ssh(&i.ip, &wrong, "true").is_err(), "ssh accepted an unrecorded host key");
    ansible_ping(i)?;
    i.s.phase("ansible -m ping with the generated inventory and known_hosts");
    let facts = i.ssh(
        "hostnamectl 2>/dev/null | sed -n '1,9p'; echo; ip -br addr; echo; findmnt -n /; btrfs subvolume list /",
    )?;
    i.s.phase("checks passed");
    Ok(facts)
}

/// Scenario 1/2: install, boot the disk, SSH, check. Returns the scenario
/// (timeline, logs) and the facts printed by the host.
pub fn pxe_install(fw: Firmware, name: &str, image: Image) -> Result<(Scenario, String)> {
    let mut i = install(fw, name, Dhcp::Full, image, Disks::One)?;
    let facts = check_installed(&mut i)?;
    i.vm.stop();
    i.s.finish();
    Ok((i.s, facts))
}

/// The Debian-installer path: the VM PXE-boots into Debian's netboot
/// installer, which fetches its preseed with the host's token and runs our
/// `preseed/early_command`; the server then shows the host installing by
/// that method. A wrong token gets no preseed. With `METALBOOT_DI_MIRROR`
/// (a complete Debian mirror reachable from the provisioning network) the
/// install runs to the end and the host is checked like the image path's;
/// without it the test stops there and says why: the mirror this machine
/// reaches answers 404 for every `.udeb`, so the installer cannot load its
/// components.
pub fn debian_installer(name: &str) -> Result<Scenario> {
    crate::harness::require_assets()?;
    for f in ["di-linux", "di-initrd.gz"] {
        ensure!(assets().join(f).is_file(), "{} missing: run `make assets` first", assets().join(f).display());
    }
    let mirror = std::env::var("METALBOOT_DI_MIRROR").ok();
    let mut s = Scenario::new(name, 1)?;
    let accel = accel();
    s.phase(&format!("accelerator {accel}"));
    let inv = inventory(&s, "{ serial = \"E2E-DISK\" }", TEST_IMAGE)?
        .replace("arm = true\n", "arm = true\nmethod = \"debian-installer\"\n");
    // without a real mirror the preseed names this server, which has none
    let mirror_url = mirror.clone().unwrap_or_else(|| format!("{}/no-mirror", s.base));
    // d-i's netcfg asks for a router and resolvers the lease lacks: hand
    // them out as a provisioning network with a local mirror would
    let cfg = format!(
        "{}router = \"10.99.0.1\"\ndns = [\"10.99.0.1\"]\n\n[debian_installer]\nmirror = \"{mirror_url}\"\n",
        dhcp_config(Dhcp::Full)
    );
    s.start_server(&inv, &cfg)?;
    let disk = blank_disk(&s, "disk.img", "E2E-DISK", 8 << 30)?;
    let mut vm = Vm::start(&s.ns, &s.dir, accel, Firmware::Bios, "tap0", MAC, &[disk])?;
    s.phase("vm started");
    // d-i reaches its early_command in about two minutes under TCG
    let started = Duration::from_secs(if accel == "kvm" { 300 } else { 900 });
    let host = s.wait_state("vm1", "installing", &mut vm, started)?;
    ensure!(host["method"] == "debian-installer", "method: {}", host["method"]);
    let timeline = host["timeline"].to_string();
    ensure!(timeline.contains("debian-installer started"), "no 'debian-installer started' event: {timeline}");
    let log = s.server_log();
    ensure!(
        log.contains("/v1/hosts/vm1/preseed"),
        "the installer never fetched its preseed:\n{}",
        crate::vm::tail(&log, 30)
    );
    s.phase("debian-installer started: preseed fetched with the token, early_command reported");
    let code =
        s.ns.command("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("{}/v1/hosts/vm1/preseed?token=wrong", s.base))
            .output()?;
    let code = String::from_utf8_lossy(&code.stdout).to_string();
    ensure!(code == "403", "a wrong token got HTTP {code}, not 403");
    s.phase("a wrong token gets 403 and no preseed");
    match mirror {
        None => {
            println!(
                "{name}: stopping after 'debian-installer started': set METALBOOT_DI_MIRROR to a complete Debian \
                 mirror (with udebs) reachable from the provisioning network to run the install to the end"
            );
            vm.stop();
        }
        Some(_) => {
            s.wait_state("vm1", "rebooting", &mut vm, Duration::from_secs(7200))?;
            let host = s.wait_state("vm1", "installed", &mut vm, Duration::from_secs(1800))?;
            let ip = host["addresses"][0]
                .as_str()
                .context("no address reported")?
                .split('/')
                .next()
                .unwrap_or("")
                .to_string();
            let kh = known_hosts(&s, &ip)?;
            s.wait_ssh(&ip, &kh, Duration::from_secs(120))?;
            let mut i = Installed { s, vm, ip, known_hosts: kh, disks: Disks::One, spare: None, backup: None };
            check_installed(&mut i)?;
            i.vm.stop();
            s = i.s;
        }
    }
    s.finish();
    Ok(s)
}
