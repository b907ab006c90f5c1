//! Fuzz-style test: mutated frames into [`classify`] never panic, and every
//! reply it produces parses and carries valid checksums. Uses `wire`'s
//! deterministic mutator; runs for `RVS_FUZZ_SECS` seconds (default 2).

use std::time::{Duration, Instant};

use super::testutil::*;
use super::{classify, Action, Iface};
use crate::wire::fuzz::{mutate, XorShift};
use crate::wire::parse::{Headers, L3};
use crate::wire::{icmpv4, icmpv6, ipv4, ipv6, parse_frame, IpProtocol};

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

/// Recomputes the ICMP/ICMPv6 and IPv4 header checksums of a parsed frame,
/// so that mutants get past checksum validation into the logic behind it.
fn fix_checksums(f: &mut [u8], h: &Headers) {
    let (l3, l4, end) = (h.l3_offset as usize, h.l4_offset as usize, h.l3_end());
    if end > f.len() || l4 > end {
        return;
    }
    match (h.l3, h.protocol) {
        (L3::Ipv4, p) => {
            if let Ok(mut ip) = ipv4::Packet::new_checked(&mut f[l3..end]) {
                ip.fill_checksum();
            }
            if p == IpProtocol::ICMP {
                if let Ok(mut m) = icmpv4::Packet::new_checked(&mut f[l4..end]) {
                    m.fill_checksum();
                }
            }
        }
        (L3::Ipv6, IpProtocol::ICMPV6) => {
            if let (std::net::IpAddr::V6(s), std::net::IpAddr::V6(d)) = (h.src, h.dst) {
                if f[l4..end].len() >= 8 {
                    icmpv6::Packet::new_unchecked(&mut f[l4..end]).fill_checksum(&s, &d);
                }
            }
        }
        _ => {}
    }
}

/// Runs one input with and without tailroom; checks every reply.
fn run_one(input: &[u8], iface: &Iface) {
    let Ok(h) = parse_frame(input) else {
        return;
    };
    for room in [0usize, 8, 64] {
        let mut buf = input.to_vec();
        buf.resize(input.len() + room, 0);
        let o = classify(&mut buf, &h, iface);
        let Action::Reply { len } = o.action else {
            continue;
        };
        assert!(len <= buf.len(), "reply longer than the buffer");
        let out = &buf[..len];
        let r = parse_frame(out).expect("reply parses");
        assert_eq!(&out[6..12], &OUR_MAC.0, "reply from our MAC");
        match r.l3 {
            L3::Arp => assert_eq!(&out[r.l3_offset as usize + 6..][..2], &[0, 2]),
            L3::Ipv4 => {
                let ip = ipv4::Packet::new_checked(r.l3_bytes(out)).unwrap();
                assert!(ip.verify_checksum(), "IPv4 header checksum");
                let m = icmpv4::Packet::new_checked(r.l4_bytes(out)).unwrap();
                assert!(m.verify_checksum(), "ICMP checksum");
                assert_eq!(m.msg_type(), icmpv4::Message::ECHO_REPLY);
                assert!(iface.lookup(&r.src).is_some());
            }
            L3::Ipv6 => {
                let ip = ipv6::Packet::new_checked(r.l3_bytes(out)).unwrap();
                let m = icmpv6::Packet::new_checked(r.l4_bytes(out)).unwrap();
                assert!(
                    m.verify_checksum(&ip.src_addr(), &ip.dst_addr()),
                    "ICMPv6 checksum"
                );
                assert!(matches!(
                    m.msg_type(),
                    icmpv6::Message::ECHO_REPLY | icmpv6::Message::NEIGHBOR_ADVERT
                ));
                assert!(iface.lookup(&r.src).is_some());
            }
            L3::Other => panic!("reply of unknown type"),
        }
    }
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
