//! Fragments in: held by [`Datapath::hold`] until their datagram is whole
//! ([`crate::net::reassembly`]), which the next tick copies into one
//! buffer and decides like any frame that came in on the same port.

use super::{Datapath, Outcome};
use crate::drops::Tally;
use crate::ids::PortIndex;
use crate::lb::time::Timestamp;
use crate::net::reassembly::Dropped;
use crate::wire::buf::PacketBuf;
use crate::wire::parse::parse_frame;

impl<B: PacketBuf> Datapath<B> {
    /// Takes a fragment that came in on `port` (custody: held, until it is
    /// reassembled or dropped).
    pub(super) fn reassemble(
        &mut self,
        port: PortIndex,
        buf: B,
        now: Timestamp,
        tally: &mut Tally,
    ) {
        let Ok(h) = parse_frame(buf.data()) else {
            tally.drops.bump(crate::drops::DropReason::Malformed);
            return;
        };
        tally.held += 1;
        self.reassembly
            .insert(buf, &h, port.0, now, |d| given_up(tally, d));
    }

    /// Gives up datagrams not whole in time.
    pub(super) fn expire_fragments(&mut self, now: Timestamp, tally: &mut Tally) {
        self.reassembly.expire(now, |d| given_up(tally, d));
    }

    /// Copies every whole datagram into a buffer from `alloc` and decides
    /// it: sent to `out`, held, handed off (see
    /// [`Datapath::take_handoffs`]) or dropped.
    pub(super) fn send_reassembled(
        &mut self,
        now: Timestamp,
        alloc: &mut impl FnMut(usize) -> Option<B>,
        out: &mut Vec<(PortIndex, B)>,
        tally: &mut Tally,
    ) {
        let done: Vec<_> = self.reassembly.take_complete().collect();
        for c in done {
            let n = c.fragments() as u64;
            tally.held -= n;
            let len = c.frame_len();
            let Some(mut b) = alloc(len) else {
                tally.drops.add(crate::drops::DropReason::FragNoBuffer, n);
                continue;
            };
            let Some(room) = b.append(len) else {
                tally.drops.add(crate::drops::DropReason::FragNoBuffer, n);
                continue;
            };
            c.write(room);
            let port = PortIndex(c.port);
            drop(c);
            tally.reassembled += n;
            tally.originated += 1;
            self.refragment = true;
            let mut o = [Outcome::Drop(crate::drops::DropReason::Malformed)];
            // The tick gives the frame its tag with the others it sends.
            self.decide_frames(port, std::slice::from_mut(&mut b), now, &mut o);
            let o = o[0];
            self.refragment = false;
            match o {
                Outcome::Tx(p) => out.push((p, b)),
                Outcome::Hold => self.hold(0, b, now, tally),
                Outcome::Handoff(w) => self.handoffs.push((w, port, b)),
                Outcome::Drop(r) => tally.drops.bump(r),
                // The twin's fragments go to it unassembled (the own
                // addresses are decided before reassembly): none gets here.
                Outcome::Kernel => tally.drops.bump(crate::drops::DropReason::Local),
            }
        }
    }
}

/// Held fragments the reassembly gave up: no longer held, dropped.
fn given_up(tally: &mut Tally, d: Dropped) {
    tally.held -= d.count as u64;
    tally.drops.add(d.reason, d.count as u64);
}
