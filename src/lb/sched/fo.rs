//! Weighted failover (`ip_vs_fo.c`): the server with the highest weight
//! that is not overloaded; the first in list order wins a tie; weight 0
//! never wins.

use super::{DestSet, FlowKey, Scheduler};
use crate::lb::time::Timestamp;

#[derive(Debug, Default)]
pub struct Fo;

impl Fo {
    pub fn new() -> Self {
        Fo
    }
}

impl Scheduler for Fo {
    fn name(&self) -> &'static str {
        "fo"
    }

    fn update(&mut self, _dests: &dyn DestSet) {}

    fn schedule(&mut self, dests: &dyn DestSet, _key: &FlowKey, _now: Timestamp) -> Option<usize> {
        let mut best = None;
        let mut hw = 0;
        for i in 0..dests.len() {
            let w = dests.weight(i);
            if !dests.overloaded(i) && w > hw {
                best = Some(i);
                hw = w;
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn pick(set: &TestSet) -> Option<usize> {
        let mut s = Fo::new();
        s.update(set);
        s.schedule(set, &key(0), Timestamp::ZERO)
    }

    #[test]
    fn highest_weight_first_wins_ties() {
        assert_eq!(pick(&TestSet::weights(&[1, 5, 3, 5])), Some(1));
    }

    #[test]
    fn fails_over_when_overloaded_and_ignores_connections() {
        let mut set = TestSet::weights(&[1, 5, 3]);
        set.0[1].overloaded = true;
        set.0[2].active = 1_000_000;
        assert_eq!(pick(&set), Some(2));
        set.0[2].weight = 0;
        assert_eq!(pick(&set), Some(0));
    }
}
