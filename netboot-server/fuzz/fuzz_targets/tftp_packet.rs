//! Any datagram through the TFTP packet parser and option negotiation; what
//! parses must encode and parse back to the same packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metalboot::tftp::packet::{encode, negotiate, parse, Packet};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = parse(data) else { return };
    if let Packet::Rrq { options, .. } = &p {
        let n = negotiate(options, 1 << 20, 65464);
        assert!((8..=65464).contains(&n.blksize), "blksize {}", n.blksize);
        assert!(n.windowsize >= 1);
    }
    // a write request is refused whatever it holds, so it is parsed to a
    // bare `Wrq` and has nothing to round-trip
    if p != Packet::Wrq {
        let again = parse(&encode(&p)).expect("an encoded packet parses");
        assert_eq!(p, again);
    }
});
