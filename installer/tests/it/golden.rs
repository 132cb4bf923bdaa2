//! Golden files for what the installer renders: `make golden`
//! (UPDATE_GOLDEN=1) rewrites them after an intended change.

use std::path::Path;

/// Compares `text` with `tests/golden/NAME`, or rewrites it.
pub fn check(text: &str, name: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (run `make golden`)", path.display()));
    assert_eq!(text, want, "{} differs: run `make golden` if the change is intended", path.display());
}
