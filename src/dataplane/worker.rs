//! The per-lcore worker loop: rx burst -> a verdict per packet from a
//! [`Pipeline`] -> per-port tx buffers -> tx burst. The load balancer plugs in
//! as a `Pipeline`; the loop itself knows nothing about packets.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::handoff::Handoff;
use super::mbuf::{Burst, Mbuf, BURST_SIZE};
use super::port::{RxQueue, TxQueue};

/// Why a packet was dropped; one counter each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum DropReason {
    /// The tx queue was full after the flush retries.
    TxFull = 0,
    /// No rule for the packet (not ours, unknown protocol...).
    NoRoute = 1,
    /// The packet could not be parsed.
    Malformed = 2,
    /// The hand-off ring to the owning lcore was full.
    HandoffFull = 3,
    /// The pipeline decided to drop it (its own counters say why).
    Pipeline = 4,
}

impl DropReason {
    pub const COUNT: usize = 5;
    pub const ALL: [DropReason; Self::COUNT] = [
        DropReason::TxFull,
        DropReason::NoRoute,
        DropReason::Malformed,
        DropReason::HandoffFull,
        DropReason::Pipeline,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DropReason::TxFull => "tx-full",
            DropReason::NoRoute => "no-route",
            DropReason::Malformed => "malformed",
            DropReason::HandoffFull => "handoff-full",
            DropReason::Pipeline => "pipeline",
        }
    }
}

/// What to do with one received packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit on the worker's queue of port `n` (index in its port list).
    Tx(u16),
    /// Hand to worker `n` (the owner of the packet's connection).
    Handoff(u16),
    /// The pipeline keeps the packet ([`Pipeline::keep`]), e.g. until its
    /// next hop's MAC is known.
    Keep,
    Drop(DropReason),
}

/// Packet processing plugged into the worker loop.
pub trait Pipeline {
    /// Decide every packet of a burst received on port index `port`,
    /// writing `verdicts[i]` for `pkts[i]`; packets may be rewritten in place.
    fn process(&mut self, port: u16, pkts: &mut [Mbuf], verdicts: &mut [Verdict; BURST_SIZE]);

    /// A verdict for every packet that arrives on `port`, when the pipeline
    /// decides per port rather than per packet (plain forwarding); the
    /// worker then moves the whole burst without calling `process`.
    #[inline]
    fn port_verdict(&mut self, _port: u16) -> Option<Verdict> {
        None
    }

    /// Take ownership of packet `index` of the burst just processed, whose
    /// verdict was [`Verdict::Keep`]. The default drops it.
    fn keep(&mut self, _index: usize, _m: Mbuf) {}

    /// Called once per loop iteration, after tx (timers, config pickup).
    /// Frames pushed to `out` as (port index, mbuf) are transmitted.
    fn tick(&mut self, _now_tsc: u64, _out: &mut Vec<(u16, Mbuf)>) {}
}

/// Plain L2 forwarding: everything received on port i leaves on `peer[i]`.
pub struct L2Forward {
    pub peer: Vec<u16>,
}

impl Pipeline for L2Forward {
    #[inline]
    fn port_verdict(&mut self, port: u16) -> Option<Verdict> {
        Some(match self.peer.get(port as usize) {
            Some(&p) => Verdict::Tx(p),
            None => Verdict::Drop(DropReason::NoRoute),
        })
    }

    #[inline]
    fn process(&mut self, port: u16, pkts: &mut [Mbuf], verdicts: &mut [Verdict; BURST_SIZE]) {
        let v = match self.peer.get(port as usize) {
            Some(&p) => Verdict::Tx(p),
            None => Verdict::Drop(DropReason::NoRoute),
        };
        for slot in verdicts.iter_mut().take(pkts.len()) {
            *slot = v;
        }
    }
}

/// Counters of one worker. Single writer (its lcore), relaxed stores once
/// per burst; readers sum them from any thread.
#[derive(Default, Debug)]
pub struct WorkerStats {
    pub rx: AtomicU64,
    pub tx: AtomicU64,
    /// Packets handed to another worker / received from other workers.
    pub handoff_out: AtomicU64,
    pub handoff_in: AtomicU64,
    pub loops: AtomicU64,
    pub idle_loops: AtomicU64,
    pub drops: [AtomicU64; DropReason::COUNT],
}

/// A plain copy of [`WorkerStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerCounts {
    pub rx: u64,
    pub tx: u64,
    pub handoff_out: u64,
    pub handoff_in: u64,
    pub loops: u64,
    pub idle_loops: u64,
    pub drops: [u64; DropReason::COUNT],
}

impl WorkerStats {
    pub fn snapshot(&self) -> WorkerCounts {
        let mut drops = [0; DropReason::COUNT];
        for (d, a) in drops.iter_mut().zip(&self.drops) {
            *d = a.load(Ordering::Relaxed);
        }
        WorkerCounts {
            rx: self.rx.load(Ordering::Relaxed),
            tx: self.tx.load(Ordering::Relaxed),
            handoff_out: self.handoff_out.load(Ordering::Relaxed),
            handoff_in: self.handoff_in.load(Ordering::Relaxed),
            loops: self.loops.load(Ordering::Relaxed),
            idle_loops: self.idle_loops.load(Ordering::Relaxed),
            drops,
        }
    }
}

/// Single-writer add: a load and a store, no locked instruction.
#[inline]
fn bump(a: &AtomicU64, n: u64) {
    if n != 0 {
        a.store(a.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }
}

/// Per-burst processing time over a window, in TSC ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencyWindow {
    pub bursts: u64,
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl LatencyWindow {
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> LatencyWindow {
        LatencyWindow {
            bursts: h.len(),
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// Another thread's handle on a worker's latency histogram: read the
/// percentiles so far and/or start a new window, without stopping the
/// worker. The worker looks at one flag per poll loop (a relaxed load) and
/// takes the lock only when asked.
#[derive(Debug, Default)]
pub struct LatencyControl {
    asked: AtomicBool,
    state: Mutex<LatencyRequests>,
}

#[derive(Debug, Default)]
struct LatencyRequests {
    reset: bool,
    /// Requests made / answered so far.
    made: u64,
    answered: u64,
    last: Option<LatencyWindow>,
}

impl LatencyControl {
    /// The window since the worker started or since the last reset; with
    /// `reset`, a new window starts right after it is read. `None` when the
    /// worker did not answer within `timeout` (not running, or busy in a
    /// long call).
    pub fn query(&self, reset: bool, timeout: Duration) -> Option<LatencyWindow> {
        let ticket = self.ask(reset)?;
        self.answer(ticket, timeout)
    }

    /// The first half of [`LatencyControl::query`], so that several
    /// workers can be asked at once; returns the ticket for `answer`.
    pub fn ask(&self, reset: bool) -> Option<u64> {
        let mut st = self.state.lock().ok()?;
        st.reset |= reset;
        st.made += 1;
        // Set under the lock: the worker clears it under the lock too, so
        // a request is never missed.
        self.asked.store(true, Ordering::Release);
        Some(st.made)
    }

    /// The second half: wait until the request `ticket` (or a later one)
    /// has been answered.
    pub fn answer(&self, ticket: u64, timeout: Duration) -> Option<LatencyWindow> {
        let t0 = Instant::now();
        loop {
            {
                let st = self.state.lock().ok()?;
                if st.answered >= ticket {
                    return st.last;
                }
            }
            if t0.elapsed() >= timeout {
                return None;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// The worker's side: answer every request made so far.
    #[cold]
    fn serve(&self, h: &mut hdrhistogram::Histogram<u64>) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        self.asked.store(false, Ordering::Relaxed);
        st.last = Some(LatencyWindow::of(h));
        if std::mem::take(&mut st.reset) {
            h.reset();
        }
        st.answered = st.made;
    }
}

/// One worker's queues: rx and tx queue `i` belong to port index `i`.
pub struct Worker<P: Pipeline> {
    pub rx: Vec<RxQueue>,
    pub tx: Vec<TxQueue>,
    pub pipeline: P,
    pub stats: Arc<WorkerStats>,
    pending: Vec<Burst>,
    handoff: Option<Handoff>,
    /// Packets queued for hand-off since the last stats update.
    pending_handoff: u64,
    /// Frames the pipeline emits from `tick` (capacity kept across loops).
    emitted: Vec<(u16, Mbuf)>,
    /// Per-burst processing time in TSC ticks (rx to tx of one burst), when
    /// measuring: recording is a few instructions, no allocation.
    latency: Option<hdrhistogram::Histogram<u64>>,
    latency_control: Option<Arc<LatencyControl>>,
}

/// How many times a full tx queue is retried before its packets are dropped.
const TX_RETRIES: usize = 4;

impl<P: Pipeline> Worker<P> {
    pub fn new(rx: Vec<RxQueue>, tx: Vec<TxQueue>, pipeline: P, stats: Arc<WorkerStats>) -> Self {
        let pending = tx.iter().map(|_| Burst::new()).collect();
        Worker {
            rx,
            tx,
            pipeline,
            stats,
            pending,
            handoff: None,
            pending_handoff: 0,
            emitted: Vec::with_capacity(2 * BURST_SIZE),
            latency: None,
            latency_control: None,
        }
    }

    /// Measure per-burst processing time (see [`Worker::latency`]).
    pub fn with_latency(mut self) -> Self {
        // 3 significant digits up to 10 s worth of ticks at 5 GHz.
        self.latency = hdrhistogram::Histogram::new_with_bounds(1, 50_000_000_000, 3).ok();
        self
    }

    /// Measure per-burst processing time and let `ctl` read and reset the
    /// histogram while the worker runs.
    pub fn with_latency_control(mut self, ctl: Arc<LatencyControl>) -> Self {
        self = self.with_latency();
        self.latency_control = Some(ctl);
        self
    }

    /// The per-burst processing time histogram, in TSC ticks.
    pub fn latency(&self) -> Option<&hdrhistogram::Histogram<u64>> {
        self.latency.as_ref()
    }

    /// Join a hand-off mesh (see [`super::handoff::mesh`]).
    pub fn with_handoff(mut self, h: Handoff) -> Self {
        self.handoff = Some(h);
        self
    }

    /// Poll until `stop` is set, then flush and return.
    pub fn run(&mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            self.poll_once(super::tsc());
        }
        for p in 0..self.pending.len() {
            self.flush(p);
        }
    }

    /// One pass over every rx queue and the incoming hand-off rings.
    /// Returns the packets received.
    pub fn poll_once(&mut self, now_tsc: u64) -> usize {
        if let (Some(ctl), Some(h)) = (&self.latency_control, self.latency.as_mut()) {
            if ctl.asked.load(Ordering::Relaxed) {
                ctl.serve(h);
            }
        }
        let mut burst = Burst::new();
        let mut drops = [0u64; DropReason::COUNT];
        let mut received = 0;
        for port in 0..self.rx.len() {
            let n = self.rx[port].rx_burst(&mut burst);
            if n == 0 {
                continue;
            }
            received += n;
            let t0 = if self.latency.is_some() {
                super::tsc()
            } else {
                0
            };
            self.dispatch(port as u16, &mut burst, &mut drops);
            if let Some(h) = self.latency.as_mut() {
                let _ = h.record(super::tsc().saturating_sub(t0).max(1));
            }
        }
        let mut handed_in = 0;
        if let Some(h) = self.handoff.as_mut() {
            let n = h.receive(&mut burst);
            if n > 0 {
                handed_in = n;
                self.dispatch_mixed(&mut burst, &mut drops);
            }
        }
        let mut handed_out = 0;
        if let Some(h) = self.handoff.as_mut() {
            drops[DropReason::HandoffFull as usize] += h.flush();
            handed_out = self.pending_handoff;
            self.pending_handoff = 0;
        }
        bump(&self.stats.rx, received as u64);
        bump(&self.stats.handoff_in, handed_in as u64);
        bump(&self.stats.handoff_out, handed_out);
        for (a, d) in self.stats.drops.iter().zip(drops) {
            bump(a, d);
        }
        bump(&self.stats.loops, 1);
        if received + handed_in == 0 {
            bump(&self.stats.idle_loops, 1);
        }
        self.pipeline.tick(now_tsc, &mut self.emitted);
        if !self.emitted.is_empty() {
            let mut emitted = std::mem::take(&mut self.emitted);
            let mut dropped = 0;
            for (port, m) in emitted.drain(..) {
                let p = port as usize;
                if p >= self.pending.len() {
                    dropped += 1;
                    continue;
                }
                if self.pending[p].is_full() {
                    dropped += self.flush(p);
                }
                if self.pending[p].push(m).is_err() {
                    dropped += 1;
                }
            }
            self.emitted = emitted;
            for p in 0..self.pending.len() {
                dropped += self.flush(p);
            }
            bump(&self.stats.drops[DropReason::TxFull as usize], dropped);
        }
        received + handed_in
    }

    /// Packets from other workers may come from different ports: process
    /// them in runs of the same ingress port.
    fn dispatch_mixed(&mut self, burst: &mut Burst, drops: &mut [u64; DropReason::COUNT]) {
        let mut run = Burst::new();
        let mut run_port = u16::MAX;
        for m in burst.drain() {
            let port = self
                .rx
                .iter()
                .position(|q| q.port().0 == m.in_port())
                .map_or(u16::MAX, |p| p as u16);
            if port == u16::MAX {
                drops[DropReason::NoRoute as usize] += 1;
                continue;
            }
            if port != run_port && !run.is_empty() {
                self.dispatch(run_port, &mut run, drops);
            }
            run_port = port;
            if let Err(m) = run.push(m) {
                drop(m);
                drops[DropReason::NoRoute as usize] += 1;
            }
        }
        if !run.is_empty() {
            self.dispatch(run_port, &mut run, drops);
        }
    }

    /// Decide a burst that arrived on port index `port` and move each packet
    /// where its verdict says; leaves `burst` empty.
    fn dispatch(&mut self, port: u16, burst: &mut Burst, drops: &mut [u64; DropReason::COUNT]) {
        let n = burst.len();
        let mut verdicts = [Verdict::Drop(DropReason::NoRoute); BURST_SIZE];
        if let Some(v) = self.pipeline.port_verdict(port) {
            if let Verdict::Tx(out) = v {
                let out = out as usize;
                if out < self.pending.len() && self.pending[out].is_empty() {
                    std::mem::swap(&mut self.pending[out], burst);
                    drops[DropReason::TxFull as usize] += self.flush(out);
                    return;
                }
            }
            verdicts[..n].fill(v);
        } else {
            self.pipeline
                .process(port, burst.as_mut_slice(), &mut verdicts);
        }
        // Common case: the whole burst leaves on one port whose buffer is
        // empty; hand the burst over as is, with no per-packet work.
        if let Verdict::Tx(out) = verdicts[0] {
            let out = out as usize;
            if out < self.pending.len()
                && self.pending[out].is_empty()
                && verdicts[1..n].iter().all(|v| *v == verdicts[0])
            {
                std::mem::swap(&mut self.pending[out], burst);
                drops[DropReason::TxFull as usize] += self.flush(out);
                return;
            }
        }
        let in_port = self.rx[port as usize].port().0;
        for (i, (mut m, v)) in burst.drain().zip(verdicts.iter()).enumerate() {
            match *v {
                Verdict::Keep => self.pipeline.keep(i, m),
                Verdict::Tx(out) => {
                    let out = out as usize;
                    if out >= self.pending.len() {
                        drops[DropReason::NoRoute as usize] += 1;
                        continue;
                    }
                    if self.pending[out].is_full() {
                        drops[DropReason::TxFull as usize] += self.flush(out);
                    }
                    if self.pending[out].push(m).is_err() {
                        drops[DropReason::TxFull as usize] += 1;
                    }
                }
                Verdict::Handoff(to) => match self.handoff.as_mut() {
                    Some(h) => {
                        m.set_in_port(in_port);
                        match h.push(to as usize, m) {
                            Ok(()) => self.pending_handoff += 1,
                            Err(_) => drops[DropReason::HandoffFull as usize] += 1,
                        }
                    }
                    None => drops[DropReason::NoRoute as usize] += 1,
                },
                Verdict::Drop(r) => drops[r as usize] += 1,
            }
        }
        // Transmit before the next rx: the mbufs freed by tx go back to
        // the lcore's mempool cache and are reused hot by the next rx.
        for p in 0..self.pending.len() {
            drops[DropReason::TxFull as usize] += self.flush(p);
        }
    }

    /// Send port `p`'s pending packets; returns how many had to be dropped.
    fn flush(&mut self, p: usize) -> u64 {
        let burst = &mut self.pending[p];
        if burst.is_empty() {
            return 0;
        }
        let mut sent = 0;
        for _ in 0..TX_RETRIES {
            sent += self.tx[p].tx_burst(burst);
            if burst.is_empty() {
                break;
            }
        }
        bump(&self.stats.tx, sent as u64);
        let dropped = burst.len() as u64;
        burst.drain().for_each(drop);
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(values: &[u64]) -> hdrhistogram::Histogram<u64> {
        let mut h = hdrhistogram::Histogram::new_with_bounds(1, 1_000_000, 3).unwrap();
        for &v in values {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn latency_window_read_and_reset_by_another_thread() {
        let ctl = Arc::new(LatencyControl::default());
        let stop = Arc::new(AtomicBool::new(false));
        // The "worker": records 100 then 200 forever, answering requests
        // once per loop as Worker::poll_once does.
        let worker = {
            let (ctl, stop) = (ctl.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut h = histogram(&[100]);
                let mut v = 100;
                while !stop.load(Ordering::Relaxed) {
                    if ctl.asked.load(Ordering::Relaxed) {
                        ctl.serve(&mut h);
                        v = 200;
                    }
                    h.record(v).unwrap();
                    std::thread::yield_now();
                }
            })
        };
        let t = Duration::from_secs(5);
        let first = ctl.query(true, t).expect("answer");
        assert!(first.bursts > 0);
        assert_eq!((first.p50, first.max), (100, 100));
        // After the reset only 200s are recorded (at least one: the
        // worker records after answering).
        let second = ctl.query(false, t).expect("answer");
        assert_eq!((second.p50, second.p999), (200, 200));
        let third = ctl.query(false, t).expect("answer");
        assert!(third.bursts >= second.bursts, "no reset without asking");
        stop.store(true, Ordering::Relaxed);
        worker.join().unwrap();
        // Nobody answers any more.
        assert_eq!(ctl.query(false, Duration::from_millis(20)), None);
    }

    #[test]
    fn latency_window_percentiles() {
        let w = LatencyWindow::of(&histogram(&(1..=1000).collect::<Vec<_>>()));
        assert_eq!(w.bursts, 1000);
        assert_eq!((w.p50, w.p99, w.p999, w.max), (500, 990, 999, 1000));
    }
}
