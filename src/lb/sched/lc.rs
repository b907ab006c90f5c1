//! Least-connection (`ip_vs_lc.c`): the server with the least overhead
//! (activeconns * 256 + inactconns), skipping weight 0 and overloaded
//! servers; weights are otherwise ignored. The first in list order wins a
//! tie (the kernel replaces only on a strictly smaller overhead).

use super::{available, overhead, DestSet, FlowKey, Scheduler};
use crate::lb::time::Timestamp;

#[derive(Debug, Default)]
pub struct Lc;

impl Lc {
    pub fn new() -> Self {
        Lc
    }
}

impl Scheduler for Lc {
    fn name(&self) -> &'static str {
        "lc"
    }

    fn update(&mut self, _dests: &dyn DestSet) {}

    fn schedule(&mut self, dests: &dyn DestSet, _key: &FlowKey, _now: Timestamp) -> Option<usize> {
        let mut least: Option<(usize, u64)> = None;
        for i in 0..dests.len() {
            if !available(dests, i) {
                continue;
            }
            let doh = overhead(dests, i);
            if least.is_none_or(|(_, loh)| doh < loh) {
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
        let mut s = Lc::new();
        s.update(set);
        s.schedule(set, &key(0), Timestamp::ZERO)
    }

    #[test]
    fn least_overhead_ignoring_weight() {
        let set = TestSet(vec![
            TestDest::new(1, 100).conns(2, 0),  // 512
            TestDest::new(2, 1).conns(1, 300),  // 556
            TestDest::new(3, 1).conns(1, 200),  // 456
            TestDest::new(4, 50).conns(0, 500), // 500
        ]);
        assert_eq!(pick(&set), Some(2));
    }

    #[test]
    fn active_counts_256_times_inactive() {
        let set = TestSet(vec![
            TestDest::new(1, 1).conns(1, 0),   // 256
            TestDest::new(2, 1).conns(0, 255), // 255
        ]);
        assert_eq!(pick(&set), Some(1));
        let set = TestSet(vec![
            TestDest::new(1, 1).conns(1, 0),   // 256
            TestDest::new(2, 1).conns(0, 256), // 256: tie, first wins
        ]);
        assert_eq!(pick(&set), Some(0));
    }

    #[test]
    fn ties_go_to_first_in_list_order() {
        let set = TestSet::weights(&[1, 1, 1]);
        assert_eq!(pick(&set), Some(0));
    }

    #[test]
    fn skips_weight_zero_and_overloaded() {
        let mut set = TestSet(vec![
            TestDest::new(1, 0).conns(0, 0),
            TestDest::new(2, 1).conns(0, 0),
            TestDest::new(3, 1).conns(0, 5),
        ]);
        set.0[1].overloaded = true;
        assert_eq!(pick(&set), Some(2));
    }
}
