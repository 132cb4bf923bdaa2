//! A stand-in man in the middle for the HTTPS the installer speaks: inside
//! our namespace, the target's connections to the server's HTTPS port are
//! redirected to `openssl s_server` presenting a certificate of its own,
//! on the same address and port as far as the target can tell.

use crate::harness::{Scenario, TLS_PORT};
use anyhow::{ensure, Context, Result};
use std::process::{Child, Stdio};
use std::time::Duration;

/// Where `openssl s_server` listens; the redirect hides it.
const PORT: u16 = 8444;
const TABLE: &str = "mbe2emitm";

/// The interceptor: stopped (process killed, redirect removed) on drop.
pub struct Mitm<'a> {
    s: &'a Scenario,
    child: Child,
    /// The pin of the certificate it presents (`sha256//…`).
    pub pin: String,
}

impl<'a> Mitm<'a> {
    /// Intercepts HTTPS from `target` to the server.
    pub fn start(s: &'a Scenario, target: &str) -> Result<Mitm<'a>> {
        let (key, cert) = (s.dir.join("mitm.key"), s.dir.join("mitm.pem"));
        let (key, cert) = (key.to_str().context("path")?, cert.to_str().context("path")?);
        sh(&format!(
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN={ip} \
             -days 2 -keyout {key} -out {cert} 2>/dev/null",
            ip = s.ns.server_ip
        ))?;
        let der = sh(&format!(
            "openssl x509 -in {cert} -pubkey -noout | openssl pkey -pubin -outform der | \
             openssl dgst -sha256 -binary | base64 -w0"
        ))?;
        let pin = format!("sha256//{}", der.trim());
        let child =
            s.ns.command("openssl")
                .args(["s_server", "-quiet", "-www", "-accept", &PORT.to_string(), "-cert", cert, "-key", key])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting openssl s_server")?;
        let m = Mitm { s, child, pin };
        std::thread::sleep(Duration::from_millis(500));
        s.ns.exec(&["nft", "add", "table", "ip", TABLE])?;
        s.ns.exec(&["nft", "add", "chain", "ip", TABLE, "pre", "{ type nat hook prerouting priority -100 ; }"])?;
        let rule = format!("ip saddr {target} tcp dport {TLS_PORT} redirect to :{PORT}");
        let mut args = vec!["nft", "add", "rule", "ip", TABLE, "pre"];
        args.extend(rule.split(' '));
        s.ns.exec(&args)?;
        // the stand-in answers where the server's HTTPS is, with its own key
        let seen = s.ns.exec(&[
            "sh",
            "-c",
            &format!("echo | openssl s_client -connect 127.0.0.1:{PORT} 2>/dev/null | grep -c 'BEGIN CERTIFICATE'"),
        ]);
        ensure!(seen.is_ok_and(|n| n.trim() == "1"), "openssl s_server does not answer on {PORT}");
        Ok(m)
    }
}

impl Drop for Mitm<'_> {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.s.ns.exec(&["nft", "delete", "table", "ip", TABLE]);
    }
}

fn sh(cmd: &str) -> Result<String> {
    let out = std::process::Command::new("sh").args(["-c", cmd]).output()?;
    ensure!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
