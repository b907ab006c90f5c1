//! Frames sent in fragments: rewritten IPv4 packets larger than their
//! egress MTU with DF clear ([`crate::lb::forward::Applied::Fragment`]),
//! held by [`Datapath::hold`] and split at the next tick, when buffers can
//! be had ([`crate::net::fragment`] does the splitting).

use super::Datapath;
use crate::drops::{DropReason, Tally};
use crate::ids::PortIndex;
use crate::lb::forward::next_ip_id;
use crate::lb::time::Timestamp;
use crate::net::fragment::Plan;
use crate::wire::buf::PacketBuf;

/// The most frames waiting to be fragmented between two ticks (one burst
/// of too-big frames and then some); more are dropped.
pub(super) const BACKLOG: usize = 64;

impl<B: PacketBuf> Datapath<B> {
    /// Splits every frame waiting for it: the frame itself becomes the
    /// first fragment, the others are made in buffers from `alloc`. Each
    /// goes out, or waits for its next hop's MAC like any frame.
    pub(super) fn send_fragments(
        &mut self,
        now: Timestamp,
        alloc: &mut impl FnMut(usize) -> Option<B>,
        out: &mut Vec<(PortIndex, B)>,
        tally: &mut Tally,
    ) {
        let mut queue = std::mem::take(&mut self.to_fragment);
        let mut made: Vec<B> = Vec::new();
        for (frag, mut buf) in queue.drain(..) {
            tally.held -= 1;
            // IPv6 fragments need an id of ours: this worker's, counting.
            let ident = 0x8000_0000 | (self.me.0 as u32) << 16 | next_ip_id(&self.ip_id) as u32;
            let Ok(plan) = Plan::with_ident(buf.data(), frag.l3 as usize, frag.mtu as usize, ident)
            else {
                // The rewrite said it was too big and fragmentable; a
                // frame that is not is a bug, counted rather than sent.
                tally.drops.bump(DropReason::TooBig);
                continue;
            };
            made.clear();
            for k in 1..plan.count() {
                let len = plan.frame_len(k);
                let Some(mut b) = alloc(len) else { break };
                let Some(room) = b.append(len) else { break };
                plan.write(buf.data(), k, room);
                made.push(b);
            }
            if made.len() + 1 != plan.count() {
                // All or nothing: a datagram missing a fragment is lost
                // anyway, and its fragments would only load the path.
                tally.drops.bump(DropReason::FragNoBuffer);
                made.clear();
                continue;
            }
            let n = plan.truncate_to_first(buf.data_mut());
            let excess = buf.len() - n;
            buf.trim(excess);
            tally.originated += made.len() as u64;
            for b in std::iter::once(buf).chain(made.drain(..)) {
                if frag.resolved {
                    out.push((frag.port, b));
                } else {
                    self.park(frag.port, frag.next_hop, b, now, tally);
                }
            }
        }
        self.to_fragment = queue;
    }
}
