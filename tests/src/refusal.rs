//! The refusal scenario: two disks match the host's selector, so the
//! installer stops before writing anything; the operator sees why without a
//! console (the installer's log, `hosts watch`).

use crate::harness::Scenario;
use crate::scenarios::{blank_disk, start, Dhcp, MAC, TEST_IMAGE};
use crate::vm::{Firmware, Vm};
use anyhow::{ensure, Result};
use std::time::Duration;

/// Scenario 5: two disks match the selector; the installer must stop before
/// writing, the server must show `failed` with the reason, and both disk
/// images must be byte-for-byte unchanged.
pub fn refusal(name: &str) -> Result<Scenario> {
    let (mut s, accel) = start(name, Dhcp::Full, "disk = { min_size = \"1G\" }\n", TEST_IMAGE)?;
    let mut disks = Vec::new();
    let mut sums = Vec::new();
    for (n, serial) in [("a.img", "E2E-A"), ("b.img", "E2E-B")] {
        let d = blank_disk(&s, n, serial, 2 << 30)?;
        // something recognisable at the start, middle and end
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&d.path)?;
        for off in [0u64, 1 << 30, (2 << 30) - 4096] {
            f.seek(SeekFrom::Start(off))?;
            f.write_all(format!("precious data of {serial} at {off}\n").as_bytes())?;
        }
        sums.push(sha256(&d.path)?);
        disks.push(d);
    }
    let mut vm = Vm::start(&s.ns, &s.dir, accel, Firmware::Bios, "tap0", MAC, &disks)?;
    s.phase("vm started with two matching disks");
    let limit = Duration::from_secs(if accel == "kvm" { 300 } else { 900 });
    let host = s.wait_state("vm1", "failed", &mut vm, limit)?;
    let err = host["failed_error"].as_str().unwrap_or_default().to_string();
    s.phase(&format!("failed at {}: {err}", host["failed_step"]));
    ensure!(err.contains("2 disks match"), "unexpected reason: {err}");
    ensure!(err.contains("/dev/vda") && err.contains("/dev/vdb"), "the reason does not name both disks: {err}");
    crate::oplog::check_failed_install_log(&mut s, "vm1", &host, "2 disks match")?;
    vm.stop();
    for (d, before) in disks.iter().zip(&sums) {
        ensure!(&sha256(&d.path)? == before, "{} changed", d.path.display());
    }
    s.phase("both disk images unchanged");
    s.finish();
    Ok(s)
}

/// sha256 over a sparse disk image's size and every data extent (its
/// offset, length and bytes), skipping the holes: quick on a mostly empty
/// image, and any write into it (zeros too) adds or changes an extent.
fn sha256(p: &std::path::Path) -> Result<String> {
    use nix::unistd::{lseek, Whence};
    use sha2::{Digest, Sha256};
    use std::io::{Read, Seek, SeekFrom};
    use std::os::fd::AsRawFd;
    let mut f = std::fs::File::open(p)?;
    let size = f.metadata()?.len();
    let mut h = Sha256::new();
    h.update(size.to_le_bytes());
    let mut at = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    while at < size {
        let data = match lseek(f.as_raw_fd(), at as i64, Whence::SeekData) {
            Ok(d) => d,
            Err(nix::errno::Errno::ENXIO) => break, // no data after `at`
            Err(e) => return Err(anyhow::anyhow!("{}: SEEK_DATA: {e}", p.display())),
        };
        let hole = lseek(f.as_raw_fd(), data, Whence::SeekHole)?;
        ensure!(hole > data, "{}: no hole after the data at {data}", p.display());
        let (start, end) = (data as u64, hole as u64);
        h.update(start.to_le_bytes());
        h.update((end - start).to_le_bytes());
        f.seek(SeekFrom::Start(start))?;
        let mut left = end - start;
        while left > 0 {
            let n = (left as usize).min(buf.len());
            f.read_exact(&mut buf[..n])?;
            h.update(&buf[..n]);
            left -= n as u64;
        }
        at = end;
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::sha256;
    use std::io::{Seek, SeekFrom, Write};

    #[test]
    fn the_digest_sees_data_and_zeros_written_into_a_sparse_image() {
        let dir = std::env::temp_dir().join(format!("mb-refusal-digest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("disk.img");
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(64 << 20).unwrap();
        let write = |off: u64, bytes: &[u8]| {
            let mut f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
            f.seek(SeekFrom::Start(off)).unwrap();
            f.write_all(bytes).unwrap();
            f.sync_all().unwrap();
        };
        write(32 << 20, b"precious");
        let before = sha256(&p).unwrap();
        assert_eq!(sha256(&p).unwrap(), before, "the same image, another digest");
        write(32 << 20, b"Precious");
        let changed = sha256(&p).unwrap();
        assert_ne!(changed, before, "a changed byte went unseen");
        write(8 << 20, &[0u8; 4096]);
        assert_ne!(sha256(&p).unwrap(), changed, "zeros written into a hole went unseen");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
