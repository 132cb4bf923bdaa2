//! The Debian package (`make deb`) on a freshly installed host: `dpkg -i`,
//! then the systemd unit as an operator uses it. `systemctl start` returns
//! only once the server is ready (Type=notify, after every listener is
//! bound), so the API answers at once; the server runs as its own dynamic
//! user; `systemctl reload` serves a host added to the inventory; `systemctl
//! stop` ends it cleanly.

use crate::scenarios::Installed;
use anyhow::{ensure, Context, Result};
use std::path::PathBuf;

/// The package `make deb` built.
fn built_deb() -> Result<PathBuf> {
    let dir = crate::harness::workspace().join("target/deb");
    std::fs::read_dir(&dir)
        .with_context(|| format!("{} (run `make deb`)", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .with_context(|| format!("no .deb in {} (run `make deb`)", dir.display()))
}

const HOST: &str = "[[host]]\nname = \"NAME\"\nmacs = [\"MAC\"]\ndisk = { serial = \"D\" }\n\
                    ssh_authorized_keys = [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example\"]\n";

fn host_file(name: &str, mac: &str) -> String {
    HOST.replace("NAME", name).replace("MAC", mac)
}

/// Installs the package on the host and drives its unit.
pub fn check_deb_service(i: &mut Installed) -> Result<()> {
    let deb = built_deb()?;
    i.s.upload(&i.ip, &i.known_hosts, &deb, "/tmp/metalboot.deb")?;
    i.ssh("dpkg -i /tmp/metalboot.deb >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; exit 1; }")?;
    let files = i.ssh(
        "dpkg -L metalboot | grep -E '/metalboot\\.service$|/man1/metalboot\\.1\\.gz$|/completions/metalboot$' | sort",
    )?;
    ensure!(files.lines().count() == 3, "package files:\n{files}");
    i.ssh(&format!("cat > /etc/metalboot/inventory/alpha.toml <<'X'\n{}X", host_file("alpha", "52:54:00:aa:00:01")))?;
    let api =
        "curl -sf -o /dev/null -w '%{http_code}' -H \"Authorization: Bearer $(cat /var/lib/metalboot/api-token)\" \
               http://127.0.0.1:8080/v1/hosts";
    // ready means listening: the API answers right after start returns
    let code = i.ssh(&format!("systemctl start metalboot && {api}/alpha"))?;
    ensure!(code.trim() == "200", "right after `systemctl start`, GET /v1/hosts/alpha answered {code:?}");
    let show = i.ssh("systemctl show -p ActiveState -p SubState -p StatusText metalboot; ps -o uid= -C metalboot")?;
    ensure!(show.contains("ActiveState=active") && show.contains("SubState=running"), "{show}");
    ensure!(show.contains("StatusText=serving 1 host(s) on 0.0.0.0:8080"), "{show}");
    // a dynamic user: a UID systemd allocates from 61184–65519 (no NSS
    // name without nss-systemd)
    let uid: u32 = show.lines().last().and_then(|u| u.trim().parse().ok()).context("no UID from ps")?;
    ensure!((61184..=65519).contains(&uid), "not a dynamic user (UID {uid}):\n{show}");
    i.s.phase(&format!("metalboot.deb installed; `systemctl start` returned ready (API answering), dynamic UID {uid}"));

    i.ssh(&format!("cat > /etc/metalboot/inventory/beta.toml <<'X'\n{}X", host_file("beta", "52:54:00:aa:00:02")))?;
    let before = i.ssh(
        "curl -s -o /dev/null -w '%{http_code}' -H \"Authorization: Bearer $(cat /var/lib/metalboot/api-token)\" \
         http://127.0.0.1:8080/v1/hosts/beta",
    )?;
    ensure!(before.trim() == "404", "beta before the reload: {before}");
    let code = i.ssh(&format!(
        "pid=$(systemctl show -p MainPID --value metalboot); systemctl reload metalboot && \
         test \"$(systemctl show -p MainPID --value metalboot)\" = \"$pid\" && \
         for n in $(seq 50); do c=$({api}/beta) && break; sleep 0.2; done; echo $c"
    ))?;
    ensure!(code.trim() == "200", "after `systemctl reload`, GET /v1/hosts/beta answered {code:?}");
    let status = i.ssh(
        "for n in $(seq 25); do s=$(systemctl show -p StatusText --value metalboot); \
         case \"$s\" in *reloaded*) break;; esac; sleep 0.2; done; echo \"$s\"",
    )?;
    ensure!(status.contains("inventory reloaded: 2 host(s), added beta"), "status after reload: {status}");
    i.s.phase("`systemctl reload`: same process, host beta served");

    i.ssh("systemctl stop metalboot")?;
    let show =
        i.ssh("systemctl show -p ActiveState -p Result metalboot; journalctl -u metalboot -o cat | tail -n 5")?;
    ensure!(show.contains("ActiveState=inactive") && show.contains("Result=success"), "{show}");
    ensure!(show.contains("shutting down"), "{show}");
    i.s.phase("`systemctl stop`: inactive, result success");
    Ok(())
}
