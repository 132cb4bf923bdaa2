//! `[server.tls]`: where HTTPS listens and which certificate it serves, a
//! given one (`cert` + `key`, PEM) or one generated on first start into the
//! data directory. Checked once at load, each error naming its field.

use anyhow::{bail, Result};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// `[server.tls]` as written.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    #[serde(default = "default_listen")]
    listen: SocketAddr,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    names: Option<Vec<String>>,
}

fn default_listen() -> SocketAddr {
    "0.0.0.0:8443".parse().expect("constant address parses")
}

/// The validated `[server.tls]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// HTTPS listen address.
    pub listen: SocketAddr,
    /// Where the certificate and its key come from.
    pub source: CertSource,
}

/// Where the served certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// PEM files the operator provides: the chain (leaf first) and its key.
    Files {
        /// `server.tls.cert`.
        cert: PathBuf,
        /// `server.tls.key`.
        key: PathBuf,
    },
    /// A self-signed certificate kept in `dir` (`cert.pem`, `key.pem`),
    /// generated on first start for `names` and reused after.
    Generated {
        /// `<data_dir>/tls`.
        dir: PathBuf,
        /// Subject alternative names: DNS names or IP addresses.
        names: Vec<String>,
    },
}

impl CertSource {
    /// The certificate file: the one the pin is computed from.
    pub fn cert_path(&self) -> PathBuf {
        match self {
            CertSource::Files { cert, .. } => cert.clone(),
            CertSource::Generated { dir, .. } => dir.join("cert.pem"),
        }
    }
}

impl TlsSection {
    /// Checks the section. Relative paths go through `abs`; a generated
    /// certificate lives in `<data_dir>/tls`, named by `names` or else by the
    /// hosts of the public URLs and `localhost`.
    pub fn resolve(
        self,
        abs: impl Fn(&Path) -> PathBuf,
        data_dir: &Path,
        public_urls: &[Option<&str>],
    ) -> Result<TlsConfig> {
        let source = match (self.cert, self.key) {
            (Some(cert), Some(key)) => {
                if self.names.is_some() {
                    bail!(
                        "field `server.tls.names`: only for a generated certificate; \
                         the one in server.tls.cert carries its own names"
                    );
                }
                CertSource::Files { cert: abs(&cert), key: abs(&key) }
            }
            (Some(_), None) => bail!("field `server.tls.key`: missing; server.tls.cert needs its private key"),
            (None, Some(_)) => bail!("field `server.tls.cert`: missing; server.tls.key needs its certificate"),
            (None, None) => {
                let names = match self.names {
                    Some(n) => n,
                    None => default_names(public_urls),
                };
                if names.is_empty() {
                    bail!("field `server.tls.names`: give at least one name");
                }
                for (i, n) in names.iter().enumerate() {
                    check_name(n).map_err(|m| anyhow::anyhow!("field `server.tls.names[{i}]`: {m}"))?;
                }
                CertSource::Generated { dir: data_dir.join("tls"), names }
            }
        };
        Ok(TlsConfig { listen: self.listen, source })
    }
}

/// The hosts of the given URLs, then `localhost`, without repeats.
fn default_names(urls: &[Option<&str>]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for host in urls.iter().flatten().filter_map(|u| url_host(u)).chain(["localhost"]) {
        if !names.iter().any(|n| n == host) {
            names.push(host.to_string());
        }
    }
    names
}

/// The host of `scheme://host[:port][/path]`, brackets of an IPv6 address removed.
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']')?.0,
        None => authority.split(':').next()?,
    };
    (!host.is_empty()).then_some(host)
}

/// A subject alternative name: an IP address, or a DNS name (RFC 1123 labels,
/// a leading `*.` allowed).
fn check_name(name: &str) -> Result<(), String> {
    if name.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let labels = name.strip_prefix("*.").unwrap_or(name);
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.len() > 253 || !labels.split('.').all(label_ok) {
        return Err(format!("{} is neither an IP address nor a DNS name", metalboot_spec::quote(name)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_host_of_a_url() {
        assert_eq!(url_host("http://10.0.0.1:8080/x"), Some("10.0.0.1"));
        assert_eq!(url_host("https://boot.example"), Some("boot.example"));
        assert_eq!(url_host("http://[fd00::1]:8080"), Some("fd00::1"));
        assert_eq!(url_host("http://"), None);
        assert_eq!(url_host("boot.example"), None);
        assert!(check_name("boot-1.example").is_ok() && check_name("fd00::1").is_ok());
        assert!(check_name("a..b").is_err() && check_name("x_y").is_err());
    }
}
