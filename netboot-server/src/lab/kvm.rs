//! Whether QEMU can use KVM here, decided in a couple of seconds without
//! booting anything.
//!
//! `/dev/kvm` existing is not enough. On the CI machines (nested
//! virtualisation) it opens, answers every ioctl and runs ordinary guest
//! code, but string instructions crawl: `rep movsb` costs about 0.6–2 µs per
//! byte, so a Linux guest spends minutes in its decompressor and SeaBIOS
//! prints nothing for minutes. So the check runs a tiny guest through the
//! KVM API, as in the minimal example of the kernel's KVM API documentation
//! and LWN's "Using the KVM API" (2015): `/dev/kvm` opened read-write,
//! `KVM_GET_API_VERSION` = 12, `KVM_CREATE_VM`, one memory slot,
//! `KVM_CREATE_VCPU`, registers set for 64-bit long mode with paging (where
//! Linux runs), then `KVM_RUN` until the guest has copied 2 MiB with
//! `rep movsb`, written one byte to port 0x3f8 and halted. Working KVM does
//! that in well under a millisecond; here it took 1.3–4.5 s. The whole check
//! gets [`RUN_LIMIT`]; past it the answer is TCG and the vcpu thread is
//! kicked out of `KVM_RUN` with a signal (as QEMU kicks its own vcpus), so
//! no core is left spinning in a guest for the rest of the run.
// The KVM API is ioctls on raw descriptors and an mmap'd guest memory and
// run area: libc calls, each block with its SAFETY.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// How long the whole check (VM set-up and the tiny guest) may take before
/// KVM counts as too slow: hundreds of times what working KVM needs, and a
/// fraction of what the crawling KVM of nested machines needs.
pub const RUN_LIMIT: Duration = Duration::from_millis(250);

/// The accelerator QEMU gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    /// `-accel kvm`.
    Kvm,
    /// `-accel tcg`.
    Tcg,
}

impl Accel {
    /// The name QEMU's `-accel` takes.
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// The choice and why: `METALBOOT_ACCEL` (`kvm` or `tcg`) if set, else the
/// result of `check` (run only then). Any other value of the variable is an
/// error rather than a silent fallback.
pub fn choose(env: Option<&str>, check: impl FnOnce() -> Result<(), String>) -> Result<(Accel, String), String> {
    match env.map(str::trim) {
        Some("kvm") => Ok((Accel::Kvm, "METALBOOT_ACCEL=kvm".into())),
        Some("tcg") => Ok((Accel::Tcg, "METALBOOT_ACCEL=tcg".into())),
        Some(other) if !other.is_empty() => Err(format!("METALBOOT_ACCEL={other:?}: want kvm or tcg")),
        _ => Ok(match check() {
            Ok(()) => (Accel::Kvm, "a test guest ran under KVM".into()),
            Err(why) => (Accel::Tcg, why),
        }),
    }
}

/// Runs the KVM check on a thread and waits at most `limit` for it. Past
/// the limit the thread is signalled until it leaves `KVM_RUN` and exits.
pub fn check_with_deadline(limit: Duration) -> Result<(), String> {
    use std::os::unix::thread::JoinHandleExt;
    let (tx, rx) = std::sync::mpsc::channel();
    install_kick_handler()?;
    let thread = std::thread::Builder::new()
        .name("kvm-check".into())
        .spawn(move || {
            let _ = tx.send(run_test_guest());
        })
        .map_err(|e| format!("starting the KVM check thread: {e}"))?;
    if let Ok(r) = rx.recv_timeout(limit) {
        let _ = thread.join();
        return r;
    }
    // kick until the thread is out: a signal that lands outside KVM_RUN is
    // lost, so repeat it
    let tid = thread.as_pthread_t();
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        // SAFETY: `tid` is a thread of this process that has not been joined.
        unsafe { libc::pthread_kill(tid, kick_signal()) };
        if rx.recv_timeout(Duration::from_millis(20)).is_ok() {
            let _ = thread.join();
            break;
        }
    }
    Err(format!("a test guest copying 2 MiB did not finish under KVM within {limit:?} (KVM hangs or crawls here)"))
}

fn kick_signal() -> i32 {
    libc::SIGRTMIN() + 3
}

extern "C" fn ignore_kick(_: libc::c_int) {}

/// A handler that does nothing, installed without `SA_RESTART`, so the
/// signal interrupts `KVM_RUN` (which then fails with EINTR) and nothing else.
fn install_kick_handler() -> Result<(), String> {
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the
    // handler is an `extern "C"` function that touches nothing.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = ignore_kick as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(kick_signal(), &sa, std::ptr::null_mut()) != 0 {
            return Err(format!("installing the KVM kick handler: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

// ioctl numbers from <linux/kvm.h>: _IO/_IOR/_IOW on type 0xAE
const KVMIO: u64 = 0xAE;
const fn io(nr: u64) -> u64 {
    (KVMIO << 8) | nr
}
const fn iow(nr: u64, size: usize) -> u64 {
    (1 << 30) | ((size as u64) << 16) | (KVMIO << 8) | nr
}
const fn ior(nr: u64, size: usize) -> u64 {
    (2 << 30) | ((size as u64) << 16) | (KVMIO << 8) | nr
}
const KVM_GET_API_VERSION: u64 = io(0x00);
const KVM_CREATE_VM: u64 = io(0x01);
const KVM_GET_VCPU_MMAP_SIZE: u64 = io(0x04);
const KVM_CREATE_VCPU: u64 = io(0x41);
const KVM_SET_USER_MEMORY_REGION: u64 = iow(0x46, std::mem::size_of::<MemoryRegion>());
const KVM_RUN: u64 = io(0x80);
const KVM_SET_REGS: u64 = iow(0x82, std::mem::size_of::<Regs>());
const KVM_GET_SREGS: u64 = ior(0x83, std::mem::size_of::<Sregs>());
const KVM_SET_SREGS: u64 = iow(0x84, std::mem::size_of::<Sregs>());
const KVM_EXIT_IO: u32 = 2;
const KVM_EXIT_HLT: u32 = 5;

/// `struct kvm_userspace_memory_region`.
#[repr(C)]
struct MemoryRegion {
    slot: u32,
    flags: u32,
    guest_phys_addr: u64,
    memory_size: u64,
    userspace_addr: u64,
}

/// `struct kvm_regs`: rax rbx rcx rdx rsi rdi rsp rbp r8–r15 rip rflags.
#[repr(C)]
#[derive(Default)]
struct Regs([u64; 18]);

/// `struct kvm_segment`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct Segment {
    base: u64,
    limit: u32,
    selector: u16,
    type_: u8,
    present: u8,
    dpl: u8,
    db: u8,
    s: u8,
    l: u8,
    g: u8,
    avl: u8,
    unusable: u8,
    padding: u8,
}

/// `struct kvm_sregs`: cs ds es fs gs ss tr ldt, gdt idt, control registers,
/// efer, apic base and the interrupt bitmap.
#[repr(C)]
#[derive(Default)]
struct Sregs {
    segments: [Segment; 8],
    tables: [[u64; 2]; 2],
    control: [u64; 7],
    interrupt_bitmap: [u64; 4],
}

/// Guest memory at guest address 0, identity-mapped by 2 MiB pages.
const GUEST_MEM: usize = 8 << 20;
const PML4: usize = 0x2000;
const PDPT: usize = 0x3000;
const PD: usize = 0x4000;
const CODE: usize = 0x1000;
/// 64-bit code: `mov esi, 1 MiB; mov edi, 4 MiB; mov ecx, 2 MiB; rep movsb;
/// mov dx, 0x3f8; mov al, 'K'; out dx, al; hlt`.
const GUEST_CODE: [u8; 25] = [
    0xbe, 0x00, 0x00, 0x10, 0x00, // mov esi, 0x100000
    0xbf, 0x00, 0x00, 0x40, 0x00, // mov edi, 0x400000
    0xb9, 0x00, 0x00, 0x20, 0x00, // mov ecx, 0x200000
    0xf3, 0xa4, // rep movsb
    0x66, 0xba, 0xf8, 0x03, // mov dx, 0x3f8
    0xb0, b'K', // mov al, 'K'
    0xee, // out dx, al
    0xf4, // hlt
];
const PTE_PRESENT: u64 = 1;
const PTE_RW: u64 = 1 << 1;
const PTE_PS: u64 = 1 << 7;
const CR0_PE: u64 = 1;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;

/// Puts the vcpu straight into 64-bit long mode with paging (as a Linux
/// guest runs): page tables at PML4/PDPT/PD, flat code and data segments.
fn enter_long_mode(mem: &mut [u8], sregs: &mut Sregs) {
    let mut put = |at: usize, v: u64| mem[at..at + 8].copy_from_slice(&v.to_le_bytes());
    put(PML4, PDPT as u64 | PTE_PRESENT | PTE_RW);
    put(PDPT, PD as u64 | PTE_PRESENT | PTE_RW);
    for i in 0..GUEST_MEM >> 21 {
        put(PD + 8 * i, ((i as u64) << 21) | PTE_PRESENT | PTE_RW | PTE_PS);
    }
    let code = Segment {
        base: 0,
        limit: 0xffff_ffff,
        selector: 1 << 3,
        type_: 11, // execute, read, accessed
        present: 1,
        s: 1,
        l: 1,
        g: 1,
        ..Segment::default()
    };
    let data = Segment { selector: 2 << 3, type_: 3, l: 0, ..code };
    sregs.segments[0] = code;
    for seg in &mut sregs.segments[1..6] {
        *seg = data; // ds es fs gs ss
    }
    // control: cr0 cr2 cr3 cr4 cr8 efer apic_base
    sregs.control[0] = CR0_PE | CR0_PG;
    sregs.control[2] = PML4 as u64;
    sregs.control[3] = CR4_PAE;
    sregs.control[5] = EFER_LME | EFER_LMA;
}

fn ioctl(fd: RawFd, what: &str, req: u64, arg: u64) -> Result<i32, String> {
    // SAFETY: every request passes either an integer or a pointer to a live
    // value of the size encoded in the request number.
    let r = unsafe { libc::ioctl(fd, req as _, arg) };
    if r < 0 {
        return Err(format!("{what}: {}", std::io::Error::last_os_error()));
    }
    Ok(r)
}

fn owned(fd: i32) -> OwnedFd {
    // SAFETY: `fd` was just returned by the kernel and is owned by no one else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A shared or anonymous mapping, unmapped on drop.
struct Mapping(*mut libc::c_void, usize);

impl Mapping {
    fn new(len: usize, flags: i32, fd: RawFd, what: &str) -> Result<Mapping, String> {
        // SAFETY: a fresh mapping at an address the kernel chooses.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, flags, fd, 0) };
        if p == libc::MAP_FAILED {
            return Err(format!("{what}: {}", std::io::Error::last_os_error()));
        }
        Ok(Mapping(p, len))
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped.
        unsafe { libc::munmap(self.0, self.1) };
    }
}

/// The check itself (blocking; may hang where KVM hangs).
pub fn run_test_guest() -> Result<(), String> {
    let kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(|e| format!("opening /dev/kvm read-write: {e}"))?;
    let version = ioctl(kvm.as_raw_fd(), "KVM_GET_API_VERSION", KVM_GET_API_VERSION, 0)?;
    if version != 12 {
        return Err(format!("KVM API version {version}, QEMU needs 12"));
    }
    let vm = owned(ioctl(kvm.as_raw_fd(), "KVM_CREATE_VM", KVM_CREATE_VM, 0)?);
    let mem = Mapping::new(GUEST_MEM, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, "mapping guest memory")?;
    // SAFETY: the mapping is GUEST_MEM bytes long, writable, and only this
    // function uses it until the guest runs.
    let bytes = unsafe { std::slice::from_raw_parts_mut(mem.0 as *mut u8, GUEST_MEM) };
    bytes[CODE..CODE + GUEST_CODE.len()].copy_from_slice(&GUEST_CODE);
    let region = MemoryRegion {
        slot: 0,
        flags: 0,
        guest_phys_addr: 0,
        memory_size: GUEST_MEM as u64,
        userspace_addr: mem.0 as u64,
    };
    ioctl(vm.as_raw_fd(), "KVM_SET_USER_MEMORY_REGION", KVM_SET_USER_MEMORY_REGION, &region as *const _ as u64)?;
    let vcpu = owned(ioctl(vm.as_raw_fd(), "KVM_CREATE_VCPU", KVM_CREATE_VCPU, 0)?);
    let run_size = ioctl(kvm.as_raw_fd(), "KVM_GET_VCPU_MMAP_SIZE", KVM_GET_VCPU_MMAP_SIZE, 0)? as usize;
    let run = Mapping::new(run_size, libc::MAP_SHARED, vcpu.as_raw_fd(), "mapping the vcpu's kvm_run")?;
    let mut sregs = Sregs::default();
    ioctl(vcpu.as_raw_fd(), "KVM_GET_SREGS", KVM_GET_SREGS, &mut sregs as *mut _ as u64)?;
    enter_long_mode(bytes, &mut sregs);
    ioctl(vcpu.as_raw_fd(), "KVM_SET_SREGS", KVM_SET_SREGS, &sregs as *const _ as u64)?;
    let mut regs = Regs::default();
    regs.0[16] = CODE as u64; // rip
    regs.0[17] = 0x2; // rflags: bit 1 is always set
    ioctl(vcpu.as_raw_fd(), "KVM_SET_REGS", KVM_SET_REGS, &regs as *const _ as u64)?;
    let mut wrote = false;
    for _ in 0..8 {
        ioctl(vcpu.as_raw_fd(), "KVM_RUN", KVM_RUN, 0)?;
        let base = run.0 as *const u8;
        // SAFETY: struct kvm_run: exit_reason (u32) at offset 8, the io exit
        // (direction u8, size u8, port u16, count u32, data_offset u64) at
        // 32; the data lies inside the mapping at data_offset.
        let (reason, port, byte) = unsafe {
            let reason = (base.add(8) as *const u32).read_unaligned();
            let port = (base.add(34) as *const u16).read_unaligned();
            let offset = (base.add(40) as *const u64).read_unaligned() as usize;
            let byte = if offset < run_size { *base.add(offset) } else { 0 };
            (reason, port, byte)
        };
        match reason {
            KVM_EXIT_IO if port == 0x3f8 && byte == b'K' => wrote = true,
            KVM_EXIT_HLT if wrote => return Ok(()),
            other => return Err(format!("the test guest stopped with KVM exit reason {other} (port {port:#x})")),
        }
    }
    Err("the test guest did not halt".into())
}

/// Runs the check and times it.
pub fn detect() -> (Accel, String) {
    let start = Instant::now();
    let env = std::env::var("METALBOOT_ACCEL").ok();
    let (accel, why) = choose(env.as_deref(), || {
        if !std::path::Path::new("/dev/kvm").exists() {
            return Err("no /dev/kvm".into());
        }
        check_with_deadline(RUN_LIMIT)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    (accel, format!("{why} ({} ms)", start.elapsed().as_millis()))
}

#[cfg(test)]
mod tests;
