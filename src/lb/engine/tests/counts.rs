//! Random sequences of packets, expiries and weight changes: the shared
//! per-real-server connection counts stay exact.

use super::*;

#[derive(Clone, Debug)]
enum Op {
    In { client: u8, port: u8, flags: u8 },
    Out { client: u8, port: u8, flags: u8 },
    Udp { client: u8, port: u8 },
    Advance(u32),
    Expire(u8),
    Weight { dest: u8, w: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    let flags = prop::sample::select(vec![
        SYN,
        ACK,
        FIN,
        RST,
        SYNACK,
        SYN | FIN,
        0u8,
        TcpFlags::PSH | ACK,
    ]);
    prop_oneof![
        4 => (0u8..6, 0u8..4, flags.clone()).prop_map(|(client, port, flags)| Op::In { client, port, flags }),
        2 => (0u8..6, 0u8..4, flags).prop_map(|(client, port, flags)| Op::Out { client, port, flags }),
        1 => (0u8..6, 0u8..4).prop_map(|(client, port)| Op::Udp { client, port }),
        2 => (0u32..200_000).prop_map(Op::Advance),
        1 => (0u8..8).prop_map(Op::Expire),
        1 => (0u8..3, 0u8..3).prop_map(|(dest, w)| Op::Weight { dest, w }),
    ]
}

fn check_counts(e: &Engine, r: &Rules) {
    // Sum of the table's per-connection flags equals the shared counters.
    for (_, _, dests) in r.services() {
        for d in dests {
            let mut act = 0;
            let mut inact = 0;
            for (_, c) in e.table.iter() {
                if Arc::ptr_eq(e.dest(c.dest).unwrap(), &d.shared) {
                    if c.has(flag::INACTIVE) {
                        inact += 1
                    } else {
                        act += 1
                    }
                }
            }
            assert_eq!(
                (d.shared.active(), d.shared.inactive()),
                (act, inact),
                "dest {}",
                d.cfg.addr
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn counts_exact_after_random_ops(ops in prop::collection::vec(op(), 1..150), persist in any::<bool>(), small in any::<bool>()) {
        let mut svc = ServiceConfig::new(Protocol::Tcp, ip(VIP), 80).with_scheduler("rr");
        if persist {
            svc = svc.with_persistence(30, None);
        }
        let dests = [
            DestConfig::new(ip(RS1), 8080).masq().with_thresholds(3, 0),
            DestConfig::new(ip(RS2), 80),
            DestConfig::new(ip("10.0.0.3"), 8081).masq(),
        ];
        let mut r = rules_with(svc, &dests);
        let ukey = ServiceKey::new(Protocol::Udp, ip(VIP), 53);
        r.add_service(ServiceConfig::new(Protocol::Udp, ip(VIP), 53).with_scheduler("rr")).unwrap();
        r.add_dest(&ukey, DestConfig::new(ip(RS1), 53).masq()).unwrap();
        let mut e = engine(&r, if small { 5 } else { 64 });
        let mut now = Timestamp::ZERO;
        for o in ops {
            match o {
                Op::In { client: c, port, flags } => {
                    let _ = e.process(&tcp_in(client(c), 1000 + port as u16, flags), now);
                }
                Op::Out { client: c, port, flags } => {
                    for (rs, rp) in [(RS1, 8080), ("10.0.0.3", 8081)] {
                        let _ = e.process(&tcp_out(ip(rs), rp, client(c), 1000 + port as u16, flags), now);
                    }
                }
                Op::Udp { client: c, port } => {
                    let p = udp_in(client(c), 2000 + port as u16, 100);
                    let _ = e.process(&p, now);
                }
                Op::Advance(ms) => now = Timestamp(now.0 + ms as u64),
                Op::Expire(b) => { e.expire(now, b as usize); }
                Op::Weight { dest, w } => {
                    let d = dests[dest as usize].with_weight(w as u32);
                    r.edit_dest(&tkey(), d).unwrap();
                    e.set_snapshot(r.snapshot());
                }
            }
            check_counts(&e, &r);
        }
        // Expire everything: all counts back to zero, table empty.
        let end = Timestamp(now.0 + 10_000_000);
        e.expire(end, usize::MAX);
        e.templates().expire_all(end);
        prop_assert_eq!(e.conn_count(), 0);
        prop_assert!(e.templates().is_empty());
        for (_, _, dests) in r.services() {
            for d in dests {
                prop_assert_eq!((d.shared.active(), d.shared.inactive(), d.shared.persistent()), (0, 0, 0));
                prop_assert!(!d.shared.overloaded());
            }
        }
        let c = e.counters();
        prop_assert_eq!(c.created(), c.expired());
    }
}
