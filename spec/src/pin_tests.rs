use super::*;
use proptest::prelude::*;

// Certificates made with OpenSSL 3.0; each pin computed by OpenSSL, not by us:
// openssl x509 -pubkey -noout | openssl pkey -pubin -outform der
//   | openssl dgst -sha256 -binary | base64

/// P-256, v3 with subjectAltName (DNS:localhost, IP:127.0.0.1).
const EC_P256_V3: &str = "\
MIIBojCCAUmgAwIBAgIUQdU1uHJcvP0KsKaesUyaktmiePIwCgYIKoZIzj0EAwIwGTEXMBUGA1UEAwwObWV0YWxib290IHRlc3Qw\
HhcNMjYxMjA1MDkyMDAwWhcNMzYxMjAyMDkyMDAwWjAZMRcwFQYDVQQDDA5tZXRhbGJvb3QgdGVzdDBZMBMGByqGSM49AgEGCCqG\
SM49AwEHA0IABLv8AGHvdxhMzeydjXc7WAm6xQkmcnJfxfVm9e3aCHY9xdLj9lEi80fn85M8jmZRvqMJdrc+MWPkiEzXsXH7iZGj\
bzBtMB0GA1UdDgQWBBRQRBEgzLaywxMfdTzRomP22p420TAfBgNVHSMEGDAWgBRQRBEgzLaywxMfdTzRomP22p420TAPBgNVHRMB\
Af8EBTADAQH/MBoGA1UdEQQTMBGCCWxvY2FsaG9zdIcEfwAAATAKBggqhkjOPQQDAgNHADBEAiAiwykF5yPMdT9Y8WywRyR+2SF7\
eetT+qF20y/nuf6m1AIgHj7FJQ0vhCKqHQqT6lEKN2WzAI/kAJEBJZa5F1Zd06c=";
const EC_P256_V3_PIN: &str = "sha256//XWtYtT918SnoN8A4VG6ide7fA/cyhOS3ESyKlvzkuqQ=";

/// Ed25519, v3 (a one-octet long-form length, 0x81, in the tbsCertificate).
const ED25519_V3: &str = "\
MIIBTDCB/6ADAgECAhQhz2926Csw4DpvPBaZzL5tJB7MqDAFBgMrZXAwHDEaMBgGA1UEAwwRbWV0YWxib290IGVkMjU1MTkwHhcN\
MjYxMjA1MDkyMDAwWhcNMzYxMjAyMDkyMDAwWjAcMRowGAYDVQQDDBFtZXRhbGJvb3QgZWQyNTUxOTAqMAUGAytlcAMhAJcETGyE\
oy82heeBmlGvCMfrvfJ16QFFIMyRAGxP6XrQo1MwUTAdBgNVHQ4EFgQUF5LtZcSjlK2voaWH9t8ZuvTSSZAwHwYDVR0jBBgwFoAU\
F5LtZcSjlK2voaWH9t8ZuvTSSZAwDwYDVR0TAQH/BAUwAwEB/zAFBgMrZXADQQBET+6gPXcu3EEleb976Tdguaiv5Tfq656PE2ZO\
5RWQef7xalGBYPJXR8uxfo5/+1nndezbnPtCgaKpgoBaVwUL";
/// A v1 certificate (no `[0] version`) for the same Ed25519 key.
const ED25519_V1: &str = "\
MIHUMIGHAhR5ckQYY1WAqCPx1Aj0/RMY9JlAGjAFBgMrZXAwDTELMAkGA1UEAwwCdjEwHhcNMjYxMjA1MDkyMDAzWhcNMzYxMjAy\
MDkyMDAzWjANMQswCQYDVQQDDAJ2MTAqMAUGAytlcAMhAJcETGyEoy82heeBmlGvCMfrvfJ16QFFIMyRAGxP6XrQMAUGAytlcANB\
AKjkkxvL93Xrg80BYrF9ZFAUguOPL3doMb/2vwwx+ilRsk1mwbS5VH1YeqE2Ya/vV71ODzOxTq1IZte9iLHYkQk=";
const ED25519_PIN: &str = "sha256//hf9mBUEOe71oV+/Dw7ggw18OTK3oIJnAUczQpQ32+uM=";

fn der(b64: &str) -> Vec<u8> {
    STANDARD.decode(b64).unwrap()
}

#[test]
fn pin_of_certificate_matches_openssl() {
    assert_eq!(Pin::of_certificate(&der(EC_P256_V3)).unwrap().to_string(), EC_P256_V3_PIN);
    assert_eq!(Pin::of_certificate(&der(ED25519_V3)).unwrap().to_string(), ED25519_PIN);
    assert_eq!(Pin::of_certificate(&der(ED25519_V1)).unwrap().to_string(), ED25519_PIN);
}

#[test]
fn another_certificate_for_the_same_key_keeps_the_pin() {
    assert_ne!(der(ED25519_V3), der(ED25519_V1));
    let pins: PinSet = ED25519_PIN.parse().unwrap();
    assert!(pins.matches_certificate(&der(ED25519_V1)).unwrap());
    assert!(!pins.matches_certificate(&der(EC_P256_V3)).unwrap());
}

#[test]
fn spki_is_the_whole_element_with_its_header() {
    // 0x30 0x59: SEQUENCE of 89 bytes, P-256's SubjectPublicKeyInfo
    let cert = der(EC_P256_V3);
    let spki = spki_of_certificate(&cert).unwrap();
    assert_eq!((spki[0], spki[1], spki.len()), (0x30, 0x59, 91));
    assert_eq!(spki[2..].len(), 0x59);
}

#[test]
fn pin_text_round_trips_and_is_strict() {
    let p: Pin = EC_P256_V3_PIN.parse().unwrap();
    assert_eq!(p.to_string(), EC_P256_V3_PIN);
    for bad in [
        "",
        "sha256//",
        "XWtYtT918SnoN8A4VG6ide7fA/cyhOS3ESyKlvzkuqQ=",        // no prefix
        "sha1//XWtYtT918SnoN8A4VG6ide7fA/cyhOS3ESyKlvzkuqQ=",  // another hash
        "sha256//XWtYtT918SnoN8A4VG6ide7fA/cyhOS3ESyKlvzkuqQ", // padding missing
        "sha256//XWtYtT918SnoN8A4VG6ide7fA_cyhOS3ESyKlvzkuqQ=", // URL-safe alphabet
        "sha256//XWtYtT918SnoN8A4VG6ide7fA/cyhOS3ESyKlvzkuqR=", // non-canonical last char
        "sha256//XWtYtT918SnoN8A4VG6ide7fA/cyhOS3ESyKlvzkuq==", // 31 bytes
        "sha256//XWtYtT918SnoN8A4VG6ide7fA/cyhOS3ESyKlvzkuqQ= ", // trailing space
    ] {
        assert_eq!(bad.parse::<Pin>(), Err(PinError::Syntax(bad.to_string())), "{bad:?}");
    }
}

#[test]
fn pin_set_takes_several_pins_for_rotation() {
    let text = format!("{EC_P256_V3_PIN};{ED25519_PIN}");
    let set: PinSet = text.parse().unwrap();
    assert_eq!(set.pins().len(), 2);
    assert_eq!(set.to_string(), text);
    assert!(set.matches_certificate(&der(EC_P256_V3)).unwrap());
    assert!(set.matches_certificate(&der(ED25519_V1)).unwrap());
    let one: PinSet = EC_P256_V3_PIN.parse().unwrap();
    assert_eq!(one, PinSet::one(EC_P256_V3_PIN.parse().unwrap()));
    let twice: PinSet = format!("{EC_P256_V3_PIN};{EC_P256_V3_PIN}").parse().unwrap();
    assert_eq!(twice, one, "a repeated pin counts once");
    for bad in ["", ";", &format!("{EC_P256_V3_PIN};"), &format!(";{EC_P256_V3_PIN}"), &format!("{text};;")] {
        assert!(matches!(bad.parse::<PinSet>(), Err(PinError::Empty(_))), "{bad:?}");
    }
    let e = format!("{EC_P256_V3_PIN};sha256//nope").parse::<PinSet>().unwrap_err();
    assert_eq!(e, PinError::Syntax("sha256//nope".into()));
}

#[test]
fn rejects_what_is_not_a_der_certificate() {
    let cert = der(EC_P256_V3);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![], "truncated"),
        (cert[..cert.len() - 1].to_vec(), "truncated"),
        ([cert.as_slice(), &[0]].concat(), "bytes after the certificate"),
        (vec![0x30, 0x80, 0, 0], "indefinite length"),
        (vec![0x30, 0x85, 1, 0, 0, 0, 0], "length too large"),
        (vec![0x1f, 0x01, 0x00], "certificate is not a SEQUENCE"),
        (vec![0x02, 0x01, 0x00], "certificate is not a SEQUENCE"),
        (vec![0x30, 0x03, 0x02, 0x01, 0x00], "tbsCertificate is not a SEQUENCE"),
        // a tbsCertificate that ends after its serial number
        (vec![0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x01], "truncated"),
        // a serial number where the signature algorithm should be
        (vec![0x30, 0x08, 0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01], "signature is not a SEQUENCE"),
        (b"-----BEGIN CERTIFICATE-----".to_vec(), "is not a SEQUENCE"),
    ];
    for (input, want) in cases {
        let e = spki_of_certificate(&input).unwrap_err();
        assert!(e.to_string().contains(want), "{input:02x?}: {e}");
    }
}

proptest! {
    #[test]
    fn never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = spki_of_certificate(&bytes);
    }

    #[test]
    fn never_panics_on_a_damaged_certificate(at in 0usize..422, byte in any::<u8>()) {
        let mut cert = der(EC_P256_V3);
        cert[at] = byte;
        let _ = Pin::of_certificate(&cert);
    }

    #[test]
    fn any_pin_round_trips(bytes in any::<[u8; 32]>()) {
        let p = Pin(bytes);
        prop_assert_eq!(p.to_string().parse::<Pin>(), Ok(p));
    }
}
