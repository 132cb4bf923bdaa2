//! HTTPS beside HTTP (`[server.tls]`), so the installer's calls (token, plan
//! with the root password hash, image, reported host keys) cannot be read or
//! forged on the wire.
//!
//! There is no CA: clients pin the server's public key. The pin is
//! `sha256//BASE64` of the certificate's SubjectPublicKeyInfo
//! ([`metalboot_spec::pin`], curl's `--pinnedpubkey` format). `metalboot
//! serve` logs it at start and `metalboot tls fingerprint` prints it.
//!
//! Plain HTTP stays on for the PXE first stage: Debian's iPXE has no HTTPS, so
//! the iPXE script, kernel, initramfs and kernel command line (and with it the
//! pin) arrive in the clear on the provisioning LAN. A reinstall passes them
//! over the operator's SSH session instead. TLS uses rustls with the `ring`
//! provider; HTTP/1.1 only, as over plain HTTP.

mod cert;
pub mod client;
pub mod config;
#[cfg(test)]
mod tests;

pub use cert::{load_or_create, read_pin, reload, self_signed, ServerCert};
pub use config::{CertSource, TlsConfig, TlsSection};

use metalboot_spec::Pin;

/// Where installers reach this server over HTTPS, and the pin they check.
/// Not yet put on kernel command lines or into plans: that comes with the
/// installer's pinning (`metalboot.pin=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsEndpoint {
    /// `server.public_url_tls`, if set.
    pub public_url: Option<String>,
    /// The port HTTPS listens on.
    pub port: u16,
    /// The pin of the served certificate.
    pub pin: Pin,
}

impl TlsEndpoint {
    /// The HTTPS base URL for a client that reaches us over HTTP at
    /// `http_base`: `public_url_tls` if set, else the same host on the HTTPS
    /// port (a path in `http_base` belongs to a proxy in front of plain
    /// HTTP, so it is dropped). `None` if `http_base` has no host.
    pub fn base_url(&self, http_base: &str) -> Option<String> {
        if let Some(u) = &self.public_url {
            return Some(u.clone());
        }
        let host = config::url_host(http_base)?;
        Some(if host.contains(':') {
            format!("https://[{host}]:{}", self.port)
        } else {
            format!("https://{host}:{}", self.port)
        })
    }
}

/// rustls with *ring*. rustls 0.23.48 deprecated the *ring* provider in
/// favour of aws-lc-rs for its post-quantum key exchange; aws-lc-rs needs
/// cmake and nasm to build, which the project's builds do not have. Clients
/// pin the server key, so authentication does not depend on the choice.
#[allow(deprecated)]
pub fn crypto_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

/// The text that says where a configuration came from, for error context.
pub fn config_origin(source: Option<&std::path::Path>) -> String {
    match source {
        Some(p) => format!("in config {}", p.display()),
        None => "in the embedded default config".into(),
    }
}
