//! Prometheus metrics: what DHCP, TFTP and HTTP answered and how, the bytes
//! served, installs by result, how long each install step took, and hosts
//! by state. Counters live here, in memory, from the server's start (as
//! Prometheus expects of a counter); `GET /metrics` renders them in the
//! text exposition format ([`render`]) with the hosts counted from the
//! state database at that moment.

mod render;

pub use render::render;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Upper bounds (seconds) of the step duration histogram's buckets.
pub const STEP_BUCKETS: [f64; 10] = [1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0];

/// One histogram: counts per bucket (not cumulative), sum and count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Observations at or under each of [`STEP_BUCKETS`], bucket by bucket.
    pub buckets: [u64; STEP_BUCKETS.len()],
    /// Sum of the observations.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        if let Some(i) = STEP_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i] += 1;
        }
        self.sum += secs;
        self.count += 1;
    }
}

/// Every counter of one server.
#[derive(Debug, Default)]
pub struct Metrics {
    dhcp: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    tftp: Mutex<BTreeMap<&'static str, u64>>,
    tftp_bytes: AtomicU64,
    http: Mutex<BTreeMap<(String, u16), u64>>,
    http_bytes: AtomicU64,
    installs: Mutex<BTreeMap<&'static str, u64>>,
    step_started: Mutex<BTreeMap<(String, String), Instant>>,
    steps: Mutex<BTreeMap<String, Histogram>>,
}

/// A copy of the counters at one moment, for rendering.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Snapshot {
    /// DHCP datagrams by message type and outcome.
    pub dhcp: BTreeMap<(&'static str, &'static str), u64>,
    /// TFTP read requests by outcome.
    pub tftp: BTreeMap<&'static str, u64>,
    /// Bytes of file data TFTP sent.
    pub tftp_bytes: u64,
    /// HTTP responses by route and status.
    pub http: BTreeMap<(String, u16), u64>,
    /// Bytes of HTTP response bodies (as announced by their length).
    pub http_bytes: u64,
    /// Installs by result.
    pub installs: BTreeMap<&'static str, u64>,
    /// Install step durations by step.
    pub steps: BTreeMap<String, Histogram>,
    /// Hosts of the inventory by state (filled in at scrape time).
    pub hosts: BTreeMap<String, u64>,
}

fn bump<K: Ord>(m: &Mutex<BTreeMap<K, u64>>, k: K, by: u64) {
    *m.lock().unwrap_or_else(|e| e.into_inner()).entry(k).or_default() += by;
}

fn copy<T: Clone>(m: &Mutex<T>) -> T {
    m.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

impl Metrics {
    /// One DHCP datagram: its message type (`discover`, …, or `invalid`)
    /// and what came of it (`offer`, `ack`, `nak`, `proxy`, `ignored`,
    /// `error`).
    pub fn dhcp(&self, message: &'static str, outcome: &'static str) {
        bump(&self.dhcp, (message, outcome), 1);
    }

    /// One TFTP request and what came of it; `bytes` of file data sent.
    pub fn tftp(&self, outcome: &'static str, bytes: u64) {
        bump(&self.tftp, outcome, 1);
        self.tftp_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// One HTTP response: the route it matched (`unmatched` for none), its
    /// status and its body's length when known.
    pub fn http(&self, route: &str, status: u16, bytes: Option<u64>) {
        bump(&self.http, (route.to_string(), status), 1);
        self.http_bytes.fetch_add(bytes.unwrap_or(0), Ordering::Relaxed);
    }

    /// `host`'s install ended: `installed` (the new system phoned home) or
    /// `failed`. The clocks of its steps stop: a step never finished does
    /// not count into the next install's.
    pub fn install(&self, host: &str, result: &'static str) {
        bump(&self.installs, result, 1);
        self.step_started.lock().unwrap_or_else(|e| e.into_inner()).retain(|(h, _), _| h != host);
    }

    /// A progress event of `host`'s installer: a step's first event starts
    /// its clock, `done` or `failed` stops it and records the duration.
    pub fn step(&self, host: &str, step: &str, finished: bool) {
        self.step_at(host, step, finished, Instant::now());
    }

    fn step_at(&self, host: &str, step: &str, finished: bool, now: Instant) {
        let key = (host.to_string(), step.to_string());
        let mut started = self.step_started.lock().unwrap_or_else(|e| e.into_inner());
        if !finished {
            started.entry(key).or_insert(now);
            return;
        }
        // a step that finished without a running event took no time we saw
        let from = started.remove(&key).unwrap_or(now);
        let secs = now.saturating_duration_since(from).as_secs_f64();
        drop(started);
        self.steps.lock().unwrap_or_else(|e| e.into_inner()).entry(step.to_string()).or_default().observe(secs);
    }

    /// The counters now; `hosts` are filled in by the caller.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            dhcp: copy(&self.dhcp),
            tftp: copy(&self.tftp),
            tftp_bytes: self.tftp_bytes.load(Ordering::Relaxed),
            http: copy(&self.http),
            http_bytes: self.http_bytes.load(Ordering::Relaxed),
            installs: copy(&self.installs),
            steps: copy(&self.steps),
            hosts: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests;
