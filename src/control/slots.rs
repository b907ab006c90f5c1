//! Who holds the control socket's connections, and until when (sans-IO:
//! time is a parameter).
//!
//! Every connection is in one phase, with a deadline where the client sets
//! the pace: idle between requests, reading a request (the whole request,
//! not each read: a byte every few seconds does not keep it alive), writing
//! an answer (each chunk). A connection past its deadline is closed.
//!
//! When all places are taken, a newcomer is not refused: the connection
//! that has waited on its client the longest (idle since its last answer,
//! reading since its request began, or stalled on a write) makes room.
//! A well-behaved client is newer than every idle or slow one, so no set
//! of them can keep it out. Connections whose request is complete (queued
//! for the handler or being handled) are never evicted; if every place
//! holds one, the newcomer is refused. A connection can be admitted with
//! its request already complete (the listener reads what a client sent
//! before it was accepted), so that a burst of connections right after it
//! cannot push it out before its thread runs.

use std::time::{Duration, Instant};

/// The per-phase time limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Connected without a request in progress (since connecting or the
    /// last answer; blank lines do not count as requests).
    pub idle: Duration,
    /// From the first byte of a request to its newline.
    pub request: Duration,
    /// For each chunk of an answer to be taken by the client.
    pub write: Duration,
}

/// What a connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the next request.
    Idle,
    /// Part of a request has arrived.
    Reading,
    /// A whole request is waiting for the handler.
    Queued,
    /// The handler is working on it.
    Handling,
    /// Sending the answer.
    Writing,
}

/// A connection's place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(u64);

/// The outcome of [`Slots::admit`].
#[derive(Debug, PartialEq, Eq)]
pub enum Admission<T> {
    Admitted(ConnId),
    /// Admitted in place of `victim`, which was in `phase`: the caller
    /// closes it.
    Evicted {
        id: ConnId,
        victim: T,
        phase: Phase,
    },
    /// Every place holds a request in progress; the newcomer is handed
    /// back.
    Refused(T),
}

/// A connection past its deadline, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// It was idle too long.
    Idle,
    /// Its request or answer was too slow.
    Slow,
}

#[derive(Debug)]
struct Slot<T> {
    id: ConnId,
    phase: Phase,
    /// When the current phase (for writing: the current chunk) began.
    since: Instant,
    /// When the connection was last answered (or opened).
    idle_since: Instant,
    payload: T,
}

impl<T> Slot<T> {
    /// When this connection last heard back from its client in the way
    /// that matters for its phase; `None` if it must not be evicted.
    fn waiting_since(&self) -> Option<Instant> {
        match self.phase {
            Phase::Idle => Some(self.idle_since),
            Phase::Reading | Phase::Writing => Some(self.since),
            Phase::Queued | Phase::Handling => None,
        }
    }

    fn deadline(&self, d: &Deadlines) -> Option<(Instant, Expiry)> {
        match self.phase {
            Phase::Idle => Some((self.idle_since + d.idle, Expiry::Idle)),
            Phase::Reading => Some((self.since + d.request, Expiry::Slow)),
            Phase::Writing => Some((self.since + d.write, Expiry::Slow)),
            Phase::Queued | Phase::Handling => None,
        }
    }
}

/// The control socket's connections. `T` is what the caller needs to
/// close one (a clone of its stream).
#[derive(Debug)]
pub struct Slots<T> {
    capacity: usize,
    deadlines: Deadlines,
    next: u64,
    slots: Vec<Slot<T>>,
}

impl<T> Slots<T> {
    pub fn new(capacity: usize, deadlines: Deadlines) -> Self {
        Slots {
            capacity: capacity.max(1),
            deadlines,
            next: 0,
            slots: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn find(&mut self, id: ConnId) -> Option<&mut Slot<T>> {
        self.slots.iter_mut().find(|s| s.id == id)
    }

    /// A new connection at `now`, in `phase`: `Idle` if nothing came with
    /// it, `Reading` with part of a request, `Queued` with a whole one.
    pub fn admit(&mut self, now: Instant, phase: Phase, payload: T) -> Admission<T> {
        let mut evicted = None;
        if self.slots.len() >= self.capacity {
            let victim = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.waiting_since().map(|t| (t, i)))
                .min();
            match victim {
                Some((_, i)) => {
                    let v = self.slots.swap_remove(i);
                    evicted = Some((v.payload, v.phase));
                }
                None => return Admission::Refused(payload),
            }
        }
        let id = ConnId(self.next);
        self.next += 1;
        self.slots.push(Slot {
            id,
            phase,
            since: now,
            idle_since: now,
            payload,
        });
        match evicted {
            Some((victim, phase)) => Admission::Evicted { id, victim, phase },
            None => Admission::Admitted(id),
        }
    }

    /// `id` enters `phase` at `now`; false if it was evicted meanwhile.
    /// Back to idle after writing means the client was answered; back to
    /// idle after reading (a blank line) does not.
    pub fn enter(&mut self, id: ConnId, phase: Phase, now: Instant) -> bool {
        let Some(s) = self.find(id) else {
            return false;
        };
        if phase == Phase::Idle && s.phase == Phase::Writing {
            s.idle_since = now;
        }
        s.phase = phase;
        s.since = now;
        true
    }

    /// The phase `id` is in; `None` once it was evicted.
    pub fn phase(&self, id: ConnId) -> Option<Phase> {
        self.slots.iter().find(|s| s.id == id).map(|s| s.phase)
    }

    /// When `id` must have moved on, and what it is if it has not;
    /// `Ok(None)` while the handler has it; `Err(())` once it was evicted.
    #[allow(clippy::result_unit_err)]
    pub fn deadline(&self, id: ConnId) -> Result<Option<(Instant, Expiry)>, ()> {
        self.slots
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.deadline(&self.deadlines))
            .ok_or(())
    }

    /// The connection ended; its payload, unless it was evicted before.
    pub fn leave(&mut self, id: ConnId) -> Option<T> {
        let i = self.slots.iter().position(|s| s.id == id)?;
        Some(self.slots.swap_remove(i).payload)
    }

    /// Every connection's payload, to close them all (the daemon stops).
    pub fn drain(&mut self) -> Vec<T> {
        self.slots.drain(..).map(|s| s.payload).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Deadlines = Deadlines {
        idle: Duration::from_secs(10),
        request: Duration::from_secs(5),
        write: Duration::from_secs(5),
    };

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    fn admitted<T: std::fmt::Debug>(a: Admission<T>) -> ConnId {
        match a {
            Admission::Admitted(id) => id,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn deadlines_per_phase_and_a_request_is_timed_whole() {
        let t0 = Instant::now();
        let mut s = Slots::new(4, D);
        let a = admitted(s.admit(t0, Phase::Idle, "a"));
        assert_eq!(s.deadline(a), Ok(Some((ms(t0, 10_000), Expiry::Idle))));
        // The first byte of a request at 1 s: the whole of it by 6 s,
        // however the rest trickles in (more bytes do not move it).
        assert!(s.enter(a, Phase::Reading, ms(t0, 1000)));
        assert_eq!(s.deadline(a), Ok(Some((ms(t0, 6000), Expiry::Slow))));
        // A blank line is no request: still idle since 0.
        assert!(s.enter(a, Phase::Idle, ms(t0, 2000)));
        assert_eq!(s.deadline(a), Ok(Some((ms(t0, 10_000), Expiry::Idle))));
        // A real one: no deadline while the handler has it.
        s.enter(a, Phase::Reading, ms(t0, 3000));
        s.enter(a, Phase::Queued, ms(t0, 3001));
        assert_eq!(s.deadline(a), Ok(None));
        s.enter(a, Phase::Handling, ms(t0, 3002));
        assert_eq!(s.deadline(a), Ok(None));
        s.enter(a, Phase::Writing, ms(t0, 3003));
        assert_eq!(s.deadline(a), Ok(Some((ms(t0, 8003), Expiry::Slow))));
        // Each chunk gets its own deadline.
        s.enter(a, Phase::Writing, ms(t0, 4000));
        assert_eq!(s.deadline(a), Ok(Some((ms(t0, 9000), Expiry::Slow))));
        // Answered: idle from now.
        s.enter(a, Phase::Idle, ms(t0, 4100));
        assert_eq!(s.deadline(a), Ok(Some((ms(t0, 14_100), Expiry::Idle))));
        assert_eq!(s.leave(a), Some("a"));
        assert_eq!(s.deadline(a), Err(()));
        assert!(!s.enter(a, Phase::Reading, ms(t0, 5000)));
    }

    #[test]
    fn a_newcomer_evicts_the_longest_waiting_never_a_request_in_hand() {
        let t0 = Instant::now();
        let mut s = Slots::new(3, D);
        let a = admitted(s.admit(t0, Phase::Idle, "a"));
        let b = admitted(s.admit(ms(t0, 10), Phase::Idle, "b"));
        let c = admitted(s.admit(ms(t0, 20), Phase::Idle, "c"));
        // a has a request queued, b trickles a request since 30 ms, c idles
        // since 20 ms: c has waited longest among those that may go.
        s.enter(a, Phase::Reading, ms(t0, 25));
        s.enter(a, Phase::Queued, ms(t0, 26));
        s.enter(b, Phase::Reading, ms(t0, 30));
        let d = match s.admit(ms(t0, 40), Phase::Idle, "d") {
            Admission::Evicted { id, victim, phase } => {
                assert_eq!((victim, phase), ("c", Phase::Idle));
                id
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(s.phase(c), None);
        assert!(!s.enter(c, Phase::Reading, ms(t0, 41)), "c is gone");
        // Next: b (reading since 30) before d (idle since 40).
        match s.admit(ms(t0, 50), Phase::Idle, "e") {
            Admission::Evicted { victim, .. } => assert_eq!(victim, "b"),
            other => panic!("{other:?}"),
        }
        // Requests in hand everywhere: refused.
        s.enter(d, Phase::Handling, ms(t0, 51));
        let e = s
            .slots
            .iter()
            .find(|x| x.payload == "e")
            .map(|x| x.id)
            .unwrap();
        s.enter(e, Phase::Queued, ms(t0, 52));
        assert_eq!(
            s.admit(ms(t0, 60), Phase::Idle, "f"),
            Admission::Refused("f")
        );
        assert_eq!(s.len(), 3);
        let mut all = s.drain();
        all.sort();
        assert_eq!(all, vec!["a", "d", "e"]);
        assert!(s.is_empty());
    }

    #[test]
    fn a_writer_that_keeps_taking_chunks_stays_young() {
        let t0 = Instant::now();
        let mut s = Slots::new(2, D);
        let old = admitted(s.admit(t0, Phase::Idle, "lister"));
        let idle = admitted(s.admit(ms(t0, 100), Phase::Idle, "idle"));
        s.enter(old, Phase::Writing, ms(t0, 200));
        s.enter(old, Phase::Writing, ms(t0, 300));
        match s.admit(ms(t0, 400), Phase::Idle, "new") {
            Admission::Evicted { victim, .. } => assert_eq!(victim, "idle"),
            other => panic!("{other:?}"),
        }
        assert_eq!(s.phase(old), Some(Phase::Writing));
        assert_eq!(s.phase(idle), None);
    }

    #[test]
    fn a_burst_cannot_push_out_a_client_whose_request_came_with_it() {
        let t0 = Instant::now();
        let mut s = Slots::new(4, D);
        let old = admitted(s.admit(t0, Phase::Idle, 0));
        let prompt = admitted(s.admit(ms(t0, 1000), Phase::Queued, 1));
        for k in 0..100 {
            match s.admit(ms(t0, 1001 + k), Phase::Idle, 10 + k as u32) {
                Admission::Admitted(_) => {}
                Admission::Evicted { victim, .. } => assert_ne!(victim, 1, "burst {k}"),
                Admission::Refused(_) => panic!("refused"),
            }
        }
        assert_eq!(s.phase(old), None);
        assert_eq!(s.phase(prompt), Some(Phase::Queued));
        // Answered and idle again, it is judged by its age like any other.
        s.enter(prompt, Phase::Handling, ms(t0, 1200));
        s.enter(prompt, Phase::Writing, ms(t0, 1201));
        s.enter(prompt, Phase::Idle, ms(t0, 1202));
        match s.admit(ms(t0, 1300), Phase::Idle, 999) {
            Admission::Evicted { victim, .. } => assert_ne!(victim, 1),
            other => panic!("{other:?}"),
        }
    }

    /// The attack from issue 15: every place taken by clients that send a
    /// byte now and then, and a connect/close loop besides. A client that
    /// connects and asks at once always gets in and stays until answered.
    #[test]
    fn tricklers_and_churn_never_keep_a_prompt_client_out() {
        let t0 = Instant::now();
        let mut s = Slots::new(128, D);
        let mut now = t0;
        let mut tricklers = Vec::new();
        for i in 0..128 {
            now += Duration::from_millis(1);
            let id = admitted(s.admit(now, Phase::Idle, i));
            s.enter(id, Phase::Reading, now);
            tricklers.push(id);
        }
        for round in 0..1000u32 {
            now += Duration::from_millis(3);
            // Churn: a connection that closes at once.
            let churn = match s.admit(now, Phase::Idle, 1000 + round) {
                Admission::Admitted(id) | Admission::Evicted { id, .. } => id,
                Admission::Refused(_) => panic!("churn refused"),
            };
            // The prompt client.
            let me = match s.admit(now, Phase::Idle, 9999) {
                Admission::Admitted(id) | Admission::Evicted { id, .. } => id,
                Admission::Refused(_) => panic!("refused in round {round}"),
            };
            s.enter(me, Phase::Reading, now);
            s.enter(me, Phase::Queued, now);
            // More churn arrives while it waits for the handler.
            for k in 0..200 {
                if let Admission::Admitted(id) | Admission::Evicted { id, .. } =
                    s.admit(now, Phase::Idle, 2000 + k)
                {
                    s.leave(id);
                }
            }
            assert!(
                s.enter(me, Phase::Handling, now),
                "evicted in round {round}"
            );
            assert!(s.enter(me, Phase::Writing, now));
            assert!(s.enter(me, Phase::Idle, now));
            s.leave(me);
            s.leave(churn);
        }
    }
}
