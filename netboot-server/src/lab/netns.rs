//! A network namespace of our own with a bridge (the provisioning network)
//! and tap devices for VMs: nothing on the host's own networks. Removed on
//! drop (unless kept, as `metalboot lab up` keeps its own); leftovers of a
//! crashed test run are removed by `cleanup_stale`.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

/// Runs a command; its standard output, or an error with its standard error.
pub fn run(args: &[&str]) -> Result<String> {
    let out = Command::new(args[0]).args(&args[1..]).output().with_context(|| format!("running {}", args.join(" ")))?;
    if !out.status.success() {
        bail!("{} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Deletes the namespaces named `prefix…` left by earlier runs (and kills
/// what ran in them); those of a process still running are left alone.
pub fn cleanup_stale(prefix: &str) {
    let Ok(list) = run(&["ip", "netns", "list"]) else { return };
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        // names are PREFIX<tag>-<pid>[-<peer>]: leave those of a live run,
        // this one's included (its scenarios may run side by side)
        let owner = name.split('-').rev().find_map(|p| p.parse::<u32>().ok());
        let alive = owner.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if name.starts_with(prefix) && !alive {
            if let Ok(pids) = run(&["ip", "netns", "pids", name]) {
                for pid in pids.split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
            let _ = run(&["ip", "netns", "del", name]);
        }
    }
}

/// Whether a namespace of that name exists.
pub fn exists(name: &str) -> bool {
    run(&["ip", "netns", "list"]).is_ok_and(|l| l.lines().any(|x| x.split_whitespace().next() == Some(name)))
}

/// The server's address on the bridge of every namespace made here.
pub const SERVER_IP: &str = "10.99.0.1";

/// One namespace with bridge `br0` at `10.99.0.1/24`.
pub struct Netns {
    /// Namespace name.
    pub name: String,
    /// Server address on the bridge.
    pub server_ip: String,
    /// Left in place on drop.
    kept: bool,
}

impl Netns {
    /// Creates namespace `<tag>-<this process's id>`, the bridge and `taps`
    /// tap devices (`tap0`…).
    pub fn create(tag: &str, taps: usize) -> Result<Netns> {
        let name = format!("{tag}-{}", std::process::id());
        // one this process leaked under the same tag (a scenario run again)
        if exists(&name) {
            drop(Netns::adopt(&name));
        }
        Self::create_named(&name, taps)
    }

    /// Creates namespace `name` (which must not exist yet), its bridge and
    /// `taps` taps.
    pub fn create_named(name: &str, taps: usize) -> Result<Netns> {
        run(&["ip", "netns", "add", name])?;
        let ns = Netns { name: name.into(), server_ip: SERVER_IP.into(), kept: false };
        ns.exec(&["ip", "link", "set", "lo", "up"])?;
        ns.exec(&["ip", "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0"])?;
        ns.exec(&["ip", "addr", "add", "10.99.0.1/24", "dev", "br0"])?;
        ns.exec(&["ip", "link", "set", "br0", "up"])?;
        for i in 0..taps {
            let tap = format!("tap{i}");
            ns.exec(&["ip", "tuntap", "add", "dev", &tap, "mode", "tap"])?;
            ns.exec(&["ip", "link", "set", &tap, "master", "br0"])?;
            ns.exec(&["ip", "link", "set", &tap, "up"])?;
        }
        Ok(ns)
    }

    /// A second namespace, another host on the same provisioning network: a
    /// veth from it is attached to our bridge, its end `eth0` at `ip/24`
    /// (no address if `ip` is empty: a DHCP client).
    pub fn peer(&self, tag: &str, ip: &str) -> Result<Netns> {
        self.peer_on("br0", tag, &if ip.is_empty() { String::new() } else { format!("{ip}/24") })
    }

    /// A host on `bridge` of this namespace: as [`Netns::peer`], its `eth0`
    /// at `cidr` (none if empty).
    pub fn peer_on(&self, bridge: &str, tag: &str, cidr: &str) -> Result<Netns> {
        let name = format!("{}-{tag}", self.name);
        let ip = cidr.split('/').next().unwrap_or("");
        run(&["ip", "netns", "add", &name])?;
        let peer = Netns { name, server_ip: ip.into(), kept: false };
        let (here, there) = (format!("v{tag}"), format!("v{tag}p"));
        self.exec(&["ip", "link", "add", &here, "type", "veth", "peer", "name", &there])?;
        self.exec(&["ip", "link", "set", &there, "netns", &peer.name])?;
        self.exec(&["ip", "link", "set", &here, "master", bridge])?;
        self.exec(&["ip", "link", "set", &here, "up"])?;
        peer.exec(&["ip", "link", "set", &there, "name", "eth0"])?;
        if !cidr.is_empty() {
            peer.exec(&["ip", "addr", "add", cidr, "dev", "eth0"])?;
        }
        peer.exec(&["ip", "link", "set", "eth0", "up"])?;
        peer.exec(&["ip", "link", "set", "lo", "up"])?;
        Ok(peer)
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, args: &[&str]) -> Result<String> {
        let mut v = vec!["ip", "netns", "exec", &self.name];
        v.extend_from_slice(args);
        run(&v)
    }

    /// A `Command` that runs `prog` inside the namespace.
    pub fn command(&self, prog: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, prog]);
        c
    }
}

impl Netns {
    /// An existing namespace made by [`Netns::create_named`], removed on drop
    /// like one just made.
    pub fn adopt(name: &str) -> Netns {
        Netns { name: name.into(), server_ip: SERVER_IP.into(), kept: false }
    }

    /// Leaves the namespace, and what runs in it, in place when this is
    /// dropped; its name.
    pub fn keep(mut self) -> String {
        self.kept = true;
        self.name.clone()
    }
}

/// Moves the calling thread (only it) into namespace `name`: its sockets
/// are then made there.
pub fn enter(name: &str) -> Result<()> {
    let path = format!("/run/netns/{name}");
    let f = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).with_context(|| format!("entering namespace {name}"))?;
    Ok(())
}

/// Runs `f` on a thread inside namespace `name`; its result.
pub fn inside<T: Send>(name: &str, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                enter(name)?;
                f()
            })
            .join()
            .unwrap_or_else(|_| bail!("a thread inside namespace {name} panicked"))
    })
}

impl Drop for Netns {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        if let Ok(pids) = run(&["ip", "netns", "pids", &self.name]) {
            for pid in pids.split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}
