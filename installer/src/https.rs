//! The installer's one HTTP client, and how it trusts HTTPS: by the server
//! key pinned on the kernel command line (`metalboot.pin`), never by a CA.
//!
//! The installer carries no CA roots. A TLS server is accepted when the
//! SHA-256 of its end-entity certificate's SubjectPublicKeyInfo is one of
//! the pins (`metalboot_spec::pin`, curl's `--pinnedpubkey` format); the
//! handshake signatures are still checked against that key with the crypto
//! provider (RFC 8446 4.4.3, RFC 5246 7.4.8), so only the key's holder gets
//! through. Host names, validity dates and issuers are not checked: the pin
//! is the whole identity. rustls on *ring*, like the server: pure Rust, no
//! OpenSSL in the initramfs. Plain `http://` goes through the same agent
//! unchanged.

use metalboot_spec::{Pin, PinSet};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use std::sync::Arc;
use std::time::Duration;

/// Why an HTTPS server was not trusted. Fatal: the same server will
/// present the same key on every retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefused {
    /// The server's key is not a pinned one.
    #[error(
        "the server presented key pin {presented}, but metalboot.pin trusts only {}: not our server (or its key changed)",
        list(.expected)
    )]
    Mismatch {
        /// What the command line pinned.
        expected: PinSet,
        /// What the server's certificate holds.
        presented: Pin,
    },
    /// The certificate could not be read down to its public key.
    #[error("the server's certificate has no readable public key ({why}); metalboot.pin trusts only {}", list(.expected))]
    Unreadable {
        /// What the command line pinned.
        expected: PinSet,
        /// What was wrong with it.
        why: String,
    },
    /// HTTPS without any pin.
    #[error(
        "an https:// URL without metalboot.pin: the installer has no CA roots and trusts only a pinned server key"
    )]
    NoPin,
}

fn list(pins: &PinSet) -> String {
    pins.pins().iter().map(ToString::to_string).collect::<Vec<_>>().join(" or ")
}

/// Whether the certificate `cert_der` carries a pinned key.
pub fn check(pins: Option<&PinSet>, cert_der: &[u8]) -> Result<(), KeyRefused> {
    let Some(expected) = pins else { return Err(KeyRefused::NoPin) };
    match Pin::of_certificate(cert_der) {
        Ok(p) if expected.contains(&p) => Ok(()),
        Ok(presented) => Err(KeyRefused::Mismatch { expected: expected.clone(), presented }),
        Err(e) => Err(KeyRefused::Unreadable { expected: expected.clone(), why: e.to_string() }),
    }
}

/// The [`KeyRefused`] inside a failed request, if that is why it failed:
/// rustls reports it as an invalid certificate, which ureq and `std::io`
/// wrap on the way out.
pub fn refused<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a KeyRefused> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(k) = err.downcast_ref::<KeyRefused>() {
            return Some(k);
        }
        let tls = err.downcast_ref::<rustls::Error>().or_else(|| {
            err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).and_then(|i| i.downcast_ref())
        });
        if let Some(rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner)))) = tls {
            if let Some(k) = inner.downcast_ref::<KeyRefused>() {
                return Some(k);
            }
        }
        cur = err.source();
    }
    None
}

/// [`refused`] anywhere in an `anyhow` chain.
pub fn refused_in(e: &anyhow::Error) -> Option<&KeyRefused> {
    e.chain().find_map(|c| refused(c))
}

#[derive(Debug)]
struct PinVerifier {
    pins: Option<PinSet>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        check(self.pins.as_ref(), end_entity)
            .map(|()| ServerCertVerified::assertion())
            .map_err(|e| rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e)))))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// rustls with *ring*, as the server (whose `tls::crypto_provider` says why
/// not aws-lc-rs: it needs cmake and nasm).
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    let mut p = rustls::crypto::ring::default_provider();
    if !aes_in_hardware() {
        chacha_first(&mut p.cipher_suites);
    }
    Arc::new(p)
}

/// Without AES instructions (an emulated CPU, an old board) AES-GCM runs
/// in constant-time software several times slower than ChaCha20-Poly1305,
/// so the installer then offers ChaCha20 first (the server follows the
/// client's order); with them, AES-GCM stays first.
fn aes_in_hardware() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        true
    }
}

/// Moves the ChaCha20-Poly1305 suites ahead of the others, keeping each
/// group's order.
fn chacha_first(suites: &mut [rustls::SupportedCipherSuite]) {
    suites.sort_by_key(|s| !format!("{:?}", s.suite()).contains("CHACHA20"));
}

/// The agent every request of the installer goes through: HTTPS only to a
/// key in `pins` (`None`: every HTTPS server is refused), plain HTTP as is.
pub fn agent(pins: Option<&PinSet>) -> ureq::Agent {
    let provider = provider();
    let verifier = PinVerifier { pins: pins.cloned(), provider: provider.clone() };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    ureq::AgentBuilder::new()
        .tls_config(Arc::new(config))
        .timeout_connect(Duration::from_secs(10))
        .timeout_read(Duration::from_secs(60))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chacha_first_moves_only_chacha_ahead_and_keeps_the_rest_in_order() {
        let mut suites = provider().cipher_suites.clone();
        let before: Vec<String> = suites.iter().map(|s| format!("{:?}", s.suite())).collect();
        chacha_first(&mut suites);
        let after: Vec<String> = suites.iter().map(|s| format!("{:?}", s.suite())).collect();
        let chacha = before.iter().filter(|n| n.contains("CHACHA20")).count();
        assert!(chacha >= 2, "{before:?}");
        assert!(after[..chacha].iter().all(|n| n.contains("CHACHA20")), "{after:?}");
        let rest: Vec<&String> = before.iter().filter(|n| !n.contains("CHACHA20")).collect();
        assert_eq!(after[chacha..].iter().collect::<Vec<_>>(), rest);
    }

    fn cert() -> (Vec<u8>, Pin) {
        let c = rcgen::generate_simple_self_signed(vec!["metalboot".into()]).unwrap();
        let der = c.cert.der().to_vec();
        let pin = Pin::of_certificate(&der).unwrap();
        (der, pin)
    }

    #[test]
    fn only_a_pinned_key_is_accepted_and_a_mismatch_names_both_pins() {
        let (a, pin_a) = cert();
        let (_, pin_b) = cert();
        assert_eq!(check(Some(&PinSet::one(pin_a)), &a), Ok(()));
        let two: PinSet = format!("{pin_b};{pin_a}").parse().unwrap();
        assert_eq!(check(Some(&two), &a), Ok(()), "any pin of the set");
        let e = check(Some(&PinSet::one(pin_b)), &a).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(&pin_a.to_string()) && msg.contains(&pin_b.to_string()), "{msg}");
        assert_eq!(check(None, &a), Err(KeyRefused::NoPin));
        assert!(matches!(check(Some(&PinSet::one(pin_a)), b"junk"), Err(KeyRefused::Unreadable { .. })));
    }

    #[test]
    fn a_refusal_is_found_through_rustls_and_io_wrapping() {
        let k = KeyRefused::NoPin;
        let tls = rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(k.clone()))));
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        assert_eq!(refused(&io), Some(&k));
        let any = anyhow::Error::from(io).context("fetching plan");
        assert_eq!(refused_in(&any), Some(&k));
        assert_eq!(refused(&std::io::Error::other("connection refused")), None);
    }
}
