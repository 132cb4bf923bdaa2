//! What a host is served, as plain functions: which boot script (the
//! install-once decision), and the contexts the templates render from. No
//! HTTP and no database here, so the CLI's `render` and the tests use it
//! directly.

use crate::api::ReinstallBoot;
use crate::cmdline;
use crate::config::{ASSET_DI_INITRD, ASSET_DI_KERNEL, ASSET_INITRAMFS, ASSET_KERNEL};
use crate::render::{names, Renderer};
use crate::state::HostState;
use anyhow::{Context, Result};
use metalboot_spec::login::SSHD_DROP_IN;
use metalboot_spec::{AdminUser, HostSpec, MacAddr, Method, NetMode};
use serde::Serialize;

/// Firmware family, from iPXE's `${platform}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Legacy BIOS (`pcbios`).
    Pcbios,
    /// UEFI (`efi`).
    Efi,
}

impl Platform {
    /// Parses iPXE's `${platform}`; unknown or missing means BIOS.
    pub fn from_ipxe(s: Option<&str>) -> Result<Platform, String> {
        match s {
            None | Some("") | Some("pcbios") => Ok(Platform::Pcbios),
            Some("efi") => Ok(Platform::Efi),
            Some(other) => Err(format!("unknown platform {} (want pcbios or efi)", metalboot_spec::quote(other))),
        }
    }
}

pub use crate::site::Site;

/// Which script a network-booting machine gets.
#[derive(Debug, PartialEq)]
pub enum BootDecision<'a> {
    /// Boot the installer for this host.
    Install(&'a HostSpec),
    /// Boot the local disk, with the reason shown on the console.
    Local(&'static str),
}

/// The install-once guard: only a known host whose state wants install gets
/// the installer; everything else boots its disk.
pub fn decide<'a>(host: Option<&'a HostSpec>, state: HostState) -> BootDecision<'a> {
    match host {
        None => BootDecision::Local("unknown machine"),
        Some(h) if state.wants_install() => BootDecision::Install(h),
        Some(_) => BootDecision::Local(match state {
            HostState::Installed | HostState::Rebooting => "host is installed",
            HostState::Failed => "last install failed, re-arm the host to retry",
            HostState::Disarmed => "host is disarmed",
            _ => "host is not armed",
        }),
    }
}

#[derive(Serialize)]
struct InstallCtx<'a> {
    host: &'a str,
    mac: String,
    platform: Platform,
    kernel_url: String,
    initrd_url: String,
    initrd_name: &'a str,
    cmdline: Vec<String>,
}

/// The iPXE script that installs `host`.
pub fn install_script(
    r: &Renderer,
    site: &Site,
    host: &HostSpec,
    mac: &MacAddr,
    platform: Platform,
    token: &str,
) -> Result<String> {
    let base = site.base_url;
    let mut cmdline: Vec<String> = site.console.to_vec();
    let (tmpl, kernel, initrd) = match host.method {
        Method::Image => {
            cmdline.extend(cmdline::installer_args(host, site.api_base(), site.pin(), token, mac));
            (names::IPXE_INSTALL_IMAGE, ASSET_KERNEL, ASSET_INITRAMFS)
        }
        Method::DebianInstaller => {
            cmdline.extend(cmdline::debian_installer_args(host, &preseed_url(base, &host.name, token), mac));
            (names::IPXE_INSTALL_DEBIAN, ASSET_DI_KERNEL, ASSET_DI_INITRD)
        }
    };
    let ctx = InstallCtx {
        host: &host.name,
        mac: mac.to_string(),
        platform,
        kernel_url: format!("{base}/assets/{kernel}"),
        initrd_url: format!("{base}/assets/{initrd}"),
        initrd_name: initrd,
        cmdline,
    };
    r.render(tmpl, &ctx)
}

/// What a reinstall in place boots (over SSH, with kexec or a one-shot
/// GRUB entry): the installer's kernel and initramfs and its command line,
/// which keeps the target's static network (IPv6 included) and reboots into
/// the old system when the server is out of reach (after `wait` seconds).
/// With `[server.tls]` the command line points the installer at HTTPS with
/// the pin: it travels over the operator's SSH session.
pub fn reinstall_boot(site: &Site, host: &HostSpec, mac: &MacAddr, token: &str, wait: Option<u32>) -> ReinstallBoot {
    let base = site.base_url;
    let mut args: Vec<String> = site.console.to_vec();
    args.extend(cmdline::reinstall_boot_args(host, site.api_base(), site.pin(), token, mac, wait).to_cmdline());
    ReinstallBoot {
        token: token.to_string(),
        kernel_url: format!("{base}/assets/{ASSET_KERNEL}"),
        initramfs_url: format!("{base}/assets/{ASSET_INITRAMFS}"),
        cmdline: args.join(" "),
    }
}

/// The iPXE script that boots the local disk.
pub fn local_script(r: &Renderer, platform: Platform, reason: &str) -> Result<String> {
    #[derive(Serialize)]
    struct Ctx<'a> {
        platform: Platform,
        reason: &'a str,
    }
    r.render(names::IPXE_LOCAL, &Ctx { platform, reason })
}

/// URL of the host's preseed, with its token.
pub fn preseed_url(base: &str, host: &str, token: &str) -> String {
    format!("{base}/v1/hosts/{host}/preseed?token={token}")
}

#[derive(Serialize)]
struct PreseedCtx<'a> {
    host: &'a str,
    locale: &'a str,
    keymap: &'a str,
    timezone: &'a str,
    suite: &'a str,
    mirror: Mirror<'a>,
    network: &'a metalboot_spec::NetworkSpec,
    r#static: Option<StaticCtx>,
    root_password_hash: Option<&'a str>,
    admin: Option<AdminUser>,
    layout: &'a metalboot_spec::Layout,
    packages: Vec<&'a str>,
    events_base: String,
    scripts_base: String,
    token: &'a str,
}

#[derive(Serialize)]
struct Mirror<'a> {
    host: &'a str,
    directory: &'a str,
    proxy: &'a str,
}

#[derive(Serialize)]
struct StaticCtx {
    address: String,
    netmask: String,
    gateway: Option<String>,
    nameservers: String,
}

/// The Debian installer preseed for `host`.
pub fn preseed(r: &Renderer, site: &Site, host: &HostSpec, token: &str) -> Result<String> {
    let (mirror_host, mirror_dir) = site
        .debian
        .mirror_parts()
        .context("no Debian mirror configured: set debian_installer.mirror in metalboot.toml")?;
    let net = &host.network;
    let static_ctx = (net.mode == NetMode::Static).then(|| net.ipv4()).flatten().map(|v4| StaticCtx {
        address: v4.addr.to_string(),
        netmask: v4.netmask_v4().map(|m| m.to_string()).unwrap_or_default(),
        gateway: net.gateway.map(|g| g.to_string()),
        nameservers: net.dns.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(" "),
    });
    let admin = host.admin_user();
    let ctx = PreseedCtx {
        host: &host.name,
        locale: "en_US.UTF-8",
        keymap: "us",
        timezone: "UTC",
        suite: &site.debian.suite,
        mirror: Mirror { host: mirror_host, directory: mirror_dir, proxy: site.debian.proxy.as_deref().unwrap_or("") },
        network: net,
        r#static: static_ctx,
        root_password_hash: host.root_password_hash.as_deref(),
        layout: &host.layout,
        packages: ["openssh-server", "python3", "btrfs-progs", "curl"]
            .into_iter()
            .chain(admin.as_ref().filter(|a| a.sudo).map(|_| "sudo"))
            .chain(host.packages.iter().map(String::as_str))
            .collect(),
        admin,
        events_base: crate::plan::endpoints(site.base_url, &host.name, false).events,
        scripts_base: di_scripts_base(site.base_url, &host.name),
        token,
    };
    r.render(names::PRESEED, &ctx)
}

/// Where the Debian installer fetches the host scripts its preseed runs.
pub fn di_scripts_base(base: &str, host: &str) -> String {
    format!("{base}/v1/hosts/{host}/di")
}

/// The host scripts a Debian-installer preseed fetches by name.
pub const DI_SCRIPTS: &[&str] = &["select-disk.sh", "subvolumes.sh", "finish.sh"];

const PHONE_HOME_SCRIPT: &str = include_str!("../../initramfs/rootfs/metalboot-phone-home");
const PHONE_HOME_UNIT: &str = include_str!("../../initramfs/rootfs/metalboot-phone-home.service");

#[derive(Serialize)]
struct DiScriptCtx<'a> {
    host: &'a str,
    token: &'a str,
    events_base: String,
    selector: String,
    disk: &'a metalboot_spec::DiskSelector,
    min_size: String,
    min_text: String,
    max_size: String,
    max_text: String,
    wipe: &'static str,
    root_subvolume: &'a str,
    subvolumes: Vec<&'a metalboot_spec::Subvolume>,
    ssh_authorized_keys: &'a [String],
    sshd_drop_in: &'static str,
    sshd_config: Vec<String>,
    admin: Option<AdminUser>,
    sudoers_path: String,
    sudoers: Vec<String>,
    report_url: String,
    installed_url: String,
    phone_home_script: &'static str,
    phone_home_unit: &'static str,
}

/// One of the [`DI_SCRIPTS`] for `host`, or None for another name.
pub fn di_script(r: &Renderer, site: &Site, host: &HostSpec, token: &str, name: &str) -> Result<Option<String>> {
    let tmpl = match name {
        "select-disk.sh" => names::DI_SELECT_DISK,
        "subvolumes.sh" => names::DI_SUBVOLUMES,
        "finish.sh" => names::DI_FINISH,
        _ => return Ok(None),
    };
    let ep = crate::plan::endpoints(site.base_url, &host.name, false);
    // a Debian-installer host has one disk (HostSpec::validate)
    let d = host.disk.as_ref().context("the Debian installer installs on one disk (disk = { ... })")?;
    let root = host.layout.subvolumes.iter().find(|s| s.mountpoint == "/").map(|s| s.name.as_str()).unwrap_or("@");
    // parents before children, so /var is mounted before /var/log
    let mut subvolumes: Vec<&metalboot_spec::Subvolume> =
        host.layout.subvolumes.iter().filter(|s| s.mountpoint != "/").collect();
    subvolumes.sort_by_key(|s| (s.mountpoint.matches('/').count(), s.mountpoint.clone()));
    let admin = host.admin_user();
    let ctx = DiScriptCtx {
        host: &host.name,
        token,
        events_base: ep.events,
        selector: d.describe(),
        disk: d,
        min_size: d.min_size.map(|s| s.0.to_string()).unwrap_or_default(),
        min_text: d.min_size.map(|s| s.to_string()).unwrap_or_default(),
        max_size: d.max_size.map(|s| s.0.to_string()).unwrap_or_default(),
        max_text: d.max_size.map(|s| s.to_string()).unwrap_or_default(),
        wipe: if d.wipe { "1" } else { "0" },
        root_subvolume: root,
        subvolumes,
        ssh_authorized_keys: &host.ssh_authorized_keys,
        sshd_drop_in: SSHD_DROP_IN,
        sshd_config: host.sshd_settings().drop_in().lines().map(str::to_string).collect(),
        sudoers_path: admin.as_ref().map(AdminUser::sudoers_path).unwrap_or_default(),
        sudoers: admin.as_ref().map(|a| a.sudoers().lines().map(str::to_string).collect()).unwrap_or_default(),
        admin,
        report_url: ep.report,
        installed_url: ep.installed,
        phone_home_script: PHONE_HOME_SCRIPT.trim_end(),
        phone_home_unit: PHONE_HOME_UNIT.trim_end(),
    };
    r.render(tmpl, &ctx).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::plan;
    use metalboot_spec::bootargs::Fallback;
    use metalboot_spec::{BootArgs, ImageRef, Pin};

    #[test]
    fn reinstall_boot_keeps_the_network_and_falls_back_to_the_old_system() {
        let host: HostSpec = toml::from_str(
            "name = \"vps1\"\nmacs = [\"52:54:00:00:00:07\"]\ndisk = { path = \"/dev/vda\" }\n\
             root_password_hash = \"$6$x$y\"\n[network]\nmode = \"static\"\n\
             addresses = [\"203.0.113.7/32\", \"2001:db8::7/64\"]\ngateway = \"172.31.1.1\"\n",
        )
        .unwrap();
        let console = vec!["console=ttyS0,115200n8".to_string()];
        let debian = crate::config::DebianInstallerConfig::default();
        let site = Site { base_url: "http://192.0.2.1:8080", tls: None, console: &console, debian: &debian };
        let mac = "52:54:00:00:00:07".parse().unwrap();
        let boot = reinstall_boot(&site, &host, &mac, "tok-1", None);
        assert_eq!(boot.kernel_url, "http://192.0.2.1:8080/assets/vmlinuz");
        assert_eq!(boot.initramfs_url, "http://192.0.2.1:8080/assets/initramfs.img");
        assert!(boot.cmdline.starts_with("console=ttyS0,115200n8 BOOTIF=01-52-54-00-00-00-07 "), "{}", boot.cmdline);
        let args = BootArgs::parse(&boot.cmdline).unwrap();
        assert_eq!(args.fallback, Fallback::Reboot);
        assert_eq!(args.token.as_deref(), Some("tok-1"));
        assert_eq!(args.ip6.unwrap().to_string(), "2001:db8::7/64");
        assert!(boot.cmdline.contains("ip=203.0.113.7::172.31.1.1:255.255.255.255:vps1::off"), "{}", boot.cmdline);
        assert_eq!(args.wait, None, "the installer's own default unless the operator asks");
        let boot = reinstall_boot(&site, &host, &mac, "tok-1", Some(20));
        assert_eq!(BootArgs::parse(&boot.cmdline).unwrap().wait(), std::time::Duration::from_secs(20));
        assert!(!boot.cmdline.contains("metalboot.pin"), "no pin without [server.tls]: {}", boot.cmdline);
        let pin = Pin::of_spki(b"server key");
        let tls = Site { tls: Some(("https://192.0.2.1:8443", pin)), ..site };
        let boot = reinstall_boot(&tls, &host, &mac, "tok-1", None);
        let args = BootArgs::parse(&boot.cmdline).unwrap();
        assert_eq!(args.url.as_deref(), Some("https://192.0.2.1:8443"));
        assert_eq!(args.pin, Some(metalboot_spec::PinSet::one(pin)));
        assert_eq!(boot.kernel_url, "http://192.0.2.1:8080/assets/vmlinuz", "the operator side fetches over HTTP");
        let image =
            ImageRef { url: format!("{}/assets/rootfs.tar.zst", tls.api_base()), sha256: "ab".repeat(32), size: 1 };
        let p = plan(&tls, &host, image);
        for u in [&p.image.url, &p.endpoints.events, &p.endpoints.report, &p.endpoints.installed] {
            assert!(u.starts_with("https://192.0.2.1:8443/"), "{u}");
        }
    }
}
