//! Overflow-connection (`ip_vs_ovf.c`): the highest weight among servers
//! that are not overloaded, have a weight above zero and have
//! `activeconns <= weight` (the kernel skips a server only when
//! `activeconns > weight`); the first in list order wins a tie.

use super::{DestSet, FlowKey, Scheduler};
use crate::lb::time::Timestamp;

#[derive(Debug, Default)]
pub struct Ovf;

impl Ovf {
    pub fn new() -> Self {
        Ovf
    }
}

impl Scheduler for Ovf {
    fn name(&self) -> &'static str {
        "ovf"
    }

    fn update(&mut self, _dests: &dyn DestSet) {}

    fn schedule(&mut self, dests: &dyn DestSet, _key: &FlowKey, _now: Timestamp) -> Option<usize> {
        let mut best: Option<(usize, u32)> = None;
        for i in 0..dests.len() {
            let w = dests.weight(i);
            if dests.overloaded(i) || dests.active(i) > w || w == 0 {
                continue;
            }
            if best.is_none_or(|(_, hw)| w > hw) {
                best = Some((i, w));
            }
        }
        best.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn pick(set: &TestSet) -> Option<usize> {
        let mut s = Ovf::new();
        s.update(set);
        s.schedule(set, &key(0), Timestamp::ZERO)
    }

    #[test]
    fn fills_highest_weight_then_overflows() {
        let mut set = TestSet::weights(&[2, 4, 4]);
        assert_eq!(pick(&set), Some(1)); // 4, first of the tie
        set.0[1].active = 4; // == weight: still accepted
        assert_eq!(pick(&set), Some(1));
        set.0[1].active = 5; // > weight: overflow to the next
        assert_eq!(pick(&set), Some(2));
        set.0[2].active = 5;
        assert_eq!(pick(&set), Some(0));
        set.0[0].active = 3;
        assert_eq!(pick(&set), None);
    }

    #[test]
    fn inactive_ignored_overloaded_and_zero_skipped() {
        let mut set = TestSet::weights(&[0, 3, 1]);
        set.0[1].inactive = 1000;
        assert_eq!(pick(&set), Some(1));
        set.0[1].overloaded = true;
        assert_eq!(pick(&set), Some(2));
    }
}
