//! TFTP packets (RFC 1350) and option negotiation: blksize (RFC 2348), tsize
//! (RFC 2349), timeout (RFC 2349) and windowsize (RFC 7440), in the option
//! extension framework of RFC 2347.

/// A TFTP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// Read request.
    Rrq {
        /// File name as sent.
        filename: String,
        /// `octet` or `netascii`.
        mode: String,
        /// Options in order, names lower-cased.
        options: Vec<(String, String)>,
    },
    /// Write request (refused: we are read-only).
    Wrq,
    /// Data block.
    Data {
        /// Block number.
        block: u16,
        /// Payload.
        data: Vec<u8>,
    },
    /// Acknowledgement.
    Ack(u16),
    /// Error.
    Error {
        /// Error code.
        code: u16,
        /// Message.
        message: String,
    },
    /// Option acknowledgement.
    Oack(Vec<(String, String)>),
}

/// Why a datagram is not a TFTP packet we understand.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than an opcode.
    #[error("packet too short")]
    Short,
    /// Unknown opcode.
    #[error("unknown opcode {0}")]
    Opcode(u16),
    /// Strings not NUL-terminated or not UTF-8.
    #[error("malformed request strings")]
    Strings,
}

fn strings(b: &[u8]) -> Result<Vec<String>, ParseError> {
    if b.last() != Some(&0) {
        return Err(ParseError::Strings);
    }
    b[..b.len() - 1]
        .split(|c| *c == 0)
        .map(|s| String::from_utf8(s.to_vec()).map_err(|_| ParseError::Strings))
        .collect()
}

/// Parses one datagram.
pub fn parse(b: &[u8]) -> Result<Packet, ParseError> {
    if b.len() < 4 {
        return Err(ParseError::Short);
    }
    let op = u16::from_be_bytes([b[0], b[1]]);
    let n = u16::from_be_bytes([b[2], b[3]]);
    match op {
        1 => {
            let s = strings(&b[2..])?;
            if s.len() < 2 || s.len() % 2 != 0 {
                return Err(ParseError::Strings);
            }
            let options = s[2..].chunks(2).map(|c| (c[0].to_ascii_lowercase(), c[1].clone())).collect();
            Ok(Packet::Rrq { filename: s[0].clone(), mode: s[1].to_ascii_lowercase(), options })
        }
        2 => Ok(Packet::Wrq),
        3 => Ok(Packet::Data { block: n, data: b[4..].to_vec() }),
        4 => Ok(Packet::Ack(n)),
        5 => Ok(Packet::Error {
            code: n,
            message: String::from_utf8_lossy(b[4..].split(|c| *c == 0).next().unwrap_or(&[])).into_owned(),
        }),
        6 => {
            // RFC 2347: at least one option, each a name and a value
            let s = strings(&b[2..])?;
            if s.is_empty() || s.len() % 2 != 0 {
                return Err(ParseError::Strings);
            }
            Ok(Packet::Oack(s.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect()))
        }
        other => Err(ParseError::Opcode(other)),
    }
}

/// Encodes a packet.
pub fn encode(p: &Packet) -> Vec<u8> {
    let mut v = Vec::new();
    let put_str = |v: &mut Vec<u8>, s: &str| {
        v.extend_from_slice(s.as_bytes());
        v.push(0);
    };
    match p {
        Packet::Rrq { filename, mode, options } => {
            v.extend_from_slice(&1u16.to_be_bytes());
            put_str(&mut v, filename);
            put_str(&mut v, mode);
            for (k, val) in options {
                put_str(&mut v, k);
                put_str(&mut v, val);
            }
        }
        Packet::Wrq => v.extend_from_slice(&2u16.to_be_bytes()),
        Packet::Data { block, data } => {
            v.extend_from_slice(&3u16.to_be_bytes());
            v.extend_from_slice(&block.to_be_bytes());
            v.extend_from_slice(data);
        }
        Packet::Ack(b) => {
            v.extend_from_slice(&4u16.to_be_bytes());
            v.extend_from_slice(&b.to_be_bytes());
        }
        Packet::Error { code, message } => {
            v.extend_from_slice(&5u16.to_be_bytes());
            v.extend_from_slice(&code.to_be_bytes());
            put_str(&mut v, message);
        }
        Packet::Oack(opts) => {
            v.extend_from_slice(&6u16.to_be_bytes());
            for (k, val) in opts {
                put_str(&mut v, k);
                put_str(&mut v, val);
            }
        }
    }
    v
}

/// Transfer parameters after negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Data bytes per block.
    pub blksize: usize,
    /// Retransmission timeout, seconds.
    pub timeout: u64,
    /// Blocks sent before waiting for an ACK.
    pub windowsize: u16,
    /// Options to acknowledge (empty: no OACK, plain RFC 1350).
    pub oack: Vec<(String, String)>,
}

/// Accepts the options we support, within their RFC ranges; a `timeout`
/// above `max_timeout` is left out of the OACK (RFC 2349 lets the server
/// accept the client's value or not acknowledge it), so the default applies.
pub fn negotiate(options: &[(String, String)], file_size: u64, max_blksize: usize, max_timeout: u64) -> Negotiated {
    let mut n = Negotiated { blksize: 512, timeout: 1, windowsize: 1, oack: Vec::new() };
    for (k, v) in options {
        match k.as_str() {
            "blksize" => {
                if let Ok(b) = v.parse::<usize>() {
                    if (8..=65464).contains(&b) {
                        n.blksize = b.min(max_blksize);
                        n.oack.push((k.clone(), n.blksize.to_string()));
                    }
                }
            }
            "tsize" => n.oack.push((k.clone(), file_size.to_string())),
            "timeout" => {
                if let Ok(t) = v.parse::<u64>() {
                    if (1..=max_timeout.min(255)).contains(&t) {
                        n.timeout = t;
                        n.oack.push((k.clone(), t.to_string()));
                    }
                }
            }
            "windowsize" => {
                if let Ok(w) = v.parse::<u16>() {
                    if (1..=65535).contains(&w) {
                        n.windowsize = w.min(64);
                        n.oack.push((k.clone(), n.windowsize.to_string()));
                    }
                }
            }
            _ => {}
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oack_needs_whole_option_pairs() {
        assert_eq!(parse(b"\x00\x06\x09\x00"), Err(ParseError::Strings));
        assert_eq!(parse(b"\x00\x06blksize\x00"), Err(ParseError::Strings));
        let ok = Packet::Oack(vec![("blksize".into(), "1468".into())]);
        assert_eq!(parse(&encode(&ok)).unwrap(), ok);
    }

    #[test]
    fn parses_rrq_with_options_and_round_trips() {
        let p = Packet::Rrq {
            filename: "undionly.kpxe".into(),
            mode: "octet".into(),
            options: vec![("blksize".into(), "1468".into()), ("tsize".into(), "0".into())],
        };
        assert_eq!(parse(&encode(&p)).unwrap(), p);
        let raw = b"\x00\x01snponly.efi\x00OCTET\x00BLKSIZE\x001468\x00windowsize\x004\x00";
        let Packet::Rrq { mode, options, .. } = parse(raw).unwrap() else { panic!() };
        assert_eq!(mode, "octet");
        assert_eq!(options[0], ("blksize".to_string(), "1468".to_string()));
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(parse(b"\x00"), Err(ParseError::Short));
        assert_eq!(parse(b"\x00\x09\x00\x00"), Err(ParseError::Opcode(9)));
        assert_eq!(parse(b"\x00\x01file\x00octet"), Err(ParseError::Strings));
        assert_eq!(parse(b"\x00\x01file\x00octet\x00blksize\x00"), Err(ParseError::Strings));
    }

    #[test]
    fn negotiates_within_rfc_ranges() {
        let o = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        let n = negotiate(
            &o(&[("blksize", "1468"), ("tsize", "0"), ("windowsize", "8"), ("timeout", "3")]),
            1000,
            65464,
            5,
        );
        assert_eq!((n.blksize, n.windowsize, n.timeout), (1468, 8, 3));
        assert_eq!(n.oack[1], ("tsize".to_string(), "1000".to_string()));
        let bad = negotiate(&o(&[("blksize", "4"), ("timeout", "0"), ("bogus", "1")]), 5, 65464, 5);
        assert_eq!((bad.blksize, bad.timeout), (512, 1));
        assert!(bad.oack.is_empty());
        assert!(negotiate(&[], 5, 65464, 5).oack.is_empty());
    }

    #[test]
    fn timeout_above_the_cap_is_left_out_of_the_oack() {
        let o = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        let n = negotiate(&o(&[("tsize", "0"), ("timeout", "255")]), 7, 65464, 5);
        assert_eq!(n.timeout, 1, "the RFC 1350 default applies");
        assert_eq!(n.oack, o(&[("tsize", "7")]));
        let n = negotiate(&o(&[("timeout", "5")]), 7, 65464, 5);
        assert_eq!((n.timeout, n.oack), (5, o(&[("timeout", "5")])));
    }
}
