//! The certificate HTTPS serves: read from the operator's PEM files, or a
//! self-signed one generated on first start into `<data_dir>/tls` and reused
//! after, so its pin stays the same across restarts. [`reload`] (on SIGHUP)
//! swaps in a renewed certificate for the same key without a restart.
//!
//! Clients check the pin of the public key, not a CA chain, names or dates;
//! the names and the long validity only serve clients that are given the
//! certificate itself as their trust anchor (`curl --cacert cert.pem`).

use super::config::CertSource;
use crate::files::write_atomically;
use anyhow::{bail, Context, Result};
use metalboot_spec::Pin;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

/// How long a generated certificate is valid.
const GENERATED_VALIDITY_DAYS: i64 = 20 * 365;

/// A loaded certificate, ready to serve.
pub struct ServerCert {
    /// rustls settings serving it (HTTP/1.1 only).
    pub config: Arc<rustls::ServerConfig>,
    /// The pin of its public key.
    pub pin: Pin,
    /// The certificate file.
    pub cert_path: PathBuf,
    /// What `config` serves; [`reload`] swaps a renewed certificate in.
    current: Arc<CurrentCert>,
}

/// The certificate being served, looked up at each handshake, so that a
/// renewal applies to the next connection.
#[derive(Debug)]
struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(PoisonError::into_inner).clone())
    }
}

/// Loads the certificate and key of `source`; a `Generated` source makes
/// them first if they are not there.
pub fn load_or_create(source: &CertSource) -> Result<ServerCert> {
    if let CertSource::Generated { dir, names } = source {
        ensure_generated(dir, names).with_context(|| format!("making a TLS certificate in {}", dir.display()))?;
    }
    load(source)
}

/// The pin of the certificate `source` names, read from its file alone:
/// nothing is generated, and the key is not read.
pub fn read_pin(source: &CertSource) -> Result<Pin> {
    let (path, _, field, _) = files(source);
    if matches!(source, CertSource::Generated { .. }) && !path.exists() {
        bail!(
            "no certificate at {} yet: `metalboot serve` generates it on its first start with [server.tls]",
            path.display()
        );
    }
    Ok(read_chain(&path).map_err(|e| anyhow::anyhow!("{field}{e:#}"))?.1)
}

/// The chain in a PEM file (leaf first) and the pin of the leaf.
fn read_chain(path: &Path) -> Result<(Vec<CertificateDer<'static>>, Pin)> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading certificate {}", path.display()))?;
    if chain.is_empty() {
        bail!("reading certificate {}: no CERTIFICATE block in it", path.display());
    }
    let pin = Pin::of_certificate(&chain[0]).with_context(|| format!("reading certificate {}", path.display()))?;
    Ok((chain, pin))
}

/// The certificate and key files of `source`, with the config fields they
/// come from (none for a generated pair).
fn files(source: &CertSource) -> (PathBuf, PathBuf, &'static str, &'static str) {
    match source {
        CertSource::Files { cert, key } => {
            (cert.clone(), key.clone(), "field `server.tls.cert`: ", "field `server.tls.key`: ")
        }
        CertSource::Generated { dir, .. } => (dir.join("cert.pem"), dir.join("key.pem"), "", ""),
    }
}

/// The chain and key of `source`, checked to fit together, and their pin.
fn read_pair(source: &CertSource) -> Result<(CertifiedKey, Pin, PathBuf)> {
    let (cert, key, cert_field, key_field) = files(source);
    let (chain, pin) = read_chain(&cert).map_err(|e| anyhow::anyhow!("{cert_field}{e:#}"))?;
    let key_der = PrivateKeyDer::from_pem_file(&key).map_err(|e| match e {
        pem::Error::NoItemsFound => {
            anyhow::anyhow!("{key_field}reading private key {}: no PRIVATE KEY block", key.display())
        }
        e => anyhow::anyhow!("{key_field}reading private key {}: {e}", key.display()),
    })?;
    let pair = CertifiedKey::from_der(chain, key_der, &super::crypto_provider()).map_err(|e| {
        anyhow::anyhow!("{key_field}private key {} does not fit certificate {}: {e}", key.display(), cert.display())
    })?;
    Ok((pair, pin, cert))
}

fn load(source: &CertSource) -> Result<ServerCert> {
    let (pair, pin, cert_path) = read_pair(source)?;
    let current = Arc::new(CurrentCert(RwLock::new(Arc::new(pair))));
    let mut config = rustls::ServerConfig::builder_with_provider(super::crypto_provider())
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?
        .with_no_client_auth()
        .with_cert_resolver(current.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(ServerCert { config: Arc::new(config), pin, cert_path, current })
}

/// Reads the files of `source` again and serves them from the next
/// handshake on, if they hold the same key: a renewed certificate. Another
/// key has another pin, which installers under way were not given: that
/// takes a restart, and is refused here with the certificate in use kept.
pub fn reload(source: &CertSource, served: &ServerCert) -> Result<()> {
    let (pair, pin, cert) = read_pair(source)?;
    if pin != served.pin {
        bail!("{} holds another key (pin {pin}, not {}): a new key takes a restart", cert.display(), served.pin);
    }
    *served.current.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(pair);
    Ok(())
}

/// Makes `dir/key.pem` (0600) and `dir/cert.pem` where they are missing. A
/// key without a certificate gets a new certificate for the same key, so the
/// pin stays (delete `cert.pem` to change the names); a certificate without
/// its key is an error, never silently replaced.
fn ensure_generated(dir: &Path, names: &[String]) -> Result<()> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let key_pair = match (cert.exists(), key.exists()) {
        (true, true) => return Ok(()),
        (true, false) => bail!(
            "{} has no key beside it ({}); remove it to have a new key and certificate made (the pin changes)",
            cert.display(),
            key.display()
        ),
        (false, true) => {
            let pem = std::fs::read_to_string(&key).with_context(|| format!("reading {}", key.display()))?;
            let kp =
                rcgen::KeyPair::from_pem(&pem).with_context(|| format!("reading private key {}", key.display()))?;
            tracing::info!(path = %cert.display(), "issuing a certificate for the existing key: the pin stays");
            kp
        }
        (false, false) => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("creating {}", dir.display()))?;
            let kp = rcgen::KeyPair::generate().context("generating a key pair")?;
            write_atomically(&key, kp.serialize_pem().as_bytes(), 0o600)?;
            kp
        }
    };
    let pem = self_signed(&key_pair, names)?;
    write_atomically(&cert, pem.as_bytes(), 0o644)?;
    tracing::info!(path = %cert.display(), names = ?names, "generated a self-signed TLS certificate");
    Ok(())
}

/// A self-signed certificate for `names` (DNS names or IP addresses).
pub fn self_signed(key_pair: &rcgen::KeyPair, names: &[String]) -> Result<String> {
    let mut params = rcgen::CertificateParams::new(names.to_vec()).context("certificate names")?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, names.first().map_or("metalboot", |n| n.as_str()));
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(GENERATED_VALIDITY_DAYS);
    Ok(params.self_signed(key_pair).context("signing the certificate")?.pem())
}
