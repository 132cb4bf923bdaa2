//! The wait for the kernel's random number generator: bounded, visible only
//! when there is a wait, and failing with the reason.

use metalboot_installer::entropy::{hardware_source, seeded, wait_until};
use std::time::Duration;

const TICK: Duration = Duration::from_millis(5);

#[test]
fn already_seeded_returns_at_once_and_says_nothing() {
    let mut said = 0;
    let waited = wait_until(&mut || true, Duration::from_secs(5), TICK, &mut || said += 1).unwrap();
    assert_eq!(waited, Duration::ZERO);
    assert_eq!(said, 0);
}

#[test]
fn a_late_seed_is_waited_for_and_announced_once() {
    let mut asked = 0;
    let mut said = 0;
    let waited = wait_until(
        &mut || {
            asked += 1;
            asked > 4
        },
        Duration::from_secs(5),
        TICK,
        &mut || said += 1,
    )
    .unwrap();
    assert_eq!(asked, 5);
    assert_eq!(said, 1);
    assert!(waited >= TICK * 4, "{waited:?}");
}

#[test]
fn no_seed_within_the_limit_fails_naming_the_cause_and_the_fix() {
    let mut said = 0;
    let err = wait_until(&mut || false, Duration::from_millis(30), TICK, &mut || said += 1).unwrap_err().to_string();
    assert_eq!(said, 1);
    for part in ["not seeded within 0s", "host keys", "virtio-rng", "nothing was written"] {
        assert!(err.contains(part), "{part:?} missing from: {err}");
    }
}

#[test]
fn this_machine_is_seeded() {
    // the build machine has been up long enough: getrandom without blocking
    // must succeed, which also proves the flag reaches the kernel right
    assert!(seeded());
}

#[test]
fn the_hardware_source_is_read_from_sysfs() {
    let sys = tempfile::tempdir().unwrap();
    assert_eq!(hardware_source(sys.path()), None);
    let dir = sys.path().join("class/misc/hw_random");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rng_current"), "none\n").unwrap();
    assert_eq!(hardware_source(sys.path()), None);
    std::fs::write(dir.join("rng_current"), "virtio_rng.0\n").unwrap();
    assert_eq!(hardware_source(sys.path()).as_deref(), Some("virtio_rng.0"));
}
