//! The KVM check's unit tests: the decision, the ioctl ABI, and (as root)
//! the check against this machine's /dev/kvm.

use super::*;

/// One test guest at a time: a test counts the process's vcpu threads.
static ONE_GUEST: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn env_override_wins_and_skips_the_check() {
    let never = || -> Result<(), String> { panic!("the check ran despite METALBOOT_ACCEL") };
    assert_eq!(choose(Some("tcg"), never).unwrap().0, Accel::Tcg);
    assert_eq!(choose(Some("kvm"), never).unwrap().0, Accel::Kvm);
}

#[test]
fn rejects_unknown_env_value() {
    assert!(choose(Some("hvf"), || Ok(())).unwrap_err().contains("hvf"));
}

#[test]
fn check_decides_without_override() {
    assert_eq!(choose(None, || Ok(())).unwrap().0, Accel::Kvm);
    let (a, why) = choose(Some(""), || Err("no /dev/kvm".into())).unwrap();
    assert_eq!((a, why.as_str()), (Accel::Tcg, "no /dev/kvm"));
}

#[test]
fn struct_sizes_match_linux_kvm_h() {
    assert_eq!(std::mem::size_of::<Segment>(), 24);
    assert_eq!(std::mem::size_of::<Sregs>(), 312);
    assert_eq!(std::mem::size_of::<Regs>(), 144);
    assert_eq!(KVM_SET_USER_MEMORY_REGION, 0x4020_ae46);
    assert_eq!(KVM_GET_SREGS, 0x8138_ae83);
}

#[test]
#[ignore = "opens /dev/kvm, as root: run by `make unit`"]
fn kvm_check_answers_within_seconds() {
    let _one = ONE_GUEST.lock();
    let start = Instant::now();
    let (accel, why) = detect();
    println!("{} ({why})", accel.name());
    assert!(start.elapsed() < RUN_LIMIT + Duration::from_secs(1), "{:?}", start.elapsed());
    // whatever the answer, no vcpu thread is left running a guest
    let threads: Vec<String> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .collect();
    assert!(!threads.iter().any(|c| c.trim() == "kvm-check"), "{threads:?}");
}

#[test]
#[ignore = "opens /dev/kvm, as root"]
fn test_guest_halts_when_given_time() {
    let _one = ONE_GUEST.lock();
    let start = Instant::now();
    let r = check_with_deadline(Duration::from_secs(60));
    println!("{r:?} after {:?}", start.elapsed());
    assert!(r.is_ok(), "{r:?}");
}
