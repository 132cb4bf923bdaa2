//! `metalboot lab up`: a private network, `metalboot serve` on it, one VM
//! per selected inventory host, each installed through the production path
//! (PXE, the installer, the phone-home); then the Ansible inventory,
//! known_hosts and an SSH config to reach them.

use super::access::{self, secs};
use super::netns::{self, Netns};
use super::setup::{self, TLS_PORT};
use super::start::{start_server, start_vms, Disks};
use super::state::{netns_name, LabState, Proc};
use super::vm::{Firmware, Size};
use super::{snapshot, stop};
use anyhow::{bail, Context, Result};
use metalboot_spec::ByteSize;
use std::path::{Path, PathBuf};
use std::process::Command;
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
    /// Start from the installed hosts of an earlier `up` of the same lab
    /// (same config, inventory, firmware, disks and assets), on qcow2
    /// overlays; without one yet, install, power off and keep them.
    #[arg(long)]
    pub snapshot: bool,
    /// Where snapshots are kept (default: METALBOOT_LAB_CACHE, else
    /// /var/cache/metalboot/lab).
    #[arg(long, value_name = "DIR", requires = "snapshot")]
    pub cache: Option<PathBuf>,
}

/// A snapshot's cache directory and key.
struct Snap {
    cache: PathBuf,
    key: String,
}

/// The files whose bytes decide what a snapshot holds: the assets, this
/// binary (its embedded templates and the server's code), and the
/// templates directory the config names, if any.
fn key_files(cfg: &crate::config::Config, mut files: Vec<PathBuf>) -> Result<Vec<PathBuf>> {
    files.push(std::env::current_exe().context("finding the metalboot binary")?);
    if let Some(t) = &cfg.templates {
        files.extend(snapshot::files_under(t)?);
    }
    Ok(files)
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
    let mut asset_files = Vec::new();
    for name in needed {
        let path = cfg.assets.get(&name).with_context(|| format!("asset {name:?} is not configured"))?;
        if !path.is_file() {
            bail!(
                "asset {name} not found at {} (set [assets] dir in the config, or run `make assets`)",
                path.display()
            );
        }
        asset_files.push(path.clone());
    }
    let mut plan = Vec::new();
    for h in &chosen {
        plan.push((*h, setup::disks(h, a.disk_size.0)?));
    }
    let snap = match a.snapshot {
        false => None,
        true => {
            require_programs(&[("qemu-img", "qemu-utils")])?;
            let fws: Vec<String> = plan.iter().map(|(h, _)| format!("{:?}", fw[&h.name])).collect();
            let parts = snapshot::KeyParts {
                config: &setup::config_source(&cfg)?.0,
                inventory: &setup::inventory(&chosen, "ssh-ed25519 AAAA lab-key")?,
                hosts: plan.iter().zip(&fws).map(|((h, d), f)| (h.name.as_str(), f.as_str(), d.as_slice())).collect(),
                assets: key_files(&cfg, asset_files)?,
            };
            Some(Snap { cache: snapshot::cache_dir(a.cache.as_deref())?, key: snapshot::key(&parts)? })
        }
    };
    let entry = snap.as_ref().and_then(|s| snapshot::lookup(&s.cache, &s.key));
    match (&snap, &entry) {
        (Some(_), Some(e)) => println!("snapshot {}: the hosts start from it", snapshot::describe(e)),
        (Some(s), None) => println!(
            "no snapshot of this lab yet: installing, then keeping the hosts in {}",
            s.cache.join(&s.key).display()
        ),
        _ => {}
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
        snapshot: entry.clone(),
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
        if let Some(e) = &entry {
            snapshot::restore(e, &dir)?;
        } else {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "metalboot-lab", "-f"])
                .arg(&key)
                .output()
                .context("running ssh-keygen")?;
            anyhow::ensure!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
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
    let token = access::token(&st).map_err(left_up)?;
    let ns = Netns::adopt(&st.netns);
    let size = Size { memory_mib: a.memory, cpus: a.cpus };
    let disks = match (&snap, &entry) {
        (_, Some(e)) => Disks::Overlays(e),
        (Some(_), None) => Disks::BlankQcow2,
        (None, None) => Disks::Blank,
    };
    let started_vms = start_vms(&ns, &mut st, &plan, &fw, size, &disks, clock);
    let names: Vec<String> = st.hosts.iter().map(|h| h.name.clone()).collect();
    let reached = started_vms.and_then(|()| {
        access::wait_installed(&st, &token, &names, Duration::from_secs(a.timeout), clock)?;
        access::refresh(&mut st, &token)?;
        access::wait_ssh(&st, &names, Duration::from_secs(300))
    });
    let kept = match (reached, &snap, &entry) {
        (Ok(()), Some(s), None) => keep_snapshot(&ns, &mut st, s, &plan, &fw, size, &lab_cfg, clock).and_then(|()| {
            access::wait_installed(&st, &token, &names, Duration::from_secs(a.timeout), clock)?;
            access::refresh(&mut st, &token)?;
            access::wait_ssh(&st, &names, Duration::from_secs(300))
        }),
        (r, _, _) => r,
    };
    // the namespace stays, whatever happened: `lab down` removes it
    let _ = ns.keep();
    kept.map_err(left_up)?;
    println!("[{:6.1}s] every host installed and reachable over SSH", secs(clock));
    access::print_summary(&st);
    Ok(())
}

/// Powers the installed hosts off, stops the server, keeps disks, server
/// data and key as the snapshot, and starts server and VMs again on
/// overlays of it.
#[allow(clippy::too_many_arguments)]
fn keep_snapshot(
    ns: &Netns,
    st: &mut LabState,
    snap: &Snap,
    plan: &[(&metalboot_spec::HostSpec, Vec<setup::LabDisk>)],
    fw: &std::collections::BTreeMap<String, Firmware>,
    size: Size,
    lab_cfg: &Path,
    clock: Instant,
) -> Result<()> {
    stop::power_off(st, Duration::from_secs(180))?;
    stop::stop_server(st)?;
    let hosts: Vec<snapshot::HostDisks> = plan
        .iter()
        .map(|(h, disks)| {
            let dir = st.dir.join("hosts").join(&h.name);
            let files = disks.iter().map(|d| snapshot::qcow2_name(&d.file)).map(|f| (dir.join(&f), f)).collect();
            (h.name.clone(), files)
        })
        .collect();
    let entry = snapshot::store(&snap.cache, &snap.key, &st.dir, &hosts)?;
    println!("[{:6.1}s] hosts powered off and kept: snapshot {}", secs(clock), snapshot::describe(&entry));
    let _ = std::fs::remove_file(st.dir.join("ready"));
    st.server = Proc::of(start_server(st, lab_cfg)?);
    st.hosts.clear();
    st.snapshot = Some(entry.clone());
    st.save()?;
    start_vms(ns, st, plan, fw, size, &Disks::Overlays(&entry), clock)
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
