//! `metalboot lab up`: a private network, `metalboot serve` on it, one VM
//! per selected inventory host, each installed through the production path
//! (PXE, the installer, the phone-home); then the Ansible inventory,
//! known_hosts and an SSH config to reach them.

use super::access::{self, secs};
use super::netns::{self, Netns};
use super::setup::{self, TLS_PORT};
use super::state::{netns_name, LabHost, LabState, Proc};
use super::vm::{Disk, Firmware, Size, Vm};
use anyhow::{bail, Context, Result};
use metalboot_spec::ByteSize;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `lab up` options.
#[derive(clap::Args, Debug, Clone)]
pub struct UpArgs {
    /// Only these inventory hosts (default: every host).
    #[arg(long, value_delimiter = ',', value_name = "NAME")]
    pub hosts: Vec<String>,
    /// `bios` or `uefi` for every host, or `NAME=bios|uefi` for one
    /// (default: bios).
    #[arg(long, value_delimiter = ',', value_name = "FIRMWARE")]
    pub firmware: Vec<String>,
    /// Memory of each VM in MiB.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(512..=65536))]
    pub memory: u32,
    /// Virtual CPUs of each VM.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub cpus: u32,
    /// Size of a VM disk whose selector asks for none (a selector's
    /// `min_size`/`max_size` win).
    #[arg(long, default_value = "8G")]
    pub disk_size: ByteSize,
    /// `kvm` or `tcg` (default: KVM if a test guest runs well under it).
    #[arg(long, value_parser = ["kvm", "tcg"])]
    pub accel: Option<String>,
    /// Give up on an install after this many seconds.
    #[arg(long, default_value_t = 1800)]
    pub timeout: u64,
}

/// Fails unless running as root.
pub fn require_root() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("metalboot lab needs root: it makes a network namespace, a bridge and taps (run it with sudo)");
    }
    Ok(())
}

/// Fails naming the Debian package of the first program not on PATH.
pub fn require_programs(progs: &[(&str, &str)]) -> Result<()> {
    for (prog, package) in progs {
        let found = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()));
        if !found {
            bail!("{prog} not found: apt-get install {package}");
        }
    }
    Ok(())
}

/// OVMF's firmware and variable store.
const OVMF: [&str; 2] = ["/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"];

/// Runs `lab up`.
pub fn up(cfg_path: Option<&Path>, dir: &Path, a: &UpArgs) -> Result<()> {
    require_root()?;
    require_programs(&[
        ("ip", "iproute2"),
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("ssh-keygen", "openssh-client"),
        ("ssh", "openssh-client"),
    ])?;
    let dir = std::path::absolute(dir).context("the lab's directory")?;
    check_dir_free(&dir)?;
    let (cfg, inv, _) = crate::serve::load_all(cfg_path)?;
    if cfg.inventory.is_none() {
        bail!("the config names no inventory: the lab boots the hosts of `[server] inventory` (give --config FILE)");
    }
    let chosen = setup::select(inv.hosts(), &a.hosts)?;
    let fw = setup::firmware(&chosen, &a.firmware)?;
    if fw.values().any(|f| *f == Firmware::Uefi) {
        if let Some(missing) = OVMF.iter().find(|p| !Path::new(p).is_file()) {
            bail!("{missing} not found: apt-get install ovmf (a host boots with UEFI)");
        }
    }
    let mut needed = vec![crate::config::ASSET_KERNEL.to_string(), crate::config::ASSET_INITRAMFS.to_string()];
    needed.extend(chosen.iter().map(|h| h.image.clone()));
    for name in needed {
        let path = cfg.assets.get(&name).with_context(|| format!("asset {name:?} is not configured"))?;
        if !path.is_file() {
            bail!(
                "asset {name} not found at {} (set [assets] dir in the config, or run `make assets`)",
                path.display()
            );
        }
    }
    let mut plan = Vec::new();
    for h in &chosen {
        plan.push((*h, setup::disks(h, a.disk_size.0)?));
    }

    let name = netns_name(&dir);
    if netns::exists(&name) {
        bail!("network namespace {name} exists already: `metalboot lab down --dir {}` removes it", dir.display());
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("making {}", dir.display()))?;
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    // the state first: whatever fails from here, `lab down` clears it
    let mut st = LabState {
        dir: dir.clone(),
        netns: name.clone(),
        server: Proc::default(),
        base: format!("http://{}:{}", netns::SERVER_IP, setup::HTTP_PORT),
        accel: String::new(),
        started,
        hosts: vec![],
    };
    st.save()?;
    let left_up = |e: anyhow::Error| {
        e.context(format!(
            "the lab is left up for inspection: `metalboot lab --dir {0} console NAME`, `metalboot lab --dir {0} \
             status`; `metalboot lab --dir {0} down` removes it",
            dir.display()
        ))
    };
    let clock = Instant::now();
    let lab_cfg = dir.join("metalboot.toml");
    let prepared = (|| -> Result<()> {
        let key = dir.join("id_ed25519");
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "metalboot-lab", "-f"])
            .arg(&key)
            .output()
            .context("running ssh-keygen")?;
        anyhow::ensure!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr).trim());
        let public = std::fs::read_to_string(key.with_extension("pub"))?.trim().to_string();
        crate::files::write_atomically(&dir.join("api-token"), crate::state::new_token().as_bytes(), 0o600)?;
        std::fs::write(dir.join("hosts.toml"), setup::inventory(&chosen, &public)?)?;
        let (text, base) = setup::config_source(&cfg)?;
        std::fs::write(&lab_cfg, setup::server_config(&text, &base, &cfg, &dir)?)?;
        // what the lab's server will load, checked before anything starts
        crate::serve::load_all(Some(&lab_cfg)).context("the lab's own config (a bug: please report it)")?;
        Ok(())
    })();
    prepared.map_err(left_up)?;
    Netns::create_named(&name, chosen.len()).map_err(left_up)?.keep();
    st.server = Proc::of(start_server(&st, &lab_cfg).map_err(left_up)?);
    st.save()?;
    println!("[{:6.1}s] server up on {} (HTTPS on port {TLS_PORT}), namespace {}", secs(clock), st.base, st.netns);
    st.accel = match &a.accel {
        Some(x) => x.clone(),
        None => {
            let (accel, why) = super::kvm::detect();
            println!("[{:6.1}s] accelerator: {} ({why})", secs(clock), accel.name());
            accel.name().to_string()
        }
    };
    let ns = Netns::adopt(&st.netns);
    let started_vms = start_vms(&ns, &mut st, &plan, &fw, Size { memory_mib: a.memory, cpus: a.cpus }, clock);
    // the namespace stays, whatever happened: `lab down` removes it
    let _ = ns.keep();
    started_vms.map_err(left_up)?;
    let names: Vec<String> = st.hosts.iter().map(|h| h.name.clone()).collect();
    let token = access::token(&st)?;
    access::wait_installed(&st, &token, &names, Duration::from_secs(a.timeout), clock).map_err(left_up)?;
    access::refresh(&mut st, &token).map_err(left_up)?;
    access::wait_ssh(&st, &names, Duration::from_secs(300)).map_err(left_up)?;
    println!("[{:6.1}s] every host installed and reachable over SSH", secs(clock));
    access::print_summary(&st);
    Ok(())
}

/// Starts a VM per planned host, recording each in the state file.
fn start_vms(
    ns: &Netns,
    st: &mut LabState,
    plan: &[(&metalboot_spec::HostSpec, Vec<setup::LabDisk>)],
    fw: &std::collections::BTreeMap<String, Firmware>,
    size: Size,
    clock: Instant,
) -> Result<()> {
    for (i, (h, disks)) in plan.iter().enumerate() {
        let hdir = st.dir.join("hosts").join(&h.name);
        std::fs::create_dir_all(&hdir)?;
        let mut attached = Vec::new();
        for d in disks {
            let path = hdir.join(&d.file);
            std::fs::File::create(&path)?.set_len(d.size)?;
            attached.push(Disk { bus: d.bus, ..Disk::virtio(path, &d.serial) });
        }
        let mac = h.macs[0].to_string();
        let firmware = fw[&h.name];
        let tap = format!("tap{i}");
        let vm = Vm::start_sized(ns, &hdir, &st.accel, firmware, &tap, &mac, &attached, size)?;
        let fw_name = if firmware == Firmware::Uefi { "uefi" } else { "bios" };
        st.hosts.push(LabHost {
            name: h.name.clone(),
            mac: mac.clone(),
            firmware: fw_name.into(),
            vm: Proc::of(vm.detach()),
            tap,
            dir: hdir,
            login: h.ansible_user().to_string(),
            ip: None,
        });
        st.save()?;
        let each: Vec<String> =
            disks.iter().map(|d| format!("{} {} {}", d.serial, bus_name(d.bus), ByteSize(d.size))).collect();
        println!(
            "[{:6.1}s] {}: VM started ({fw_name}, {mac}, {} MiB, {} CPU(s); disks {})",
            secs(clock),
            h.name,
            size.memory_mib,
            size.cpus,
            each.join(", ")
        );
    }
    Ok(())
}

fn bus_name(b: super::vm::Bus) -> &'static str {
    match b {
        super::vm::Bus::Virtio => "virtio",
        super::vm::Bus::Nvme => "nvme",
        super::vm::Bus::Sata => "sata",
    }
}

/// Refuses a path the generated SSH config, inventory script and QEMU
/// options could not carry as it is.
fn check_plain_path(what: &str, p: &Path) -> Result<()> {
    let s = p.display().to_string();
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || "/._+-".contains(*c))) {
        bail!("{what} {s:?} has {c:?} in it: the lab needs a path of letters, digits and / . _ + - only");
    }
    Ok(())
}

/// Refuses a directory that holds a lab already, or anything else.
fn check_dir_free(dir: &Path) -> Result<()> {
    check_plain_path("the lab's directory", dir)?;
    check_plain_path("the metalboot binary's path", &std::env::current_exe().context("finding the metalboot binary")?)?;
    if let Some(st) = LabState::load(dir)? {
        let running = st.running();
        let hosts: Vec<&str> = st.hosts.iter().map(|h| h.name.as_str()).collect();
        if running.is_empty() {
            bail!(
                "{} holds a lab whose processes are gone (hosts: {}): `metalboot lab --dir {0} down` clears it",
                dir.display(),
                hosts.join(", ")
            );
        }
        bail!(
            "a lab is already up in {0} (hosts: {1}; {2} process(es) running): `metalboot lab --dir {0} status` \
             shows it, `metalboot lab --dir {0} down` stops it",
            dir.display(),
            hosts.join(", "),
            running.len()
        );
    }
    if dir.exists() && std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?.next().is_some() {
        bail!("{} exists and is not empty: the lab needs a directory of its own (--dir)", dir.display());
    }
    Ok(())
}

/// Starts `metalboot serve` in the lab's namespace, in a process group of
/// its own, and waits until it is ready; its process id.
fn start_server(st: &LabState, cfg: &Path) -> Result<u32> {
    use std::os::unix::process::CommandExt;
    let exe: PathBuf = std::env::current_exe().context("finding the metalboot binary")?;
    let ready = st.dir.join("ready");
    let log = st.dir.join("server.log");
    let mut child = Command::new("ip")
        .args(["netns", "exec", &st.netns])
        .arg(&exe)
        .arg("--config")
        .arg(cfg)
        .args(["serve", "--ready-file"])
        .arg(&ready)
        .current_dir(&st.dir)
        .env("METALBOOT_LOG", std::env::var("METALBOOT_LOG").unwrap_or_else(|_| "info".into()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .process_group(0)
        .spawn()
        .context("starting metalboot serve in the lab's namespace")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready.exists() {
        if let Some(status) = child.try_wait()? {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            bail!("the lab's server exited ({status}):\n{}", super::vm::tail(&text, 20));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the lab's server was not ready within 30 s (stopped); its log: {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(child.id())
}
