//! SSH public keys as hosts report them: parsing, known_hosts lines and
//! SSHFP records (RFC 4255, SHA-256 fingerprints per RFC 6594), so nothing
//! connects to a new host by trust on first use. Shared by the server's
//! handoff (hooks, Ansible inventory) and the operator commands
//! (`known-hosts`, `sshfp`, `reinstall`), so it depends on neither.

use anyhow::{bail, Context, Result};
use base64::Engine;
use metalboot_spec::quote;
use sha2::{Digest, Sha256};

/// A public key line split into its type and decoded blob, checked to agree.
pub struct PublicKey {
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, …
    pub kind: String,
    /// The base64 text as reported.
    pub base64: String,
    /// The decoded key blob.
    pub blob: Vec<u8>,
}

/// Parses `type base64 [comment]`; the blob must start with the same type.
pub fn parse_key(line: &str) -> Result<PublicKey> {
    let mut it = line.split_whitespace();
    let (Some(kind), Some(b64)) = (it.next(), it.next()) else {
        bail!("{} is not `type base64 [comment]`", quote(line))
    };
    let blob =
        base64::engine::general_purpose::STANDARD.decode(b64).with_context(|| format!("{kind} key: bad base64"))?;
    let n = blob.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize).unwrap_or(usize::MAX);
    if blob.get(4..4usize.saturating_add(n)) != Some(kind.as_bytes()) {
        bail!("{kind} key: the key blob is of another type");
    }
    Ok(PublicKey { kind: kind.to_string(), base64: b64.to_string(), blob })
}

/// The key's SHA-256 fingerprint as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    format!("SHA256:{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(&key.blob)))
}

/// `TYPE SHA256:…` for a key line, as `ssh-keygen -l` names it.
pub fn typed_fingerprint(line: &str) -> Result<String> {
    let k = parse_key(line)?;
    Ok(format!("{} {}", k.kind, fingerprint(&k)))
}

/// SSHFP algorithm number (IANA registry) for a key type.
pub fn sshfp_algorithm(kind: &str) -> Option<u8> {
    Some(match kind {
        "ssh-rsa" => 1,
        "ssh-dss" => 2,
        k if k.starts_with("ecdsa-sha2-") => 3,
        "ssh-ed25519" => 4,
        "ssh-ed448" => 6,
        _ => return None,
    })
}

/// `NAME IN SSHFP ALG 2 SHA256HEX` for one key; None for a key type SSHFP
/// has no number for.
pub fn sshfp_record(owner: &str, key: &PublicKey) -> Option<String> {
    let alg = sshfp_algorithm(&key.kind)?;
    Some(format!("{owner} IN SSHFP {alg} 2 {}", hex::encode(Sha256::digest(&key.blob))))
}

/// The address part of `10.0.0.5/24` or `2001:db8::5/64`.
pub fn bare_address(a: &str) -> &str {
    a.split('/').next().unwrap_or(a)
}

/// known_hosts lines for one host: every name it may be reached by (its
/// name, then its addresses) with each key; comments are dropped.
pub fn known_hosts_lines(names: &[String], keys: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut pats: Vec<String> = Vec::new();
    for n in names {
        let n = bare_address(n);
        // port 22 is looked up under the bare address, IPv6 too: OpenSSH
        // matches `[addr]:port` only for other ports
        let p = n.to_string();
        if !pats.contains(&p) {
            pats.push(p);
        }
    }
    if pats.is_empty() {
        return Ok(out);
    }
    for k in keys {
        let k = parse_key(k)?;
        out.push(format!("{} {} {}", pats.join(","), k.kind, k.base64));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_match_ssh_keygen() {
        // as `ssh-keygen -lf` prints this key's fingerprint
        let k = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFwC0mL6IcgzOB9v98a03pAs+6hA9ahGvVbMAoDTHuCF e2e";
        assert_eq!(typed_fingerprint(k).unwrap(), "ssh-ed25519 SHA256:yxQuxSwHIiMqEfKF79t/eJmBIq3DGUkCrCf2h0enPSI");
    }

    const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl root@vm1";

    #[test]
    fn known_hosts_names_addresses_and_bare_ipv6() {
        let names = vec!["vm1".to_string(), "10.99.0.100/24".to_string(), "2001:db8::5/64".to_string()];
        let l = known_hosts_lines(&names, &[ED.to_string()]).unwrap();
        assert_eq!(
            l,
            ["vm1,10.99.0.100,2001:db8::5 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"]
        );
    }

    /// OpenSSH looks port 22 up under the bare address: `ssh-keygen -F`
    /// must find every name, the IPv6 address included.
    #[test]
    fn openssh_finds_every_name_in_the_lines() {
        let names = vec!["vm1".to_string(), "10.99.0.100/24".to_string(), "2001:db8::5/64".to_string()];
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("known_hosts");
        std::fs::write(&f, known_hosts_lines(&names, &[ED.to_string()]).unwrap().join("\n") + "\n").unwrap();
        for n in ["vm1", "10.99.0.100", "2001:db8::5"] {
            let out = std::process::Command::new("ssh-keygen").arg("-F").arg(n).arg("-f").arg(&f).output().unwrap();
            assert!(out.status.success() && !out.stdout.is_empty(), "ssh-keygen -F {n} found nothing");
        }
    }

    #[test]
    fn mismatched_or_broken_keys_are_refused() {
        assert!(parse_key("ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl").is_err());
        assert!(parse_key("ssh-ed25519 !!!").is_err());
        assert!(parse_key("ssh-ed25519").is_err());
        assert!(parse_key("ssh-ed25519 AAAA").is_err());
    }

    #[test]
    fn sshfp_uses_sha256_of_the_blob() {
        let k = parse_key(ED).unwrap();
        let r = sshfp_record("vm1.example.", &k).unwrap();
        assert!(r.starts_with("vm1.example. IN SSHFP 4 2 "), "{r}");
        assert_eq!(r.len(), "vm1.example. IN SSHFP 4 2 ".len() + 64);
    }
}
