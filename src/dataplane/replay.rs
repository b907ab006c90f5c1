//! A paced packet generator (`rvsgen send`): pcap captures, one per tx
//! queue, loaded once into mbufs and transmitted again and again over a
//! port at a target rate, paced by the TSC in bursts.
//!
//! Cheap per packet on the sending side: each frame sits in one mbuf for
//! the whole run and goes out by reference ([`TxQueue::tx_shared`]), so a
//! copying driver (memif) does the only copy. Frames refused by a full tx
//! queue are offered again next time, so the frames go out in capture
//! order and a capture played once (`once`) arrives whole.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::port::{RxQueue, TxQueue};
use super::{Burst, Eal, Mbuf, Mempool, Port, PortConfig, BURST_SIZE};
use crate::traffic::{Pacer, PcapReader};

/// The frames of one capture, back to back.
#[derive(Clone, Debug, Default)]
pub struct Capture {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Capture {
    /// Read every frame of a pcap file.
    pub fn read(path: &std::path::Path) -> Result<Capture, String> {
        let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut r = PcapReader::new(std::io::BufReader::new(f))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut c = Capture::default();
        while let Some(frame) = r
            .next_frame()
            .map_err(|e| format!("{}: frame {}: {e}", path.display(), c.len() + 1))?
        {
            c.push(frame);
        }
        if c.is_empty() {
            return Err(format!("{}: no frames", path.display()));
        }
        Ok(c)
    }

    pub fn push(&mut self, frame: &[u8]) {
        self.bytes.extend_from_slice(frame);
        self.ends.push(self.bytes.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn frames(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(s, &e)| &self.bytes[s..e])
    }

    pub fn max_len(&self) -> usize {
        self.frames().map(<[u8]>::len).max().unwrap_or(0)
    }
}

/// How to send.
#[derive(Clone, Debug)]
pub struct SendOptions {
    /// Target packets per second over all queues; 0 = as fast as the
    /// queues take them.
    pub pps: u64,
    /// Packets per transmit call, 1 ..= [`BURST_SIZE`].
    pub burst: usize,
    /// Play every capture once, then stop.
    pub once: bool,
    /// Stop after this long (with `once`: at the latest).
    pub secs: Option<f64>,
    /// After the last frame, keep the port open this long (unless
    /// stopped): a peer that reads later (memif: its ring lives in the
    /// sender's shared memory) still gets every frame.
    pub linger: Duration,
}

/// What one queue did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueReport {
    pub frames: u64,
    pub sent: u64,
    /// Frames the tx queue refused (full); each was offered again later.
    pub refused: u64,
    /// Whole passes over the capture.
    pub passes: u64,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct SendReport {
    pub target_pps: u64,
    pub sent: u64,
    pub refused: u64,
    /// Frames that came back on the port's receive side (freed).
    pub received: u64,
    /// From the first transmit to the end.
    pub seconds: f64,
    /// Achieved: `sent / seconds`.
    pub pps: f64,
    /// Packets the pacing gave up on because the sender fell behind.
    pub behind: u64,
    /// With `once`: every frame of every capture was sent.
    pub complete: bool,
    pub queues: Vec<QueueReport>,
}

impl SendReport {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "target_pps": self.target_pps,
            "sent": self.sent,
            "refused": self.refused,
            "received": self.received,
            "seconds": self.seconds,
            "pps": self.pps,
            "behind": self.behind,
            "complete": self.complete,
            "queues": self.queues.iter().map(|q| serde_json::json!({
                "frames": q.frames, "sent": q.sent, "refused": q.refused, "passes": q.passes,
            })).collect::<Vec<_>>(),
        })
    }
}

/// One queue's frames and where the replay is in them.
struct QueueFrames {
    mbufs: Vec<Mbuf>,
    next: usize,
    report: QueueReport,
}

impl QueueFrames {
    fn remaining(&self) -> usize {
        self.mbufs.len() - self.next
    }

    /// Offer up to `n` frames from the current position (not past the end
    /// of the capture); returns how many went.
    #[inline]
    fn send(&mut self, tx: &mut TxQueue, n: usize, once: bool) -> usize {
        let end = (self.next + n).min(self.mbufs.len());
        let offered = end - self.next;
        let sent = tx.tx_shared(&self.mbufs[self.next..end]);
        self.report.sent += sent as u64;
        self.report.refused += (offered - sent) as u64;
        self.next += sent;
        if self.next == self.mbufs.len() {
            self.report.passes += 1;
            if !once {
                self.next = 0;
            }
        }
        sent
    }
}

/// Loaded captures on a started port's queues.
pub struct Replay {
    queues: Vec<QueueFrames>,
    rx: Vec<RxQueue>,
    tx: Vec<TxQueue>,
}

impl Replay {
    /// Copy each capture into mbufs from `pool`; capture `i` goes out on
    /// `tx[i]`.
    pub fn new(
        pool: &Mempool,
        captures: &[Capture],
        rx: Vec<RxQueue>,
        tx: Vec<TxQueue>,
    ) -> Result<Replay, String> {
        if captures.len() != tx.len() {
            return Err(format!(
                "{} captures for {} tx queues",
                captures.len(),
                tx.len()
            ));
        }
        let mut queues = Vec::with_capacity(captures.len());
        for (i, c) in captures.iter().enumerate() {
            let mut mbufs = Vec::with_capacity(c.len());
            for (k, f) in c.frames().enumerate() {
                let m = Mbuf::from_bytes(pool, f).ok_or_else(|| {
                    format!(
                        "capture {i}, frame {}: no mbuf (pool exhausted) or the frame ({} bytes) does not fit",
                        k + 1,
                        f.len()
                    )
                })?;
                mbufs.push(m);
            }
            queues.push(QueueFrames {
                report: QueueReport {
                    frames: mbufs.len() as u64,
                    ..QueueReport::default()
                },
                mbufs,
                next: 0,
            });
        }
        Ok(Replay { queues, rx, tx })
    }

    /// Send until `opts` says to stop or `stop` is set.
    pub fn run(&mut self, opts: &SendOptions, stop: &impl Flag) -> SendReport {
        let hz = super::tsc_hz().max(1);
        let burst = opts.burst.clamp(1, BURST_SIZE);
        let start = super::tsc();
        let end = opts
            .secs
            .map(|s| start.saturating_add((s * hz as f64) as u64));
        let mut pacer = Pacer::new(opts.pps, hz, burst as u64, start);
        let nq = self.queues.len();
        let mut q = 0;
        let mut received = 0u64;
        let mut rxq = 0;
        let mut rx_burst = Burst::new();
        let drain_every = hz / 10_000;
        let mut last_drain = start;
        let mut complete = false;
        loop {
            if stop.is_set() {
                break;
            }
            let now = super::tsc();
            if end.is_some_and(|e| now >= e) {
                break;
            }
            if opts.once {
                match (0..nq)
                    .map(|i| (q + i) % nq)
                    .find(|&i| self.queues[i].remaining() > 0)
                {
                    Some(i) => q = i,
                    None => {
                        complete = true;
                        break;
                    }
                }
            }
            let want = if opts.once {
                burst.min(self.queues[q].remaining())
            } else {
                burst
            };
            let n = pacer.due(now, want as u64) as usize;
            // Frames coming back (ARP, replies) are freed every 100 µs:
            // often enough that the peer's ring never fills.
            if now.wrapping_sub(last_drain) >= drain_every {
                last_drain = now;
                if !self.rx.is_empty() {
                    rxq = (rxq + 1) % self.rx.len();
                    let got = self.rx[rxq].rx_burst(&mut rx_burst);
                    received += got as u64;
                    rx_burst.drain().for_each(drop);
                }
            }
            if n == 0 {
                // SAFETY: rte_pause is the x86 `pause` hint; no memory access.
                unsafe { dpdk_sys::rvs_pause() };
                continue;
            }
            let sent = self.queues[q].send(&mut self.tx[q], n, opts.once);
            pacer.sent(sent as u64);
            q = (q + 1) % nq;
        }
        let seconds = super::tsc().saturating_sub(start) as f64 / hz as f64;
        let queues: Vec<QueueReport> = self.queues.iter().map(|q| q.report.clone()).collect();
        let sent = queues.iter().map(|q| q.sent).sum::<u64>();
        SendReport {
            target_pps: opts.pps,
            sent,
            refused: queues.iter().map(|q| q.refused).sum(),
            received,
            seconds,
            pps: if seconds > 0.0 {
                sent as f64 / seconds
            } else {
                0.0
            },
            behind: pacer.behind(),
            complete: complete || (opts.once && self.queues.iter().all(|q| q.remaining() == 0)),
            queues,
        }
    }

    /// Keep the port open for `d` (or until `stop`), freeing what comes
    /// back now and then.
    pub fn linger(&mut self, d: Duration, stop: &AtomicBool) {
        let t0 = Instant::now();
        let mut b = Burst::new();
        while t0.elapsed() < d && !stop.load(Ordering::Relaxed) {
            for rx in &mut self.rx {
                rx.rx_burst(&mut b);
                b.drain().for_each(drop);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Either of two flags.
struct Either<'a>(&'a AtomicBool, &'a AtomicBool);

impl Flag for Either<'_> {
    #[inline]
    fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed) || self.1.load(Ordering::Relaxed)
    }
}

/// A condition the send loop polls.
pub trait Flag {
    fn is_set(&self) -> bool;
}

impl Flag for AtomicBool {
    #[inline]
    fn is_set(&self) -> bool {
        self.load(Ordering::Relaxed)
    }
}

/// Everything `rvsgen send` does after parsing its arguments: EAL, pool,
/// port, link, replay; the port is stopped and closed before returning.
/// `stop` ends it (sending and lingering); `pause` ends the sending only, so
/// the port stays open for the linger time: a peer can then be stopped
/// first, while nothing is in flight.
pub fn send(
    eal_args: &[String],
    port_name: Option<&str>,
    captures: &[Capture],
    opts: &SendOptions,
    link_wait: Duration,
    stop: &AtomicBool,
    pause: &AtomicBool,
) -> Result<SendReport, String> {
    if captures.is_empty() {
        return Err("no capture to send".into());
    }
    let mut args = vec!["rvsgen".to_string()];
    args.extend(eal_args.iter().cloned());
    let eal = Eal::init(&args).map_err(|e| e.to_string())?;
    let mut port = match port_name {
        Some(n) => Port::by_name(&eal, n).map_err(|e| e.to_string())?,
        None => Port::all(&eal)
            .into_iter()
            .next()
            .ok_or("no DPDK port: give one to the EAL, e.g. --vdev net_memif0,role=client,...")?,
    };
    let nq = captures.len() as u16;
    let frames: usize = captures.iter().map(Capture::len).sum();
    // Every frame stays in its mbuf; the rest is for the receive rings
    // (memif refills a whole ring) and the per-lcore cache.
    let n = frames + nq as usize * 4096 + 2048;
    let headroom = super::mbuf_headroom() as usize;
    let data_room = headroom
        + captures
            .iter()
            .map(Capture::max_len)
            .max()
            .unwrap_or(0)
            .max(128);
    let data_room = u16::try_from(data_room.next_multiple_of(64))
        .map_err(|_| "a frame is longer than an mbuf can hold".to_string())?;
    let socket = port.info().map(|i| i.socket).unwrap_or(-1);
    let pool = Mempool::new(&eal, "rvsgen", n as u32, 256, data_room, socket).map_err(|e| {
        format!(
            "{e}: {n} mbufs of {data_room} bytes (about {} MiB) need more EAL memory (-m)",
            (n * (data_room as usize + 192)) >> 20
        )
    })?;
    let cfg = PortConfig {
        rx_queues: nq,
        tx_queues: nq,
        ..PortConfig::default()
    };
    let (rx, tx) = port
        .start(&cfg, &pool)
        .map_err(|e| format!("port {}: {e}", port.name()))?;
    let result = (|| {
        let mut replay = Replay::new(&pool, captures, rx, tx)?;
        let t0 = Instant::now();
        while !port.link().map(|l| l.up).unwrap_or(false) {
            if stop.load(Ordering::Relaxed) {
                return Err("stopped before the link came up".to_string());
            }
            if t0.elapsed() >= link_wait {
                return Err(format!(
                    "port {}: link still down after {:.1} s",
                    port.name(),
                    link_wait.as_secs_f64()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let report = replay.run(opts, &Either(stop, pause));
        replay.linger(opts.linger, stop);
        Ok(report)
    })();
    // The replay (and its queues) is gone, so this closes now.
    let _ = port.close();
    drop(pool);
    drop(eal);
    result
}
