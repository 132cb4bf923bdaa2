//! Outgoing HTTPS: the HTTP client (ureq) that webhooks and the operator
//! commands use. rustls on *ring* ([`super::crypto_provider`]), trusting the
//! system's certificate store (`/etc/ssl/certs`, or `SSL_CERT_FILE` /
//! `SSL_CERT_DIR`, read by rustls-native-certs, where operators add their own
//! CA) plus, when given, a PEM bundle of further CAs (a hook's `ca_file`, the
//! CLI's `--ca-file`). Names are checked as usual: no pinning here, that is
//! the installer's way of trusting the server.

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// The system's roots, read once per process. A store that fails to read
/// is logged and leaves only the configured CAs.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "reading the system's CA certificates");
        }
        found.certs
    })
}

/// The certificates in the PEM file `path`; at least one.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("reading CA certificates from {}", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("no PEM certificate in {}", path.display());
    }
    Ok(certs)
}

/// The rustls client configuration: the system's roots and those in
/// `ca_file`.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(system_roots().iter().cloned());
    if let Some(path) = ca_file {
        for cert in read_ca_file(path)? {
            roots.add(cert).with_context(|| format!("adding a CA certificate from {}", path.display()))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(super::crypto_provider())
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A ureq agent builder that speaks HTTPS with [`client_config`].
pub fn agent_builder(ca_file: Option<&Path>) -> Result<ureq::AgentBuilder> {
    Ok(ureq::AgentBuilder::new().tls_config(client_config(ca_file)?))
}

/// Says what a ureq transport error means when it is about a certificate,
/// beside ureq's own text (which names the URL).
pub fn describe(e: &ureq::Error) -> String {
    let mut text = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let t = s.to_string();
        if !text.contains(&t) {
            text = format!("{text}: {t}");
        }
        src = s.source();
    }
    if text.contains("UnknownIssuer") {
        text.push_str(
            " (the server's certificate is not signed by a CA this client trusts: add its CA to the system store \
             or name it with ca_file / --ca-file)",
        );
    } else if text.contains("not valid for name") {
        text.push_str(" (use a URL with a name the certificate holds, or a certificate for this name)");
    }
    text
}
