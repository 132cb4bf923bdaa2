//! The lab commands after `up`: `run`, `status`, `console`, `reinstall`,
//! `down`, and the relay the SSH config's ProxyCommand runs.

use super::access::{self, secs, INVENTORY, KEY, KNOWN_HOSTS, SSH_CONFIG};
use super::netns::{self, Netns};
use super::state::{netns_name, LabState};
use super::up::require_root;
use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The lab in `dir`, with its server running.
fn running_lab(dir: &Path) -> Result<LabState> {
    require_root()?;
    let st = LabState::require(&std::path::absolute(dir)?)?;
    if !st.owns(st.server) {
        bail!(
            "the lab's server (pid {}) is not running: `metalboot lab down --dir {}` clears the lab",
            st.server.pid,
            st.dir.display()
        );
    }
    Ok(st)
}

/// `lab run -- CMD…`: runs CMD inside the lab's network with the lab's
/// inventory, key, known_hosts and SSH config in its environment; its exit
/// code.
pub fn run(dir: &Path, cmd: &[String]) -> Result<i32> {
    let st = running_lab(dir)?;
    let d = &st.dir;
    let ssh_args = format!("-F {} -o ControlMaster=auto -o ControlPersist=60s", d.join(SSH_CONFIG).display());
    let status = Command::new("ip")
        .args(["netns", "exec", &st.netns])
        .args(cmd)
        .env("METALBOOT_LAB_DIR", d)
        .env("METALBOOT_LAB_SSH_CONFIG", d.join(SSH_CONFIG))
        .env("ANSIBLE_INVENTORY", d.join(INVENTORY))
        .env("ANSIBLE_PRIVATE_KEY_FILE", d.join(KEY))
        .env("ANSIBLE_HOST_KEY_CHECKING", "True")
        .env("ANSIBLE_SSH_ARGS", ssh_args)
        .status()
        .with_context(|| format!("running {}", cmd.join(" ")))?;
    Ok(status.code().unwrap_or(128))
}

/// `lab status`: the server, and each host's state, address and VM.
pub fn status(dir: &Path) -> Result<()> {
    require_root()?;
    let st = LabState::require(&std::path::absolute(dir)?)?;
    let up = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    println!(
        "lab in {} (namespace {}, accelerator {}, up {} min)",
        st.dir.display(),
        st.netns,
        if st.accel.is_empty() { "-" } else { &st.accel },
        up.saturating_sub(st.started) / 60
    );
    let server_up = st.owns(st.server);
    println!("server: {} (pid {}), {}", if server_up { "running" } else { "NOT running" }, st.server.pid, st.base);
    match &st.snapshot {
        Some(s) => println!("disks: overlays on snapshot {}", super::snapshot::describe(s)),
        None => println!("disks: installed in this lab"),
    }
    let states = if server_up {
        let token = access::token(&st)?;
        netns::inside(&st.netns, || crate::operator::client::ApiClient::new(&st.base, &token, None)?.list())
            .unwrap_or_else(|e| {
                println!("host states unknown: {e:#}");
                vec![]
            })
    } else {
        vec![]
    };
    println!("{:<16} {:<8} {:<12} {:<16} vm", "host", "firmware", "state", "address");
    for h in &st.hosts {
        let rec = states.iter().find(|v| v.record.name == h.name);
        let state = rec.map_or("-".to_string(), |v| v.record.state.to_string());
        let vm = if st.owns(h.vm) { format!("running (pid {})", h.vm.pid) } else { "stopped".into() };
        println!("{:<16} {:<8} {:<12} {:<16} {vm}", h.name, h.firmware, state, h.ip.as_deref().unwrap_or("-"));
    }
    Ok(())
}

/// `lab console NAME`: the host's serial console so far; with `follow`,
/// then what it prints until its VM stops.
pub fn console(dir: &Path, name: &str, follow: bool) -> Result<()> {
    let st = LabState::require(&std::path::absolute(dir)?)?;
    let h = st.host(name)?;
    let path = h.dir.join("serial.log");
    let mut f = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = f.read(&mut buf)?;
        if n > 0 {
            out.write_all(&buf[..n])?;
            continue;
        }
        out.flush()?;
        if !follow || !st.owns(h.vm) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `lab reinstall NAME`: `metalboot reinstall` over SSH into the running
/// host (the production reinstall path: kexec into the installer), then
/// waits for it and writes known_hosts and the inventory again.
pub fn reinstall(dir: &Path, name: &str) -> Result<()> {
    let mut st = running_lab(dir)?;
    let h = st.host(name)?.clone();
    let ip = h.ip.clone().with_context(|| format!("{name} has no address yet: is it installed?"))?;
    // the operator's own known_hosts stays out of it: the lab's is HOME's
    let home = st.dir.join("home");
    std::fs::create_dir_all(home.join(".ssh"))?;
    std::fs::copy(st.dir.join(KNOWN_HOSTS), home.join(".ssh/known_hosts"))?;
    let clock = Instant::now();
    let exe = std::env::current_exe().context("finding the metalboot binary")?;
    let status = Command::new("ip")
        .args(["netns", "exec", &st.netns])
        .arg(&exe)
        .arg("--config")
        .arg(st.dir.join("metalboot.toml"))
        .arg("reinstall")
        .arg(format!("{}@{ip}", h.login))
        .args(["--as", name, "--yes", "--server", &st.base, "-i"])
        .arg(st.dir.join(KEY))
        .env("HOME", &home)
        .current_dir(&st.dir)
        .status()
        .context("running metalboot reinstall")?;
    if !status.success() {
        bail!("metalboot reinstall {name} failed ({status})");
    }
    let token = access::token(&st)?;
    access::wait_installed(&st, &token, &[name.to_string()], Duration::from_secs(1800), clock)?;
    access::refresh(&mut st, &token)?;
    access::wait_ssh(&st, &[name.to_string()], Duration::from_secs(300))?;
    println!("[{:6.1}s] {name} reinstalled; known_hosts and the inventory are written again", secs(clock));
    Ok(())
}

/// `lab down`: stops the VMs and the server by process id, removes the
/// namespace (its taps and bridge with it) and the files `lab up` made;
/// checks nothing is left.
pub fn down(dir: &Path) -> Result<()> {
    require_root()?;
    let dir = std::path::absolute(dir)?;
    let Some(st) = LabState::load(&dir)? else {
        let name = netns_name(&dir);
        if netns::exists(&name) {
            drop(Netns::adopt(&name));
            remove_lab_files(&dir)?;
            println!("no state file in {}; removed the lab's namespace {name} and its files", dir.display());
            return Ok(());
        }
        bail!("no lab in {}", dir.display());
    };
    let running = st.running();
    let mut pids: Vec<u32> = running.iter().map(|(_, p)| p.pid).collect();
    // outside SSH sessions' relays into the namespace would keep it alive
    pids.extend(relays(&dir));
    for pid in pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
    }
    // until each has ended, not only stopped looking like the lab's
    let deadline = Instant::now() + Duration::from_secs(10);
    while !running.iter().all(|(_, p)| p.ended()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // anything else that ran inside (a `lab run` command, say) goes with it
    drop(Netns::adopt(&st.netns));
    let left: Vec<_> = running.iter().filter(|(_, p)| !p.ended()).collect();
    if !left.is_empty() {
        bail!("still running 10 s after SIGKILL: {left:?}");
    }
    if netns::exists(&st.netns) {
        bail!("namespace {} could not be removed", st.netns);
    }
    remove_lab_files(&dir)?;
    println!(
        "lab down: stopped {} process(es) ({}), removed namespace {} and the lab's files in {}",
        running.len(),
        running.iter().map(|(w, _)| w.as_str()).collect::<Vec<_>>().join(", "),
        st.netns,
        dir.display()
    );
    Ok(())
}

/// Removes the files `lab up` makes (and nothing else), then the directory
/// if that left it empty.
fn remove_lab_files(dir: &Path) -> Result<()> {
    for f in [
        "lab.json",
        "lab.tmp",
        "hosts.toml",
        "metalboot.toml",
        "api-token",
        KEY,
        "id_ed25519.pub",
        KNOWN_HOSTS,
        INVENTORY,
        "inventory.json",
        SSH_CONFIG,
        "server.log",
        "ready",
    ] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    for d in ["data", "hosts", "home"] {
        let p = dir.join(d);
        if p.exists() {
            std::fs::remove_dir_all(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    let _ = std::fs::remove_dir(dir);
    Ok(())
}

/// Process ids of `metalboot lab --dir DIR relay …` for this lab.
fn relays(dir: &Path) -> Vec<u32> {
    let want = format!("\0lab\0--dir\0{}\0relay\0", dir.display());
    super::state::processes_whose_cmdline(|c| c.contains(&want))
}

/// The SSH config's ProxyCommand: connects to `host:port` inside the lab's
/// namespace and copies standard input and output to and from it.
pub fn relay(dir: &Path, host: &str, port: u16) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("reaching the lab's hosts needs root (entering its network namespace): run ssh with sudo");
    }
    let st = LabState::require(&std::path::absolute(dir)?)?;
    let stream = netns::inside(&st.netns, || {
        std::net::TcpStream::connect((host, port)).with_context(|| format!("connecting to {host}:{port}"))
    })?;
    // a VM killed under an open session sends no FIN: keepalives end it
    socket2::SockRef::from(&stream).set_keepalive(true)?;
    let mut to_host = stream.try_clone()?;
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 32 << 10];
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || to_host.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to_host.shutdown(std::net::Shutdown::Write);
    });
    let mut from_host = stream;
    let mut stdout = std::io::stdout().lock();
    let mut buf = vec![0u8; 32 << 10];
    loop {
        let n = from_host.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        stdout.write_all(&buf[..n])?;
        stdout.flush()?;
    }
}
