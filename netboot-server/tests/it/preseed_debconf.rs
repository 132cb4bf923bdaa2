//! Every rendered preseed (the golden files, which `golden.rs` pins to the
//! renderer) is accepted by debconf itself: `debconf-set-selections
//! --checkonly` exits 0 and warns about nothing.

use std::process::Command;

fn check(path: &std::path::Path) -> (bool, String) {
    let out = Command::new("debconf-set-selections")
        .arg("--checkonly")
        .arg(path)
        .output()
        .expect("debconf-set-selections (Debian's debconf package)");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn rendered_preseeds_pass_debconf_checkonly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().ends_with(".preseed.cfg") {
            let (ok, err) = check(&p);
            assert!(ok && err.trim().is_empty(), "{}: {err}", p.display());
            n += 1;
        }
    }
    assert!(n >= 3, "only {n} preseeds found");
    // the check itself can fail: a line that is not `owner question type value`
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), "d-i netcfg/get_hostname string web1\nrm -rf /\n").unwrap();
    let (_, err) = check(bad.path());
    assert!(!err.trim().is_empty(), "debconf accepted a malformed line silently");
}
