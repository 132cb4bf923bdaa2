//! One scenario: its directory under `target/e2e/<name>/`, the namespace,
//! a generated inventory and SSH key, the server, and waits with deadlines.

use crate::netns::{cleanup_stale, Netns};
use crate::vm::{tail, Vm};
use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Workspace root (the tests crate lives one level down).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// Where `make assets` put the kernel, initramfs and image.
pub fn assets() -> PathBuf {
    std::env::var_os("METALBOOT_ASSETS").map(PathBuf::from).unwrap_or_else(|| workspace().join("target/assets"))
}

/// The `metalboot` binary.
pub fn metalboot_bin() -> PathBuf {
    std::env::var_os("METALBOOT_BIN").map(PathBuf::from).unwrap_or_else(|| workspace().join("target/release/metalboot"))
}

/// A child process killed (and reaped) when this is dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A root filesystem image `make rootfs` builds, which a scenario's host
/// installs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Image {
    /// `rootfs.tar.zst`, Debian's generic kernel: the inventory's default.
    Generic,
    /// `rootfs-cloud.tar.zst`, Debian's cloud kernel.
    Cloud,
}

impl Image {
    /// Its asset name.
    pub fn asset(self) -> &'static str {
        match self {
            Image::Generic => "rootfs.tar.zst",
            Image::Cloud => "rootfs-cloud.tar.zst",
        }
    }

    /// Whether `uname -r` is this image's kernel.
    pub fn is_its_kernel(self, release: &str) -> bool {
        release.ends_with("-cloud-amd64") == (self == Image::Cloud)
    }
}

/// Fails unless `make assets` has run.
pub fn require_assets() -> Result<()> {
    for f in ["vmlinuz", "initramfs.img", Image::Generic.asset(), Image::Cloud.asset()] {
        if !assets().join(f).is_file() {
            bail!("{} missing: run `make assets` first", assets().join(f).display());
        }
    }
    Ok(())
}

/// The server's HTTPS port in every scenario.
pub const TLS_PORT: u16 = 8443;

/// A running scenario.
pub struct Scenario {
    /// Name, for the log directory.
    pub name: String,
    /// `target/e2e/<name>`.
    pub dir: PathBuf,
    /// Our namespace.
    pub ns: Netns,
    server: Option<Child>,
    /// `http://10.99.0.1:8080`.
    pub base: String,
    /// The operator API token the server accepts.
    pub api_token: String,
    /// Private key enrolled on the host.
    pub ssh_key: PathBuf,
    /// Who [`Scenario::ssh`] logs in as: `root`, or the host's admin user,
    /// whose commands then run through `sudo -n`.
    pub login: String,
    started: Instant,
    /// Phase timeline: (seconds since start, what).
    pub phases: Vec<(f64, String)>,
    last_state: String,
    pub(crate) helpers: Vec<Child>,
    pub(crate) peers: Vec<Netns>,
    /// Set by [`Scenario::finish`]; a scenario dropped without it failed,
    /// and its logs' last lines go to stderr (the CI output is all a failed
    /// run leaves behind).
    finished: std::cell::Cell<bool>,
}

fn sh(cmd: &str) -> Result<String> {
    let out = std::process::Command::new("sh").args(["-c", cmd]).output()?;
    if !out.status.success() {
        bail!("{cmd}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Scenario {
    /// Sets up the directory, namespace (with `taps` taps) and SSH key.
    pub fn new(name: &str, taps: usize) -> Result<Scenario> {
        cleanup_stale();
        let dir = workspace().join("target/e2e").join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let ns = Netns::create(&format!("{}{name}", crate::netns::PREFIX), taps)?;
        let ssh_key = dir.join("id_ed25519");
        sh(&format!("ssh-keygen -q -t ed25519 -N '' -C e2e@{name} -f {}", ssh_key.display()))?;
        Ok(Scenario {
            name: name.into(),
            dir,
            base: format!("http://{}:8080", ns.server_ip),
            ns,
            server: None,
            api_token: "e2e-api-token".into(),
            ssh_key,
            login: "root".into(),
            started: Instant::now(),
            phases: vec![],
            last_state: String::new(),
            helpers: vec![],
            peers: vec![],
            finished: std::cell::Cell::new(false),
        })
    }

    /// The public key line to enrol.
    pub fn public_key(&self) -> Result<String> {
        Ok(std::fs::read_to_string(self.ssh_key.with_extension("pub"))?.trim().to_string())
    }

    /// Records a phase.
    pub fn phase(&mut self, what: &str) {
        let t = self.started.elapsed().as_secs_f64();
        println!("[{t:7.1}s] {}: {what}", self.name);
        self.phases.push((t, what.to_string()));
    }

    /// Writes config + inventory and starts `metalboot serve` in the namespace.
    /// HTTP on :8080 for iPXE; pinned HTTPS on [`TLS_PORT`] (self-signed,
    /// in `data/tls`) for the installer and the phone-home.
    pub fn start_server(&mut self, inventory: &str, dhcp: &str) -> Result<()> {
        self.stop_server();
        std::fs::write(self.dir.join("hosts.toml"), inventory)?;
        std::fs::write(self.dir.join("api-token"), &self.api_token)?;
        let cfg = format!(
            "[server]\nlisten = \"{ip}:8080\"\npublic_url = \"{base}\"\ndata_dir = \"data\"\ninventory = \"hosts.toml\"\napi_token_file = \"api-token\"\n\n\
             [server.tls]\nlisten = \"{ip}:{TLS_PORT}\"\n\n\
             [assets]\ndir = \"{assets}\"\n\n[tftp]\nlisten = \"{ip}:69\"\n\n{dhcp}\n",
            ip = self.ns.server_ip,
            base = self.base,
            assets = assets().display(),
        );
        std::fs::write(self.dir.join("metalboot.toml"), cfg)?;
        let ready = self.dir.join("ready");
        let _ = std::fs::remove_file(&ready);
        let child = self
            .ns
            .command(metalboot_bin().to_str().context("binary path")?)
            .args(["--config", "metalboot.toml", "serve", "--ready-file", "ready"])
            .current_dir(&self.dir)
            .env("METALBOOT_LOG", "info,metalboot=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("server.log"))?)
            .spawn()
            .context("starting metalboot serve")?;
        self.server = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready.exists() {
            if let Some(st) = self.server.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("metalboot serve exited ({st}):\n{}", self.server_log());
            }
            if Instant::now() > deadline {
                bail!("metalboot serve did not become ready:\n{}", self.server_log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.phase("server ready");
        Ok(())
    }

    /// Starts dnsmasq as the network's DHCP server on another host of the
    /// provisioning network (10.99.0.2), handing out 10.99.0.50–90, with no
    /// boot options of its own; its leases go to `dnsmasq.leases`.
    pub fn start_dnsmasq(&mut self) -> Result<()> {
        let peer = self.ns.peer("dhcp", "10.99.0.2")?;
        let d = self.dir.display();
        let child = peer
            .command("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--port=0",
                "--user=root",
                "--interface=eth0",
                "--bind-interfaces",
                "--dhcp-range=10.99.0.50,10.99.0.90,255.255.255.0,10m",
                "--dhcp-authoritative",
                "--log-dhcp",
            ])
            .arg(format!("--dhcp-leasefile={d}/dnsmasq.leases"))
            .arg(format!("--pid-file={d}/dnsmasq.pid"))
            .arg(format!("--log-facility={d}/dnsmasq.log"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("dnsmasq.err"))?)
            .spawn()
            .context("starting dnsmasq (apt-get install dnsmasq-base)")?;
        self.helpers.push(child);
        self.peers.push(peer);
        std::thread::sleep(Duration::from_millis(500));
        if let Some(st) = self.helpers.last_mut().and_then(|c| c.try_wait().ok().flatten()) {
            bail!(
                "dnsmasq exited ({st}): {}",
                std::fs::read_to_string(self.dir.join("dnsmasq.err")).unwrap_or_default()
            );
        }
        self.phase("dnsmasq (the network's DHCP server) ready on 10.99.0.2");
        Ok(())
    }

    /// Stops the server (kill -9: nothing may depend on a clean shutdown).
    pub fn stop_server(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `metalboot --config metalboot.toml ARGS…` from the operator's side of
    /// the namespace; its standard output (an error with both on failure).
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let out = self.cli_command(args)?.output().context("running metalboot")?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        ensure!(
            out.status.success(),
            "metalboot {} failed ({}):\n{stdout}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(stdout)
    }

    /// The command [`Scenario::cli`] runs.
    pub fn cli_command(&self, args: &[&str]) -> Result<std::process::Command> {
        let mut c = self.ns.command(metalboot_bin().to_str().context("binary path")?);
        c.current_dir(&self.dir).stdin(Stdio::null()).args(["--config", "metalboot.toml"]).args(args);
        Ok(c)
    }

    /// The server log.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// `GET /metrics` with the API token: the Prometheus text.
    pub fn metrics(&self) -> Result<String> {
        self.ns.exec(&[
            "curl",
            "-sf",
            "-H",
            &format!("Authorization: Bearer {}", self.api_token),
            &format!("{}/metrics", self.base),
        ])
    }

    /// `GET /v1/hosts/NAME` through the namespace (curl inside it).
    pub fn host(&self, name: &str) -> Result<serde_json::Value> {
        let out = self.ns.exec(&[
            "curl",
            "-sf",
            "-H",
            &format!("Authorization: Bearer {}", self.api_token),
            &format!("{}/v1/hosts/{name}", self.base),
        ])?;
        serde_json::from_str(&out).context("parsing host JSON")
    }

    /// Waits until host `name` reaches `state`, failing on `failed`, on QEMU
    /// exiting, or at the deadline; records every state change as a phase.
    pub fn wait_state(&mut self, name: &str, state: &str, vm: &mut Vm, limit: Duration) -> Result<serde_json::Value> {
        let deadline = Instant::now() + limit;
        loop {
            let h = self.host(name)?;
            let cur = h["state"].as_str().unwrap_or("").to_string();
            if cur != self.last_state {
                self.phase(&format!("host {name} -> {cur}"));
                self.last_state = cur.clone();
            }
            if cur == state {
                return Ok(h);
            }
            if cur == "failed" && state != "failed" {
                bail!(
                    "install failed at {}: {}\nserial tail:\n{}",
                    h["failed_step"],
                    h["failed_error"],
                    tail(&vm.serial(), 30)
                );
            }
            vm.check_running()?;
            if Instant::now() > deadline {
                bail!(
                    "host {name} did not reach {state} within {limit:?} (state {cur}); serial tail:\n{}",
                    tail(&vm.serial(), 40)
                );
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    /// Waits for a marker on the serial console.
    pub fn wait_serial(&mut self, vm: &mut Vm, marker: &str, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        while !vm.serial().contains(marker) {
            vm.check_running()?;
            if Instant::now() > deadline {
                bail!("{marker:?} not seen on the console within {limit:?}; tail:\n{}", tail(&vm.serial(), 40));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        self.phase(&format!("console: {marker}"));
        Ok(())
    }

    /// Prints and saves the phase timeline.
    pub fn finish(&self) {
        let mut text = String::new();
        for (t, w) in &self.phases {
            text.push_str(&format!("{t:8.1}s  {w}\n"));
        }
        let _ = std::fs::write(self.dir.join("timeline.txt"), &text);
        println!("--- {} timeline ---\n{text}", self.name);
        self.finished.set(true);
    }

    /// The last lines of every console and the server's log, to stderr.
    fn dump_logs(&self) {
        let Ok(rd) = std::fs::read_dir(&self.dir) else { return };
        let mut logs: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                (n.starts_with("serial") || n == "server.log") && n.ends_with(".log")
            })
            .collect();
        logs.sort();
        for p in logs {
            let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap_or_default()).into_owned();
            eprintln!("--- {} failed; last lines of {} ---\n{}", self.name, p.display(), crate::vm::tail(&text, 40));
        }
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        if !self.finished.get() {
            self.dump_logs();
        }
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for mut c in self.helpers.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.peers.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::Image;

    #[test]
    fn each_image_knows_its_kernel() {
        assert!(Image::Cloud.is_its_kernel("6.1.0-57-cloud-amd64"));
        assert!(!Image::Cloud.is_its_kernel("6.1.0-57-amd64"));
        assert!(Image::Generic.is_its_kernel("6.1.0-57-amd64"));
        assert!(!Image::Generic.is_its_kernel("6.1.0-57-cloud-amd64"));
    }
}
