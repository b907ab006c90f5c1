//! Fuzz-style test: mutated frames into [`classify`] never panic, and every
//! reply it produces parses and carries valid checksums. Uses `wire`'s
//! deterministic mutator; runs for `RVS_FUZZ_SECS` seconds (default 2).

use std::time::{Duration, Instant};

use super::fuzzkit::{check as run_one, fix_checksums};
use super::testutil::*;
use super::{classify, Action};
use crate::wire::fuzz::{mutate, XorShift};
use crate::wire::parse_frame;

fn seeds() -> Vec<Vec<u8>> {
    use crate::wire::icmpv6::NdFlags;
    let mut v = vec![
        arp_frame(1, PEER_MAC, OWN4_PEER, VIP4),
        arp_frame(1, PEER_MAC, OWN4_PEER, OWN4),
        arp_frame(2, PEER_MAC, OWN4_PEER, OWN4),
        arp_frame(1, PEER_MAC, OWN4_PEER, "10.0.0.77"),
        echo4_frame(OWN4_PEER, OWN4, b"abc"),
        echo4_frame(OWN4_PEER, VIP4, &[0u8; 57]),
        echo6_frame(OWN6_PEER, VIP6, b"hello"),
        ns_frame(OWN6_PEER, OWN6, true),
        ns_frame(OWN6_PEER, VIP6, false),
        ns_frame("::", VIP6, false),
        na_frame(OWN6_PEER, OWN6, OWN6_PEER, NdFlags::SOLICITED),
        na_frame(OWN6_PEER, "ff02::1", OWN6_PEER, NdFlags::OVERRIDE),
        tcp4(OWN4_PEER, OWN4, 22),
        udp6(OWN6_PEER, OWN6),
        icmp6_frame(134, OWN6_PEER, "ff02::1"),
    ];
    let mut tagged = ns_frame(OWN6_PEER, VIP6, true);
    tagged.splice(12..12, [0x81, 0x00, 0x00, 0x07]);
    v.push(tagged);
    v
}

#[test]
fn seeds_reply_cleanly() {
    let i = iface();
    for s in seeds() {
        run_one(&s, &i);
    }
}

#[test]
fn small_inputs() {
    let i = iface();
    for n in 0..100 {
        for b in [0u8, 0xff, 0x08, 0x86] {
            run_one(&vec![b; n], &i);
        }
    }
}

/// Deterministic mutation loop for RVS_FUZZ_SECS seconds (default 2).
#[test]
fn mutation_loop() {
    let secs = std::env::var("RVS_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(2.0);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let seeds = seeds();
    let i = iface();
    let mut rng = XorShift::new(0x6e65_745f_7276_7301);
    let (mut iters, mut replies) = (0u64, 0u64);
    while Instant::now() < deadline {
        let mut buf = seeds[rng.below(seeds.len())].clone();
        for _ in 0..=rng.below(3) {
            mutate(&mut rng, &mut buf);
        }
        if rng.below(2) == 0 {
            if let Ok(h) = parse_frame(&buf) {
                fix_checksums(&mut buf, &h);
            }
        }
        let r = std::panic::catch_unwind(|| run_one(&buf, &i));
        if r.is_err() {
            panic!("classify panicked or replied badly on {:02x?}", buf);
        }
        if let Ok(h) = parse_frame(&buf) {
            let mut b = buf.clone();
            b.resize(buf.len() + 64, 0);
            replies += matches!(classify(&mut b, &h, &i).action, Action::Reply { .. }) as u64;
        }
        iters += 1;
    }
    eprintln!("net fuzz: {iters} inputs in {secs}s, {replies} replies, no panic");
    assert!(iters > 0);
}
