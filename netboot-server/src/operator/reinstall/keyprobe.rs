//! After a pinned installer came back to the old system without reaching
//! the server: which key the server's HTTPS address presents *from the
//! target*. The installer reports nothing to a server it cannot
//! authenticate, so without this a man in the middle (or a server whose key
//! changed) would show only on the installer's console; with it, the
//! command's output and the host's failure name both pins.

use metalboot_spec::{BootArgs, Pin, PinSet};

/// The HTTPS address (`HOST:PORT`) and the pins of an installer command
/// line; `None` when it does not pin (plain HTTP, or standalone).
pub fn pinned(cmdline: &str) -> Option<(String, PinSet)> {
    let args = BootArgs::parse(cmdline).ok()?;
    let pins = args.pin?;
    let rest = args.url?.strip_prefix("https://")?.to_string();
    let authority = rest.split('/').next().unwrap_or_default();
    let ok = !authority.is_empty() && authority.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    if !ok {
        return None;
    }
    let with_port = match authority.rsplit_once(':') {
        Some((_, p)) if !authority.ends_with(']') && p.parse::<u16>().is_ok() => authority.to_string(),
        _ => format!("{authority}:443"),
    };
    Some((with_port, pins))
}

/// The script run on the old system: prints the base64 SHA-256 of the
/// public key `address` presents, `no-openssl`, or nothing (no TLS there).
pub fn script(address: &str) -> String {
    format!(
        "command -v openssl >/dev/null 2>&1 || {{ echo no-openssl; exit 0; }}\n\
         echo | timeout 15 openssl s_client -connect '{address}' 2>/dev/null | openssl x509 -pubkey -noout 2>/dev/null \
         | openssl pkey -pubin -outform der 2>/dev/null | openssl dgst -sha256 -binary | base64 | tr -d '\\n'\n"
    )
}

/// What the probe's output says, as a sentence for the failure.
pub fn verdict(address: &str, pins: &PinSet, out: &str) -> String {
    let out = out.trim();
    if out == "no-openssl" {
        return format!("the old system has no openssl to see which key {address} presents");
    }
    // the SHA-256 of nothing: openssl printed no key
    if out.is_empty() || out == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" {
        return format!("from the old system, {address} answers no TLS");
    }
    match format!("{}{out}", metalboot_spec::pin::PREFIX).parse::<Pin>() {
        Ok(p) if pins.contains(&p) => format!("from the old system, {address} presents the pinned key"),
        Ok(p) => format!(
            "from the old system, {address} presents key pin {p}, not the pinned {pins}: \
             a man in the middle, or the server's key changed"
        ),
        Err(_) => format!("from the old system, the key {address} presents could not be read"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256//ST2Be3sBir9lk+l4GUqFmX0tXMAWv4Z3apN/Ygl59i0=";
    const B: &str = "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

    #[test]
    fn only_a_pinned_https_command_line_is_probed() {
        let line = format!("console=ttyS0 ip=dhcp metalboot.url=https://10.99.0.1:8443 metalboot.pin={A} x=1");
        let (addr, pins) = pinned(&line).unwrap();
        assert_eq!(addr, "10.99.0.1:8443");
        assert_eq!(pins.to_string(), A);
        let (addr, _) = pinned(&format!("metalboot.url=https://boot.example metalboot.pin={A}")).unwrap();
        assert_eq!(addr, "boot.example:443");
        let (addr, _) = pinned(&format!("metalboot.url=https://[fd00::1]:8443 metalboot.pin={A}")).unwrap();
        assert_eq!(addr, "[fd00::1]:8443");
        assert!(pinned("metalboot.url=http://10.99.0.1:8080").is_none());
        assert!(pinned("ip=dhcp metalboot.standalone metalboot.plan=/p").is_none());
    }

    #[test]
    fn the_verdict_names_both_pins_only_on_a_mismatch() {
        let pins: PinSet = A.parse().unwrap();
        let a = A.trim_start_matches("sha256//");
        let b = B.trim_start_matches("sha256//");
        assert_eq!(verdict("h:1", &pins, a), "from the old system, h:1 presents the pinned key");
        let other = verdict("h:1", &pins, "ZmFrZWZha2VmYWtlZmFrZWZha2VmYWtlZmFrZWZha2U=");
        assert!(other.contains("presents key pin sha256//ZmFr") && other.contains(&format!("not the pinned {A}")));
        assert_eq!(verdict("h:1", &pins, b), "from the old system, h:1 answers no TLS");
        assert_eq!(verdict("h:1", &pins, ""), "from the old system, h:1 answers no TLS");
        assert!(verdict("h:1", &pins, "no-openssl\n").contains("no openssl"));
        assert!(verdict("h:1", &pins, "junk").contains("could not be read"));
    }

    #[test]
    fn the_script_quotes_the_address() {
        assert!(script("10.99.0.1:8443").contains("-connect '10.99.0.1:8443'"));
    }
}
