//! Bursts: prepared keys, keys past full buckets, bursts deciding as
//! single packets do, and the throughput measurement.

use super::*;

#[test]
fn prepared_burst_path_matches() {
    let r = nat_rules();
    let mut e = engine(&r, 64);
    let pkts: Vec<PacketMeta> = (1..=8).map(|n| tcp_in(client(n), 1, SYN)).collect();
    let prepared: Vec<Prepared> = pkts.iter().map(Engine::prepare).collect();
    for p in &prepared {
        let _ = e.prefetch_addr(p);
    }
    for (pkt, p) in pkts.iter().zip(&prepared) {
        assert!(fwd(e.process_prepared(pkt, p, Timestamp::ZERO)).new);
    }
    assert_eq!(e.conn_count(), 8);
}

/// A full table: some keys sit past their overflowing home bucket. The
/// burst path fetches the next bucket for those and must still find every
/// connection, in both directions, with and without a prefetch hook.
#[test]
fn burst_lookups_find_keys_past_full_buckets() {
    fn no_prefetch(_: *const u8) {}
    for hook in [false, true] {
        let r = nat_rules();
        let cap = 2000;
        let mut e = engine(&r, cap);
        if hook {
            e.set_prefetch(no_prefetch);
        }
        let c = |i: u32| IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i));
        let n = cap as u32;
        let syns: Vec<PacketMeta> = (0..n).map(|i| tcp_in(c(i), 1000, SYN)).collect();
        let mut v = vec![Verdict::Drop(DropReason::NoService); syns.len()];
        e.process_burst(&syns, Timestamp(1), &mut v);
        assert_eq!(e.conn_count(), cap);
        let spilled = syns
            .iter()
            .filter(|p| {
                let h = Engine::prepare(p).hash;
                e.table.overflow_next(h).is_some()
            })
            .count();
        assert!(spilled > 0, "the table is full enough for overflow");
        let acks: Vec<PacketMeta> = (0..n).map(|i| tcp_in(c(i), 1000, ACK)).collect();
        e.process_burst(&acks, Timestamp(2), &mut v);
        let mut replies = Vec::new();
        for (k, verdict) in v.iter().enumerate() {
            let f = fwd(*verdict);
            assert!(!f.new, "ack {k} found its connection");
            replies.push(tcp_out(f.daddr, f.dport, c(k as u32), 1000, ACK));
        }
        e.process_burst(&replies, Timestamp(3), &mut v);
        for verdict in &v {
            assert!(!fwd(*verdict).new);
        }
        assert_eq!(e.conn_count(), cap);
    }
}

/// Bursts decide exactly as packet-by-packet processing does: the same
/// random mix of SYNs, ACKs, FINs and RSTs from both sides, with flows that
/// open and close within a burst and a small table that fills up, through
/// `process` on one engine and `process_burst` (bursts of 1 to 40, with and
/// without a prefetch hook) on another, gives the same verdicts.
#[test]
fn bursts_decide_as_single_packets() {
    fn no_prefetch(_: *const u8) {}
    for hook in [false, true] {
        let r = nat_rules();
        let (mut one, mut many) = (engine(&r, 48), engine(&r, 48));
        if hook {
            many.set_prefetch(no_prefetch);
        }
        let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ hook as u64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut now = 0u64;
        for round in 0..3000 {
            now += next(2000);
            let t = Timestamp(now);
            let len = next(40) as usize + 1;
            let burst: Vec<PacketMeta> = (0..len)
                .map(|_| {
                    let c = client(next(6) as u8 + 1);
                    let port = 2000 + next(12) as u16;
                    let flags = [SYN, ACK, ACK, FIN, RST, SYNACK][next(6) as usize];
                    if next(3) == 0 {
                        let rs = ip([RS1, RS2][next(2) as usize]);
                        tcp_out(rs, 8080, c, port, flags)
                    } else {
                        tcp_in(c, port, flags)
                    }
                })
                .collect();
            let single: Vec<Verdict> = burst.iter().map(|p| one.process(p, t)).collect();
            let mut out = vec![Verdict::Drop(DropReason::NoService); len];
            many.process_burst(&burst, t, &mut out);
            assert_eq!(out, single, "round {round}, prefetch hook {hook}");
            if next(8) == 0 {
                one.expire(t, 16);
                many.expire(t, 16);
            }
        }
        assert_eq!(one.conn_count(), many.conn_count());
    }
}

/// Throughput measurement (not a correctness test; reads the wall clock).
/// `cargo test --release --no-default-features --lib lb::engine::tests::burst::perf -- --ignored --nocapture`
#[test]
#[ignore]
fn perf_one_million_connections() {
    use std::hint::black_box;
    use std::time::Instant as Wall;

    const N: u32 = 1_000_000;
    let r = nat_rules();
    let mut e = engine(&r, N as usize);
    let pkt = |i: u32, flags: u8| PacketMeta {
        proto: Protocol::Tcp,
        src: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)),
        sport: 1024 + (i % 50_000) as u16,
        dst: ip(VIP),
        dport: 80,
        tcp_flags: TcpFlags(flags),
        dir: Direction::In,
        len: 64,
    };
    let now = Timestamp::from_secs(1);
    let syns: Vec<PacketMeta> = (0..N).map(|i| pkt(i, SYN)).collect();
    let t = Wall::now();
    let mut out = [Verdict::Drop(DropReason::NoService); 32];
    for burst in syns.chunks(32) {
        e.process_burst(burst, now, &mut out);
        black_box(&out);
    }
    let dt = t.elapsed();
    assert_eq!(e.conn_count(), N as usize);
    println!(
        "new connections: {:.2} M/s ({:.0} ns each)",
        N as f64 / dt.as_secs_f64() / 1e6,
        dt.as_nanos() as f64 / N as f64
    );

    // Established packets in random order.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let order: Vec<PacketMeta> = (0..4 * N)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            pkt((x % N as u64) as u32, ACK)
        })
        .collect();
    let t = Wall::now();
    for p in &order {
        black_box(e.process(p, now));
    }
    let dt = t.elapsed();
    println!(
        "established, one at a time: {:.1} ns/packet",
        dt.as_nanos() as f64 / order.len() as f64
    );

    // Bursts of 32 through process_burst (index lines and entries loaded
    // for the whole burst first).
    let mut out = [Verdict::Drop(DropReason::NoService); 32];
    let t = Wall::now();
    for burst in order.chunks(32) {
        e.process_burst(burst, now, &mut out);
        black_box(&out);
    }
    let dt = t.elapsed();
    println!(
        "established, process_burst(32): {:.1} ns/packet",
        dt.as_nanos() as f64 / order.len() as f64
    );
    assert!(matches!(out[0], Verdict::Forward(_)));

    // Cache-resident table (compute cost of the established path).
    let r2 = nat_rules();
    let mut small = engine(&r2, 1024);
    for i in 0..1000 {
        small.process(&pkt(i, SYN), now);
    }
    let hot: Vec<PacketMeta> = order
        .iter()
        .take(1 << 20)
        .map(|p| PacketMeta {
            src: IpAddr::V4(Ipv4Addr::from(
                0x0a00_0000
                    + (u32::from(match p.src {
                        IpAddr::V4(a) => a,
                        _ => unreachable!(),
                    }) % 1000),
            )),
            sport: 0,
            ..*p
        })
        .collect();
    let hot: Vec<PacketMeta> = hot
        .iter()
        .map(|p| {
            let i = u32::from(match p.src {
                IpAddr::V4(a) => a,
                _ => unreachable!(),
            }) - 0x0a00_0000;
            pkt(i, ACK)
        })
        .collect();
    let t = Wall::now();
    for burst in hot.chunks(32) {
        small.process_burst(burst, now, &mut out);
        black_box(&out);
    }
    let dt = t.elapsed();
    println!(
        "established, 1000 connections (cache-resident): {:.1} ns/packet",
        dt.as_nanos() as f64 / hot.len() as f64
    );
    assert!(matches!(out[0], Verdict::Forward(_)));

    println!(
        "memory: {:.1} bytes/conn",
        e.memory_bytes() as f64 / N as f64
    );

    let t = Wall::now();
    let n = e.expire(Timestamp::from_secs(10_000), usize::MAX);
    println!(
        "expire all: {n} in {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(e.conn_count(), 0);
}
