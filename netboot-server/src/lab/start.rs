//! Starting the lab's processes: `metalboot serve` in the lab's namespace,
//! and a VM per host on blank disks or on overlays of a snapshot.

use super::access::secs;
use super::netns::Netns;
use super::setup;
use super::snapshot;
use super::state::{LabHost, LabState, Proc};
use super::vm::{Disk, Firmware, Size, Vm};
use anyhow::{bail, Context, Result};
use metalboot_spec::ByteSize;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where a host's disks come from.
pub enum Disks<'a> {
    /// Blank raw files, installed into.
    Blank,
    /// Blank qcow2 files, installed into and then kept as a snapshot.
    BlankQcow2,
    /// Overlays on a snapshot's disks.
    Overlays(&'a Path),
}

/// Starts a VM per planned host, recording each in the state file.
pub fn start_vms(
    ns: &Netns,
    st: &mut LabState,
    plan: &[(&metalboot_spec::HostSpec, Vec<setup::LabDisk>)],
    fw: &std::collections::BTreeMap<String, Firmware>,
    size: Size,
    from: &Disks<'_>,
    clock: Instant,
) -> Result<()> {
    for (i, (h, disks)) in plan.iter().enumerate() {
        let hdir = st.dir.join("hosts").join(&h.name);
        std::fs::create_dir_all(&hdir)?;
        let mut attached = Vec::new();
        for d in disks {
            let (path, format) = match from {
                Disks::Blank => {
                    let path = hdir.join(&d.file);
                    std::fs::File::create(&path)?.set_len(d.size)?;
                    (path, "raw")
                }
                Disks::BlankQcow2 => {
                    let path = hdir.join(snapshot::qcow2_name(&d.file));
                    snapshot::create_blank(&path, d.size)?;
                    (path, "qcow2")
                }
                Disks::Overlays(entry) => {
                    let f = snapshot::qcow2_name(&d.file);
                    let path = hdir.join(&f);
                    snapshot::create_overlay(&entry.join("hosts").join(&h.name).join(&f), &path)?;
                    (path, "qcow2")
                }
            };
            attached.push(Disk { bus: d.bus, format, ..Disk::virtio(path, &d.serial) });
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

/// Starts `metalboot serve` in the lab's namespace, in a process group of
/// its own, and waits until it is ready; its process id.
pub fn start_server(st: &LabState, cfg: &Path) -> Result<u32> {
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
