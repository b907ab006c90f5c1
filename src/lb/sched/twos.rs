//! Power of two random choices (`ip_vs_twos.c`).
//!
//! Over the servers with weight above zero that are not overloaded, total
//! weight `T`: draw two numbers uniformly in `0..=T` (the kernel adds 1 to
//! `T` before `get_random_u32_below`, so the first such server gets one
//! extra chance in `T + 1`); each picks the first server at which the
//! running weight sum reaches it. The second choice wins only if its
//! overhead/weight is strictly smaller than the first's.
//!
//! Randomness comes from a small deterministic generator (SplitMix64) inside
//! the scheduler: [`Twos::with_seed`] for reproducible tests, [`Twos::new`]
//! for a distinct seed per instance.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{available, overhead, ratio_gt, DestSet, FlowKey, Scheduler};
use crate::lb::time::Timestamp;

#[derive(Debug, Clone)]
pub struct Twos {
    state: u64,
}

static NEXT_SEED: AtomicU64 = AtomicU64::new(0x2545_F491_4F6C_DD1D);

impl Twos {
    /// An instance whose seed differs from every other instance created in
    /// this process (each lcore draws its own sequence).
    pub fn new() -> Self {
        Self::with_seed(NEXT_SEED.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed))
    }

    pub fn with_seed(seed: u64) -> Self {
        Twos { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (multiply-shift; bias below n / 2^64).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

impl Default for Twos {
    fn default() -> Self {
        Self::new()
    }
}

impl Scheduler for Twos {
    fn name(&self) -> &'static str {
        "twos"
    }

    fn update(&mut self, _dests: &dyn DestSet) {}

    fn schedule(&mut self, dests: &dyn DestSet, _key: &FlowKey, _now: Timestamp) -> Option<usize> {
        let n = dests.len();
        let total: u64 = (0..n)
            .filter(|&i| available(dests, i))
            .map(|i| dests.weight(i) as u64)
            .sum();
        if total == 0 {
            return None;
        }
        let mut r1 = self.below(total + 1) as i64;
        let mut r2 = self.below(total + 1) as i64;
        let mut c1: Option<(usize, u32, u64)> = None;
        let mut c2: Option<(usize, u32, u64)> = None;
        for i in 0..n {
            if !available(dests, i) {
                continue;
            }
            let w = dests.weight(i);
            r1 -= w as i64;
            r2 -= w as i64;
            if r1 <= 0 && c1.is_none() {
                c1 = Some((i, w, overhead(dests, i)));
            }
            if r2 <= 0 && c2.is_none() {
                c2 = Some((i, w, overhead(dests, i)));
            }
            if c1.is_some() && c2.is_some() {
                break;
            }
        }
        let (i1, w1, o1) = c1?;
        match c2 {
            // w2 * o1 > w1 * o2  <=>  o2/w2 < o1/w1
            Some((i2, w2, o2)) if ratio_gt(o1, w1, o2, w2) => Some(i2),
            _ => Some(i1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn shares(s: &mut Twos, set: &TestSet, rounds: u32) -> Vec<f64> {
        let mut c = vec![0u32; set.0.len()];
        for k in 0..rounds {
            c[s.schedule(set, &key(k), Timestamp::ZERO).unwrap()] += 1;
        }
        c.iter().map(|&x| x as f64 / rounds as f64).collect()
    }

    #[test]
    fn idle_servers_share_by_weight() {
        // All idle: choice 1 always stands, so shares follow the kernel's
        // draw in 0..=T: (w_i + [i is first]) / (T + 1).
        let set = TestSet::weights(&[10, 20, 0, 30]);
        let mut s = Twos::with_seed(1);
        let got = shares(&mut s, &set, 100_000);
        let want = [11.0 / 61.0, 20.0 / 61.0, 0.0, 30.0 / 61.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 0.01, "{got:?}");
        }
    }

    #[test]
    fn prefers_the_less_loaded_of_two() {
        // Equal weights 1,1 (T = 2, draws in 0..=2: first server 2/3).
        // Server 0 is loaded: it is chosen only when both draws pick it.
        let set = TestSet(vec![TestDest::new(1, 1).conns(10, 0), TestDest::new(2, 1)]);
        let mut s = Twos::with_seed(2);
        let got = shares(&mut s, &set, 100_000);
        assert!((got[0] - 4.0 / 9.0).abs() < 0.01, "{got:?}");
    }

    #[test]
    fn ties_keep_the_first_choice_and_skip_overloaded() {
        let mut set = TestSet::weights(&[1, 1, 1]);
        set.0[1].overloaded = true;
        let mut s = Twos::with_seed(3);
        let got = shares(&mut s, &set, 30_000);
        assert_eq!(got[1], 0.0);
        assert!((got[0] - 2.0 / 3.0).abs() < 0.02, "{got:?}");
    }

    #[test]
    fn seeded_sequences_are_reproducible() {
        let set = TestSet::weights(&[3, 1, 4, 1, 5]);
        let run = |seed| {
            let mut s = Twos::with_seed(seed);
            (0..200)
                .map(|k| s.schedule(&set, &key(k), Timestamp::ZERO).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        assert_ne!(Twos::new().state, Twos::new().state);
    }
}
