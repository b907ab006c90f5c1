//! Round-robin (`ip_vs_rr.c`).
//!
//! The kernel keeps a pointer to the server chosen last (initially the list
//! head) and walks on from there, wrapping once, to the next server with a
//! weight above zero that is not overloaded. A failed walk leaves the
//! pointer where it was.
//!
//! Across [`Scheduler::update`] the position follows the server, not the
//! index: a server added at the head does not disturb the rotation, and
//! when the last chosen server is deleted the position moves back to the
//! closest earlier server still present (the kernel's `ip_vs_rr_del_dest`
//! steps to the previous list entry), or to the head if there is none.

use std::collections::HashMap;

use super::{available, ids, DestId, DestSet, FlowKey, Scheduler};
use crate::lb::time::Timestamp;

#[derive(Debug, Default)]
pub struct Rr {
    /// Index of the server chosen last; `None` = the list head.
    pos: Option<usize>,
    /// Identities of the list `pos` refers to.
    ids: Vec<DestId>,
}

impl Rr {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Scheduler for Rr {
    fn name(&self) -> &'static str {
        "rr"
    }

    fn update(&mut self, dests: &dyn DestSet) {
        let new_ids = ids(dests);
        if let Some(p) = self.pos.filter(|&p| p < self.ids.len()) {
            let index: HashMap<DestId, usize> =
                new_ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
            // The server itself if it survived, else the nearest earlier
            // survivor, else the head.
            self.pos = self.ids[..=p]
                .iter()
                .rev()
                .find_map(|id| index.get(id).copied());
        } else {
            self.pos = None;
        }
        self.ids = new_ids;
    }

    fn schedule(&mut self, dests: &dyn DestSet, _key: &FlowKey, _now: Timestamp) -> Option<usize> {
        let n = dests.len();
        // From the head: 0..n. From server p: p+1..n, then 0..=p.
        let first = match self.pos {
            Some(p) if p < n => p + 1,
            _ => 0,
        };
        for k in 0..n {
            let i = (first + k) % n;
            if available(dests, i) {
                self.pos = Some(i);
                return Some(i);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn run(s: &mut Rr, set: &TestSet, n: usize) -> Vec<Option<usize>> {
        (0..n)
            .map(|k| s.schedule(set, &key(k as u32), Timestamp::ZERO))
            .collect()
    }

    #[test]
    fn cycles_in_list_order_from_the_head() {
        let set = TestSet::weights(&[1, 1, 1]);
        let mut s = Rr::new();
        s.update(&set);
        let got = run(&mut s, &set, 7);
        assert_eq!(got, [0, 1, 2, 0, 1, 2, 0].map(Some));
    }

    #[test]
    fn weights_do_not_matter_beyond_zero() {
        let set = TestSet::weights(&[100, 1]);
        let mut s = Rr::new();
        s.update(&set);
        assert_eq!(run(&mut s, &set, 4), [0, 1, 0, 1].map(Some));
    }

    #[test]
    fn skips_weight_zero_and_overloaded() {
        let mut set = TestSet::weights(&[1, 0, 1, 1]);
        set.0[3].overloaded = true;
        let mut s = Rr::new();
        s.update(&set);
        assert_eq!(run(&mut s, &set, 5), [0, 2, 0, 2, 0].map(Some));
        // The overload clears: no update() needed, it is read live.
        set.0[3].overloaded = false;
        assert_eq!(run(&mut s, &set, 4), [2, 3, 0, 2].map(Some));
    }

    #[test]
    fn failure_keeps_position() {
        let mut set = TestSet::weights(&[1, 1, 1]);
        let mut s = Rr::new();
        s.update(&set);
        assert_eq!(run(&mut s, &set, 2), [Some(0), Some(1)]);
        for d in &mut set.0 {
            d.overloaded = true;
        }
        assert_eq!(run(&mut s, &set, 3), [None, None, None]);
        for d in &mut set.0 {
            d.overloaded = false;
        }
        assert_eq!(run(&mut s, &set, 2), [Some(2), Some(0)]);
    }

    #[test]
    fn added_server_does_not_disturb_rotation() {
        let mut set = TestSet::weights(&[1, 1, 1]); // A B C
        let mut s = Rr::new();
        s.update(&set);
        assert_eq!(run(&mut s, &set, 2), [Some(0), Some(1)]); // A B
        set.push_front(TestDest::new(9, 1)); // D A B C
        s.update(&set);
        // Continues after B (now index 2): C, then D from the head.
        assert_eq!(run(&mut s, &set, 5), [3, 0, 1, 2, 3].map(Some));
    }

    #[test]
    fn deleting_last_chosen_steps_back_to_previous() {
        let mut set = TestSet::weights(&[1, 1, 1, 1]); // A B C D
        let mut s = Rr::new();
        s.update(&set);
        assert_eq!(run(&mut s, &set, 3), [Some(0), Some(1), Some(2)]); // A B C
        set.0.remove(2); // A B D; position moves back to B
        s.update(&set);
        assert_eq!(run(&mut s, &set, 3), [2, 0, 1].map(Some)); // D A B
    }

    #[test]
    fn deleting_head_when_it_was_last_restarts_at_head() {
        let mut set = TestSet::weights(&[1, 1, 1]); // A B C
        let mut s = Rr::new();
        s.update(&set);
        assert_eq!(run(&mut s, &set, 1), [Some(0)]);
        set.0.remove(0); // B C
        s.update(&set);
        assert_eq!(run(&mut s, &set, 3), [0, 1, 0].map(Some));
    }

    #[test]
    fn deleting_several_walks_back_to_a_survivor() {
        let mut set = TestSet::weights(&[1, 1, 1, 1, 1]); // A B C D E
        let mut s = Rr::new();
        s.update(&set);
        run(&mut s, &set, 4); // ... D
        set.0.drain(2..4); // A B E; C and D gone -> B
        s.update(&set);
        assert_eq!(run(&mut s, &set, 2), [Some(2), Some(0)]);
    }
}
