//! The kernel's random number generator must be seeded before the install
//! makes partition GUIDs and SSH host keys: until it is, `getrandom` blocks.
//! A machine with no random source the kernel trusts (no RDRAND, no
//! virtio-rng, no TPM) may take long to seed, and an emulated one sometimes
//! never does. So the wait happens before the first write, visibly, and is
//! bounded: past the bound the install fails with the reason and the disk is
//! untouched.

use anyhow::{bail, Result};
use std::path::Path;
use std::time::{Duration, Instant};

/// Whether `getrandom` would return now without blocking. A kernel without
/// the call (before 3.17) cannot tell, and is taken as seeded.
pub fn seeded() -> bool {
    loop {
        if read_one(nix::libc::GRND_NONBLOCK) == 1 {
            return true;
        }
        match nix::errno::Errno::last() {
            nix::errno::Errno::EINTR => continue,
            nix::errno::Errno::EAGAIN => return false,
            _ => return true,
        }
    }
}

/// The hardware random source the kernel reads, as sysfs names it
/// (`virtio_rng.0`, `tpm-rng-0`), if any.
pub fn hardware_source(sys: &Path) -> Option<String> {
    let current = std::fs::read_to_string(sys.join("class/misc/hw_random/rng_current")).ok()?;
    let current = current.trim();
    (!current.is_empty() && current != "none").then(|| current.to_string())
}

/// Starts one blocking read of the random pool on a thread of its own: on
/// kernels since 5.4 a blocked reader is what makes the kernel gather timing
/// jitter, which seeds machines that have no other source.
pub fn nudge_kernel() {
    let _ = std::thread::Builder::new().name("getrandom".into()).spawn(|| read_one(0));
}

/// `getrandom` of one byte with `flags`; its return value.
// GRND_NONBLOCK probing of the pool has no safe std or nix wrapper
#[allow(unsafe_code)]
fn read_one(flags: nix::libc::c_uint) -> isize {
    let mut byte = [0u8; 1];
    // SAFETY: one byte into a one-byte buffer that outlives the call.
    unsafe { nix::libc::getrandom(byte.as_mut_ptr().cast(), 1, flags) }
}

/// Waits until `is_seeded` holds, asking every `every`, for at most `limit`.
/// `waiting` is called once, before the first pause, only if there is a
/// wait at all. Returns how long it waited (zero when already seeded).
pub fn wait_until(
    is_seeded: &mut dyn FnMut() -> bool,
    limit: Duration,
    every: Duration,
    waiting: &mut dyn FnMut(),
) -> Result<Duration> {
    let started = Instant::now();
    if is_seeded() {
        return Ok(Duration::ZERO);
    }
    waiting();
    loop {
        std::thread::sleep(every);
        if is_seeded() {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= limit {
            bail!(
                "the kernel's random number generator was not seeded within {}s; it is needed for partition GUIDs \
                 and SSH host keys, and this machine gives the kernel no random source it trusts (RDRAND, \
                 virtio-rng, TPM): give a VM a virtio-rng device; nothing was written to any disk",
                limit.as_secs()
            );
        }
    }
}
