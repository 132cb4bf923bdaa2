//! How long each end-to-end scenario took, for the summary `make e2e`
//! prints at the end of a run: one line per scenario appended to
//! `target/e2e/timings.tsv` (name, seconds, passed/FAILED), written when the
//! scenario ends, whether it passed or panicked.

use crate::harness::workspace;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// The file the lines go to.
pub fn timings_file() -> PathBuf {
    workspace().join("target/e2e/timings.tsv")
}

/// Records the time from its creation to its drop under `name`.
pub struct Timed {
    name: &'static str,
    started: Instant,
}

impl Timed {
    /// Starts the clock for scenario `name`.
    pub fn start(name: &'static str) -> Timed {
        Timed { name, started: Instant::now() }
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        let outcome = if std::thread::panicking() { "FAILED" } else { "passed" };
        let line = format!("{}\t{:.1}\t{outcome}\n", self.name, self.started.elapsed().as_secs_f64());
        let f = timings_file();
        let _ = std::fs::create_dir_all(f.parent().expect("the file has a directory"));
        if let Ok(mut out) = std::fs::OpenOptions::new().create(true).append(true).open(&f) {
            let _ = out.write_all(line.as_bytes());
        }
    }
}
