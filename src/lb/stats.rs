//! Traffic counters and rate estimation.
//!
//! Counters are per lcore: each worker writes only its own block with relaxed
//! load + store (no read-modify-write atomics on the packet path); readers sum
//! the blocks. Zeroing (`-Z`) keeps a baseline instead of writing into the
//! workers' counters. Rates follow the kernel's estimator (ip_vs_est.c): a
//! sample every 2 s, smoothed with weight 1/4, kept scaled (packets and
//! connections by 2^10, bytes by 2^5).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::time::Timestamp;

/// One lcore's counters for one service or real server; a cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct Counters {
    conns: AtomicU64,
    inpkts: AtomicU64,
    outpkts: AtomicU64,
    inbytes: AtomicU64,
    outbytes: AtomicU64,
}

#[inline]
fn bump(c: &AtomicU64, by: u64) {
    // Single writer (the owning lcore): a plain load and store suffice.
    c.store(c.load(Relaxed).wrapping_add(by), Relaxed);
}

impl Counters {
    #[inline]
    pub fn conn(&self) {
        bump(&self.conns, 1);
    }
    #[inline]
    pub fn packet_in(&self, bytes: u32) {
        bump(&self.inpkts, 1);
        bump(&self.inbytes, bytes as u64);
    }
    #[inline]
    pub fn packet_out(&self, bytes: u32) {
        bump(&self.outpkts, 1);
        bump(&self.outbytes, bytes as u64);
    }
    /// Add packets and bytes counted elsewhere (an engine publishing its
    /// per-lcore counters), inbound then outbound.
    #[inline]
    pub fn add_packets(&self, inpkts: u64, inbytes: u64, outpkts: u64, outbytes: u64) {
        bump(&self.inpkts, inpkts);
        bump(&self.inbytes, inbytes);
        bump(&self.outpkts, outpkts);
        bump(&self.outbytes, outbytes);
    }
    fn read(&self) -> StatsTotals {
        StatsTotals {
            conns: self.conns.load(Relaxed),
            inpkts: self.inpkts.load(Relaxed),
            outpkts: self.outpkts.load(Relaxed),
            inbytes: self.inbytes.load(Relaxed),
            outbytes: self.outbytes.load(Relaxed),
        }
    }
}

/// Summed counters (`--stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsTotals {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
}

impl StatsTotals {
    fn add(&mut self, o: &StatsTotals) {
        self.conns = self.conns.wrapping_add(o.conns);
        self.inpkts = self.inpkts.wrapping_add(o.inpkts);
        self.outpkts = self.outpkts.wrapping_add(o.outpkts);
        self.inbytes = self.inbytes.wrapping_add(o.inbytes);
        self.outbytes = self.outbytes.wrapping_add(o.outbytes);
    }
    fn sub(&self, o: &StatsTotals) -> StatsTotals {
        StatsTotals {
            conns: self.conns.wrapping_sub(o.conns),
            inpkts: self.inpkts.wrapping_sub(o.inpkts),
            outpkts: self.outpkts.wrapping_sub(o.outpkts),
            inbytes: self.inbytes.wrapping_sub(o.inbytes),
            outbytes: self.outbytes.wrapping_sub(o.outbytes),
        }
    }
}

/// Per-second rates (`--rate`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

/// The sampling period of the estimator.
pub const EST_PERIOD_MS: u64 = 2000;

/// The kernel's rate estimator state.
#[derive(Clone, Copy, Debug, Default)]
pub struct Estimator {
    last: StatsTotals,
    /// Scaled by 2^10.
    cps: u64,
    inpps: u64,
    outpps: u64,
    /// Scaled by 2^5.
    inbps: u64,
    outbps: u64,
    next: Option<Timestamp>,
}

#[inline]
fn smooth(avg: &mut u64, rate: u64) {
    // avg += (rate - avg) / 4, in signed arithmetic as the kernel does.
    let a = *avg as i64;
    *avg = (a + ((rate as i64 - a) >> 2)) as u64;
}

impl Estimator {
    /// Take the samples due by `now` given the current totals. The first call
    /// only starts the clock. If several periods passed since the last call,
    /// the change is spread evenly over them.
    pub fn update(&mut self, now: Timestamp, cur: StatsTotals) {
        let next = match self.next {
            None => {
                self.last = cur;
                self.next = Some(Timestamp(now.0 + EST_PERIOD_MS));
                return;
            }
            Some(n) => n,
        };
        if now < next {
            return;
        }
        let n = (now.0 - next.0) / EST_PERIOD_MS + 1;
        let d = cur.sub(&self.last);
        for i in 0..n {
            // Share of the change for this period (remainder to the first).
            let part = |v: u64| v / n + if i == 0 { v % n } else { 0 };
            smooth(&mut self.cps, part(d.conns) << 9);
            smooth(&mut self.inpps, part(d.inpkts) << 9);
            smooth(&mut self.outpps, part(d.outpkts) << 9);
            smooth(&mut self.inbps, part(d.inbytes) << 4);
            smooth(&mut self.outbps, part(d.outbytes) << 4);
        }
        self.last = cur;
        self.next = Some(Timestamp(next.0 + n * EST_PERIOD_MS));
    }

    /// Rates per second, rounded as the kernel reads them.
    pub fn rates(&self) -> Rates {
        Rates {
            cps: (self.cps + 0x1FF) >> 10,
            inpps: (self.inpps + 0x1FF) >> 10,
            outpps: (self.outpps + 0x1FF) >> 10,
            inbps: (self.inbps + 0xF) >> 5,
            outbps: (self.outbps + 0xF) >> 5,
        }
    }

    /// Forget the averages; the next sample starts from `cur`.
    pub fn zero(&mut self, cur: StatsTotals) {
        let next = self.next;
        *self = Estimator {
            last: cur,
            next,
            ..Estimator::default()
        };
    }
}

#[derive(Debug, Default)]
struct ReadState {
    base: StatsTotals,
    est: Estimator,
}

/// The counters of one service or real server across all lcores.
#[derive(Debug)]
pub struct Stats {
    lcores: Box<[Counters]>,
    read: Mutex<ReadState>,
}

impl Stats {
    pub fn new(nlcores: usize) -> Self {
        Stats {
            lcores: (0..nlcores.max(1)).map(|_| Counters::default()).collect(),
            read: Mutex::new(ReadState::default()),
        }
    }

    /// The block lcore `i` writes. Out-of-range lcores share the last block
    /// (a configuration error, but never a panic).
    #[inline]
    pub fn lcore(&self, i: usize) -> &Counters {
        let n = self.lcores.len();
        &self.lcores[i.min(n - 1)]
    }

    fn raw(&self) -> StatsTotals {
        let mut t = StatsTotals::default();
        for c in self.lcores.iter() {
            t.add(&c.read());
        }
        t
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ReadState> {
        self.read.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Totals since creation or the last `zero`.
    pub fn totals(&self) -> StatsTotals {
        let raw = self.raw();
        raw.sub(&self.state().base)
    }

    /// `-Z`: counters and rates restart from zero.
    pub fn zero(&self) {
        let raw = self.raw();
        let mut st = self.state();
        st.base = raw;
        st.est.zero(raw);
    }

    /// Drive the estimator (call about every 2 s from the control thread).
    pub fn estimate(&self, now: Timestamp) {
        let raw = self.raw();
        self.state().est.update(now, raw);
    }

    pub fn rates(&self) -> Rates {
        self.state().est.rates()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_lcore_sum_and_zero() {
        let s = Stats::new(2);
        s.lcore(0).conn();
        s.lcore(0).packet_in(100);
        s.lcore(1).packet_in(50);
        s.lcore(1).packet_out(1500);
        s.lcore(7).packet_out(1); // clamped to the last lcore, no panic
        assert_eq!(
            s.totals(),
            StatsTotals {
                conns: 1,
                inpkts: 2,
                outpkts: 2,
                inbytes: 150,
                outbytes: 1501
            }
        );
        s.zero();
        assert_eq!(s.totals(), StatsTotals::default());
        s.lcore(0).packet_in(10);
        assert_eq!(s.totals().inpkts, 1);
        assert_eq!(s.totals().inbytes, 10);
    }

    #[test]
    fn estimator_converges_like_the_kernel() {
        // Steady 1000 pkt/s, 100 conn/s, 1 MB/s: after many 2 s samples the
        // smoothed rates reach the true rates.
        let s = Stats::new(1);
        let c = s.lcore(0);
        s.estimate(Timestamp::ZERO);
        for k in 1..=100u64 {
            for _ in 0..200 {
                c.conn();
            }
            for _ in 0..2000 {
                c.packet_in(1000);
            }
            s.estimate(Timestamp(k * 2000));
        }
        let r = s.rates();
        assert_eq!(r.cps, 100);
        assert_eq!(r.inpps, 1000);
        assert_eq!(r.inbps, 1_000_000);
        assert_eq!(r.outpps, 0);
    }

    #[test]
    fn estimator_first_sample_weight_is_one_quarter() {
        let mut e = Estimator::default();
        e.update(Timestamp(0), StatsTotals::default());
        // Nothing before the period ends.
        e.update(
            Timestamp(1999),
            StatsTotals {
                conns: 400,
                ..Default::default()
            },
        );
        assert_eq!(e.rates().cps, 0);
        e.update(
            Timestamp(2000),
            StatsTotals {
                conns: 400,
                ..Default::default()
            },
        );
        // 400 conns in 2 s = 200/s; a quarter of it after one sample.
        assert_eq!(e.rates().cps, 50);
        // Next sample with no change decays by 3/4.
        e.update(
            Timestamp(4000),
            StatsTotals {
                conns: 400,
                ..Default::default()
            },
        );
        assert_eq!(e.rates().cps, 37); // 37.5: the kernel's +0x1FF rounds just below half up
        e.zero(StatsTotals {
            conns: 400,
            ..Default::default()
        });
        assert_eq!(e.rates(), Rates::default());
    }

    #[test]
    fn estimator_catches_up_missed_periods() {
        let mut a = Estimator::default();
        let mut b = Estimator::default();
        a.update(Timestamp(0), StatsTotals::default());
        b.update(Timestamp(0), StatsTotals::default());
        // a sampled every period, b only at the end: same result for an even
        // rate.
        for k in 1..=3u64 {
            a.update(
                Timestamp(k * 2000),
                StatsTotals {
                    inpkts: 2000 * k,
                    ..Default::default()
                },
            );
        }
        b.update(
            Timestamp(6000),
            StatsTotals {
                inpkts: 6000,
                ..Default::default()
            },
        );
        assert_eq!(a.rates(), b.rates());
    }
}
