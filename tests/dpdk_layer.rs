//! DPDK layer on virtual devices, in one process (the EAL is once per
//! process, so this file holds a single test walking through every check).
#![cfg(feature = "dpdk")]

use std::net::IpAddr;

use rvs::datapath::Outcome;
use rvs::dataplane::handoff;
use rvs::dataplane::lcore::{self, Exit};
use rvs::dataplane::port::rss_types;
use rvs::dataplane::ring::Ring;
use rvs::dataplane::worker::{L2Forward, Pipeline, Worker, WorkerStats};
use rvs::dataplane::BURST_SIZE;
use rvs::dataplane::{Burst, Eal, LcoreId, Mbuf, Mempool, Port, PortConfig, RssConfig};
use rvs::drops::DropReason;
use rvs::ids::{PortIndex, WorkerIndex};
use rvs::rss::Toeplitz;

/// The EAL's runtime directory for our file prefix, removed on drop.
struct RuntimeDir(String);

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.0));
    }
}

fn frame(i: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14..18].copy_from_slice(&i.to_be_bytes());
    for (k, b) in f.iter_mut().enumerate().skip(18) {
        *b = (k as u32 ^ i) as u8;
    }
    f
}

/// rvs names DPDK's hash-type bits from their ABI positions; DPDK's own
/// macros agree.
#[test]
fn rss_hash_type_names_match_dpdk() {
    use rvs::rss::hash_type_names;
    assert_eq!(hash_type_names(rss_types::l3_src_only()), ["l3-src-only"]);
    assert_eq!(hash_type_names(rss_types::l3_dst_only()), ["l3-dst-only"]);
    assert_eq!(hash_type_names(rss_types::l4_src_only()), ["l4-src-only"]);
    assert_eq!(hash_type_names(rss_types::l4_dst_only()), ["l4-dst-only"]);
    assert_eq!(
        hash_type_names(rss_types::tcp()),
        ["ipv4-tcp", "ipv6-tcp", "ipv6-tcp-ex"]
    );
    assert_eq!(
        hash_type_names(rss_types::udp()),
        ["ipv4-udp", "ipv6-udp", "ipv6-udp-ex"]
    );
    assert!(hash_type_names(rss_types::ip())
        .iter()
        .all(|n| !n.starts_with("bit")));
}

#[test]
fn dpdk_layer_on_virtual_devices() {
    let prefix = format!("rvs-test-{}", std::process::id());
    let _dir = RuntimeDir(prefix.clone());
    let eal = Eal::init(&[
        "rvs-test",
        "-l",
        "0,1",
        "--no-huge",
        "--no-pci",
        "-m",
        "256",
        "--file-prefix",
        &prefix,
        "--log-level",
        "*:warning",
    ])
    .expect("EAL init");
    assert!(
        Eal::init(&["again"]).is_err(),
        "a second EAL init is refused"
    );
    assert_eq!(eal.worker_lcores(), vec![LcoreId(1)]);

    let pool = Mempool::new(&eal, "test_pool", 4095, 0, 2048 + 128, -1).expect("mempool");
    let start_avail = pool.avail_count();

    // --- RAII mbuf: prepend/append/adj/trim, freed exactly once.
    {
        let mut m = Mbuf::from_bytes(&pool, &[1, 2, 3, 4]).unwrap();
        assert_eq!(pool.avail_count(), start_avail - 1);
        let room = m.headroom();
        m.prepend(20).unwrap().fill(0xee);
        assert_eq!(m.len(), 24);
        assert_eq!(m.headroom(), room - 20);
        assert_eq!(&m.data()[20..], &[1, 2, 3, 4]);
        assert!(
            m.prepend(room).is_none(),
            "more than the headroom is refused"
        );
        m.append(2).unwrap().copy_from_slice(&[5, 6]);
        assert!(m.adj(20));
        assert!(m.trim(1));
        assert_eq!(m.data(), &[1, 2, 3, 4, 5]);
        assert!(!m.adj(100));
        let raw = m.into_raw();
        // SAFETY: raw came from into_raw just above and is owned by nobody else.
        let m = unsafe { Mbuf::from_raw(raw) };
        drop(m);
        assert_eq!(pool.avail_count(), start_avail);
    }

    // --- Two ring-backed ports, L2 forwarding: frames come out unchanged.
    let rings: Vec<Ring> = ["a_in", "a_out", "b_in", "b_out"]
        .iter()
        .map(|n| Ring::new(&eal, n, 1024).unwrap())
        .collect();
    let mut pa = Port::from_rings(&eal, "net_ring_a", &[&rings[0]], &[&rings[1]]).unwrap();
    let mut pb = Port::from_rings(&eal, "net_ring_b", &[&rings[2]], &[&rings[3]]).unwrap();
    let (rxa, txa) = pa.start(&PortConfig::default(), &pool).unwrap();
    let (rxb, txb) = pb.start(&PortConfig::default(), &pool).unwrap();
    assert!(
        Port::by_name(&eal, &pa.name()).is_err(),
        "a second handle on {} is refused",
        pa.name()
    );

    let to_a: Vec<Vec<u8>> = (0..100)
        .map(|i| frame(i, 60 + (i as usize % 1400)))
        .collect();
    let to_b: Vec<Vec<u8>> = (1000..1050).map(|i| frame(i, 64)).collect();
    let inject = |ring: &Ring, frames: &[Vec<u8>]| {
        for chunk in frames.chunks(32) {
            let mut b = Burst::new();
            for f in chunk {
                b.push(Mbuf::from_bytes(&pool, f).unwrap()).ok().unwrap();
            }
            assert_eq!(ring.enqueue(&mut b), chunk.len());
        }
    };
    inject(&rings[0], &to_a);
    inject(&rings[2], &to_b);

    let stats = std::sync::Arc::new(WorkerStats::default());
    let mut rx = rxa;
    rx.extend(rxb);
    let mut tx = txa;
    tx.extend(txb);
    let mut worker = Worker::new(rx, tx, L2Forward { peer: vec![1, 0] }, stats.clone());
    for _ in 0..20 {
        worker.poll_once(0);
    }
    let collect = |ring: &Ring| {
        let mut out = Vec::new();
        let mut b = Burst::new();
        while ring.dequeue(&mut b) > 0 {
            out.extend(b.drain().map(|m| m.data().to_vec()));
        }
        out
    };
    assert_eq!(
        collect(&rings[3]),
        to_a,
        "port a's frames leave port b unchanged"
    );
    assert_eq!(
        collect(&rings[1]),
        to_b,
        "port b's frames leave port a unchanged"
    );
    let c = stats.snapshot().tally;
    assert_eq!((c.rx, c.tx), (150, 150));
    assert_eq!(c.drops.total(), 0);
    assert!(c.balanced(), "{c:?}");
    let sa = pa.stats().unwrap();
    assert_eq!((sa.ipackets, sa.opackets), (100, 50));
    drop(worker);

    // --- Shared transmit: the same mbuf sent three times by reference;
    // the queue's refusals leave it as it was; it returns to the pool only
    // when the last holder frees it.
    {
        let ring_in = Ring::new(&eal, "sh_in", 4).unwrap();
        let ring_out = Ring::new(&eal, "sh_out", 4).unwrap();
        let mut ps = Port::from_rings(&eal, "net_ring_sh", &[&ring_in], &[&ring_out]).unwrap();
        let (_rx, mut tx) = ps.start(&PortConfig::default(), &pool).unwrap();
        let before = pool.in_use_count();
        let held = [Mbuf::from_bytes(&pool, &frame(7, 60)).unwrap()];
        assert_eq!(tx[0].tx_shared(&held), 1);
        assert_eq!(tx[0].tx_shared(&held), 1);
        assert_eq!(tx[0].tx_shared(&held), 1);
        // The 4-slot ring holds 3: the fourth is refused.
        assert_eq!(tx[0].tx_shared(&held), 0);
        assert_eq!(tx[0].tx_shared(&[]), 0);
        assert_eq!(pool.in_use_count(), before + 1, "one mbuf, shared");
        let mut b = Burst::new();
        assert_eq!(ring_out.dequeue(&mut b), 3);
        assert!(b.as_slice().iter().all(|m| m.data() == frame(7, 60)));
        drop(b);
        assert_eq!(pool.in_use_count(), before + 1, "still held by the sender");
        assert_eq!(held[0].data(), frame(7, 60));
        drop(held);
        assert_eq!(pool.in_use_count(), before);
        assert!(ps.stop().is_err(), "no stop while its queues live");
        drop((_rx, tx));
        ps.stop().unwrap();
        ps.close().unwrap();
    }

    // --- RSS on a multi-queue vdev: key, hash types and RETA accepted and read back.
    let mut pn = Port::attach_vdev(&eal, "net_null7,copy=0").unwrap();
    let info = pn.info().unwrap();
    assert!(info.reta_size >= 4, "net_null offers a redirection table");
    let key: Vec<u8> = (0..40u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    let rss = RssConfig {
        key: key.clone(),
        hash_types: rss_types::ip() | rss_types::tcp() | rss_types::udp(),
        reta: vec![3, 2, 1, 0],
    };
    let cfg = PortConfig {
        rx_queues: 4,
        tx_queues: 4,
        rss: Some(rss),
        ..PortConfig::default()
    };
    let (rxn, txn) = pn.start(&cfg, &pool).unwrap();
    assert_eq!((rxn.len(), txn.len()), (4, 4));
    let reta = pn.reta().unwrap();
    assert_eq!(reta.len(), info.reta_size as usize);
    assert!(reta.chunks(4).all(|c| c == [3, 2, 1, 0]), "{reta:?}");
    let (got_key, hf) = pn.rss_hash_conf().unwrap();
    assert_eq!(got_key, key);
    assert_ne!(hf & rss_types::ip(), 0);
    let bad = PortConfig {
        rx_queues: 2,
        tx_queues: 2,
        rss: Some(RssConfig {
            key: key.clone(),
            hash_types: rss_types::ip(),
            reta: vec![0, 5],
        }),
        ..PortConfig::default()
    };
    assert!(
        pn.start(&cfg, &pool).is_err(),
        "no restart while the queues of the last start live"
    );
    drop((rxn, txn));
    pn.stop().unwrap();
    assert!(
        pn.start(&bad, &pool).is_err(),
        "a RETA naming a missing queue is refused"
    );
    pn.close().unwrap();

    // --- rvs's software Toeplitz agrees with DPDK's rte_softrss.
    let t = Toeplitz::new(&key);
    let mut seed = 0x1234_5678_u32;
    for _ in 0..1000 {
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let (s, d, p) = (next(), next(), next());
        let mut words = [s, d, p];
        // SAFETY: words is 3 host-order u32s, the key 40 bytes.
        let want = unsafe { dpdk_sys::rvs_softrss(words.as_mut_ptr(), 3, key.as_ptr()) };
        let got = t.hash_tuple(
            IpAddr::from(s.to_be_bytes()),
            IpAddr::from(d.to_be_bytes()),
            Some(((p >> 16) as u16, p as u16)),
        );
        assert_eq!(got, want);
    }

    // --- Hand-off between two workers: every packet is processed by the
    // worker its first payload byte names (its "owner") and leaves on that
    // worker's tx queue of the other port, whichever queue it arrived on.
    struct ByOwner {
        me: u16,
        seen: std::sync::Arc<std::sync::Mutex<Vec<(u16, u8)>>>,
    }
    impl Pipeline for ByOwner {
        fn process(&mut self, port: PortIndex, pkts: &mut [Mbuf], v: &mut [Outcome; BURST_SIZE]) {
            for (m, v) in pkts.iter().zip(v.iter_mut()) {
                let owner = m.data()[14] as u16;
                *v = if owner > 1 {
                    Outcome::Drop(DropReason::NoPort)
                } else if owner != self.me {
                    Outcome::Handoff(WorkerIndex(owner))
                } else {
                    self.seen.lock().unwrap().push((self.me, m.data()[15]));
                    Outcome::Tx(PortIndex(1 - port.0))
                };
            }
        }
    }
    let q: Vec<Ring> = (0..8)
        .map(|i| Ring::new(&eal, &format!("h{i}"), 1024).unwrap())
        .collect();
    // Port c: rx rings q0 (queue 0), q1 (queue 1); tx rings q2, q3.
    // Port s: rx rings q4, q5; tx rings q6, q7.
    let mut pc = Port::from_rings(&eal, "net_ring_c", &[&q[0], &q[1]], &[&q[2], &q[3]]).unwrap();
    let mut ps = Port::from_rings(&eal, "net_ring_s", &[&q[4], &q[5]], &[&q[6], &q[7]]).unwrap();
    let two = PortConfig {
        rx_queues: 2,
        tx_queues: 2,
        ..PortConfig::default()
    };
    let (mut rxc, mut txc) = pc.start(&two, &pool).unwrap();
    let (mut rxs, mut txs) = ps.start(&two, &pool).unwrap();
    let mut hs = handoff::mesh(&eal, 2, "t").unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let st1 = std::sync::Arc::new(WorkerStats::default());
    let st0 = std::sync::Arc::new(WorkerStats::default());
    let mut w1 = Worker::new(
        vec![rxc.pop().unwrap(), rxs.pop().unwrap()],
        vec![txc.pop().unwrap(), txs.pop().unwrap()],
        ByOwner {
            me: 1,
            seen: seen.clone(),
        },
        st1.clone(),
    )
    .with_handoff(hs.pop().unwrap());
    let mut w0 = Worker::new(
        vec![rxc.pop().unwrap(), rxs.pop().unwrap()],
        vec![txc.pop().unwrap(), txs.pop().unwrap()],
        ByOwner {
            me: 0,
            seen: seen.clone(),
        },
        st0.clone(),
    )
    .with_handoff(hs.pop().unwrap());
    // 40 packets into port c queue 0 and 40 into port s queue 1; owners alternate.
    let mk = |owner: u8, id: u8| {
        let mut f = frame(id as u32, 64);
        f[14] = owner;
        f[15] = id;
        f
    };
    let to_c0: Vec<Vec<u8>> = (0..40).map(|i| mk(i % 2, i)).collect();
    let to_s1: Vec<Vec<u8>> = (0..40).map(|i| mk(i % 2, 100 + i)).collect();
    inject(&q[0], &to_c0);
    inject(&q[5], &to_s1);
    for _ in 0..10 {
        w0.poll_once(0);
        w1.poll_once(0);
    }
    // Owner 0's packets leave on queue 0 of the other port, owner 1's on queue 1.
    let out_s0 = collect(&q[6]);
    let out_s1 = collect(&q[7]);
    let out_c0 = collect(&q[2]);
    let out_c1 = collect(&q[3]);
    let want = |frames: &[Vec<u8>], owner: u8| -> Vec<Vec<u8>> {
        frames.iter().filter(|f| f[14] == owner).cloned().collect()
    };
    assert_eq!(out_s0, want(&to_c0, 0));
    assert_eq!(out_s1, want(&to_c0, 1));
    assert_eq!(out_c0, want(&to_s1, 0));
    assert_eq!(out_c1, want(&to_s1, 1));
    let (c0, c1) = (st0.snapshot().tally, st1.snapshot().tally);
    assert!(c0.balanced() && c1.balanced(), "{c0:?} {c1:?}");
    assert_eq!(
        (c0.handoff_out, c1.handoff_in),
        (20, 20),
        "w0 received c0 and handed owner-1 packets to w1"
    );
    assert_eq!(
        (c1.handoff_out, c0.handoff_in),
        (20, 20),
        "w1 received s1 and handed owner-0 packets to w0"
    );
    assert_eq!(c0.tx + c1.tx, 80);
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .all(|&(me, id)| me == (id % 2) as u16));
    drop((w0, w1));
    for mut p in [pc, ps] {
        p.stop().unwrap();
        p.close().unwrap();
    }
    drop(q);

    // --- A panicking worker is caught at the lcore entry and reported.
    let h = lcore::launch(&eal, LcoreId(1), || panic!("boom on purpose")).unwrap();
    assert_eq!(h.join(), Exit::Panicked("boom on purpose".into()));
    let h = lcore::launch(&eal, LcoreId(1), || ()).unwrap();
    assert_eq!(h.join(), Exit::Returned);

    // --- A port closed while its queues live: they stay valid (the device
    // stays open and started) until the last of them is dropped, which
    // closes it.
    {
        let ring_in = Ring::new(&eal, "cl_in", 64).unwrap();
        let ring_out = Ring::new(&eal, "cl_out", 64).unwrap();
        let mut pl = Port::from_rings(&eal, "net_ring_cl", &[&ring_in], &[&ring_out]).unwrap();
        let open = eal.port_count();
        let (mut rx, mut tx) = pl.start(&PortConfig::default(), &pool).unwrap();
        let (mut rxq, mut txq) = (rx.pop().unwrap(), tx.pop().unwrap());
        pl.close().unwrap();
        assert_eq!(eal.port_count(), open, "open while its queues live");
        let frames = vec![frame(1, 60), frame(2, 90)];
        inject(&ring_in, &frames);
        let mut b = Burst::new();
        assert_eq!(rxq.rx_burst(&mut b), 2);
        assert_eq!(txq.tx_burst(&mut b), 2);
        assert_eq!(collect(&ring_out), frames);
        drop(rxq);
        assert_eq!(eal.port_count(), open, "the tx queue still holds it");
        inject(&ring_in, &frames);
        drop(txq);
        assert_eq!(eal.port_count(), open - 1, "closed with its last queue");
        assert!(Port::by_name(&eal, "net_ring_cl").is_err());
        // The frames left in the rx ring are the ring's, freed with it.
        assert_eq!(ring_in.count(), 2);
    }

    // --- The kernel twins' frame mover (a ring port stands for the tap):
    // frames for the kernel reach their port's twin, the kernel's frames
    // come back naming the port, foreign sources and unknown ports are
    // counted, not sent.
    {
        use rvs::dataplane::twin::{self, TwinPort};
        use std::sync::atomic::Ordering;
        let tw_in = Ring::new(&eal, "tw_in", 256).unwrap();
        let tw_out = Ring::new(&eal, "tw_out", 256).unwrap();
        let mut tap = Port::from_rings(&eal, "net_ring_tw", &[&tw_in], &[&tw_out]).unwrap();
        let (mut rx, mut tx) = tap.start(&PortConfig::default(), &pool).unwrap();
        let to_kernel = Ring::new(&eal, "tw_to_kernel", 256).unwrap();
        let from_kernel = Ring::new(&eal, "tw_from_kernel", 256).unwrap();
        let mac = [2, 0, 0, 0, 0, 1];
        let phys = pa.id();
        let twins = vec![TwinPort {
            port: phys,
            mac,
            rx: rx.pop().unwrap(),
            tx: tx.pop().unwrap(),
        }];
        let mover = twin::Mover::spawn(twins, to_kernel.clone(), from_kernel.clone()).unwrap();
        let stats = mover.stats.clone();
        let mut b = Burst::new();
        for (i, port) in [(0, phys.0), (1, phys.0), (2, phys.0), (3, 77)] {
            let mut m = Mbuf::from_bytes(&pool, &frame(i, 64)).unwrap();
            m.set_in_port(port);
            b.push(m).ok().unwrap();
        }
        assert_eq!(to_kernel.enqueue(&mut b), 4);
        // frame() is from 02:00:00:00:00:01 (the port's MAC here); one
        // from elsewhere.
        let mut foreign = frame(11, 64);
        foreign[6..12].copy_from_slice(&[2, 9, 9, 9, 9, 9]);
        for f in [frame(10, 64), foreign, frame(12, 80)] {
            b.push(Mbuf::from_bytes(&pool, &f).unwrap()).ok().unwrap();
        }
        assert_eq!(tw_in.enqueue(&mut b), 3);
        let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let t0 = std::time::Instant::now();
        while (ld(&stats.to_kernel) < 3 || ld(&stats.from_kernel) < 2)
            && t0.elapsed() < std::time::Duration::from_secs(5)
        {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        drop(mover);
        assert_eq!(
            (ld(&stats.to_kernel), ld(&stats.to_kernel_dropped)),
            (3, 1),
            "three to the twin, one for a port without one"
        );
        assert_eq!((ld(&stats.from_kernel), ld(&stats.bad_source)), (2, 1));
        let mut got = Burst::new();
        assert_eq!(tw_out.dequeue(&mut got), 3, "written to the twin");
        let firsts: Vec<u8> = got.drain().map(|m| m.data()[17]).collect();
        assert_eq!(firsts, vec![0, 1, 2]);
        assert_eq!(from_kernel.dequeue(&mut got), 2);
        for m in got.drain() {
            assert_eq!(m.in_port(), phys.0, "the kernel's frame names its port");
            assert_eq!(&m.data()[6..12], &mac);
        }
        drop(tap);
    }

    // --- Nothing leaked: every mbuf is back in the pool.
    for mut p in [pa, pb] {
        p.stop().unwrap();
        p.close().unwrap();
    }
    drop(rings);
    assert_eq!(pool.avail_count(), start_avail, "mbufs leaked");
    assert_eq!(pool.in_use_count(), 0);

    // --- A pool dropped while one of its mbufs lives is not freed: the mbuf
    // stays usable and is later freed into it cleanly. (The pool, and with it
    // the EAL, is leaked on purpose, so this comes last.)
    let small = Mempool::new(&eal, "test_leak", 63, 8, 2048 + 128, -1).unwrap();
    let mut m = Mbuf::from_bytes(&small, &frame(9, 100)).unwrap();
    // Freed on this lcore, an mbuf goes to its cache: free, not in use.
    drop(Mbuf::alloc(&small).unwrap());
    assert_eq!(small.in_use_count(), 1, "a cached mbuf is not in use");
    drop(small);
    m.data_mut()[0] = 0xaa;
    m.append(100).unwrap().fill(7);
    assert_eq!(m.len(), 200);
    assert_eq!(m.data()[..2], [0xaa, 0]);
    let name = std::ffi::CString::new("test_leak").unwrap();
    // SAFETY: a lookup by name; the pool was leaked, so it is still there.
    let raw = unsafe { dpdk_sys::rte_mempool_lookup(name.as_ptr()) };
    assert!(!raw.is_null(), "the pool was not freed");
    // SAFETY: raw is a live (leaked) mempool.
    let in_use = || unsafe { dpdk_sys::rvs_mempool_in_use_count(raw) };
    assert_eq!(in_use(), 1);
    drop(m);
    assert_eq!(in_use(), 0, "the mbuf went back into the leaked pool");
    drop(pool);
    drop(eal);
}
