//! The datapath as an lcore runs it: [`Datapath`] on mbufs, its clock from
//! the TSC and its frames from the worker's pool. Wiring only.

use std::sync::Arc;

use crate::datapath::{Datapath, Outcome};
use crate::dataplane::worker::Pipeline;
use crate::dataplane::{Mbuf, Mempool, BURST_SIZE};
use crate::drops::Tally;
use crate::ids::{PortIndex, WorkerIndex};
use crate::lb::time::Timestamp;

/// The TSC as the lb core's millisecond clock; one epoch for every lcore,
/// so that the shared persistence templates compare times correctly.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub tsc0: u64,
    pub ticks_per_ms: u64,
}

impl Clock {
    #[inline]
    pub fn now(&self, tsc: u64) -> Timestamp {
        Timestamp(tsc.saturating_sub(self.tsc0) / self.ticks_per_ms.max(1))
    }
}

pub struct LbWorker {
    pub datapath: Datapath<Mbuf>,
    pub pool: Arc<Mempool>,
    /// Buffers for reassembled datagrams larger than `room`.
    pub big_pool: Option<Arc<Mempool>>,
    /// Bytes a packet mbuf holds after its headroom.
    pub room: usize,
    pub clock: Clock,
    /// The time at the last tick: every burst of a loop sees one `now`.
    now: Timestamp,
}

impl LbWorker {
    pub fn new(datapath: Datapath<Mbuf>, pool: Arc<Mempool>, clock: Clock) -> Self {
        LbWorker {
            datapath,
            pool,
            big_pool: None,
            room: 0,
            clock,
            now: Timestamp::ZERO,
        }
    }
}

impl Pipeline for LbWorker {
    #[inline]
    fn process(&mut self, port: PortIndex, pkts: &mut [Mbuf], out: &mut [Outcome; BURST_SIZE]) {
        self.datapath.process_burst(port, pkts, self.now, out);
    }

    fn hold(&mut self, index: usize, m: Mbuf, tally: &mut Tally) {
        self.datapath.hold(index, m, self.now, tally);
    }

    fn tick(&mut self, now_tsc: u64, out: &mut Vec<(PortIndex, Mbuf)>, tally: &mut Tally) {
        self.now = self.clock.now(now_tsc);
        let (pool, big) = (&self.pool, &self.big_pool);
        let room = self.room;
        // Reassembled datagrams larger than a packet mbuf come from the
        // pool of big buffers.
        let alloc = |n: usize| match n <= room {
            true => Mbuf::alloc(pool),
            false => big.as_ref().and_then(|b| Mbuf::alloc(b)),
        };
        self.datapath.tick(self.now, alloc, out, tally);
    }

    fn handoffs(&mut self, out: &mut Vec<(WorkerIndex, PortIndex, Mbuf)>) {
        out.extend(self.datapath.take_handoffs());
    }
}
