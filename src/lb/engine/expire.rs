//! Connections leaving: timed out on the wheel, expired early, flushed.

use super::types::bump;
use super::Engine;
use crate::lb::conntable::{self, flag};
use crate::lb::tcp_state::TcpState;
use crate::lb::time::Timestamp;

/// Default expiry budget per [`Engine::expire`] call.
pub const DEFAULT_EXPIRE_BUDGET: usize = 256;

impl Engine {
    /// Undo a connection's bindings after it left the table.
    fn release(&mut self, i: u32, c: &conntable::Conn) {
        if let Some(Some(d)) = self.slab.cold.get(c.dest as usize) {
            d.shared.unbind_conn(!c.has(flag::INACTIVE));
        }
        if let Some(t) = self.tpl[i as usize].take() {
            t.release();
        }
        self.slab.unref(c.dest, self.lcore);
        bump(&self.counters.expired);
    }

    /// Remove a connection now.
    #[inline(never)]
    pub(super) fn expire_now(&mut self, i: u32) {
        let c = self.table.remove(i, &self.slab);
        self.release(i, &c);
    }

    /// Remove the oldest connection still in SYN_RECV, looking at a bounded
    /// number of the oldest new TCP connections (those that went on, or
    /// left, are forgotten on the way). True if one was removed.
    pub(super) fn evict_embryonic(&mut self) -> bool {
        /// Entries looked at per new connection at most. Each record is
        /// looked at once (popped), so the cost is one per connection made,
        /// amortised; the bound only caps one packet's share when a long
        /// run of connections that went on or left (after `-C`, or a table
        /// of established ones) comes first.
        const LOOK: usize = 4096;
        for _ in 0..LOOK {
            let Some(i) = self.embryonic.pop_front() else {
                return false;
            };
            let c = self.table.get(i);
            if c.has(flag::USED) && !c.has(flag::UDP) && c.state == TcpState::SynRecv as u8 {
                self.expire_now(i);
                bump(&self.counters.embryonic_evicted);
                return true;
            }
        }
        false
    }

    /// Expire connections due by `now`, spending at most `budget` (wheel
    /// ticks + entries looked at), sweep one shard of the shared template
    /// table, and publish the packet counters ([`Engine::publish_stats`]).
    /// Returns how many connections expired.
    pub fn expire(&mut self, now: Timestamp, budget: usize) -> usize {
        let mut b = budget;
        let mut n = 0;
        while let Some((i, c)) = self.table.pop_expired(now, &mut b, &self.slab) {
            self.release(i, &c);
            n += 1;
        }
        self.templates.expire(now, 1);
        self.publish_stats();
        n
    }

    /// Remove every connection of this lcore (e.g. on shutdown or `-C`).
    pub fn flush(&mut self) {
        let ids: Vec<u32> = self.table.iter().map(|(i, _)| i).collect();
        for i in ids {
            self.expire_now(i);
        }
        self.publish_stats();
    }
}
