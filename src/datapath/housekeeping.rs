//! Between bursts: configuration and neighbour snapshots from the control
//! thread, VIP announcements, expiry of connections and held frames,
//! request retries, the control thread's queries, and the gauges it reads.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use super::{Datapath, PortIndex};
use crate::drops::Tally;
use crate::lb::engine::ConnInfo;
use crate::lb::rules::Snapshot;
use crate::lb::time::Timestamp;
use crate::net::{self, LearnTx, NeighSnapshot, SnapshotRx};
use crate::wire::buf::PacketBuf;

/// Requests from the control thread, answered between bursts.
pub enum WorkerCmd {
    /// A page of this worker's connections: at most `max` from table slot
    /// `from` on (worker 0's last page adds the shared persistence
    /// templates). A listing takes one page per loop, so a big table
    /// neither stalls the worker nor is copied whole.
    ListConns {
        from: u32,
        max: usize,
        reply: Sender<ConnPage>,
    },
}

/// One page of a worker's connections.
#[derive(Debug, Default)]
pub struct ConnPage {
    pub conns: Vec<ConnInfo>,
    /// Where the next page starts; `None` after the last.
    pub next: Option<u32>,
}

/// What a worker publishes besides its frame tally (single writer).
#[derive(Default, Debug)]
pub struct Gauges {
    pub connections: AtomicU64,
    /// Neighbour facts not reported because the channel was full.
    pub learn_dropped: AtomicU64,
    /// Handshakes given up for new connections in a full table.
    pub embryonic_evicted: AtomicU64,
    /// New connections no real server could take, answered with ICMP port
    /// unreachable ([`super::Refusals::answered`]).
    pub port_unreachable: AtomicU64,
    /// The same, left unanswered by the ICMP rate limits
    /// ([`super::Refusals::rate_limited`]).
    pub port_unreachable_limited: AtomicU64,
}

/// A worker's channels to and from the control thread.
pub struct Links {
    pub snaps: SnapshotRx<Snapshot>,
    pub neighs: SnapshotRx<NeighSnapshot>,
    pub learn: LearnTx,
    pub mailbox: Receiver<WorkerCmd>,
    pub gauges: Arc<Gauges>,
}

/// VIP announcements per millisecond at most: thousands of new VIPs (one
/// `rvsadm -R`) are announced over a second or so, not in one burst onto
/// the segment.
pub const ANNOUNCE_PER_MS: usize = 8;

/// Expiry and request retries every millisecond; gauges every 100 ms.
const HOUSEKEEPING_MS: u64 = 1;
const PUBLISH_MS: u64 = 100;
/// Connections expired per housekeeping pass (every millisecond) at most:
/// above the new-connection rate a worker sustains (millions per second).
const EXPIRE_BUDGET: usize = 8192;

impl<B: PacketBuf> Datapath<B> {
    /// Install a configuration published since the last look. Called
    /// before each burst is decided (and at each tick): rvsadm's change is
    /// acknowledged once published, so a frame received after the
    /// acknowledgement must see it, even when the worker was descheduled
    /// in between and finds both the burst and the snapshot waiting.
    #[inline]
    pub(super) fn pick_up_snapshot(&mut self) {
        if let Some(s) = self.links.as_ref().and_then(|l| l.snaps.latest()) {
            self.set_snapshot(s);
        }
    }

    /// Everything between bursts. Frames to send go to `out` (made in
    /// buffers from `alloc`), and `tally` learns what became of held
    /// frames and how many frames were made.
    pub fn tick(
        &mut self,
        now: Timestamp,
        mut alloc: impl FnMut(usize) -> Option<B>,
        out: &mut Vec<(PortIndex, B)>,
        tally: &mut Tally,
    ) {
        self.pick_up_snapshot();
        let from = out.len();
        if self.reassembly.has_complete() {
            self.send_reassembled(now, &mut alloc, out, tally);
        }
        if !self.to_fragment.is_empty() {
            self.send_fragments(now, &mut alloc, out, tally);
        }
        if self.announce_due && self.me.0 == 0 && now >= self.next_announce {
            self.next_announce = Timestamp(now.0 + 1);
            self.announce_due = self.announce(&mut alloc, out, tally);
        }
        if let Some(n) = self.links.as_ref().and_then(|l| l.neighs.latest()) {
            self.set_neighbours(n, out, tally);
        }
        if let Some(o) = self.owners_rx.as_ref().and_then(|r| r.latest()) {
            self.set_vip_owners(o);
        }
        self.report_learned(now);
        let due = now >= self.next_housekeeping;
        if due {
            self.next_housekeeping = Timestamp(now.0 + HOUSEKEEPING_MS);
            self.housekeeping(now);
            self.expire_held(now, tally);
            self.expire_fragments(now, tally);
        }
        self.send_requests(now, due, &mut alloc, out, tally);
        if out.len() > from {
            self.tick_to_links(out, from, tally);
        }
    }

    /// Gratuitous ARP / unsolicited NA for VIPs not announced yet on their
    /// ports, [`ANNOUNCE_PER_MS`] at most; true if some are left for the
    /// next millisecond.
    fn announce(
        &mut self,
        alloc: &mut impl FnMut(usize) -> Option<B>,
        out: &mut Vec<(PortIndex, B)>,
        tally: &mut Tally,
    ) -> bool {
        let current: ahash::AHashSet<(PortIndex, IpAddr)> = self
            .net
            .iter()
            .flat_map(|i| i.vips().map(move |v| (i.port(), *v)))
            .collect();
        self.announced.retain(|k| current.contains(k));
        let mut budget = ANNOUNCE_PER_MS;
        for iface in self.net.iter() {
            for vip in iface.vips() {
                if self.announced.contains(&(iface.port(), *vip)) {
                    continue;
                }
                if budget == 0 {
                    return true;
                }
                budget -= 1;
                let mac = iface.mac();
                let b = Self::make_frame(alloc, |buf| match *vip {
                    IpAddr::V4(a) => net::arp::build_gratuitous(buf, mac, a).ok(),
                    IpAddr::V6(a) => net::nd::build_unsolicited_na(buf, mac, a).ok(),
                });
                if let Some(b) = b {
                    tally.originated += 1;
                    out.push((iface.port(), b));
                }
                self.announced.insert((iface.port(), *vip));
            }
        }
        false
    }

    fn housekeeping(&mut self, now: Timestamp) {
        self.engine.expire(now, EXPIRE_BUDGET);
        let publish = now >= self.next_publish;
        if publish {
            self.next_publish = Timestamp(now.0 + PUBLISH_MS);
            self.engine.publish_stats();
        }
        let Some(links) = self.links.as_ref() else {
            return;
        };
        while let Ok(cmd) = links.mailbox.try_recv() {
            match cmd {
                WorkerCmd::ListConns { from, max, reply } => {
                    let (mut conns, next) = self.engine.list_conns_page(now, from, max);
                    if next.is_none() && self.me.0 == 0 {
                        conns.extend(self.engine.list_templates(now));
                    }
                    let _ = reply.send(ConnPage { conns, next });
                }
            }
        }
        if publish {
            let g = &links.gauges;
            g.learn_dropped
                .store(links.learn.dropped, Ordering::Relaxed);
            g.connections
                .store(self.engine.conn_count() as u64, Ordering::Relaxed);
            g.embryonic_evicted.store(
                self.engine.counters().embryonic_evicted(),
                Ordering::Relaxed,
            );
            g.port_unreachable
                .store(self.refusals.answered, Ordering::Relaxed);
            g.port_unreachable_limited
                .store(self.refusals.rate_limited, Ordering::Relaxed);
        }
    }
}
