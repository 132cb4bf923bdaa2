//! The decisions `metalboot reinstall` makes before it changes anything,
//! as plain functions: which disk rule the installer gets, whether the
//! host's layout fits that disk, whether the installer can carry the
//! target's network, whether to go on without asking, and how a failure to
//! reach the installer is worded. No SSH, no server, no terminal: each is
//! tested on values.

use super::discover::DiskFacts;
use super::remote::gib;
use anyhow::{bail, Result};
use metalboot_spec::{ByteSize, DiskSelector, NetMode, NetworkSpec, MIN_ROOT_BYTES};

/// The disk rule for the installer: the confirmed disk and only it.
pub fn disk_selector(disk: &DiskFacts, all: &[DiskFacts]) -> DiskSelector {
    let unique_serial =
        disk.serial.as_ref().filter(|s| all.iter().filter(|d| d.serial.as_ref() == Some(s)).count() == 1);
    let mut sel = DiskSelector { wipe: true, ..Default::default() };
    match unique_serial {
        Some(s) => sel.serial = Some(s.clone()),
        None => {
            // no serial (many VPS disks): same kernel name and exact size
            sel.path = Some(disk.path.clone());
            sel.min_size = Some(ByteSize(disk.size));
            sel.max_size = Some(ByteSize(disk.size));
        }
    }
    sel
}

/// The installer would refuse a disk its layout does not fit on, after the
/// target had been left for it: refuse it here, before anything changes.
pub fn disk_fits(disk: &DiskFacts, need: u64) -> Result<()> {
    if disk.size < need {
        bail!(
            "{} ({}) is too small for the host's layout, which needs at least {} (BIOS boot partition, ESP and a \
             root of {}); nothing was changed",
            disk.path,
            gib(disk.size),
            gib(need),
            gib(MIN_ROOT_BYTES)
        );
    }
    Ok(())
}

/// The installer keeps the target's IPv4 (`ip=`) and IPv6
/// (`metalboot.ip6=`), but reaches the server over IPv4 only: an IPv6-only
/// target can only be reinstalled standalone, and is refused otherwise,
/// before anything changes (it would only fall back to its old system).
pub fn installer_can_carry(net: &NetworkSpec, standalone: bool) -> Result<()> {
    if net.mode == NetMode::Static && net.ipv4().is_none() && !standalone {
        let addrs: Vec<String> = net.addresses.iter().map(|a| a.to_string()).collect();
        bail!(
            "the target has no IPv4 address ({}): the installer reaches the server over IPv4 only, so an \
             IPv6-only host is reinstalled with --standalone (the installer keeps its IPv6 and needs no server); \
             nothing was changed",
            addrs.join(" ")
        );
    }
    Ok(())
}

/// What to do once the target is discovered and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// `--dry-run`: stop here, nothing changed.
    DryRun,
    /// `--yes`: go on without asking.
    Go,
    /// Ask the operator to type the host name.
    Ask,
    /// No `--yes` and no terminal to ask on: refuse, nothing changed.
    Refuse,
}

/// Whether `metalboot reinstall` may go on past the summary.
pub fn gate(dry_run: bool, yes: bool, stdin_is_terminal: bool) -> Gate {
    match (dry_run, yes, stdin_is_terminal) {
        (true, _, _) => Gate::DryRun,
        (false, true, _) => Gate::Go,
        (false, false, true) => Gate::Ask,
        (false, false, false) => Gate::Refuse,
    }
}

/// The failure recorded when the installer never reached anyone: `what`
/// happened, and the network it was given (from its command line).
pub fn no_network(cmdline: &str, what: &str) -> String {
    let tried: Vec<&str> = cmdline
        .split_whitespace()
        .filter(|w| {
            let key = w.split_once('=').map_or(*w, |(k, _)| k);
            ["ip", "BOOTIF", "metalboot.ip6", "metalboot.url", "metalboot.pin", "metalboot.standalone"].contains(&key)
        })
        .collect();
    // the installer reports nothing to a server whose key is not pinned,
    // so from here the two look the same; its console tells them apart
    let pinned = tried.iter().any(|w| w.starts_with("metalboot.pin="));
    let or_key =
        if pinned { ", or the server it reached did not present the pinned key (see its console)" } else { "" };
    format!("no network in installer{or_key}: {what}; it tried {}", tried.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(path: &str, serial: Option<&str>, size: u64) -> DiskFacts {
        DiskFacts { path: path.into(), size, serial: serial.map(Into::into), ..Default::default() }
    }

    #[test]
    fn the_confirmed_disk_is_pinned_by_unique_serial_else_by_path_and_exact_size() {
        let all = [disk("/dev/sda", Some("S1"), 100), disk("/dev/sdb", Some("S2"), 200)];
        let s = disk_selector(&all[0], &all);
        assert_eq!((s.serial.as_deref(), s.path.as_deref(), s.wipe), (Some("S1"), None, true));
        let clones = [disk("/dev/vda", Some("X"), 100), disk("/dev/vdb", Some("X"), 100)];
        let s = disk_selector(&clones[1], &clones);
        assert_eq!((s.serial, s.path.as_deref()), (None, Some("/dev/vdb")));
        let bare = [disk("/dev/vda", None, 42)];
        let s = disk_selector(&bare[0], &bare);
        assert_eq!((s.min_size.map(|b| b.0), s.max_size.map(|b| b.0)), (Some(42), Some(42)));
    }

    #[test]
    fn a_disk_the_layout_does_not_fit_is_refused_before_anything_changes() {
        let need = metalboot_spec::Layout::default().min_disk_bytes_any_sector();
        assert!(disk_fits(&disk("/dev/vda", None, need), need).is_ok());
        let e = disk_fits(&disk("/dev/vda", None, 2 << 30), need).unwrap_err().to_string();
        assert_eq!(
            e,
            "/dev/vda (2.0 GiB) is too small for the host's layout, which needs at least 2.5 GiB (BIOS boot \
             partition, ESP and a root of 2.0 GiB); nothing was changed"
        );
        // a server that does not say (0) is not second-guessed
        assert!(disk_fits(&disk("/dev/vda", None, 1), 0).is_ok());
    }

    #[test]
    fn a_dry_run_stops_before_anything_and_no_terminal_without_yes_is_refused() {
        // the QEMU scenarios: `--dry-run` (with or without --yes), then no
        // --yes with stdin not a terminal
        assert_eq!(gate(true, false, false), Gate::DryRun);
        assert_eq!(gate(true, true, true), Gate::DryRun);
        assert_eq!(gate(false, false, false), Gate::Refuse);
        assert_eq!(gate(false, false, true), Gate::Ask);
        assert_eq!(gate(false, true, false), Gate::Go);
    }

    #[test]
    fn no_network_names_the_network_the_installer_was_given() {
        let cmdline =
            "console=ttyS0 ip=10.99.0.50::10.99.0.254:255.255.255.255:vm1:eth0:off BOOTIF=01-52-54-00-12-34-56 \
                       metalboot.url=http://10.99.0.1:8080 metalboot.token=SECRET metalboot.fallback=reboot";
        let m = no_network(cmdline, "the target rebooted into its old system, untouched");
        assert_eq!(
            m,
            "no network in installer: the target rebooted into its old system, untouched; it tried \
             ip=10.99.0.50::10.99.0.254:255.255.255.255:vm1:eth0:off BOOTIF=01-52-54-00-12-34-56 \
             metalboot.url=http://10.99.0.1:8080"
        );
        let standalone =
            no_network("ip=10.99.0.50::10.99.0.254:255.255.255.255:vm1:eth0:off metalboot.standalone", "x");
        assert!(standalone.ends_with("10.99.0.254:255.255.255.255:vm1:eth0:off metalboot.standalone"));
        let pin = "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        let pinned = no_network(&format!("ip=dhcp metalboot.url=https://10.99.0.1:8443 metalboot.pin={pin}"), "x");
        assert!(
            pinned.starts_with("no network in installer, or the server it reached did not present the pinned key")
                && pinned.ends_with(&format!("metalboot.url=https://10.99.0.1:8443 metalboot.pin={pin}")),
            "{pinned}"
        );
    }
}
