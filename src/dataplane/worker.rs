//! The per-lcore worker loop, wiring only: rx burst -> an [`Outcome`] per
//! packet from a [`Pipeline`] -> per-port tx buffers and tx burst, hand-off
//! rings, or the pipeline's hold. The loop knows nothing about packets; it
//! keeps the worker's [`Tally`] of what became of each one.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::handoff::Handoff;
use super::mbuf::{Burst, Mbuf, BURST_SIZE};
use super::port::{RxQueue, TxQueue};
use super::ring::Ring;
use crate::datapath::Outcome;
use crate::drops::{DropReason, Tally};
use crate::ids::{PortIndex, WorkerIndex};

/// Packet processing plugged into the worker loop: for rvsd, the
/// [`crate::datapath::Datapath`] on mbufs (`daemon::lbworker`).
pub trait Pipeline {
    /// Decide every packet of a burst received on port index `port`,
    /// writing `out[i]` for `pkts[i]`; packets may be rewritten in place.
    fn process(&mut self, port: PortIndex, pkts: &mut [Mbuf], out: &mut [Outcome; BURST_SIZE]);

    /// One outcome for every packet that arrives on `port`, when the
    /// pipeline decides per port rather than per packet (plain
    /// forwarding); the worker then moves the whole burst without calling
    /// `process`.
    #[inline]
    fn port_outcome(&mut self, _port: PortIndex) -> Option<Outcome> {
        None
    }

    /// Take packet `index` of the burst just processed, whose outcome was
    /// [`Outcome::Hold`], counting it in `tally` (held, or dropped). The
    /// default cannot hold: it drops it.
    fn hold(&mut self, _index: usize, _m: Mbuf, tally: &mut Tally) {
        tally.drops.bump(DropReason::HoldFull);
    }

    /// Called once per loop iteration, after tx (timers, config pickup).
    /// Frames pushed to `out` are transmitted; `tally` learns what the
    /// pipeline made and what became of the packets it holds.
    fn tick(&mut self, _now_tsc: u64, _out: &mut Vec<(PortIndex, Mbuf)>, _tally: &mut Tally) {}

    /// Frames the last tick made for other workers: (worker, the port
    /// index it came in on, frame). Handed off by the loop.
    fn handoffs(&mut self, _out: &mut Vec<(WorkerIndex, PortIndex, Mbuf)>) {}
}

/// Plain L2 forwarding: everything received on port i leaves on `peer[i]`.
pub struct L2Forward {
    pub peer: Vec<u16>,
}

impl L2Forward {
    #[inline]
    fn outcome(&self, port: PortIndex) -> Outcome {
        match self.peer.get(port.get()) {
            Some(&p) => Outcome::Tx(PortIndex(p)),
            None => Outcome::Drop(DropReason::NoPort),
        }
    }
}

impl Pipeline for L2Forward {
    #[inline]
    fn port_outcome(&mut self, port: PortIndex) -> Option<Outcome> {
        Some(self.outcome(port))
    }

    #[inline]
    fn process(&mut self, port: PortIndex, pkts: &mut [Mbuf], out: &mut [Outcome; BURST_SIZE]) {
        let o = self.outcome(port);
        out.iter_mut().take(pkts.len()).for_each(|slot| *slot = o);
    }
}

/// Counters of one worker: its [`Tally`] as atomics, plus loop counts.
/// Single writer (its lcore), relaxed stores once per loop with traffic;
/// readers copy them from any thread.
#[derive(Debug)]
pub struct WorkerStats {
    pub rx: AtomicU64,
    pub handoff_in: AtomicU64,
    pub originated: AtomicU64,
    pub tx: AtomicU64,
    pub handoff_out: AtomicU64,
    pub held: AtomicU64,
    pub reassembled: AtomicU64,
    pub to_kernel: AtomicU64,
    pub from_kernel: AtomicU64,
    pub loops: AtomicU64,
    pub idle_loops: AtomicU64,
    pub drops: [AtomicU64; DropReason::COUNT],
}

impl Default for WorkerStats {
    fn default() -> Self {
        WorkerStats {
            rx: AtomicU64::new(0),
            handoff_in: AtomicU64::new(0),
            originated: AtomicU64::new(0),
            tx: AtomicU64::new(0),
            handoff_out: AtomicU64::new(0),
            held: AtomicU64::new(0),
            reassembled: AtomicU64::new(0),
            to_kernel: AtomicU64::new(0),
            from_kernel: AtomicU64::new(0),
            loops: AtomicU64::new(0),
            idle_loops: AtomicU64::new(0),
            drops: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// A plain copy of [`WorkerStats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerCounts {
    pub tally: Tally,
    pub loops: u64,
    pub idle_loops: u64,
}

impl WorkerStats {
    pub fn snapshot(&self) -> WorkerCounts {
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut tally = Tally {
            rx: ld(&self.rx),
            handoff_in: ld(&self.handoff_in),
            originated: ld(&self.originated),
            tx: ld(&self.tx),
            handoff_out: ld(&self.handoff_out),
            held: ld(&self.held),
            reassembled: ld(&self.reassembled),
            to_kernel: ld(&self.to_kernel),
            from_kernel: ld(&self.from_kernel),
            ..Default::default()
        };
        for (d, a) in tally.drops.0.iter_mut().zip(&self.drops) {
            *d = ld(a);
        }
        WorkerCounts {
            tally,
            loops: ld(&self.loops),
            idle_loops: ld(&self.idle_loops),
        }
    }

    /// Publish the worker's tally (its only writer).
    fn publish(&self, t: &Tally) {
        let st = |a: &AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
        st(&self.rx, t.rx);
        st(&self.handoff_in, t.handoff_in);
        st(&self.originated, t.originated);
        st(&self.tx, t.tx);
        st(&self.handoff_out, t.handoff_out);
        st(&self.held, t.held);
        st(&self.reassembled, t.reassembled);
        st(&self.to_kernel, t.to_kernel);
        st(&self.from_kernel, t.from_kernel);
        for (a, v) in self.drops.iter().zip(t.drops.0.iter()) {
            st(a, *v);
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

/// A worker's way to the ports' kernel twins (served by
/// [`super::twin::serve`], off the workers' cores).
pub struct TwinLink {
    /// Frames for the kernel (each names its port in `in_port`).
    pub to_kernel: Ring,
    /// Frames the kernel sent on a twin, to transmit on the port named in
    /// `in_port`: taken by one worker only.
    pub from_kernel: Option<Ring>,
}

/// One worker's queues: rx and tx queue `i` belong to port index `i`.
pub struct Worker<P: Pipeline> {
    pub rx: Vec<RxQueue>,
    pub tx: Vec<TxQueue>,
    pub pipeline: P,
    pub stats: Arc<WorkerStats>,
    pending: Vec<Burst>,
    handoff: Option<Handoff>,
    /// What became of every packet so far (published to `stats`).
    tally: Tally,
    /// Packets queued for hand-off since the last flush.
    pending_handoff: u64,
    /// Frames the pipeline emits from `tick` (capacity kept across loops).
    emitted: Vec<(PortIndex, Mbuf)>,
    /// Frames the pipeline's tick made for other workers.
    tick_handoffs: Vec<(WorkerIndex, PortIndex, Mbuf)>,
    /// Per-burst processing time in TSC ticks (rx to tx of one burst), when
    /// measuring: recording is a few instructions, no allocation.
    latency: Option<hdrhistogram::Histogram<u64>>,
    latency_control: Option<Arc<LatencyControl>>,
    twin: Option<TwinLink>,
    /// Frames for the kernel since the last flush.
    kernel_out: Burst,
    /// Sleep this long after [`IDLE_POLLS`] empty loops in a row (zero:
    /// never).
    idle_sleep: Duration,
    idle_run: u32,
}

/// Empty loops in a row before an idle worker sleeps (see
/// [`Worker::with_idle_sleep`]): a few microseconds of polling first, so
/// that a burst arriving right after the last is not delayed.
pub const IDLE_POLLS: u32 = 256;

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
            tally: Tally::default(),
            pending_handoff: 0,
            emitted: Vec::with_capacity(2 * BURST_SIZE),
            tick_handoffs: Vec::new(),
            latency: None,
            latency_control: None,
            twin: None,
            kernel_out: Burst::new(),
            idle_sleep: Duration::ZERO,
            idle_run: 0,
        }
    }

    /// Pass frames for the kernel to the twin thread (and, with
    /// `from_kernel`, send the kernel's frames out).
    pub fn with_twin(mut self, link: TwinLink) -> Self {
        self.twin = Some(link);
        self
    }

    /// Sleep `d` whenever the queues stayed empty for [`IDLE_POLLS`] loops,
    /// so that idle workers leave the core to others (several rvsd, routing
    /// daemons, test tools on a small machine). A frame arriving during
    /// the sleep waits up to `d` plus the scheduler's wake-up latency.
    pub fn with_idle_sleep(mut self, d: Duration) -> Self {
        self.idle_sleep = d;
        self
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

    /// What became of every packet so far.
    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// Poll until `stop` is set, then flush and return.
    pub fn run(&mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            let n = self.poll_once(super::tsc());
            if !self.idle_sleep.is_zero() {
                self.idle(n);
            }
        }
        for p in 0..self.pending.len() {
            self.flush(p);
        }
        self.flush_handoff();
        self.flush_kernel();
        self.stats.publish(&self.tally);
    }

    /// Count empty loops; sleep after [`IDLE_POLLS`] of them.
    #[cold]
    fn idle(&mut self, received: usize) {
        if received > 0 {
            self.idle_run = 0;
            return;
        }
        self.idle_run += 1;
        if self.idle_run >= IDLE_POLLS {
            std::thread::sleep(self.idle_sleep);
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
        // Any change to the tally changes one of these in the same loop:
        // publish only then.
        let before = self.signature();
        let mut burst = Burst::new();
        let mut received = 0;
        for port in 0..self.rx.len() {
            let n = self.rx[port].rx_burst(&mut burst);
            if n == 0 {
                continue;
            }
            received += n;
            self.tally.rx += n as u64;
            let t0 = if self.latency.is_some() {
                super::tsc()
            } else {
                0
            };
            self.dispatch(PortIndex(port as u16), &mut burst);
            if let Some(h) = self.latency.as_mut() {
                let _ = h.record(super::tsc().saturating_sub(t0).max(1));
            }
        }
        let mut handed_in = 0;
        if let Some(h) = self.handoff.as_mut() {
            handed_in = h.receive(&mut burst);
            if handed_in > 0 {
                self.tally.handoff_in += handed_in as u64;
                self.dispatch_mixed(&mut burst);
            }
        }
        self.flush_handoff();
        let from_kernel = match self.twin.as_ref().and_then(|t| t.from_kernel.as_ref()) {
            Some(r) => r.dequeue(&mut burst),
            None => 0,
        };
        if from_kernel > 0 {
            self.send_from_kernel(&mut burst);
        }
        if !self.kernel_out.is_empty() {
            self.flush_kernel();
        }
        let received = received + from_kernel;
        bump(&self.stats.loops, 1);
        if received + handed_in == 0 {
            bump(&self.stats.idle_loops, 1);
        }
        self.pipeline
            .tick(now_tsc, &mut self.emitted, &mut self.tally);
        self.pipeline.handoffs(&mut self.tick_handoffs);
        if !self.tick_handoffs.is_empty() {
            let mut hs = std::mem::take(&mut self.tick_handoffs);
            for (to, port, m) in hs.drain(..) {
                match self.rx.get(port.get()).map(|q| q.port().0) {
                    Some(in_port) => self.hand_off(to, in_port, m),
                    None => self.tally.drops.bump(DropReason::NoPort),
                }
            }
            self.tick_handoffs = hs;
            self.flush_handoff();
        }
        if !self.emitted.is_empty() {
            let mut emitted = std::mem::take(&mut self.emitted);
            for (port, m) in emitted.drain(..) {
                self.enqueue(port, m);
            }
            self.emitted = emitted;
            for p in 0..self.pending.len() {
                self.flush(p);
            }
        }
        if self.signature() != before {
            self.stats.publish(&self.tally);
        }
        received + handed_in
    }

    fn signature(&self) -> (u64, u64, u64, u64) {
        let t = &self.tally;
        (
            t.rx,
            t.handoff_in + t.from_kernel,
            t.originated,
            t.held + t.reassembled,
        )
    }

    /// The kernel's frames, each to leave on the port its `in_port` names.
    #[cold]
    fn send_from_kernel(&mut self, burst: &mut Burst) {
        self.tally.from_kernel += burst.len() as u64;
        for m in burst.drain() {
            match self.tx.iter().position(|q| q.port().0 == m.in_port()) {
                Some(p) => self.enqueue(PortIndex(p as u16), m),
                None => self.tally.drops.bump(DropReason::NoPort),
            }
        }
        for p in 0..self.pending.len() {
            self.flush(p);
        }
    }

    /// Queue a frame for the kernel twin of the port it came in on.
    #[inline]
    fn pass_to_kernel(&mut self, m: Mbuf) {
        if self.twin.is_none() {
            self.tally.drops.bump(DropReason::NoPort);
            return;
        }
        if self.kernel_out.is_full() {
            self.flush_kernel();
        }
        if self.kernel_out.push(m).is_err() {
            self.tally.drops.bump(DropReason::TwinFull);
        }
    }

    /// Pass the frames for the kernel to the twin thread; a full ring
    /// drops.
    fn flush_kernel(&mut self) {
        let Some(t) = self.twin.as_ref() else {
            return;
        };
        let n = self.kernel_out.len();
        if n == 0 {
            return;
        }
        let sent = t.to_kernel.enqueue(&mut self.kernel_out);
        self.tally.to_kernel += sent as u64;
        let dropped = self.kernel_out.len() as u64;
        self.kernel_out.drain().for_each(drop);
        self.tally.drops.add(DropReason::TwinFull, dropped);
    }

    /// Send what was queued for other workers; a full ring drops.
    fn flush_handoff(&mut self) {
        if let Some(h) = self.handoff.as_mut() {
            let dropped = h.flush();
            self.tally.handoff_out += self.pending_handoff - dropped;
            self.tally.drops.add(DropReason::HandoffFull, dropped);
            self.pending_handoff = 0;
        }
    }

    /// Packets from other workers may come from different ports: process
    /// them in runs of the same ingress port.
    fn dispatch_mixed(&mut self, burst: &mut Burst) {
        let mut run = Burst::new();
        let mut run_port = None;
        for m in burst.drain() {
            let Some(port) = self
                .rx
                .iter()
                .position(|q| q.port().0 == m.in_port())
                .map(|p| PortIndex(p as u16))
            else {
                self.tally.drops.bump(DropReason::NoPort);
                continue;
            };
            if run_port != Some(port) {
                if let Some(p) = run_port.filter(|_| !run.is_empty()) {
                    self.dispatch(p, &mut run);
                }
            }
            run_port = Some(port);
            if let Err(m) = run.push(m) {
                drop(m);
                self.tally.drops.bump(DropReason::NoPort);
            }
        }
        if let Some(p) = run_port.filter(|_| !run.is_empty()) {
            self.dispatch(p, &mut run);
        }
    }

    /// Decide a burst that arrived on port index `port` and move each packet
    /// where its outcome says; leaves `burst` empty.
    fn dispatch(&mut self, port: PortIndex, burst: &mut Burst) {
        let n = burst.len();
        let mut outcomes = [Outcome::Drop(DropReason::NoPort); BURST_SIZE];
        if let Some(o) = self.pipeline.port_outcome(port) {
            outcomes[..n].fill(o);
        } else {
            self.pipeline
                .process(port, burst.as_mut_slice(), &mut outcomes);
        }
        // Common case: the whole burst leaves on one port whose buffer is
        // empty; hand the burst over as is, with no per-packet work.
        if let Outcome::Tx(out) = outcomes[0] {
            let out = out.get();
            if out < self.pending.len()
                && self.pending[out].is_empty()
                && outcomes[1..n].iter().all(|o| *o == outcomes[0])
            {
                std::mem::swap(&mut self.pending[out], burst);
                self.flush(out);
                return;
            }
        }
        let in_port = self.rx[port.get()].port().0;
        for (i, (m, o)) in burst.drain().zip(outcomes.iter()).enumerate() {
            match *o {
                Outcome::Tx(out) => self.enqueue(out, m),
                Outcome::Hold => self.pipeline.hold(i, m, &mut self.tally),
                Outcome::Handoff(to) => self.hand_off(to, in_port, m),
                Outcome::Drop(r) => self.tally.drops.bump(r),
                Outcome::Kernel => self.pass_to_kernel(m),
            }
        }
        // Transmit before the next rx: the mbufs freed by tx go back to
        // the lcore's mempool cache and are reused hot by the next rx.
        for p in 0..self.pending.len() {
            self.flush(p);
        }
    }

    /// Queue a packet for transmission on port index `out`.
    #[inline]
    fn enqueue(&mut self, out: PortIndex, m: Mbuf) {
        let out = out.get();
        if out >= self.pending.len() {
            self.tally.drops.bump(DropReason::NoPort);
            return;
        }
        if self.pending[out].is_full() {
            self.flush(out);
        }
        if self.pending[out].push(m).is_err() {
            self.tally.drops.bump(DropReason::TxFull);
        }
    }

    fn hand_off(&mut self, to: WorkerIndex, in_port: u16, mut m: Mbuf) {
        let Some(h) = self.handoff.as_mut() else {
            self.tally.drops.bump(DropReason::NoPort);
            return;
        };
        m.set_in_port(in_port);
        match h.push(to.get(), m) {
            Ok(()) => self.pending_handoff += 1,
            Err(_) => self.tally.drops.bump(DropReason::NoPort),
        }
    }

    /// Send port `p`'s pending packets; those the queue would not take
    /// after the retries are dropped.
    fn flush(&mut self, p: usize) {
        let burst = &mut self.pending[p];
        if burst.is_empty() {
            return;
        }
        let mut sent = 0;
        for _ in 0..TX_RETRIES {
            sent += self.tx[p].tx_burst(burst);
            if burst.is_empty() {
                break;
            }
        }
        self.tally.tx += sent as u64;
        let dropped = burst.len() as u64;
        burst.drain().for_each(drop);
        self.tally.drops.add(DropReason::TxFull, dropped);
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
