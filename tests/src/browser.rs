//! A small headless-Chromium driver for tests, speaking the Chrome DevTools
//! Protocol over `--remote-debugging-pipe` (NUL-ended JSON messages, read by
//! Chromium on its fd 3, written on its fd 4) so that a browser inside a
//! network namespace stays reachable. Every wait has a deadline, so a hung
//! browser fails a test instead of hanging it. The browser leads its own
//! process group: dropping the [`Browser`] closes it, kills the group if need
//! be and reaps it; if the test process dies, Chromium sees the pipe close and quits.
// The child's fds 3 and 4 and the end of its group are libc calls: each with its SAFETY.
#![allow(unsafe_code)]

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use serde_json::{json, Value};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::{fs::PermissionsExt, process::CommandExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long the browser may take to answer a command, to start or to load a page.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// How long a dropped browser gets to exit after `Browser.close`.
const CLOSE_GRACE: Duration = Duration::from_secs(3);
/// Interval between two evaluations of a [`Page::wait_for`] condition.
const POLL: Duration = Duration::from_millis(200);

/// The protocol connection shared by a browser and its pages.
struct Conn {
    to_browser: File,
    from_browser: Receiver<Value>,
    next_id: u64,
    /// `load` lifecycle events read while waiting for something else.
    loads: Vec<Value>,
    /// Sessions whose JavaScript dialogs are accepted as they open.
    accept_dialogs: Vec<String>,
    log: PathBuf,
}

impl Conn {
    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<u64> {
        self.next_id += 1;
        let mut msg = json!({ "id": self.next_id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = s.into();
        }
        let mut bytes = serde_json::to_vec(&msg)?;
        bytes.push(0);
        self.to_browser.write_all(&bytes).with_context(|| format!("sending {method} ({})", self.log_tail()))?;
        Ok(self.next_id)
    }

    /// The end of the browser's log, for error messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!("end of {}:\n{}", self.log.display(), lines[lines.len().saturating_sub(15)..].join("\n"))
    }

    /// Reads messages until `wanted` accepts one, failing at `deadline`. Load events are kept, other
    /// messages dropped; a dialog is accepted or, unless its page asked for that, dismissed and an error.
    fn wait(&mut self, what: &str, deadline: Instant, wanted: impl Fn(&Value) -> bool) -> Result<Value> {
        loop {
            let msg = match self.from_browser.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(msg) => msg,
                Err(RecvTimeoutError::Timeout) => bail!("chromium did not answer {what} in time ({})", self.log_tail()),
                Err(RecvTimeoutError::Disconnected) => bail!("chromium quit before {what} ({})", self.log_tail()),
            };
            if wanted(&msg) {
                return Ok(msg);
            } else if msg["method"] == "Page.lifecycleEvent" && msg["params"]["name"] == "load" {
                self.loads.push(msg);
            } else if msg["method"] == "Page.javascriptDialogOpening" {
                let session = msg["sessionId"].as_str().unwrap_or_default().to_owned();
                let accept = self.accept_dialogs.contains(&session);
                self.send(Some(&session), "Page.handleJavaScriptDialog", json!({ "accept": accept }))?;
                if !accept {
                    let (kind, text) = (&msg["params"]["type"], &msg["params"]["message"]);
                    bail!("before {what}, the page opened a {kind} dialog {text}: dismissed (Page::accept_dialogs)");
                }
            }
        }
    }

    /// Sends a command; the outer error is a transport failure, the inner one the browser's.
    fn call_raw(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<Result<Value, String>> {
        let id = self.send(session, method, params)?;
        let mut msg = self.wait(method, Instant::now() + TIMEOUT, |m| m["id"] == id)?;
        Ok(match msg.get("error") {
            Some(e) => Err(e["message"].as_str().map_or_else(|| e.to_string(), str::to_owned)),
            None => Ok(msg["result"].take()),
        })
    }

    /// Sends a command and waits for its result.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<Value> {
        self.call_raw(session, method, params)?.map_err(|e| anyhow!("{method}: {e}"))
    }
}

fn lock(conn: &Mutex<Conn>) -> Result<MutexGuard<'_, Conn>> {
    conn.lock().map_err(|_| anyhow!("the browser connection was poisoned by a panic"))
}

/// A pipe, both ends close-on-exec: (read end, write end).
fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("pipe2");
    }
    // SAFETY: pipe2 succeeded: both are open and owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `chromium` on PATH, or an error naming the package that provides it.
fn find_chromium() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("chromium"))
        .find(|p| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
        .context("no `chromium` on PATH: install the Debian package `chromium` (apt-get install --no-install-recommends chromium)")
}

/// Whether child `pid` has exited, not reaping it: its PID (and group id) stays reserved.
fn exited(pid: libc::pid_t) -> bool {
    // SAFETY: an all-zero siginfo_t is valid; WNOWAIT leaves the child unreaped.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT);
        r != 0 || info.si_pid() != 0
    }
}

/// A headless Chromium; closed, killed if need be, and reaped on drop.
pub struct Browser {
    child: Child,
    conn: Arc<Mutex<Conn>>,
    profile: PathBuf,
}

impl Browser {
    /// Starts `chromium` (profile in `dir/chromium-profile`, output in `dir/chromium.log`) and
    /// waits until it answers.
    pub fn launch(dir: &Path) -> Result<Browser> {
        Browser::launch_with(&[], dir)
    }

    /// Like [`Browser::launch`], through a prefix command that keeps inherited
    /// descriptors and execs its arguments, e.g. `["ip", "netns", "exec", NS]`.
    pub fn launch_with(prefix: &[&str], dir: &Path) -> Result<Browser> {
        let chromium = find_chromium()?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let (log, profile) = (dir.join("chromium.log"), dir.join("chromium-profile"));
        let output = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let ((child_in, we_write), (we_read, child_out)) = (pipe()?, pipe()?);
        let (fd_in, fd_out) = (child_in.as_raw_fd(), child_out.as_raw_fd());
        let argv: Vec<&OsStr> = prefix.iter().map(OsStr::new).chain([chromium.as_os_str()]).collect();
        let mut cmd = Command::new(argv[0]);
        cmd.args(&argv[1..])
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check"])
            .args(["--disable-background-networking", "--disable-component-update", "--hide-scrollbars"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(["--remote-debugging-pipe", "--window-size=1280,900", "about:blank"])
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .process_group(0);
        // SAFETY: only fcntl and dup2 (async-signal-safe) run between fork and exec. Copies at 10
        // and up first: no dup2 can overwrite the other end, or be a no-op keeping close-on-exec.
        unsafe {
            cmd.pre_exec(move || {
                let (a, b) =
                    (libc::fcntl(fd_in, libc::F_DUPFD_CLOEXEC, 10), libc::fcntl(fd_out, libc::F_DUPFD_CLOEXEC, 10));
                let ok = a >= 0 && b >= 0 && libc::dup2(a, 3) >= 0 && libc::dup2(b, 4) >= 0;
                ok.then_some(()).ok_or_else(std::io::Error::last_os_error)
            });
        }
        let child = cmd.spawn().with_context(|| format!("starting {:?}", cmd.get_program()))?;
        // our copies of the child's ends must go, or its exit would not show as EOF
        drop((child_in, child_out));
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new().name("chromium-cdp".into()).spawn(move || {
            let msgs = BufReader::new(File::from(we_read)).split(0).map_while(Result::ok);
            msgs.map(|m| serde_json::from_slice(&m).unwrap_or_default()).try_for_each(|v| tx.send(v))
        })?;
        let (loads, accept_dialogs) = (Vec::new(), Vec::new());
        let conn = Conn { to_browser: File::from(we_write), from_browser: rx, next_id: 0, loads, accept_dialogs, log };
        let browser = Browser { child, conn: Arc::new(Mutex::new(conn)), profile };
        lock(&browser.conn)?.call(None, "Browser.getVersion", json!({})).context("starting chromium")?;
        Ok(browser)
    }

    /// The PID of the browser process, also its process group id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Opens `url` in a new tab and waits for it to load.
    pub fn open(&mut self, url: &str) -> Result<Page> {
        let mut conn = lock(&self.conn)?;
        let target = conn.call(None, "Target.createTarget", json!({ "url": "about:blank" }))?;
        let attach = json!({ "targetId": target["targetId"], "flatten": true });
        let attached = conn.call(None, "Target.attachToTarget", attach)?;
        let session = attached["sessionId"].as_str().context("Target.attachToTarget: no sessionId")?.to_owned();
        conn.call(Some(&session), "Page.enable", json!({}))?;
        conn.call(Some(&session), "Page.setLifecycleEventsEnabled", json!({ "enabled": true }))?;
        drop(conn);
        let mut page = Page { conn: self.conn.clone(), session };
        page.navigate(url)?;
        Ok(page)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = lock(&self.conn).and_then(|mut conn| conn.send(None, "Browser.close", json!({})));
        let (pid, deadline) = (self.child.id() as libc::pid_t, Instant::now() + CLOSE_GRACE);
        while !exited(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Not reaped yet, the browser keeps its group id naming only its own processes.
        // SAFETY: kill(2) on the process group this browser leads.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// One tab of a [`Browser`].
pub struct Page {
    conn: Arc<Mutex<Conn>>,
    session: String,
}

impl Page {
    /// Evaluates `js`, awaiting a promise, to its value (`Null` for `undefined`); an exception is
    /// an error with its text.
    pub fn eval(&mut self, js: &str) -> Result<Value> {
        self.evaluate(js)?.map_err(|e| anyhow!("evaluating `{js}`: {e}"))
    }

    /// The outer error is a transport failure, the inner one an exception or a refusal.
    fn evaluate(&mut self, js: &str) -> Result<Result<Value, String>> {
        let params = json!({ "expression": js, "returnByValue": true, "awaitPromise": true });
        let mut answer = match lock(&self.conn)?.call_raw(Some(&self.session), "Runtime.evaluate", params)? {
            Ok(a) => a,
            Err(e) => return Ok(Err(e)),
        };
        if let Some(details) = answer.get("exceptionDetails") {
            let (ex, text) = (&details["exception"], details["text"].as_str().unwrap_or_default());
            return Ok(Err(ex["description"]
                .as_str()
                .map_or_else(|| format!("{text} {}", ex["value"]), str::to_owned)));
        }
        let mut result = answer["result"].take();
        let unserializable = result.get_mut("unserializableValue").map(Value::take);
        Ok(Ok(result.get_mut("value").map(Value::take).or(unserializable).unwrap_or_default()))
    }

    /// Evaluates `js_condition` every 200 ms until its value is truthy (not null, false, "" or 0)
    /// and returns it; exceptions count as not yet. Fails after `timeout` with the last outcome.
    pub fn wait_for(&mut self, js_condition: &str, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.evaluate(js_condition)? {
                Ok(v) if !(v.is_null() || v == false || v == "" || v.as_f64() == Some(0.0)) => return Ok(v),
                Ok(v) => v.to_string(),
                Err(e) => format!("exception: {e}"),
            };
            let now = Instant::now();
            if now >= deadline {
                bail!("`{js_condition}` still not true after {timeout:?}; last: {last}");
            }
            std::thread::sleep(POLL.min(deadline - now));
        }
    }

    /// Navigates to `url` and waits for its load (a same-document navigation returns at once).
    pub fn navigate(&mut self, url: &str) -> Result<()> {
        let mut conn = lock(&self.conn)?;
        let answer = conn.call(Some(&self.session), "Page.navigate", json!({ "url": url }))?;
        if let Some(e) = answer["errorText"].as_str().filter(|e| !e.is_empty()) {
            bail!("navigating to {url}: {e}");
        }
        let Some(loader) = answer["loaderId"].as_str() else { return Ok(()) };
        // the `load` lifecycle event of this very navigation (loader ids are unique), maybe already read
        let loaded = |e: &Value| e["params"]["name"] == "load" && e["params"]["loaderId"] == loader;
        match conn.loads.iter().position(loaded) {
            Some(i) => drop(conn.loads.remove(i)),
            None => drop(conn.wait(&format!("the load of {url}"), Instant::now() + TIMEOUT, loaded)?),
        }
        Ok(())
    }

    /// Writes a PNG screenshot of the viewport to `path`.
    pub fn screenshot(&mut self, path: &Path) -> Result<()> {
        let shot = lock(&self.conn)?.call(Some(&self.session), "Page.captureScreenshot", json!({ "format": "png" }))?;
        let data = shot["data"].as_str().context("Page.captureScreenshot gave no data")?;
        let png = base64::engine::general_purpose::STANDARD.decode(data).context("decoding the screenshot")?;
        if !png.starts_with(b"\x89PNG\r\n\x1a\n") {
            bail!("the screenshot is not a PNG");
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// Accepts every dialog (`alert`, `confirm`, `prompt`, `beforeunload`) this page opens from
    /// now on, as if OK were clicked. Without it a dialog is dismissed and fails the command that
    /// opened it.
    pub fn accept_dialogs(&mut self) -> Result<()> {
        lock(&self.conn)?.accept_dialogs.push(self.session.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    const MAIN: &str = r#"<!doctype html><title>main</title><p id="status">waiting</p><p id="result"></p>
<form id="f"><input id="name"><button id="go">Go</button></form><script>
setTimeout(() => { document.getElementById("status").textContent = "ready"; }, 500);
document.getElementById("f").onsubmit = (e) => { e.preventDefault(); const n = document.getElementById("name").value;
  document.getElementById("result").textContent = (confirm("Install " + n + "?") ? "confirmed " : "no ") + n; };</script>"#;

    /// Serves MAIN at `/`, "second" elsewhere; a thread per connection, as some may stay idle.
    fn serve() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for mut s in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let (mut req, mut buf) = (Vec::new(), [0; 4096]);
                    while !req.ends_with(b"\r\n\r\n") {
                        let Ok(n @ 1..) = s.read(&mut buf) else { return };
                        req.extend_from_slice(&buf[..n]);
                    }
                    let body = if req.starts_with(b"GET / ") { MAIN } else { "<!doctype html><title>second</title>" };
                    let _ = write!(s, "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n{body}");
                });
            }
        });
        url
    }

    /// Processes of group `pgid` still running (zombies aside).
    fn running_in_group(pgid: u32) -> usize {
        let stats = std::fs::read_dir("/proc").unwrap().flatten().map(|e| e.path().join("stat"));
        // after the command name in parentheses come state, ppid, pgrp
        let rest = stats.filter_map(|p| Some(std::fs::read_to_string(p).ok()?.rsplit_once(')')?.1.to_owned()));
        let pgid = pgid.to_string();
        rest.filter(|r| r.split_whitespace().nth(2) == Some(&pgid) && !r.trim_start().starts_with('Z')).count()
    }

    #[test]
    fn drives_a_page() {
        let start = Instant::now();
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("metalboot-browser-{}-{nanos}", std::process::id()));
        let url = serve();
        let mut browser = Browser::launch(&dir).unwrap();
        eprintln!("browser: launched in {:?}", start.elapsed());
        let mut page = browser.open(&format!("{url}/")).unwrap();
        assert_eq!(page.eval("document.title").unwrap(), "main");
        let ready = "document.getElementById('status').textContent == 'ready' && 'yes'";
        assert_eq!(page.wait_for(ready, Duration::from_secs(10)).unwrap(), "yes");
        page.accept_dialogs().unwrap();
        page.eval("document.getElementById('name').value = 'node1'; document.getElementById('go').click()").unwrap();
        assert_eq!(page.eval("document.getElementById('result').textContent").unwrap(), "confirmed node1");
        assert_eq!(page.eval("new Promise(r => setTimeout(() => r(6 * 7), 50))").unwrap(), 42);
        assert_eq!(page.eval("undefined").unwrap(), Value::Null);
        let thrown = page.eval("noSuchFunction()").unwrap_err().to_string();
        assert!(thrown.contains("noSuchFunction is not defined"), "{thrown}");
        let late = page.wait_for("document.title.length - 4", Duration::from_millis(300)).unwrap_err().to_string();
        assert!(late.contains("last: 0"), "{late}");
        page.navigate(&format!("{url}/second")).unwrap();
        assert_eq!(page.eval("document.title").unwrap(), "second");
        page.screenshot(&dir.join("shot.png")).unwrap();
        assert!(std::fs::read(dir.join("shot.png")).unwrap().starts_with(b"\x89PNG\r\n\x1a\n"));
        let (pid, closing) = (browser.pid(), Instant::now());
        drop(browser);
        eprintln!("browser: closed in {:?}, whole test {:?}", closing.elapsed(), start.elapsed());
        // SAFETY: signal 0 only asks whether the process exists.
        assert_ne!(unsafe { libc::kill(pid as libc::pid_t, 0) }, 0, "chromium {pid} still exists");
        // helpers killed on drop may take a moment to die
        let deadline = Instant::now() + Duration::from_secs(5);
        while running_in_group(pid) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(running_in_group(pid), 0, "chromium helpers left running");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
