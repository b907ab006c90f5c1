//! Weighted round-robin (`ip_vs_wrr.c`).
//!
//! State, as in the kernel: `cl` (the server chosen last, or the list head),
//! `cw` (the current weight threshold), `mw` (the maximum weight, reduced by
//! `di - 1` so the last pass runs at `cw == 1`) and `di` (the gcd of the
//! weights above zero, 1 if none). A pick walks on from `cl` for a server
//! that is not overloaded and has `weight >= cw`; every time the walk passes
//! the end of the list `cw` drops by `di`, and below 1 it restarts at `mw`.
//! The walk gives up (no server) once every server has been checked against
//! `cw == 1`, exactly where the kernel gives up.
//!
//! [`Scheduler::update`] is the kernel's `ip_vs_wrr_dest_changed`: `cl` goes
//! back to the head, `di` and `mw` are recomputed, and `cw` is kept if still
//! meaningful (reset to `mw` if above it or zero, else rounded down to a
//! multiple of `di`, plus 1).

use super::{gcd, DestSet, FlowKey, Scheduler};
use crate::lb::time::Timestamp;

#[derive(Debug, Default)]
pub struct Wrr {
    /// Server chosen last; `None` = the list head.
    cl: Option<usize>,
    cw: i64,
    mw: i64,
    di: i64,
}

impl Wrr {
    pub fn new() -> Self {
        Wrr {
            cl: None,
            cw: 0,
            mw: 0,
            di: 1,
        }
    }
}

impl Scheduler for Wrr {
    fn name(&self) -> &'static str {
        "wrr"
    }

    fn update(&mut self, dests: &dyn DestSet) {
        let n = dests.len();
        let g = (0..n)
            .map(|i| dests.weight(i))
            .filter(|&w| w > 0)
            .fold(0, gcd);
        let max = (0..n).map(|i| dests.weight(i)).max().unwrap_or(0);
        self.cl = None;
        self.di = if g == 0 { 1 } else { g as i64 };
        self.mw = max as i64 - (self.di - 1);
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = (self.cw / self.di) * self.di + 1;
        }
    }

    fn schedule(&mut self, dests: &dyn DestSet, _key: &FlowKey, _now: Timestamp) -> Option<usize> {
        let n = dests.len();
        if self.mw <= 0 {
            return None;
        }
        let last = self.cl.filter(|&c| c < n);
        let mut from = last.map_or(0, |c| c + 1);
        let mut stop: Option<usize> = None;
        let mut last_pass = false;
        let mut restarted = false;
        loop {
            for i in from..n {
                if !dests.overloaded(i) && dests.weight(i) as i64 >= self.cw {
                    self.cl = Some(i);
                    return Some(i);
                }
                if stop == Some(i) {
                    self.cl = Some(i);
                    return None;
                }
            }
            // Passed the end of the list: lower the threshold.
            from = 0;
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                // Every server was already checked against cw == 1 (or the
                // walk started at the head, so one full pass covered all).
                if last_pass || last.is_none() {
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                // The first cw == 1 pass only covered servers after `last`;
                // this one covers those up to and including it.
                stop = last;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn run(s: &mut Wrr, set: &TestSet, n: usize) -> Vec<usize> {
        (0..n)
            .map(|k| s.schedule(set, &key(k as u32), Timestamp::ZERO).unwrap())
            .collect()
    }

    /// Weights A=4, B=3, C=2 (list order). gcd di = 1, mw = 4 - 0 = 4.
    ///
    /// ```text
    /// cw=4: A(4>=4)                      -> A
    /// cw=4: B(3) C(2) no; end, cw=3
    /// cw=3: A                            -> A
    /// cw=3: B(3>=3)                      -> B
    /// cw=3: C(2) no; end, cw=2: A        -> A
    /// cw=2: B                            -> B
    /// cw=2: C(2>=2)                      -> C
    /// cw=2: end, cw=1: A                 -> A
    /// cw=1: B, C                         -> B, C
    /// cw=1: end, cw=0 -> restart cw=4: A -> A   (period 9 = 4+3+2)
    /// ```
    #[test]
    fn kernel_sequence_4_3_2() {
        let set = TestSet::weights(&[4, 3, 2]);
        let mut s = Wrr::new();
        s.update(&set);
        let seq = run(&mut s, &set, 18);
        let one = [0, 0, 1, 0, 1, 2, 0, 1, 2];
        assert_eq!(seq[..9], one);
        assert_eq!(seq[9..], one);
    }

    /// Weights 4, 2: di = 2, mw = 4 - 1 = 3. cw=3: A; end, cw=1: A, B;
    /// end, cw=-1 -> 3: A ...
    #[test]
    fn gcd_step_4_2() {
        let set = TestSet::weights(&[4, 2]);
        let mut s = Wrr::new();
        s.update(&set);
        assert_eq!(run(&mut s, &set, 6), [0, 0, 1, 0, 0, 1]);
    }

    #[test]
    fn equal_weights_is_round_robin() {
        let set = TestSet::weights(&[5, 5, 5]);
        let mut s = Wrr::new();
        s.update(&set);
        assert_eq!(run(&mut s, &set, 6), [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn proportions_over_a_period() {
        let set = TestSet::weights(&[1, 7, 3, 0, 5]);
        let mut s = Wrr::new();
        s.update(&set);
        let mut count = [0; 5];
        for i in run(&mut s, &set, 16 * 10) {
            count[i] += 1;
        }
        assert_eq!(count, [10, 70, 30, 0, 50]);
    }

    #[test]
    fn skips_overloaded_and_weight_zero() {
        let mut set = TestSet::weights(&[4, 3, 0, 2]);
        set.0[1].overloaded = true;
        let mut s = Wrr::new();
        s.update(&set);
        // Effective 4 and 2 with di = 1 (gcd over 4,3,2), mw = 4:
        // cw4: A; cw3: A; cw2: A, D; cw1: A, D
        assert_eq!(run(&mut s, &set, 6), [0, 0, 0, 3, 0, 3]);
    }

    #[test]
    fn all_overloaded_fails_then_recovers() {
        let mut set = TestSet::weights(&[2, 1]);
        let mut s = Wrr::new();
        s.update(&set);
        assert_eq!(run(&mut s, &set, 1), [0]);
        for d in &mut set.0 {
            d.overloaded = true;
        }
        for k in 0..5 {
            assert_eq!(s.schedule(&set, &key(k), Timestamp::ZERO), None);
        }
        for d in &mut set.0 {
            d.overloaded = false;
        }
        // Sequence is A A B: back to a valid pick at once.
        assert!(s.schedule(&set, &key(0), Timestamp::ZERO).is_some());
    }

    #[test]
    fn update_restarts_from_head_and_keeps_cw() {
        let mut set = TestSet::weights(&[3, 3, 1]);
        let mut s = Wrr::new();
        s.update(&set);
        // cw3: A B; cw2: A B; cw1: A B C
        assert_eq!(run(&mut s, &set, 3), [0, 1, 0]); // now cw = 2, cl = A
        set.0[2].weight = 2;
        s.update(&set); // di 1, mw 3, cw stays 2, cl = head
        assert_eq!(run(&mut s, &set, 4), [0, 1, 2, 0]);
    }

    #[test]
    fn update_with_gcd_rounds_cw() {
        // Kernel: cw > mw or cw == 0 -> mw; else if di > 1 -> (cw/di)*di + 1.
        let mut s = Wrr::new();
        s.update(&TestSet::weights(&[8, 2])); // di 2, mw 7, cw 7
        assert_eq!((s.di, s.mw, s.cw), (2, 7, 7));
        s.cw = 4;
        s.update(&TestSet::weights(&[8, 4])); // di 4, mw 5, cw (4/4)*4+1 = 5
        assert_eq!((s.di, s.mw, s.cw), (4, 5, 5));
        s.update(&TestSet::weights(&[2, 2])); // di 2, mw 1: cw 5 > 1 -> 1
        assert_eq!((s.di, s.mw, s.cw), (2, 1, 1));
    }
}
