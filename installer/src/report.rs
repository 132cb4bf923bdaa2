//! Progress to the console and to the server. Every step prints one line and
//! posts a [`ProgressEvent`] (the contract in `metalboot_spec::progress`) to
//! the plan's events URL with the install token. Posting is best effort: a
//! lost event never stops an install, but a lost failure report is retried.
//! The reporter holds the installer's one HTTP agent ([`crate::https`]);
//! once the server's key is refused it posts nothing more. With a captured
//! console ([`crate::console_log`]) the console lines go to the host's log
//! URL beside the events, flushed before a failure is reported.

use metalboot_spec::{EventStatus, ProgressEvent, Step};
use std::time::{Duration, Instant};

/// Sends progress events; without an endpoint it only prints.
pub struct Reporter {
    events: Option<String>,
    token: String,
    http: ureq::Agent,
    started: Instant,
    last_post: Option<Instant>,
    log: Option<crate::console_log::ConsoleLog>,
}

impl Reporter {
    /// A reporter posting to `events` (None: console only) through `http`.
    pub fn new(events: Option<String>, token: &str, http: ureq::Agent) -> Reporter {
        Reporter { events, token: token.to_string(), http, started: Instant::now(), last_post: None, log: None }
    }

    /// Sends the captured console to the server too, from the moment the
    /// events URL is known.
    pub fn set_log(&mut self, log: crate::console_log::ConsoleLog) {
        self.log = Some(log);
        if let Some(url) = self.events.clone() {
            self.ship_log(&url);
        }
    }

    fn ship_log(&self, events: &str) {
        // the log sits beside the events: …/v1/hosts/NAME/events → …/log
        if let (Some(log), Some(base)) = (&self.log, events.strip_suffix("/events")) {
            log.ship_to(&format!("{base}/log"), &self.token, self.http.clone());
        }
    }

    /// Sends the console lines kept so far (before a reboot).
    pub fn flush_log(&self) {
        if let Some(log) = &self.log {
            log.flush(Duration::from_secs(10));
        }
    }

    /// The agent every request to the server goes through.
    pub fn http(&self) -> &ureq::Agent {
        &self.http
    }

    /// Sets the events URL once the plan is known.
    pub fn set_endpoint(&mut self, events: &str) {
        self.events = Some(events.to_string());
        self.ship_log(events);
    }

    fn post(&mut self, body: ProgressEvent, tries: u32) -> bool {
        let Some(url) = self.events.clone() else { return false };
        let full = format!("{url}?token={}", self.token);
        for i in 0..tries {
            match self.http.post(&full).timeout(Duration::from_secs(10)).send_json(&body) {
                Ok(_) => return true,
                Err(ureq::Error::Status(code, _)) => {
                    println!("metalboot: server refused event (HTTP {code})");
                    return false;
                }
                Err(e) if crate::https::refused(&e).is_some() => {
                    let why = crate::https::refused(&e).map(ToString::to_string).unwrap_or_default();
                    println!("metalboot: not sending events to {url}: {why}");
                    self.events = None;
                    return false;
                }
                Err(_) if i + 1 < tries => std::thread::sleep(Duration::from_secs(1 << i.min(4))),
                // the URL carries the token: never on the console
                Err(e) => println!(
                    "metalboot: could not send event: {}",
                    crate::fetch::redact_token(&e.to_string().replace(&full, &url))
                ),
            }
        }
        false
    }

    /// A step started.
    pub fn step(&mut self, step: Step, message: &str) {
        println!("metalboot: [{:6.1}s] {step}: {message}", self.started.elapsed().as_secs_f64());
        self.post(ProgressEvent::new(step, EventStatus::Running, message), 2);
        self.last_post = Some(Instant::now());
    }

    /// A step finished.
    pub fn done(&mut self, step: Step, message: &str) {
        println!("metalboot: [{:6.1}s] {step}: done {message}", self.started.elapsed().as_secs_f64());
        self.post(ProgressEvent::new(step, EventStatus::Done, message), 2);
    }

    /// Progress within a step, rate-limited to one post per second.
    pub fn progress(&mut self, step: Step, percent: u8, bytes: u64) {
        if self.last_post.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) && percent < 100 {
            return;
        }
        println!(
            "metalboot: [{:6.1}s] {step}: {percent}% ({:.1} MiB)",
            self.started.elapsed().as_secs_f64(),
            bytes as f64 / 1048576.0
        );
        self.post(ProgressEvent::progress(step, percent, bytes), 1);
        self.last_post = Some(Instant::now());
    }

    /// The install failed at `step`.
    pub fn failed(&mut self, step: Step, error: &str) {
        println!("metalboot: FAILED at step {step}: {error}");
        // the server puts the log's tail on the timeline when the failure arrives
        self.flush_log();
        self.post(ProgressEvent::new(step, EventStatus::Failed, error), 5);
    }

    /// Seconds since the installer started.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}
