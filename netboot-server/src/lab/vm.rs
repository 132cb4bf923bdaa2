//! QEMU VMs with real firmware: SeaBIOS with the iPXE ROM QEMU ships, or
//! OVMF; NIC on a tap in our namespace; disks with serial numbers; serial
//! console to a file. KVM when a quick capability check passes, else TCG.

use super::netns::Netns;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Child;

/// Firmware to boot with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS + iPXE option ROM.
    Bios,
    /// OVMF (UEFI).
    Uefi,
}

/// How a disk is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Bus {
    /// virtio-blk (`/dev/vdX`), as on most VPSes.
    #[default]
    Virtio,
    /// NVMe (`/dev/nvmeXn1`), as on most rented servers.
    Nvme,
    /// SATA on an AHCI controller (`/dev/sdX`).
    Sata,
}

/// A disk attached to the VM.
#[derive(Clone, Debug)]
pub struct Disk {
    /// Raw image file.
    pub path: PathBuf,
    /// Serial number the guest sees.
    pub serial: String,
    /// Controller.
    pub bus: Bus,
    /// Logical (and physical) sector size: 512, or 4096 for a 4Kn disk.
    pub sector: u32,
    /// Image format: `raw`, or `qcow2` (a lab's snapshot overlays).
    pub format: &'static str,
}

impl Disk {
    /// A virtio disk with 512-byte sectors.
    pub fn virtio(path: PathBuf, serial: &str) -> Disk {
        Disk { path, serial: serial.into(), bus: Bus::Virtio, sector: 512, format: "raw" }
    }

    /// The QEMU `-device` for drive `id` (`bootindex` suffix included).
    fn device(&self, id: &str, ahci_port: usize, boot: &str) -> String {
        let s = &self.serial;
        let sectors = match self.sector {
            512 => String::new(),
            n => format!(",logical_block_size={n},physical_block_size={n}"),
        };
        match self.bus {
            Bus::Virtio => format!("virtio-blk-pci,drive={id},serial={s}{sectors}{boot}"),
            Bus::Nvme => format!("nvme,drive={id},serial={s}{sectors}{boot}"),
            Bus::Sata => format!("ide-hd,drive={id},bus=ahci0.{ahci_port},serial={s}{sectors}{boot}"),
        }
    }
}

/// Memory and virtual CPUs of a VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    /// Memory in MiB.
    pub memory_mib: u32,
    /// Virtual CPUs.
    pub cpus: u32,
}

impl Default for Size {
    /// 2 GiB; `METALBOOT_VM_CPUS` CPUs (1, 2 or 4), else 2: fewer when
    /// VMs run side by side on few cores.
    fn default() -> Size {
        let cpus = std::env::var("METALBOOT_VM_CPUS").ok().and_then(|c| c.parse().ok());
        Size { memory_mib: 2048, cpus: cpus.filter(|c| matches!(c, 1 | 2 | 4)).unwrap_or(2) }
    }
}

/// A running VM; killed on drop unless detached.
pub struct Vm {
    child: Child,
    /// Serial console log.
    pub serial_log: PathBuf,
}

/// `kvm` or `tcg` for QEMU's `-accel`: `METALBOOT_ACCEL` if set, else KVM
/// only if a tiny guest runs under it as fast as working KVM runs it (see
/// `kvm`).
/// Decided once per process; the choice and the reason are printed.
pub fn accel() -> &'static str {
    static CHOICE: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    CHOICE.get_or_init(|| {
        let (accel, why) = super::kvm::detect();
        println!("accelerator: {} ({why})", accel.name());
        accel.name()
    })
}

impl Vm {
    /// Boots a VM in `ns` on `tap` with `mac`, network boot first.
    pub fn start(
        ns: &Netns,
        dir: &Path,
        accel: &str,
        fw: Firmware,
        tap: &str,
        mac: &str,
        disks: &[Disk],
    ) -> Result<Vm> {
        Self::start_sized(ns, dir, accel, fw, tap, mac, disks, Size::default())
    }

    /// [`Vm::start`] with memory and CPUs of `size`.
    #[allow(clippy::too_many_arguments)]
    pub fn start_sized(
        ns: &Netns,
        dir: &Path,
        accel: &str,
        fw: Firmware,
        tap: &str,
        mac: &str,
        disks: &[Disk],
        size: Size,
    ) -> Result<Vm> {
        let (cmd, serial_log) = Self::command(ns, dir, accel, fw, tap, mac, disks, true, size)?;
        Self::spawn(cmd, dir, serial_log)
    }

    /// Boots a BIOS VM from its first disk, the network only as a fallback:
    /// a rented server or VPS that is not set up to network boot.
    pub fn start_from_disk(ns: &Netns, dir: &Path, accel: &str, tap: &str, mac: &str, disks: &[Disk]) -> Result<Vm> {
        let size = Size::default();
        let (cmd, serial_log) = Self::command(ns, dir, accel, Firmware::Bios, tap, mac, disks, false, size)?;
        Self::spawn(cmd, dir, serial_log)
    }

    /// Boots a BIOS VM straight into `kernel` and `initrd` (a provider's
    /// rescue system); a reboot stops the VM instead of booting them again,
    /// as a rescue system is booted once. The disks get no boot order.
    #[allow(clippy::too_many_arguments)]
    pub fn start_kernel(
        ns: &Netns,
        dir: &Path,
        accel: &str,
        tap: &str,
        mac: &str,
        disks: &[Disk],
        kernel: &Path,
        initrd: &Path,
        append: &str,
    ) -> Result<Vm> {
        let size = Size::default();
        let (mut cmd, serial_log) = Self::command(ns, dir, accel, Firmware::Bios, tap, mac, disks, false, size)?;
        cmd.arg("-kernel").arg(kernel).arg("-initrd").arg(initrd).args(["-append", append, "-no-reboot"]);
        Self::spawn(cmd, dir, serial_log)
    }

    /// Whether QEMU is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    #[allow(clippy::too_many_arguments)]
    fn command(
        ns: &Netns,
        dir: &Path,
        accel: &str,
        fw: Firmware,
        tap: &str,
        mac: &str,
        disks: &[Disk],
        net_first: bool,
        size: Size,
    ) -> Result<(std::process::Command, PathBuf)> {
        let serial_log = dir.join("serial.log");
        let mut cmd = ns.command("qemu-system-x86_64");
        let (memory, cpus) = (size.memory_mib.to_string(), size.cpus.to_string());
        cmd.args(["-accel", accel, "-m", &memory, "-smp", &cpus, "-display", "none", "-monitor", "none"]);
        cmd.arg("-serial").arg(format!("file:{}", serial_log.display()));
        cmd.args(["-netdev", &format!("tap,id=n0,ifname={tap},script=no,downscript=no")]);
        // like any VPS: a hardware random source, so the kernel is seeded at
        // once (emulated CPUs have no RDRAND, and under TCG the kernel's
        // jitter fallback can take arbitrarily long)
        cmd.args(["-device", "virtio-rng-pci"]);
        // no floppy drive, as on any server (QEMU's pc machine reports an
        // empty one): GRUB looking for a missing raid1 member otherwise
        // retries reading it for over a minute under TCG
        cmd.args(["-global", "isa-fdc.fdtypeA=none"]);
        // Under OVMF, drop QEMU's iPXE option ROM so the firmware's own PXE
        // client boots: DHCP → TFTP snponly.efi → iPXE → HTTP.
        // SeaBIOS: network first, then the disks. OVMF: no bootindex at all —
        // with one, OVMF drops the disk's removable-media boot option — so it
        // tries the (blank) disk, then PXE, and after the install the disk.
        let (rom, net_idx) = if fw == Firmware::Uefi {
            (",romfile=", String::new())
        } else {
            ("", format!(",bootindex={}", if net_first { 1 } else { 9 }))
        };
        cmd.args(["-device", &format!("virtio-net-pci,netdev=n0,mac={mac}{net_idx}{rom}")]);
        if disks.iter().any(|d| d.bus == Bus::Sata) {
            cmd.args(["-device", "ahci,id=ahci0"]);
        }
        let mut ahci_port = 0;
        for (i, d) in disks.iter().enumerate() {
            let first = if net_first { 2 } else { 1 };
            let idx = if fw == Firmware::Uefi { String::new() } else { format!(",bootindex={}", i + first) };
            let (file, format) = (d.path.display(), d.format);
            cmd.args(["-drive", &format!("file={file},format={format},if=none,id=d{i},cache=unsafe")]);
            cmd.args(["-device", &d.device(&format!("d{i}"), ahci_port, &idx)]);
            ahci_port += usize::from(d.bus == Bus::Sata);
        }
        if fw == Firmware::Uefi {
            let vars = dir.join("OVMF_VARS.fd");
            std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &vars)
                .context("copying OVMF vars (apt-get install ovmf)")?;
            cmd.args(["-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd"]);
            cmd.args(["-drive", &format!("if=pflash,format=raw,unit=1,file={}", vars.display())]);
            // no PXE over IPv6 (nothing here answers it): when OVMF's PXE
            // over IPv4 gives up (EDK2 declines a lease now and then, "Lease
            // is denied upon entering bound"), it goes straight on to HTTP
            // Boot instead of waiting a minute for IPv6 offers
            cmd.args(["-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=n"]);
        }
        Ok((cmd, serial_log))
    }

    fn spawn(mut cmd: std::process::Command, dir: &Path, serial_log: PathBuf) -> Result<Vm> {
        // its own process group: a terminal's Ctrl-C reaches the command
        // that started it, not the VM
        use std::os::unix::process::CommandExt;
        let child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(dir.join("qemu.out"))?)
            .stderr(std::fs::File::create(dir.join("qemu.err"))?)
            .process_group(0)
            .spawn()
            .context("starting qemu-system-x86_64 (apt-get install qemu-system-x86)")?;
        Ok(Vm { child, serial_log })
    }

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Leaves the VM running after this is dropped; its process id.
    pub fn detach(self) -> u32 {
        let pid = self.child.id();
        std::mem::forget(self);
        pid
    }

    /// The serial console so far.
    pub fn serial(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.serial_log).unwrap_or_default()).into_owned()
    }

    /// Fails if QEMU has exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(st) = self.child.try_wait()? {
            anyhow::bail!("QEMU exited early ({st}); serial tail:\n{}", tail(&self.serial(), 30));
        }
        Ok(())
    }

    /// Stops the VM.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
