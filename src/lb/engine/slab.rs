//! The real-server slots of one engine: what the fast path reads per
//! packet (hot) apart from what it does not (cold).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::lb::conntable::{self, DestEndpoints};
use crate::lb::dest::{DestShared, FwdMethod};
use crate::lb::rules::{ServiceShared, SnapDest};

/// What this lcore reads per packet about a real server slot, and the
/// slot's packet counters since the last
/// [`Engine::publish_stats`](super::Engine::publish_stats) (plain integers:
/// only this lcore touches them).
#[derive(Clone, Copy, Debug)]
pub(super) struct HotDest {
    /// Address in the connection table's form (for outbound matching).
    pub(super) addr: u128,
    pub(super) daddr: IpAddr,
    /// 0: the connection's virtual port.
    pub(super) port: u16,
    pub(super) fwd: FwdMethod,
    /// The slot holds a real server.
    pub(super) used: bool,
    /// Present in the current snapshot.
    pub(super) live: bool,
    /// Packets and bytes, [inbound, outbound].
    pub(super) pkts: [u64; 2],
    pub(super) bytes: [u64; 2],
}

const FREE_SLOT: HotDest = HotDest {
    addr: 0,
    daddr: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    port: 0,
    fwd: FwdMethod::Route,
    used: false,
    live: false,
    pkts: [0; 2],
    bytes: [0; 2],
};

/// The rest of a real server slot.
pub(super) struct ColdDest {
    pub(super) shared: Arc<DestShared>,
    pub(super) svc: Arc<ServiceShared>,
    /// Connections of this lcore pointing here.
    pub(super) refs: u32,
}

/// Slots for real servers, referenced by index from connection entries.
#[derive(Default)]
pub(super) struct Slab {
    pub(super) hot: Vec<HotDest>,
    pub(super) cold: Vec<Option<ColdDest>>,
    pub(super) free: Vec<u32>,
    pub(super) by_id: HashMap<u64, u32, ahash::RandomState>,
}

impl DestEndpoints for Slab {
    #[inline(always)]
    fn endpoint(&self, dest: u32) -> (u128, u16) {
        match self.hot.get(dest as usize) {
            Some(d) if d.used => (d.addr, d.port),
            _ => (0, 0),
        }
    }
}

impl Slab {
    pub(super) fn slot(&mut self, d: &SnapDest, svc: &Arc<ServiceShared>) -> u32 {
        if let Some(&s) = self.by_id.get(&d.shared.id) {
            let h = &mut self.hot[s as usize];
            if h.used {
                h.fwd = d.cfg.fwd;
                h.live = true;
                return s;
            }
        }
        let hot = HotDest {
            addr: conntable::addr16(d.cfg.addr).0,
            daddr: d.cfg.addr,
            port: d.cfg.port,
            fwd: d.cfg.fwd,
            used: true,
            live: true,
            pkts: [0; 2],
            bytes: [0; 2],
        };
        let cold = ColdDest {
            shared: d.shared.clone(),
            svc: svc.clone(),
            refs: 0,
        };
        let s = match self.free.pop() {
            Some(s) => {
                self.hot[s as usize] = hot;
                self.cold[s as usize] = Some(cold);
                s
            }
            None => {
                self.hot.push(hot);
                self.cold.push(Some(cold));
                (self.hot.len() - 1) as u32
            }
        };
        self.by_id.insert(d.shared.id, s);
        s
    }

    /// Add slot `s`'s packet counters to the shared stats (real server and
    /// service) of `lcore`, and restart them.
    pub(super) fn publish(&mut self, s: usize, lcore: usize) {
        let (Some(h), Some(Some(c))) = (self.hot.get_mut(s), self.cold.get(s)) else {
            return;
        };
        if h.pkts != [0; 2] {
            for st in [&c.shared.stats, &c.svc.stats] {
                st.lcore(lcore)
                    .add_packets(h.pkts[0], h.bytes[0], h.pkts[1], h.bytes[1]);
            }
            h.pkts = [0; 2];
            h.bytes = [0; 2];
        }
    }

    pub(super) fn free_slot(&mut self, s: u32, lcore: usize) {
        self.publish(s as usize, lcore);
        if let Some(c) = self.cold[s as usize].take() {
            self.hot[s as usize] = FREE_SLOT;
            self.by_id.remove(&c.shared.id);
            self.free.push(s);
        }
    }

    /// A connection on slot `s` is gone.
    pub(super) fn unref(&mut self, s: u32, lcore: usize) {
        let live = self.hot.get(s as usize).is_some_and(|h| h.live);
        let gone = match self.cold.get_mut(s as usize) {
            Some(Some(c)) => {
                c.refs -= 1;
                c.refs == 0 && !live
            }
            _ => false,
        };
        if gone {
            self.free_slot(s, lcore);
        }
    }
}
