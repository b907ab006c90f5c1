//! Never queue (`ip_vs_nq.c`): the first server in list order with no
//! active connection (and a weight above zero, not overloaded); if every
//! one is busy, the least (activeconns + 1) / weight as sed, the first in
//! list order winning a tie.

use super::sed::sed_overhead;
use super::{available, ratio_gt, DestSet, FlowKey, Scheduler};
use crate::lb::time::Timestamp;

#[derive(Debug, Default)]
pub struct Nq;

impl Nq {
    pub fn new() -> Self {
        Nq
    }
}

impl Scheduler for Nq {
    fn name(&self) -> &'static str {
        "nq"
    }

    fn update(&mut self, _dests: &dyn DestSet) {}

    fn schedule(&mut self, dests: &dyn DestSet, _key: &FlowKey, _now: Timestamp) -> Option<usize> {
        let mut least: Option<(usize, u64)> = None;
        for i in 0..dests.len() {
            if !available(dests, i) {
                continue;
            }
            if dests.active(i) == 0 {
                return Some(i);
            }
            let doh = sed_overhead(dests, i);
            // loh * dw > doh * lw  <=>  doh/dw < loh/lw
            if least.is_none_or(|(l, loh)| ratio_gt(loh, dests.weight(l), doh, dests.weight(i))) {
                least = Some((i, doh));
            }
        }
        least.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn pick(set: &TestSet) -> Option<usize> {
        let mut s = Nq::new();
        s.update(set);
        s.schedule(set, &key(0), Timestamp::ZERO)
    }

    #[test]
    fn first_idle_server_wins_regardless_of_weight() {
        let set = TestSet(vec![
            TestDest::new(1, 100).conns(1, 0),
            TestDest::new(2, 1).conns(0, 50), // idle (inactive ignored)
            TestDest::new(3, 50).conns(0, 0), // idle too, but later
        ]);
        assert_eq!(pick(&set), Some(1));
    }

    #[test]
    fn all_busy_falls_back_to_sed() {
        let set = TestSet(vec![
            TestDest::new(1, 1).conns(1, 0),  // 2/1
            TestDest::new(2, 10).conns(5, 0), // 6/10
            TestDest::new(3, 5).conns(2, 0),  // 3/5 = 6/10: tie, keep 1
        ]);
        assert_eq!(pick(&set), Some(1));
    }

    #[test]
    fn idle_but_quiesced_or_overloaded_is_skipped() {
        let mut set = TestSet(vec![
            TestDest::new(1, 0).conns(0, 0),
            TestDest::new(2, 1).conns(0, 0),
            TestDest::new(3, 1).conns(4, 0),
        ]);
        set.0[1].overloaded = true;
        assert_eq!(pick(&set), Some(2));
    }
}
