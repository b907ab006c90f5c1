//! Shortest expected delay (`ip_vs_sed.c`): the least
//! (activeconns + 1) / weight, compared by cross-multiplication; inactive
//! connections are ignored; the first in list order wins a tie.

use super::{weighted_least, DestSet, FlowKey, Scheduler};
use crate::lb::time::Timestamp;

#[derive(Debug, Default)]
pub struct Sed;

impl Sed {
    pub fn new() -> Self {
        Sed
    }
}

/// The kernel's `ip_vs_sed_dest_overhead`.
#[inline]
pub(crate) fn sed_overhead(d: &dyn DestSet, i: usize) -> u64 {
    d.active(i) as u64 + 1
}

impl Scheduler for Sed {
    fn name(&self) -> &'static str {
        "sed"
    }

    fn update(&mut self, _dests: &dyn DestSet) {}

    fn schedule(&mut self, dests: &dyn DestSet, _key: &FlowKey, _now: Timestamp) -> Option<usize> {
        weighted_least(dests, |i| sed_overhead(dests, i))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn pick(set: &TestSet) -> Option<usize> {
        let mut s = Sed::new();
        s.update(set);
        s.schedule(set, &key(0), Timestamp::ZERO)
    }

    #[test]
    fn expected_delay_counts_the_new_job() {
        // wlc would pick the idle weight-1 server (0/1 < 1/10), sed prefers
        // the big one: (1+1)/10 < (0+1)/1.
        let set = TestSet(vec![
            TestDest::new(1, 1).conns(0, 0),
            TestDest::new(2, 10).conns(1, 0),
        ]);
        assert_eq!(pick(&set), Some(1));
    }

    #[test]
    fn inactive_ignored_and_ties_keep_first() {
        let set = TestSet(vec![
            TestDest::new(1, 2).conns(1, 1000), // 2/2
            TestDest::new(2, 1).conns(0, 0),    // 1/1: tie
        ]);
        assert_eq!(pick(&set), Some(0));
    }

    #[test]
    fn skips_weight_zero_and_overloaded() {
        let mut set = TestSet(vec![
            TestDest::new(1, 0).conns(0, 0),
            TestDest::new(2, 9).conns(0, 0),
            TestDest::new(3, 1).conns(3, 0),
        ]);
        set.0[1].overloaded = true;
        assert_eq!(pick(&set), Some(2));
    }
}
