//! Frames waiting for a next hop's MAC: the requests (ARP / neighbour
//! solicitation) that go out for them, their release when the neighbour
//! snapshot learns the MAC, and what local traffic taught us, reported to
//! the control thread.

use std::net::IpAddr;
use std::sync::Arc;

use super::{Datapath, Outcome};
use crate::drops::{DropReason, Tally};
use crate::ids::PortIndex;
use crate::lb::time::Timestamp;
use crate::net::{self, NeighSnapshot};
use crate::wire::buf::PacketBuf;

/// Room a frame the datapath makes may use (ARP, NS/NA with options).
const FRAME_ROOM: usize = 96;

impl<B: PacketBuf> Datapath<B> {
    /// A frame made by `build` in a buffer from `alloc`; counted as
    /// originated by the caller once it is in `out`.
    pub(super) fn make_frame(
        alloc: &mut impl FnMut(usize) -> Option<B>,
        build: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> Option<B> {
        let mut b = alloc(FRAME_ROOM)?;
        let room = b.append(FRAME_ROOM)?;
        let n = build(room)?;
        b.trim(FRAME_ROOM - n);
        Some(b)
    }

    /// An ARP request or neighbour solicitation for `ip` on `port`.
    fn request(
        &self,
        alloc: &mut impl FnMut(usize) -> Option<B>,
        port: PortIndex,
        ip: IpAddr,
    ) -> Option<B> {
        let iface = self.net.port(port)?;
        Self::make_frame(alloc, |buf| match ip {
            IpAddr::V4(a) => net::arp::build_request(buf, iface, a, None).ok(),
            IpAddr::V6(a) => net::nd::build_solicit(buf, iface, a, None).ok(),
        })
    }

    /// Send the requests due: those asked for by holds since the last
    /// tick, and with `retry`, the rate-limited repeats for next hops that
    /// still have frames waiting.
    pub(super) fn send_requests(
        &mut self,
        now: Timestamp,
        retry: bool,
        alloc: &mut impl FnMut(usize) -> Option<B>,
        out: &mut Vec<(PortIndex, B)>,
        tally: &mut Tally,
    ) {
        let mut reqs = std::mem::take(&mut self.requests);
        if retry {
            self.pending
                .poll_requests(now, |port, ip| reqs.push((port, ip)));
        }
        for (port, ip) in reqs.drain(..) {
            if let Some(b) = self.request(alloc, port, ip) {
                tally.originated += 1;
                out.push((port, b));
            }
        }
        self.requests = reqs;
    }

    /// A new neighbour snapshot: frames whose next hop it knows leave,
    /// with the MAC written in.
    pub(super) fn set_neighbours(
        &mut self,
        n: Arc<NeighSnapshot>,
        out: &mut Vec<(PortIndex, B)>,
        tally: &mut Tally,
    ) {
        self.neigh = n;
        self.hops.clear();
        self.pending.take_resolved(&self.neigh, &mut self.resolved);
        for mut r in self.resolved.drain(..) {
            tally.held -= 1;
            if let Some(d) = r.pkt.data_mut().get_mut(..6) {
                d.copy_from_slice(&r.mac.0);
            }
            out.push((r.port, r.pkt));
        }
    }

    /// Drop frames that waited too long.
    pub(super) fn expire_held(&mut self, now: Timestamp, tally: &mut Tally) {
        let n = self.pending.expire(now, drop) as u64;
        tally.held -= n;
        tally.drops.add(DropReason::HoldExpired, n);
    }

    /// Report what local traffic taught us (rare: ARP/ND traffic).
    pub(super) fn report_learned(&mut self, now: Timestamp) {
        if self.learned.is_empty() {
            return;
        }
        let Some(links) = self.links.as_mut() else {
            self.learned.clear();
            return;
        };
        for l in self.learned.drain(..) {
            if l.worth_reporting(&self.neigh, now) {
                links.learn.send(l);
            }
        }
    }

    /// The interface and next hop the frame given outcome
    /// [`Outcome::Hold`] at `index` is for (`None`: held for reassembly).
    pub fn hold_target(&self, index: usize) -> Option<(PortIndex, IpAddr)> {
        match self.holds.get(index)? {
            super::HoldFor::Neighbour { port, next_hop } => Some((*port, *next_hop)),
            super::HoldFor::Fragment(f) => Some((f.port, f.next_hop)),
            super::HoldFor::Reassemble { .. } => None,
        }
    }
}

impl Outcome {
    /// True for a frame that leaves on a port.
    pub fn is_tx(self) -> bool {
        matches!(self, Outcome::Tx(_))
    }
}
