//! Certificate pins: how an installer (and the installed system's phone-home)
//! knows it is talking to our server over HTTPS without a CA.
//!
//! A pin is `sha256//BASE64`: the standard base64 (with padding) of the
//! SHA-256 of the certificate's DER-encoded SubjectPublicKeyInfo. That is
//! curl's `--pinnedpubkey` format, so a shell script with curl checks the same
//! string our Rust clients do. Pinning the public key rather than the whole
//! certificate lets a certificate be renewed with the same key without a new
//! pin. Several pins separated by `;` (also curl's syntax) accept any one of
//! them: that is how a key is rotated (publish old;new, switch, drop old).
//!
//! The SubjectPublicKeyInfo is taken out of the certificate with a minimal
//! DER walk (X.690 definite lengths, RFC 5280 section 4.1 field order): the
//! pin needs its exact bytes and nothing else, so no ASN.1 library is pulled
//! in. Pure: no I/O.

use crate::error::quote;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// What every pin starts with: the hash it is made with.
pub const PREFIX: &str = "sha256//";

/// Separates the pins of a [`PinSet`].
pub const SEPARATOR: char = ';';

/// Why a pin could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    /// The certificate is not DER we can walk to its public key.
    #[error("not a DER X.509 certificate: {0}")]
    Certificate(&'static str),
    /// The text is not `sha256//BASE64`.
    #[error("{} is not a pin: expected sha256// and the base64 of a SHA-256 (44 characters)", quote(.0))]
    Syntax(String),
    /// An empty list, or an empty entry between separators.
    #[error("{} has an empty pin; separate pins with a single ';'", quote(.0))]
    Empty(String),
}

/// One pin: the SHA-256 of a SubjectPublicKeyInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pin([u8; 32]);

impl Pin {
    /// The pin of a DER-encoded SubjectPublicKeyInfo.
    pub fn of_spki(spki_der: &[u8]) -> Pin {
        Pin(Sha256::digest(spki_der).into())
    }

    /// The pin of a DER-encoded X.509 certificate's public key.
    pub fn of_certificate(cert_der: &[u8]) -> Result<Pin, PinError> {
        spki_of_certificate(cert_der).map(Pin::of_spki)
    }

    /// The 32 bytes of the hash.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", STANDARD.encode(self.0))
    }
}

impl FromStr for Pin {
    type Err = PinError;

    /// Strict: the prefix, then exactly the canonical base64 of 32 bytes.
    fn from_str(s: &str) -> Result<Pin, PinError> {
        let syntax = || PinError::Syntax(s.to_string());
        let b64 = s.strip_prefix(PREFIX).ok_or_else(syntax)?;
        let bytes = STANDARD.decode(b64).map_err(|_| syntax())?;
        Ok(Pin(bytes.try_into().map_err(|_| syntax())?))
    }
}

/// One or more pins, `;`-separated; a key matches if any pin does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinSet(Vec<Pin>);

impl PinSet {
    /// A set of one.
    pub fn one(pin: Pin) -> PinSet {
        PinSet(vec![pin])
    }

    /// The pins, in the order given.
    pub fn pins(&self) -> &[Pin] {
        &self.0
    }

    /// Whether `pin` is one of the set.
    pub fn contains(&self, pin: &Pin) -> bool {
        self.0.contains(pin)
    }

    /// Whether the public key of `cert_der` matches one of the pins.
    pub fn matches_certificate(&self, cert_der: &[u8]) -> Result<bool, PinError> {
        Ok(self.contains(&Pin::of_certificate(cert_der)?))
    }
}

impl fmt::Display for PinSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, "{SEPARATOR}")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl FromStr for PinSet {
    type Err = PinError;

    fn from_str(s: &str) -> Result<PinSet, PinError> {
        let mut pins = Vec::new();
        for part in s.split(SEPARATOR) {
            if part.is_empty() {
                return Err(PinError::Empty(s.to_string()));
            }
            let pin: Pin = part.parse()?;
            if !pins.contains(&pin) {
                pins.push(pin);
            }
        }
        Ok(PinSet(pins))
    }
}

/// A DER tag we walk past or into (X.690 8.1.2; single-octet tags only).
const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
/// `[0] EXPLICIT Version` of a v2/v3 `TBSCertificate`.
const VERSION: u8 = 0xa0;

/// One DER element: all its bytes (header included), and its content.
struct Tlv<'a> {
    whole: &'a [u8],
    content: &'a [u8],
}

/// Reads the element at the start of `input` (whose tag the caller has
/// checked); returns it and what follows.
fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), PinError> {
    let short = PinError::Certificate("truncated");
    // the tag was checked by the caller: one octet, never 0x1f (multi-octet)
    let (_tag, rest) = input.split_first().ok_or(short.clone())?;
    let (&first, mut rest) = rest.split_first().ok_or(short.clone())?;
    let len = match first {
        0..=0x7f => usize::from(first),
        0x80 => return Err(PinError::Certificate("indefinite length (BER, not DER)")),
        0x81..=0x84 => {
            let n = usize::from(first & 0x7f);
            if rest.len() < n {
                return Err(short);
            }
            let (octets, after) = rest.split_at(n);
            rest = after;
            octets.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        }
        _ => return Err(PinError::Certificate("length too large")),
    };
    if rest.len() < len {
        return Err(short);
    }
    let header = input.len() - rest.len();
    let (content, after) = rest.split_at(len);
    Ok((Tlv { whole: &input[..header + len], content }, after))
}

/// Reads an element that must have `tag`.
fn expect<'a>(input: &'a [u8], tag: u8, what: &'static str) -> Result<(Tlv<'a>, &'a [u8]), PinError> {
    match input.first() {
        Some(&t) if t != tag => Err(PinError::Certificate(what)),
        _ => read_tlv(input),
    }
}

/// The DER SubjectPublicKeyInfo inside a DER certificate (RFC 5280 4.1):
/// `Certificate ::= SEQUENCE { tbsCertificate, … }`, `TBSCertificate ::=
/// SEQUENCE { [0] version OPTIONAL, serialNumber, signature, issuer,
/// validity, subject, subjectPublicKeyInfo, … }`.
pub fn spki_of_certificate(cert_der: &[u8]) -> Result<&[u8], PinError> {
    let (cert, trailing) = expect(cert_der, SEQUENCE, "certificate is not a SEQUENCE")?;
    if !trailing.is_empty() {
        return Err(PinError::Certificate("bytes after the certificate"));
    }
    let (tbs, _) = expect(cert.content, SEQUENCE, "tbsCertificate is not a SEQUENCE")?;
    let mut rest = tbs.content;
    if rest.first() == Some(&VERSION) {
        rest = read_tlv(rest)?.1;
    }
    rest = expect(rest, INTEGER, "serialNumber is not an INTEGER")?.1;
    for what in [
        "signature is not a SEQUENCE",
        "issuer is not a SEQUENCE",
        "validity is not a SEQUENCE",
        "subject is not a SEQUENCE",
    ] {
        rest = expect(rest, SEQUENCE, what)?.1;
    }
    let (spki, _) = expect(rest, SEQUENCE, "subjectPublicKeyInfo is not a SEQUENCE")?;
    let (_, key) = expect(spki.content, SEQUENCE, "algorithm is not a SEQUENCE")?;
    let (_, after) = expect(key, BIT_STRING, "subjectPublicKey is not a BIT STRING")?;
    if !after.is_empty() {
        return Err(PinError::Certificate("bytes after subjectPublicKey"));
    }
    Ok(spki.whole)
}

#[cfg(test)]
#[path = "pin_tests.rs"]
mod tests;
