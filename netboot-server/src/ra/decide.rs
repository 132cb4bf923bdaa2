//! When to advertise (RFC 4861 §6.2.4, §6.2.6) and when to stop: a pure
//! state machine over time given as a `Duration` since start-up. The socket
//! loop feeds it packets and asks it what is due.
//!
//! - Unsolicited: `MAX_INITIAL_RTR_ADVERTISEMENTS` (3) at start-up,
//!   `MAX_INITIAL_RTR_ADVERT_INTERVAL` (16 s) apart, then one every
//!   200–600 s, uniformly random (`MinRtrAdvInterval`/`MaxRtrAdvInterval`).
//! - Solicited: after a random 0–`MAX_RA_DELAY_TIME` (500 ms), unicast to
//!   the soliciting host, or to all nodes (ff02::1) when it solicited from
//!   `::`. Multicast advertisements stay `MIN_DELAY_BETWEEN_RAS` (3 s) apart.
//! - Another router's advertisement on the link silences us for good (we
//!   must not compete with a real router). One exception keeps two metalboot
//!   servers on one link from silencing each other: between two senders of
//!   "announce nothing" advertisements, the lower link-local address keeps
//!   answering.

use super::packet::{parse, Message};
use rand::Rng;
use std::net::Ipv6Addr;
use std::time::Duration;

/// `MinRtrAdvInterval`.
pub const MIN_INTERVAL: Duration = Duration::from_secs(200);
/// `MaxRtrAdvInterval`.
pub const MAX_INTERVAL: Duration = Duration::from_secs(600);
/// `MAX_INITIAL_RTR_ADVERTISEMENTS`.
pub const INITIAL_ADVERTISEMENTS: u32 = 3;
/// `MAX_INITIAL_RTR_ADVERT_INTERVAL`.
pub const INITIAL_INTERVAL: Duration = Duration::from_secs(16);
/// `MAX_RA_DELAY_TIME`.
pub const MAX_REPLY_DELAY: Duration = Duration::from_millis(500);
/// `MIN_DELAY_BETWEEN_RAS`.
pub const MIN_MULTICAST_GAP: Duration = Duration::from_secs(3);
/// Replies waiting for their delay at most; more solicitations are dropped.
pub const MAX_PENDING: usize = 64;

/// Where an advertisement goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// ff02::1.
    AllNodes,
    /// The soliciting host.
    Host(Ipv6Addr),
}

/// What became of one received packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// An advertisement to `to` goes out at `at`.
    Reply {
        /// Destination.
        to: Dest,
        /// When.
        at: Duration,
    },
    /// Another router advertises here: we have stopped, for good.
    Silenced {
        /// Its link-local address.
        router: Ipv6Addr,
    },
    /// Nothing to do, and why (logged at debug).
    Ignore(String),
}

/// The advertiser's state on one interface.
#[derive(Debug)]
pub struct Advertiser {
    ours: Vec<Ipv6Addr>,
    link_local: Ipv6Addr,
    silenced_by: Option<Ipv6Addr>,
    pending: Vec<(Duration, Dest)>,
    next_unsolicited: Duration,
    initial_left: u32,
    last_multicast: Option<Duration>,
}

impl Advertiser {
    /// Starts at `now` with our `link_local` address and every address of
    /// the interface (`ours`): the first unsolicited advertisement is due at
    /// once.
    pub fn new(link_local: Ipv6Addr, ours: Vec<Ipv6Addr>, now: Duration) -> Advertiser {
        Advertiser {
            ours,
            link_local,
            silenced_by: None,
            pending: Vec::new(),
            next_unsolicited: now,
            initial_left: INITIAL_ADVERTISEMENTS,
            last_multicast: None,
        }
    }

    /// The router that silenced us, if one did.
    pub fn silenced_by(&self) -> Option<Ipv6Addr> {
        self.silenced_by
    }

    /// Handles a packet from `src` received with `hop_limit` at `now`.
    pub fn on_packet(
        &mut self,
        bytes: &[u8],
        src: Ipv6Addr,
        hop_limit: u8,
        now: Duration,
        rng: &mut impl Rng,
    ) -> Verdict {
        let msg = match parse(bytes, src, hop_limit) {
            Ok(m) => m,
            Err(e) => return Verdict::Ignore(e.to_string()),
        };
        if self.ours.contains(&src) {
            return Verdict::Ignore("sent by this host".into());
        }
        if let Some(r) = self.silenced_by {
            return Verdict::Ignore(format!("silent since router {r} advertised on this link"));
        }
        match msg {
            Message::Advertisement(ra) => {
                if ra.announces_nothing() && self.link_local < src {
                    return Verdict::Ignore(format!(
                        "{src} also advertises nothing; the lower address ({}) keeps answering",
                        self.link_local
                    ));
                }
                self.silenced_by = Some(src);
                self.pending.clear();
                Verdict::Silenced { router: src }
            }
            Message::Solicitation { .. } => {
                let to = if src.is_unspecified() { Dest::AllNodes } else { Dest::Host(src) };
                if let Some(&(at, _)) = self.pending.iter().find(|(_, d)| *d == to) {
                    return Verdict::Reply { to, at };
                }
                if self.pending.len() >= MAX_PENDING {
                    return Verdict::Ignore(format!("{MAX_PENDING} replies already waiting"));
                }
                let delay = Duration::from_millis(rng.gen_range(0..=MAX_REPLY_DELAY.as_millis() as u64));
                let mut at = now + delay;
                if let (Dest::AllNodes, Some(last)) = (to, self.last_multicast) {
                    at = at.max(last + MIN_MULTICAST_GAP);
                }
                self.pending.push((at, to));
                Verdict::Reply { to, at }
            }
        }
    }

    /// The advertisements due at `now`, in order; reschedules the
    /// unsolicited one.
    pub fn take_due(&mut self, now: Duration, rng: &mut impl Rng) -> Vec<Dest> {
        if self.silenced_by.is_some() {
            return Vec::new();
        }
        let mut due = Vec::new();
        let mut multicast_gap_ok = !matches!(self.last_multicast, Some(l) if now < l + MIN_MULTICAST_GAP);
        if now >= self.next_unsolicited && multicast_gap_ok {
            due.push(Dest::AllNodes);
            multicast_gap_ok = false;
            self.next_unsolicited = now + self.unsolicited_interval(rng);
            self.initial_left = self.initial_left.saturating_sub(1);
            // a solicited multicast reply waiting now is answered by this one
            self.pending.retain(|(_, d)| *d != Dest::AllNodes);
        }
        let mut keep = Vec::new();
        for (at, to) in self.pending.drain(..) {
            if at > now {
                keep.push((at, to));
            } else if to == Dest::AllNodes && !multicast_gap_ok {
                keep.push((self.last_multicast.unwrap_or(now) + MIN_MULTICAST_GAP, to));
            } else {
                if to == Dest::AllNodes {
                    multicast_gap_ok = false;
                }
                due.push(to);
            }
        }
        self.pending = keep;
        if due.contains(&Dest::AllNodes) {
            self.last_multicast = Some(now);
        }
        due
    }

    /// When `take_due` next has something (None once silenced).
    pub fn next_wakeup(&self) -> Option<Duration> {
        if self.silenced_by.is_some() {
            return None;
        }
        let mut next = self.next_unsolicited;
        if let Some(l) = self.last_multicast {
            next = next.max(l + MIN_MULTICAST_GAP);
        }
        Some(self.pending.iter().map(|(at, _)| *at).fold(next, Duration::min))
    }

    fn unsolicited_interval(&self, rng: &mut impl Rng) -> Duration {
        let secs = rng.gen_range(MIN_INTERVAL.as_secs()..=MAX_INTERVAL.as_secs());
        let interval = Duration::from_secs(secs);
        // the first few follow each other more closely (RFC 4861 6.2.4)
        if self.initial_left > 1 {
            interval.min(INITIAL_INTERVAL)
        } else {
            interval
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::packet::build_advertisement;
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const US: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x10);
    const HOST: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x5054, 0xff, 0xfe12, 0x3456);
    const LOWER: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
    const RS: [u8; 16] = [133, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    fn new() -> (Advertiser, StdRng) {
        (Advertiser::new(US, vec![US, "2001:db8::10".parse().unwrap()], s(0.0)), StdRng::seed_from_u64(7))
    }

    /// A router advertising itself as default router for 1800 s.
    fn real_ra() -> Vec<u8> {
        vec![134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0]
    }

    #[test]
    fn three_quick_unsolicited_then_every_200_to_600_s() {
        let (mut a, mut rng) = new();
        let mut sent = Vec::new();
        let mut now = s(0.0);
        while sent.len() < 8 {
            let due = a.take_due(now, &mut rng);
            assert!(due.iter().all(|d| *d == Dest::AllNodes));
            if !due.is_empty() {
                sent.push(now);
            }
            now = a.next_wakeup().unwrap();
        }
        assert_eq!(&sent[..3], &[s(0.0), s(16.0), s(32.0)]);
        for w in sent[2..].windows(2) {
            let gap = w[1] - w[0];
            assert!(gap >= MIN_INTERVAL && gap <= MAX_INTERVAL, "{gap:?}");
        }
    }

    #[test]
    fn answers_solicitation_within_500_ms_unicast() {
        let (mut a, mut rng) = new();
        a.take_due(s(0.0), &mut rng);
        let Verdict::Reply { to, at } = a.on_packet(&RS, HOST, 255, s(5.0), &mut rng) else { panic!("no reply") };
        assert_eq!(to, Dest::Host(HOST));
        assert!(at >= s(5.0) && at <= s(5.5), "{at:?}");
        assert_eq!(a.next_wakeup(), Some(at));
        if at > s(5.0) {
            assert!(a.take_due(at - s(0.001), &mut rng).is_empty());
        }
        assert_eq!(a.take_due(at, &mut rng), vec![Dest::Host(HOST)]);
        assert!(a.take_due(at, &mut rng).is_empty());
    }

    #[test]
    fn repeated_solicitation_shares_the_waiting_reply() {
        let (mut a, mut rng) = new();
        let first = a.on_packet(&RS, HOST, 255, s(1.0), &mut rng);
        assert_eq!(a.on_packet(&RS, HOST, 255, s(1.1), &mut rng), first);
    }

    #[test]
    fn multicast_replies_keep_3_s_apart() {
        let (mut a, mut rng) = new();
        assert_eq!(a.take_due(s(0.0), &mut rng), vec![Dest::AllNodes]);
        let Verdict::Reply { to, at } = a.on_packet(&RS[..8], Ipv6Addr::UNSPECIFIED, 255, s(1.0), &mut rng) else {
            panic!("no reply")
        };
        assert_eq!((to, at), (Dest::AllNodes, s(3.0)));
        assert!(a.take_due(s(2.0), &mut rng).is_empty());
        assert_eq!(a.take_due(s(3.0), &mut rng), vec![Dest::AllNodes]);
    }

    #[test]
    fn another_router_silences_us_for_good() {
        let (mut a, mut rng) = new();
        a.on_packet(&RS, HOST, 255, s(1.0), &mut rng);
        let r: Ipv6Addr = "fe80::1:2".parse().unwrap();
        assert_eq!(a.on_packet(&real_ra(), r, 255, s(1.1), &mut rng), Verdict::Silenced { router: r });
        assert_eq!(a.silenced_by(), Some(r));
        assert_eq!(a.next_wakeup(), None);
        assert!(a.take_due(s(1000.0), &mut rng).is_empty());
        let Verdict::Ignore(why) = a.on_packet(&RS, HOST, 255, s(2.0), &mut rng) else { panic!("answered") };
        assert!(why.contains("fe80::1:2"), "{why}");
        // a second router is not news
        assert!(matches!(a.on_packet(&real_ra(), LOWER, 255, s(3.0), &mut rng), Verdict::Ignore(_)));
    }

    #[test]
    fn own_and_forwarded_advertisements_do_not_silence() {
        let (mut a, mut rng) = new();
        let ours = build_advertisement(Some([2, 0, 0, 0, 0, 0x10]));
        assert_eq!(a.on_packet(&ours, US, 255, s(1.0), &mut rng), Verdict::Ignore("sent by this host".into()));
        let Verdict::Ignore(why) = a.on_packet(&real_ra(), LOWER, 254, s(1.0), &mut rng) else { panic!() };
        assert!(why.contains("hop limit 254"), "{why}");
        assert_eq!(a.silenced_by(), None);
    }

    #[test]
    fn of_two_announce_nothing_senders_the_lower_address_stays() {
        let (mut a, mut rng) = new();
        let nothing = build_advertisement(None);
        let higher: Ipv6Addr = "fe80::20".parse().unwrap();
        let Verdict::Ignore(why) = a.on_packet(&nothing, higher, 255, s(1.0), &mut rng) else { panic!() };
        assert!(why.contains("lower address"), "{why}");
        assert_eq!(a.on_packet(&nothing, LOWER, 255, s(2.0), &mut rng), Verdict::Silenced { router: LOWER });
    }

    #[test]
    fn every_ignored_packet_says_why() {
        let (mut a, mut rng) = new();
        for (bytes, hop) in [(&RS[..], 1u8), (&RS[..4], 255), (&[1u8, 4, 0, 0, 0, 0, 0, 0][..], 255)] {
            let Verdict::Ignore(why) = a.on_packet(bytes, HOST, hop, s(1.0), &mut rng) else { panic!() };
            assert!(!why.is_empty());
        }
    }
}
