//! A burst at a time: every packet's key hashed first, then its index line
//! and candidate entry fetched ahead of its decision, so that the cache
//! misses of the burst overlap.

use super::{Engine, PacketMeta, Verdict};
use crate::lb::conntable::{hash_key, Tuple, NO_HINT};
use crate::lb::time::Timestamp;

/// A packet's key, hashed ahead of the lookup (hash a burst, prefetch, then
/// process).
#[derive(Clone, Copy, Debug)]
pub struct Prepared {
    pub tuple: Tuple,
    pub hash: u64,
}

impl Prepared {
    pub const EMPTY: Prepared = Prepared {
        tuple: Tuple::EMPTY,
        hash: 0,
    };
}

/// Packets [`Engine::process_burst`] prepares and fetches for at a time.
const LOOKAHEAD: usize = 32;

/// A prefetch instruction the data plane provides (`lb` has no `unsafe`):
/// asks for the cache line at an address without waiting for it; any
/// address is allowed.
pub type Prefetch = fn(*const u8);

impl Engine {
    /// Compute a packet's key and hash (no table access).
    #[inline]
    pub fn prepare(pkt: &PacketMeta) -> Prepared {
        let tuple = Tuple::new(pkt.proto, pkt.src, pkt.sport, pkt.dst, pkt.dport);
        let hash = hash_key(&tuple, pkt.dir == super::Direction::Out);
        Prepared { tuple, hash }
    }

    /// Use a real prefetch instruction for the burst lookups (else they
    /// are started with plain loads and stores).
    pub fn set_prefetch(&mut self, f: Prefetch) {
        self.prefetch = Some(f);
    }

    /// Address of the index cache line a prepared packet will read first,
    /// for a prefetch by the caller.
    #[inline]
    pub fn prefetch_addr(&self, p: &Prepared) -> *const u8 {
        self.table.bucket_addr(p.hash)
    }

    /// Decide a burst of packets (`out[k]` for `pkts[k]`; extra packets or
    /// verdict slots are ignored). Keys are hashed first, then each packet's
    /// index line and candidate entry are fetched ahead of its decision, so
    /// that the cache misses of the burst overlap instead of being paid one
    /// after another; each packet is decided with its candidate entry as a
    /// hint, in order.
    pub fn process_burst(&mut self, pkts: &[PacketMeta], now: Timestamp, out: &mut [Verdict]) {
        for (pk, ov) in pkts.chunks(LOOKAHEAD).zip(out.chunks_mut(LOOKAHEAD)) {
            let n = pk.len().min(ov.len());
            let (pk, ov) = (&pk[..n], &mut ov[..n]);
            let mut prep = [Prepared::EMPTY; LOOKAHEAD];
            for (p, k) in prep.iter_mut().zip(pk) {
                *p = Self::prepare(k);
            }
            match self.prefetch {
                Some(f) => self.burst_pipelined(pk, &prep[..n], now, ov, f),
                None => self.burst_staged(pk, &prep[..n], now, ov),
            }
        }
    }

    /// With a prefetch instruction: a software pipeline over the burst.
    /// Step i requests packet i's bucket, reads packet i-D's bucket (asked
    /// for D steps ago) and requests its entry, and decides packet i-2D.
    /// So each miss is hidden behind the work on the D packets in between,
    /// and about 2D lines are in flight, within what a core can track.
    /// (Requesting a whole burst's lines at once and then reading the first
    /// stalled for a full miss per stage, with the prefetches themselves
    /// waiting for free miss buffers: about half of a worker's time with
    /// 1M connections, in perf.)
    #[inline(always)]
    fn burst_pipelined(
        &mut self,
        pk: &[PacketMeta],
        prep: &[Prepared],
        now: Timestamp,
        ov: &mut [Verdict],
        f: Prefetch,
    ) {
        // 12 rather than 6: in lb_core (4 KiB pages, long misses) 6 left
        // est/nat/in/1m at 51 ns a packet, 12 at 42, 14-16 no better; in
        // rvsd on hugepages the gain was within the noise (+3 %).
        const D: usize = 12;
        let n = prep.len().min(LOOKAHEAD);
        let mut hint = [NO_HINT; LOOKAHEAD];
        // A key past its full home bucket: the next bucket, requested at
        // the hint step and read when the packet is decided.
        let mut next = [usize::MAX; LOOKAHEAD];
        for i in 0..n + 2 * D {
            if let Some(p) = prep.get(i) {
                f(self.table.bucket_addr(p.hash));
            }
            if let Some(j) = i.checked_sub(D).filter(|&j| j < n) {
                let h = self.table.hint(prep[j].hash);
                if h != NO_HINT {
                    f(self.table.entry_addr(h));
                } else if let Some(b) = self.table.overflow_next(prep[j].hash) {
                    next[j] = b;
                    f(self.table.bucket_addr_at(b));
                }
                hint[j] = h;
            }
            if let Some(k) = i.checked_sub(2 * D).filter(|&k| k < n) {
                let h = match next[k] {
                    usize::MAX => hint[k],
                    b => self.table.hint_at(b, prep[k].hash),
                };
                self.decide_into(&pk[k], &prep[k], h, now, &mut ov[k]);
            }
        }
    }

    /// Without one (`lb` has no `unsafe`, so no prefetch instruction): the
    /// burst in stages, every packet's bucket line, then every candidate
    /// entry, requested before any packet is decided.
    #[inline(always)]
    fn burst_staged(
        &mut self,
        pk: &[PacketMeta],
        prep: &[Prepared],
        now: Timestamp,
        ov: &mut [Verdict],
    ) {
        const B: usize = LOOKAHEAD;
        let n = prep.len().min(B);
        // Bucket lines are requested by stores (which do not hold up the
        // loop), then each packet's candidate entry is found from its
        // bucket, then the entries are loaded in a loop small enough for
        // all of them to be in flight at once.
        for p in prep {
            self.table.preload_bucket(p.hash);
        }
        let mut hint = [NO_HINT; B];
        for (h, p) in hint.iter_mut().zip(prep) {
            *h = self.table.hint(p.hash);
        }
        // Keys placed past a full home bucket: fetch the next bucket for
        // all of them, then take their hints from there.
        let mut next = [usize::MAX; B];
        let mut spilled = false;
        for ((nb, h), p) in next.iter_mut().zip(&hint).zip(prep) {
            if *h == NO_HINT {
                if let Some(b) = self.table.overflow_next(p.hash) {
                    *nb = b;
                    spilled = true;
                }
            }
        }
        if spilled {
            for ((h, nb), p) in hint.iter_mut().zip(&next).zip(prep) {
                if *nb != usize::MAX {
                    *h = self.table.hint_at(*nb, p.hash);
                }
            }
        }
        let mut acc = 0u8;
        for h in &hint[..n] {
            acc ^= self.table.preload_entry(*h);
        }
        std::hint::black_box(acc);
        for (((v, k), p), h) in ov.iter_mut().zip(pk).zip(prep).zip(hint) {
            self.decide_into(k, p, h, now, v);
        }
    }
}
