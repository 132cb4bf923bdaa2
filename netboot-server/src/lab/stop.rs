//! Stopping the lab's VMs and server cleanly, for a snapshot: each guest
//! powers itself off (its filesystems clean), the server ends on SIGTERM
//! (its database whole).

use super::access::SSH_CONFIG;
use super::state::LabState;
use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// Whether process `pid` (a child of ours, or not) has ended within `limit`;
/// a child is reaped.
pub fn wait_exit(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let p = Pid::from_raw(pid as i32);
    loop {
        match waitpid(p, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(_) => return true,
            // not our child: gone when /proc says so
            Err(_) => {
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    return true;
                }
            }
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Asks every host to power off over SSH and waits until each VM has ended.
pub fn power_off(st: &LabState, limit: Duration) -> Result<()> {
    for h in &st.hosts {
        // the session ends with the guest: its status says nothing
        let _ = std::process::Command::new("ssh")
            .arg("-F")
            .arg(st.dir.join(SSH_CONFIG))
            .args(["-o", "ConnectTimeout=10", &h.name])
            .arg("sync; sudo -n systemctl poweroff 2>/dev/null || systemctl poweroff")
            .stdin(std::process::Stdio::null())
            .output()
            .context("running ssh")?;
    }
    for h in &st.hosts {
        if !wait_exit(h.vm.pid, limit) {
            bail!("{} did not power off within {} s (asked over SSH)", h.name, limit.as_secs());
        }
    }
    Ok(())
}

/// Stops the lab's server with SIGTERM, and SIGKILL after 20 s.
pub fn stop_server(st: &LabState) -> Result<()> {
    let pid = st.server.pid;
    if pid == 0 || !st.owns(st.server) {
        bail!("the lab's server (pid {pid}) is not running");
    }
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
    if !wait_exit(pid, Duration::from_secs(20)) {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        wait_exit(pid, Duration::from_secs(5));
        bail!("the lab's server did not stop on SIGTERM within 20 s (killed): its database may be incomplete");
    }
    Ok(())
}
