//! Checking an OpenSSH signature (`ssh-keygen -Y sign`, the SSHSIG format
//! of OpenSSH's PROTOCOL.sshsig) made with an ed25519 key: the blob names
//! the key, the namespace and the hash; the key signs a fixed preamble,
//! the namespace, the hash's name and the message's hash.

use anyhow::{bail, ensure, Context, Result};
use base64::Engine;
use sha2::{Digest, Sha256, Sha512};

const MAGIC: &[u8] = b"SSHSIG";

/// Reads SSH wire-format strings off a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn string(&mut self) -> Result<&'a [u8]> {
        ensure!(self.0.len() >= 4, "truncated signature");
        let n = u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]]) as usize;
        ensure!(self.0.len() >= 4 + n, "truncated signature");
        let (s, rest) = self.0[4..].split_at(n);
        self.0 = rest;
        Ok(s)
    }
}

fn put(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// Checks `sig` (the SSHSIG blob as base64, with or without the
/// `-----BEGIN SSH SIGNATURE-----` armour) over `message` in `namespace`
/// against `key_blob`, an ed25519 public key in SSH wire format.
pub fn verify(key_blob: &[u8], namespace: &str, message: &[u8], sig: &str) -> Result<()> {
    let b64: String = sig.lines().filter(|l| !l.starts_with("-----")).flat_map(|l| l.trim().chars()).collect();
    let blob = base64::engine::general_purpose::STANDARD.decode(b64.as_bytes()).context("signature: bad base64")?;
    ensure!(blob.starts_with(MAGIC) && blob.len() >= 10, "not an SSH signature (no SSHSIG preamble)");
    let version = u32::from_be_bytes([blob[6], blob[7], blob[8], blob[9]]);
    ensure!(version == 1, "SSH signature version {version}, not 1");
    let mut r = Reader(&blob[10..]);
    let (pubkey, ns, reserved, hash, signature) = (r.string()?, r.string()?, r.string()?, r.string()?, r.string()?);
    ensure!(r.0.is_empty(), "trailing bytes after the signature");
    if pubkey != key_blob {
        bail!("signed by another key than the host's recorded ed25519 host key");
    }
    ensure!(ns == namespace.as_bytes(), "signature for namespace {:?}, not {namespace}", String::from_utf8_lossy(ns));
    let digest = match hash {
        b"sha512" => Sha512::digest(message).to_vec(),
        b"sha256" => Sha256::digest(message).to_vec(),
        other => bail!("unknown hash {:?}", String::from_utf8_lossy(other)),
    };
    let mut s = Reader(signature);
    let (alg, raw) = (s.string()?, s.string()?);
    ensure!(alg == b"ssh-ed25519", "a {} signature; only ssh-ed25519 is taken", String::from_utf8_lossy(alg));
    let mut k = Reader(key_blob);
    let (kalg, point) = (k.string()?, k.string()?);
    ensure!(kalg == b"ssh-ed25519", "the host key is not ssh-ed25519");
    let mut signed = MAGIC.to_vec();
    put(&mut signed, ns);
    put(&mut signed, reserved);
    put(&mut signed, hash);
    put(&mut signed, &digest);
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, point)
        .verify(&signed, raw)
        .map_err(|_| anyhow::anyhow!("the signature does not match the message"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Signs `msg` with a fresh key through OpenSSH's own `ssh-keygen -Y
    /// sign`; returns (public key blob, armoured signature).
    fn openssh_sign(dir: &std::path::Path, ns: &str, msg: &[u8]) -> Option<(Vec<u8>, String)> {
        let key = dir.join("k");
        let ok =
            Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key).status().ok()?.success();
        assert!(ok, "ssh-keygen -t ed25519");
        std::fs::write(dir.join("msg"), msg).unwrap();
        let st = Command::new("ssh-keygen")
            .args(["-Y", "sign", "-q", "-n", ns, "-f"])
            .arg(&key)
            .arg(dir.join("msg"))
            .status();
        assert!(st.unwrap().success(), "ssh-keygen -Y sign");
        let public = std::fs::read_to_string(dir.join("k.pub")).unwrap();
        let blob = crate::sshkey::parse_key(&public).unwrap().blob;
        Some((blob, std::fs::read_to_string(dir.join("msg.sig")).unwrap()))
    }

    #[test]
    fn openssh_signatures_verify_and_anything_else_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let Some((blob, sig)) = openssh_sign(d.path(), "metalboot-status", b"{\"at\":1}") else {
            panic!("ssh-keygen is needed (openssh-client)");
        };
        verify(&blob, "metalboot-status", b"{\"at\":1}", &sig).unwrap();
        // one line of base64, as the header carries it
        let line: String = sig.lines().filter(|l| !l.starts_with("-----")).collect();
        verify(&blob, "metalboot-status", b"{\"at\":1}", &line).unwrap();
        let e = |r: Result<()>| r.unwrap_err().to_string();
        assert!(e(verify(&blob, "metalboot-status", b"{\"at\":2}", &sig)).contains("does not match"));
        assert!(e(verify(&blob, "other", b"{\"at\":1}", &sig)).contains("namespace"));
        let d2 = tempfile::tempdir().unwrap();
        let (other, _) = openssh_sign(d2.path(), "metalboot-status", b"x").unwrap();
        assert!(e(verify(&other, "metalboot-status", b"{\"at\":1}", &sig)).contains("another key"));
        assert!(e(verify(&blob, "metalboot-status", b"x", "AAAA")).contains("SSHSIG"));
        assert!(verify(&blob, "metalboot-status", b"x", "!!").is_err());
    }
}
