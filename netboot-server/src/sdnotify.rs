//! The service manager's readiness protocol (`sd_notify`): with
//! `Type=notify`, systemd starts dependent units and `systemctl start`
//! returns only once `READY=1` arrives, which `metalboot serve` sends when
//! every listener is bound and the state is loaded; `RELOADING=1` and
//! `STOPPING=1` around a reload and at shutdown, `STATUS=` for `systemctl
//! status`, and `WATCHDOG=1` at half the `WatchdogSec=` interval when the
//! unit sets one. Without `NOTIFY_SOCKET` (not started by systemd) every
//! call does nothing.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Sends `state` (newline-separated `KEY=VALUE` lines) to the service
/// manager, if there is one; errors are logged, never fatal.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let path = path.to_string_lossy().into_owned();
    let sent = (|| -> std::io::Result<()> {
        let sock = UnixDatagram::unbound()?;
        // `@name`: a socket in the abstract namespace
        let addr = match path.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
            None => SocketAddr::from_pathname(&path)?,
        };
        sock.send_to_addr(state.as_bytes(), &addr)?;
        Ok(())
    })();
    if let Err(e) = sent {
        tracing::warn!(socket = %path, error = %e, "notifying the service manager");
    }
}

/// The watchdog interval the unit asked for (`WATCHDOG_USEC`, for this
/// process: `WATCHDOG_PID` unset or ours).
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Pets the watchdog at half its interval until dropped (the runtime is
/// alive as long as this task runs).
pub fn spawn_watchdog() -> Option<tokio::task::JoinHandle<()>> {
    let every = watchdog_interval()? / 2;
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            notify("WATCHDOG=1");
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_reaches_a_listening_socket_by_path_and_in_the_abstract_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let abstract_name = format!("metalboot-test-{}", std::process::id());
        let abs = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap()).unwrap();
        let mut buf = [0u8; 64];
        // one test owns the variable: set, send to each, restore
        std::env::set_var("NOTIFY_SOCKET", &path);
        notify("READY=1\nSTATUS=serving");
        std::env::set_var("NOTIFY_SOCKET", format!("@{abstract_name}"));
        notify("STOPPING=1");
        std::env::remove_var("NOTIFY_SOCKET");
        notify("READY=1"); // nowhere to go: nothing happens
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=serving");
        let n = abs.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }
}
