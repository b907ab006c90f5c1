//! Rate pacing for a generator that sends in bursts: from a clock reading,
//! how many packets may go now so that the long-run rate is the target.
//! Sans-IO: the clock (TSC ticks and their frequency) is a parameter.

/// Releases packets at `pps` per second in bursts of up to `burst`.
///
/// The schedule is absolute (packets due since the start), so a sender that
/// is briefly late catches up and the average stays on target; a backlog of
/// more than [`Pacer::max_backlog`] packets (a sender that cannot keep up,
/// or was descheduled) is given up rather than sent as one long surge, and
/// counted in [`Pacer::behind`].
#[derive(Clone, Debug)]
pub struct Pacer {
    pps: u64,
    hz: u64,
    burst: u64,
    start: u64,
    released: u64,
    skipped: u64,
    max_backlog: u64,
}

impl Pacer {
    /// `pps` 0: unpaced (every call may send a full burst). `hz`: clock
    /// ticks per second; `now`: the clock at the start.
    pub fn new(pps: u64, hz: u64, burst: u64, now: u64) -> Pacer {
        let burst = burst.max(1);
        Pacer {
            pps,
            hz: hz.max(1),
            burst,
            start: now,
            released: 0,
            skipped: 0,
            // 100 µs of packets, at least a few bursts.
            max_backlog: (pps / 10_000).max(4 * burst),
        }
    }

    /// How many of the next `want` packets (at most one burst) may be sent
    /// at `now`: all of them once that many are due, else 0 (wait). Report
    /// what was actually sent with [`Pacer::sent`].
    #[inline]
    pub fn due(&mut self, now: u64, want: u64) -> u64 {
        let want = want.min(self.burst);
        if self.pps == 0 {
            return want;
        }
        let elapsed = now.saturating_sub(self.start) as u128;
        let scheduled = (elapsed * self.pps as u128 / self.hz as u128) as u64;
        let mut owed = scheduled.saturating_sub(self.released + self.skipped);
        if owed > self.max_backlog {
            self.skipped += owed - want;
            owed = want;
        }
        if owed >= want {
            want
        } else {
            0
        }
    }

    /// `n` packets went out.
    #[inline]
    pub fn sent(&mut self, n: u64) {
        self.released += n;
    }

    /// Packets the schedule gave up on because the sender was late by more
    /// than the backlog allowance.
    pub fn behind(&self) -> u64 {
        self.skipped
    }

    pub fn max_backlog(&self) -> u64 {
        self.max_backlog
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HZ: u64 = 1_000_000_000;

    /// Drives a pacer with a sender that polls every `step` ticks and sends
    /// whatever is due; returns packets sent by `until`.
    fn drive(p: &mut Pacer, step: u64, until: u64) -> u64 {
        let mut sent = 0;
        let mut t = 0;
        while t <= until {
            let n = p.due(t, 32);
            p.sent(n);
            sent += n;
            t += step;
        }
        sent
    }

    #[test]
    fn holds_the_rate_in_bursts() {
        let mut p = Pacer::new(1_000_000, HZ, 32, 0);
        // Nothing before a whole burst is due (32 µs at 1 Mpps).
        assert_eq!(p.due(31_000, 32), 0);
        assert_eq!(p.due(32_000, 32), 32);
        p.sent(32);
        assert_eq!(p.due(33_000, 32), 0);
        let mut p = Pacer::new(1_000_000, HZ, 32, 0);
        let sent = drive(&mut p, 100, HZ);
        assert!((999_900..=1_000_000).contains(&sent), "{sent}");
        assert_eq!(p.behind(), 0);
    }

    #[test]
    fn catches_up_a_short_delay_but_not_a_long_one() {
        let mut p = Pacer::new(1_000_000, HZ, 32, 0);
        assert_eq!(p.max_backlog(), 128);
        // 50 µs late (50 due): within the allowance; one burst now...
        assert_eq!(p.due(50_000, 32), 32);
        p.sent(32);
        assert_eq!(p.due(50_000, 32), 0);
        // ...and the next as soon as 64 are due: no packet was lost.
        assert_eq!(p.due(64_000, 32), 32);
        p.sent(32);
        assert_eq!(p.behind(), 0);
        // 10 ms late: the backlog is given up, one burst goes, no surge.
        let t = 10_064_000;
        assert_eq!(p.due(t, 32), 32);
        p.sent(32);
        assert_eq!(p.behind(), 10_000 - 32);
        assert_eq!(p.due(t, 32), 0);
        assert_eq!(p.due(t + 32_000, 32), 32);
    }

    #[test]
    fn unpaced_and_partial_bursts() {
        let mut p = Pacer::new(0, HZ, 32, 0);
        assert_eq!(p.due(0, 100), 32);
        assert_eq!(p.due(0, 5), 5);
        // A short tail (the end of a capture played once) goes as soon as
        // that many are due.
        let mut p = Pacer::new(1000, HZ, 32, 0);
        assert_eq!(p.due(4_000_000, 5), 0);
        assert_eq!(p.due(5_000_000, 5), 5);
    }
}
