//! The kernel twins' frame mover: one thread, off the workers' cores,
//! between the workers and each port's twin (a `net_tap` device the kernel
//! sees as an ordinary interface). Frames the workers pass to the kernel
//! come over one ring and are written to their port's twin; frames the
//! kernel sends on a twin are checked (the port's source MAC) and passed
//! over another ring to the worker that sends them out the port. Bounded
//! (32 frames per twin per pass, rings of fixed size) and counted; it
//! sleeps, backing off to [`MAX_NAP`], while nothing moves.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::mbuf::{Burst, Mbuf};
use super::port::{RxQueue, TxQueue};
use super::ring::Ring;
use super::PortId;

/// Slots of each ring between the workers and the twin thread.
pub const TWIN_RING_SIZE: u32 = 4096;
/// The longest sleep of an idle twin thread: the added latency of the
/// first frame after a quiet spell (a routing protocol's keepalive).
pub const MAX_NAP: Duration = Duration::from_micros(500);
const MIN_NAP: Duration = Duration::from_micros(20);

/// One port's twin: its device's queues and the port it stands for.
pub struct TwinPort {
    /// The DPDK port it is the twin of (frames name it in `in_port`).
    pub port: PortId,
    /// The port's MAC: the only source the kernel's frames may have.
    pub mac: [u8; 6],
    pub rx: RxQueue,
    pub tx: TxQueue,
}

/// What the twin thread did, for `rvsadm --counters` (`twin.*`).
#[derive(Debug, Default)]
pub struct TwinStats {
    /// Frames written to a twin (to the kernel).
    pub to_kernel: AtomicU64,
    /// Frames for the kernel a twin did not take (its queue full), or
    /// whose port has no twin.
    pub to_kernel_dropped: AtomicU64,
    /// Frames the kernel sent on a twin, passed to the worker.
    pub from_kernel: AtomicU64,
    /// Frames the kernel sent that the worker's ring could not take.
    pub from_kernel_dropped: AtomicU64,
    /// Frames the kernel sent from another MAC than the port's (a bridge
    /// or macvlan on the twin): not sent.
    pub bad_source: AtomicU64,
}

/// Single-writer add (the twin thread).
fn add(a: &AtomicU64, n: u64) {
    if n != 0 {
        a.store(a.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }
}

/// [`serve`] on a thread of its own (`rvs-twin`), stopped and joined when
/// dropped.
pub struct Mover {
    pub stats: Arc<TwinStats>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Mover {
    pub fn spawn(
        twins: Vec<TwinPort>,
        to_kernel: Ring,
        from_kernel: Ring,
    ) -> std::io::Result<Mover> {
        let stats = Arc::new(TwinStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (stats.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("rvs-twin".into())
            .spawn(move || serve(twins, to_kernel, from_kernel, &st, &sp))?;
        Ok(Mover {
            stats,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Mover {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Move frames until `stop` is set. `to_kernel` is what the workers fill;
/// `from_kernel` what the sending worker drains.
pub fn serve(
    mut twins: Vec<TwinPort>,
    to_kernel: Ring,
    from_kernel: Ring,
    stats: &TwinStats,
    stop: &AtomicBool,
) {
    let mut nap = MIN_NAP;
    let mut outs: Vec<Burst> = twins.iter().map(|_| Burst::new()).collect();
    while !stop.load(Ordering::Relaxed) {
        let moved = pass(&mut twins, &mut outs, &to_kernel, &from_kernel, stats);
        if moved > 0 {
            nap = MIN_NAP;
        } else {
            std::thread::sleep(nap);
            nap = (nap * 2).min(MAX_NAP);
        }
    }
}

/// One pass: the workers' frames to the twins, then each twin's frames to
/// the workers. Returns the frames moved.
fn pass(
    twins: &mut [TwinPort],
    outs: &mut [Burst],
    to_kernel: &Ring,
    from_kernel: &Ring,
    stats: &TwinStats,
) -> usize {
    let mut moved = 0;
    let mut burst = Burst::new();
    let n = to_kernel.dequeue(&mut burst);
    if n > 0 {
        moved += n;
        let mut orphans = 0;
        for m in burst.drain() {
            match twins.iter().position(|t| t.port.0 == m.in_port()) {
                // At most one ring burst per pass: never more than fits.
                Some(i) => {
                    if let Err(m) = outs[i].push(m) {
                        drop(m);
                        orphans += 1;
                    }
                }
                None => orphans += 1,
            }
        }
        add(&stats.to_kernel_dropped, orphans);
        for (t, out) in twins.iter_mut().zip(outs.iter_mut()) {
            if out.is_empty() {
                continue;
            }
            let sent = t.tx.tx_burst(out);
            add(&stats.to_kernel, sent as u64);
            add(&stats.to_kernel_dropped, out.len() as u64);
            out.drain().for_each(drop);
        }
    }
    for t in twins.iter_mut() {
        let got = t.rx.rx_burst(&mut burst);
        if got == 0 {
            continue;
        }
        moved += got;
        let mut ok = Burst::new();
        let mut bad = 0;
        for mut m in burst.drain() {
            if source_mac(&m) != Some(t.mac) {
                bad += 1;
                continue;
            }
            m.set_in_port(t.port.0);
            // `ok` holds as many as `burst` did.
            let _ = ok.push(m);
        }
        add(&stats.bad_source, bad);
        let passed = ok.len();
        from_kernel.enqueue(&mut ok);
        let left = ok.len();
        add(&stats.from_kernel, (passed - left) as u64);
        add(&stats.from_kernel_dropped, left as u64);
        ok.drain().for_each(drop);
    }
    moved
}

/// The Ethernet source address of a frame.
fn source_mac(m: &Mbuf) -> Option<[u8; 6]> {
    m.data().get(6..12).and_then(|s| s.try_into().ok())
}
