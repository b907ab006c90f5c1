//! The pieces together, in memory: a worker, the control thread and a peer
//! host (played by this module's own classifier with the peer's
//! configuration), driven with injected time.

use crate::ids::PortIndex;
use std::net::IpAddr;
use std::time::Duration;

use super::testutil::*;
use super::*;
use crate::lb::time::Timestamp;
use crate::wire::{parse_frame, EthernetAddress};

/// The peer 10.0.0.1 / 2001:db8::1 at PEER_MAC.
fn peer() -> Iface {
    Iface::new(0, PEER_MAC)
        .with_addr("10.0.0.1/24".parse().unwrap())
        .with_addr("2001:db8::1/64".parse().unwrap())
}

/// What a worker holds.
struct Worker {
    snap: std::sync::Arc<NeighSnapshot>,
    snap_rx: SnapshotRx<NeighSnapshot>,
    learn: LearnTx,
    pending: Pending<Vec<u8>>,
    limiter: RequestLimiter,
    drops: crate::drops::DropCounts,
    /// Frames sent, (port, bytes).
    tx: Vec<(u16, Vec<u8>)>,
    resolved: Vec<Resolved<Vec<u8>>>,
}

impl Worker {
    /// Receives a frame on port 0 from the wire.
    fn rx(&mut self, cfg: &NetConfig, frame: &[u8], now: Timestamp) -> Action {
        let h = parse_frame(frame).unwrap();
        let mut buf = frame.to_vec();
        buf.resize(frame.len() + 16, 0);
        let o = classify(&mut buf, &h, cfg.port(PortIndex(0)).unwrap());
        if let Some(l) = o.learned {
            if l.worth_reporting(&self.snap, now) {
                self.learn.send(l);
            }
        }
        match o.action {
            Action::Reply { len } => self.tx.push((0, buf[..len].to_vec())),
            Action::Drop(r) => self.drops.bump(r),
            Action::Pass | Action::Kernel => {}
        }
        o.action
    }

    /// Sends `pkt` towards `dst`: route, resolve or queue and ask.
    fn send(
        &mut self,
        cfg: &NetConfig,
        routes: &RouteTable,
        dst: IpAddr,
        pkt: Vec<u8>,
        now: Timestamp,
    ) {
        let hop = routes.lookup(&dst).unwrap();
        let iface = cfg.port(hop.port).unwrap();
        if let Some(e) = self.snap.get(hop.port, &hop.addr) {
            let mac = e.mac;
            if e.needs_refresh(now) && self.limiter.allow(hop.port, hop.addr, now) {
                self.request(iface, hop.addr, Some(mac));
            }
            self.tx.push((hop.port.0, with_dst_mac(pkt, mac)));
            return;
        }
        match self.pending.push(hop.port, hop.addr, pkt, now) {
            Ok(q) if q.send_request => self.request(iface, hop.addr, None),
            Ok(_) => {}
            Err(_) => {}
        }
    }

    fn request(&mut self, iface: &Iface, addr: IpAddr, unicast: Option<EthernetAddress>) {
        let mut buf = [0u8; 128];
        let n = match addr {
            IpAddr::V4(a) => arp::build_request(&mut buf, iface, a, unicast),
            IpAddr::V6(a) => nd::build_solicit(&mut buf, iface, a, unicast),
        }
        .unwrap();
        self.tx.push((iface.port().0, buf[..n].to_vec()));
    }

    /// Between bursts.
    fn poll(&mut self, cfg: &NetConfig, now: Timestamp) {
        if let Some(s) = self.snap_rx.latest() {
            self.snap = s;
            self.resolved.clear();
            self.pending.take_resolved(&self.snap, &mut self.resolved);
            for r in self.resolved.drain(..) {
                self.tx.push((r.port.0, with_dst_mac(r.pkt, r.mac)));
            }
        }
        self.pending.expire(now, drop);
        let mut asks = Vec::new();
        self.pending.poll_requests(now, |p, a| asks.push((p, a)));
        for (p, a) in asks {
            self.request(cfg.port(p).unwrap(), a, None);
        }
    }
}

fn with_dst_mac(mut pkt: Vec<u8>, mac: EthernetAddress) -> Vec<u8> {
    pkt[..6].copy_from_slice(&mac.0);
    pkt
}

/// The peer answers whatever our worker sent it (ARP request, NS).
fn peer_answers(frame: &[u8]) -> Option<Vec<u8>> {
    let h = parse_frame(frame).ok()?;
    let mut buf = frame.to_vec();
    buf.resize(frame.len() + 16, 0);
    match classify(&mut buf, &h, &peer()).action {
        Action::Reply { len } => Some(buf[..len].to_vec()),
        _ => None,
    }
}

fn setup() -> (
    NetConfig,
    RouteTable,
    NeighTable,
    SnapshotTx<NeighSnapshot>,
    LearnRx,
    Worker,
) {
    let cfg = NetConfig::new().with(iface());
    let routes = RouteTable::from_config(&cfg);
    let mut table = NeighTable::new(NeighConfig::default());
    let (snap_tx, mut rxs) = snapshot_channel(1);
    let (learn, learn_rx) = learn_channel(64);
    let w = Worker {
        snap: table.snapshot(),
        snap_rx: rxs.pop().unwrap(),
        learn,
        pending: Pending::new(PendingConfig::default()),
        limiter: RequestLimiter::new(64, Duration::from_secs(1)),
        drops: crate::drops::DropCounts::default(),
        tx: Vec::new(),
        resolved: Vec::with_capacity(PendingConfig::default().max_total),
    };
    (cfg, routes, table, snap_tx, learn_rx, w)
}

fn control(table: &mut NeighTable, rx: &LearnRx, tx: &SnapshotTx<NeighSnapshot>, now: Timestamp) {
    table.apply(rx, 1024, now);
    table.expire(now);
    if table.is_dirty() {
        tx.publish(&table.snapshot());
    }
}

#[test]
fn miss_request_learn_publish_resolve() {
    for (dst, src) in [(OWN4_PEER, VIP4), (OWN6_PEER, VIP6)] {
        let (cfg, routes, mut table, snap_tx, learn_rx, mut w) = setup();
        let t0 = Timestamp::from_secs(100);
        let pkt = |n: u8| {
            let mut p = if dst.contains(':') {
                udp6(src, dst)
            } else {
                tcp4(src, dst, 80)
            };
            p.push(n);
            p
        };
        // Two packets miss: queued, one request goes out.
        w.send(&cfg, &routes, ip(dst), pkt(1), t0);
        w.send(&cfg, &routes, ip(dst), pkt(2), t0);
        assert_eq!((w.pending.len(), w.tx.len()), (2, 1), "{dst}");
        let request = w.tx.pop().unwrap().1;
        // The peer answers; our worker learns from the answer.
        let answer = peer_answers(&request).expect("peer answers our request");
        let a = w.rx(&cfg, &answer, t0);
        assert!(matches!(
            a,
            Action::Drop(DropReason::ArpHandled | DropReason::NdHandled)
        ));
        assert_eq!(w.learn.sent, 1);
        // Control applies and publishes; the worker picks it up and sends.
        control(&mut table, &learn_rx, &snap_tx, t0);
        w.poll(&cfg, t0);
        assert_eq!(w.tx.len(), 2);
        for (k, (port, f)) in w.tx.drain(..).enumerate() {
            assert_eq!(port, 0);
            assert_eq!(&f[..6], &PEER_MAC.0);
            assert_eq!(*f.last().unwrap(), k as u8 + 1, "arrival order");
        }
        assert!(w.pending.is_empty());
        assert_eq!(w.pending.stats().resolved, 2);
        // Next packet: straight out.
        w.send(&cfg, &routes, ip(dst), pkt(3), t0 + Duration::from_secs(1));
        assert_eq!(w.tx.len(), 1);
        w.tx.clear();
        // 40 s later the entry is stale: used, and one unicast probe sent.
        let t1 = t0 + Duration::from_secs(40);
        w.send(&cfg, &routes, ip(dst), pkt(4), t1);
        w.send(&cfg, &routes, ip(dst), pkt(5), t1);
        assert_eq!(w.tx.len(), 3, "probe + two packets");
        let probe = w.tx.remove(0).1;
        assert_eq!(&probe[..6], &PEER_MAC.0, "unicast probe");
        let answer = peer_answers(&probe).unwrap();
        w.rx(&cfg, &answer, t1);
        control(&mut table, &learn_rx, &snap_tx, t1);
        w.poll(&cfg, t1);
        assert!(!w
            .snap
            .get(PortIndex(0), &ip(dst))
            .unwrap()
            .needs_refresh(t1));
        assert_eq!(
            table.get(PortIndex(0), &ip(dst), t1).unwrap().state,
            neigh::NeighState::Reachable
        );
    }
}

#[test]
fn unanswered_requests_retry_then_expire() {
    let (cfg, routes, mut table, snap_tx, learn_rx, mut w) = setup();
    let t0 = Timestamp::from_secs(5);
    let dst = ip("10.0.0.50");
    w.send(&cfg, &routes, dst, tcp4(VIP4, "10.0.0.50", 80), t0);
    assert_eq!(w.tx.len(), 1);
    // Retries once a second while the packet waits, then it expires.
    for ms in (100..=3000).step_by(100) {
        let now = t0 + Duration::from_millis(ms);
        control(&mut table, &learn_rx, &snap_tx, now);
        w.poll(&cfg, now);
    }
    assert_eq!(w.tx.len(), 3, "requests at 0, 1 s, 2 s");
    assert!(w.tx.iter().all(|(_, f)| f[..6] == [0xff; 6]));
    assert_eq!(w.pending.stats().expired, 1);
    assert!(w.pending.is_empty());
}

#[test]
fn requests_from_neighbours_are_answered_and_learned_once() {
    let (cfg, _routes, mut table, snap_tx, learn_rx, mut w) = setup();
    let t0 = Timestamp::from_secs(1);
    let req = arp_frame(1, PEER_MAC, OWN4_PEER, VIP4);
    assert_eq!(w.rx(&cfg, &req, t0), Action::Reply { len: 60 });
    control(&mut table, &learn_rx, &snap_tx, t0);
    w.poll(&cfg, t0);
    // Known now, unconfirmed (it asked, we never asked back): stale, so
    // its next request is reported too (it keeps the entry alive).
    assert_eq!(w.snap.lookup(PortIndex(0), &ip(OWN4_PEER)), Some(PEER_MAC));
    assert!(w
        .snap
        .get(PortIndex(0), &ip(OWN4_PEER))
        .unwrap()
        .needs_refresh(t0));
    w.rx(&cfg, &req, t0);
    assert_eq!(w.learn.sent, 2);
    // Once confirmed (a reply to us), repeated requests are not reported.
    let reply = arp_frame(2, PEER_MAC, OWN4_PEER, OWN4);
    w.rx(&cfg, &reply, t0);
    control(&mut table, &learn_rx, &snap_tx, t0);
    w.poll(&cfg, t0);
    w.rx(&cfg, &req, t0);
    w.rx(&cfg, &req, t0);
    assert_eq!(w.learn.sent, 3);
    // Broadcast chatter for others is counted, not reported for unknowns.
    let other = arp_frame(
        1,
        EthernetAddress([2, 9, 9, 9, 9, 9]),
        "10.0.0.9",
        "10.0.0.8",
    );
    assert_eq!(w.rx(&cfg, &other, t0), Action::Drop(DropReason::ArpNotOurs));
    assert_eq!(w.drops.get(DropReason::ArpNotOurs), 1);
}
