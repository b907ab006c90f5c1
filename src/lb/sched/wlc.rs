//! Weighted least-connection (`ip_vs_wlc.c`), the default scheduler: the
//! least overhead/weight, compared by cross-multiplication; the first in
//! list order wins a tie. See `weighted_least` in mod.rs.

use super::{overhead, weighted_least, DestSet, FlowKey, Scheduler};
use crate::lb::time::Timestamp;

#[derive(Debug, Default)]
pub struct Wlc;

impl Wlc {
    pub fn new() -> Self {
        Wlc
    }
}

impl Scheduler for Wlc {
    fn name(&self) -> &'static str {
        "wlc"
    }

    fn update(&mut self, _dests: &dyn DestSet) {}

    fn schedule(&mut self, dests: &dyn DestSet, _key: &FlowKey, _now: Timestamp) -> Option<usize> {
        weighted_least(dests, |i| overhead(dests, i))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn pick(set: &TestSet) -> Option<usize> {
        let mut s = Wlc::new();
        s.update(set);
        s.schedule(set, &key(0), Timestamp::ZERO)
    }

    #[test]
    fn least_overhead_per_weight() {
        let set = TestSet(vec![
            TestDest::new(1, 1).conns(1, 0), // 256/1
            TestDest::new(2, 3).conns(2, 0), // 512/3 = 170.7
            TestDest::new(3, 2).conns(1, 0), // 256/2 = 128
        ]);
        assert_eq!(pick(&set), Some(2));
    }

    #[test]
    fn ties_keep_first() {
        let set = TestSet(vec![
            TestDest::new(1, 1).conns(1, 0), // 256/1
            TestDest::new(2, 2).conns(2, 0), // 512/2
        ]);
        assert_eq!(pick(&set), Some(0));
        let set = TestSet::weights(&[3, 5, 7]);
        assert_eq!(pick(&set), Some(0)); // all idle: 0/w ties
    }

    #[test]
    fn skips_weight_zero_and_overloaded() {
        let mut set = TestSet(vec![
            TestDest::new(1, 0).conns(0, 0),
            TestDest::new(2, 5).conns(0, 0),
            TestDest::new(3, 1).conns(9, 0),
            TestDest::new(4, 0).conns(0, 0),
        ]);
        set.0[1].overloaded = true;
        assert_eq!(pick(&set), Some(2));
    }

    #[test]
    fn no_overflow_on_huge_counts_and_weights() {
        let set = TestSet(vec![
            TestDest::new(1, u32::MAX).conns(u32::MAX, u32::MAX),
            TestDest::new(2, u32::MAX - 1).conns(u32::MAX, u32::MAX),
        ]);
        assert_eq!(pick(&set), Some(0));
    }
}
