//! Rate limits on the ICMP errors rvsd generates (time exceeded,
//! fragmentation needed, packet too big, port unreachable), with the
//! semantics of the kernel's `icmp_ratelimit` (per destination: a token
//! every `ratelimit`, bursts of six) and `icmp_msgs_per_sec`/
//! `icmp_msgs_burst` (one bucket for all destinations). Without them,
//! every expired TTL toward a spoofed source, and every spoofed SYN to a
//! service whose real servers are all at weight 0, is an error sent one
//! for one: a reflector.
//!
//! The per-destination state is a direct-mapped table: a destination that
//! collides with another takes its slot and starts with a full burst, as a
//! new kernel inet_peer does. The global bucket bounds what any number of
//! destinations can get.

use std::net::IpAddr;

use crate::lb::time::Timestamp;

/// The limits (0 turns one off), like the sysctls of the same names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpLimitConfig {
    /// Milliseconds between errors to one destination (`icmp_ratelimit`).
    pub ratelimit_ms: u64,
    /// Errors per second to all destinations (`icmp_msgs_per_sec`).
    pub msgs_per_sec: u64,
    /// The global bucket's depth (`icmp_msgs_burst`).
    pub msgs_burst: u64,
}

impl Default for IcmpLimitConfig {
    /// The kernel's defaults.
    fn default() -> Self {
        IcmpLimitConfig {
            ratelimit_ms: 1000,
            msgs_per_sec: 1000,
            msgs_burst: 50,
        }
    }
}

/// How many errors a destination may get at once (the kernel's
/// `XRLIM_BURST_FACTOR`).
const BURST_FACTOR: u64 = 6;

/// Slots of the per-destination table.
const PEERS: usize = 1024;

#[derive(Clone, Copy)]
struct Peer {
    addr: IpAddr,
    /// Milliseconds of credit.
    tokens: u64,
    last: Timestamp,
}

/// One worker's limiter.
pub struct IcmpLimiter {
    cfg: IcmpLimitConfig,
    peers: Box<[Option<Peer>]>,
    /// Global credit in thousandths of a message.
    global: u64,
    global_last: Timestamp,
}

impl IcmpLimiter {
    pub fn new(cfg: IcmpLimitConfig) -> Self {
        IcmpLimiter {
            cfg,
            peers: vec![None; PEERS].into_boxed_slice(),
            global: cfg.msgs_burst * 1000,
            global_last: Timestamp::ZERO,
        }
    }

    /// Whether an error to `dst` may be sent at `now`; if so, it is
    /// charged to both limits.
    pub fn allow(&mut self, dst: &IpAddr, now: Timestamp) -> bool {
        let global = self.cfg.msgs_per_sec > 0;
        if global {
            let elapsed = now.0.saturating_sub(self.global_last.0);
            self.global_last = now;
            self.global = (self.global + elapsed.saturating_mul(self.cfg.msgs_per_sec))
                .min(self.cfg.msgs_burst.max(1) * 1000);
            if self.global < 1000 {
                return false;
            }
        }
        if self.cfg.ratelimit_ms > 0 && !self.peer_allows(dst, now) {
            return false;
        }
        if global {
            self.global -= 1000;
        }
        true
    }

    fn peer_allows(&mut self, dst: &IpAddr, now: Timestamp) -> bool {
        let every = self.cfg.ratelimit_ms;
        let cap = BURST_FACTOR * every;
        let slot = &mut self.peers[slot_of(dst)];
        let peer = match slot {
            Some(p) if p.addr == *dst => p,
            _ => slot.insert(Peer {
                addr: *dst,
                tokens: cap,
                last: now,
            }),
        };
        peer.tokens = (peer.tokens + now.0.saturating_sub(peer.last.0)).min(cap);
        peer.last = now;
        if peer.tokens >= every {
            peer.tokens -= every;
            true
        } else {
            false
        }
    }
}

fn slot_of(a: &IpAddr) -> usize {
    let x = match a {
        IpAddr::V4(a) => u32::from(*a) as u64,
        IpAddr::V6(a) => {
            let b = u128::from(*a);
            (b as u64) ^ ((b >> 64) as u64)
        }
    };
    // Fibonacci hashing: spoofed sources differing in few bits spread.
    (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 54) as usize % PEERS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn one_destination_gets_a_burst_of_six_then_one_a_second() {
        let mut l = IcmpLimiter::new(IcmpLimitConfig::default());
        let a = ip("192.0.2.1");
        let sent = (0..20).filter(|_| l.allow(&a, at(5000))).count();
        assert_eq!(sent, 6);
        assert!(!l.allow(&a, at(5999)));
        assert!(l.allow(&a, at(6000)));
        assert!(!l.allow(&a, at(6500)));
        // Another destination has its own budget.
        assert!(l.allow(&ip("2001:db8::1"), at(6500)));
    }

    #[test]
    fn all_destinations_share_the_global_bucket() {
        let mut l = IcmpLimiter::new(IcmpLimitConfig::default());
        // Many spoofed sources at one instant: the burst of 50, no more.
        let sent = (0..5000u32)
            .filter(|i| l.allow(&IpAddr::V4((0x0a00_0000 + i).into()), at(1000)))
            .count();
        assert_eq!(sent, 50);
        // Over the next second, 1000 more at most.
        let later = (0..5000u32)
            .filter(|i| {
                l.allow(
                    &IpAddr::V4((0x0b00_0000 + i).into()),
                    at(1000 + u64::from(*i) / 5),
                )
            })
            .count();
        assert!((990..=1000).contains(&later), "{later}");
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let mut l = IcmpLimiter::new(IcmpLimitConfig {
            ratelimit_ms: 0,
            msgs_per_sec: 0,
            msgs_burst: 0,
        });
        let a = ip("192.0.2.1");
        assert!((0..10_000).all(|_| l.allow(&a, at(1))));
    }
}
