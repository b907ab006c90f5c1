//! Hand-off of packets between worker lcores: one single-producer /
//! single-consumer ring per ordered pair of workers, so a packet that landed
//! on the wrong lcore reaches the connection's owner without locks.

use std::sync::Arc;

use super::ring::Ring;
use super::{Burst, Eal, Mbuf, Result};

/// Ring slots per worker pair.
pub const HANDOFF_RING_SIZE: u32 = 1024;

/// All rings of an n-worker mesh; `ring(i, j)` carries packets i -> j.
struct Mesh {
    n: usize,
    rings: Vec<Ring>,
}

impl Mesh {
    fn ring(&self, from: usize, to: usize) -> &Ring {
        &self.rings[from * self.n + to]
    }
}

/// One worker's end of the mesh: it alone sends on its outgoing rings and
/// receives from its incoming ones.
pub struct Handoff {
    me: usize,
    mesh: Arc<Mesh>,
    /// Per-destination bursts, flushed to the rings once per loop.
    out: Vec<Burst>,
    next_in: usize,
    /// Dropped by an early flush in `push`, not reported yet.
    dropped: u64,
}

/// Build the mesh for `n` workers and return one [`Handoff`] per worker.
/// `tag` keeps ring names unique per process.
pub fn mesh(eal: &Eal, n: usize, tag: &str) -> Result<Vec<Handoff>> {
    let mut rings = Vec::with_capacity(n * n);
    for i in 0..n {
        for j in 0..n {
            // The diagonal is never used but keeps indexing trivial; give it
            // the smallest ring DPDK allows.
            let size = if i == j { 2 } else { HANDOFF_RING_SIZE };
            // SAFETY: ring (i, j) is enqueued on only by worker i's Handoff
            // and dequeued from only by worker j's, each through &mut self;
            // a Handoff is not Clone and the mesh is reachable only through
            // them.
            rings.push(unsafe { Ring::new_spsc(eal, &format!("rvs_ho_{tag}_{i}_{j}"), size)? });
        }
    }
    let mesh = Arc::new(Mesh { n, rings });
    Ok((0..n)
        .map(|me| Handoff {
            me,
            mesh: mesh.clone(),
            out: (0..n).map(|_| Burst::new()).collect(),
            next_in: 0,
            dropped: 0,
        })
        .collect())
}

impl Handoff {
    pub fn workers(&self) -> usize {
        self.mesh.n
    }

    pub fn me(&self) -> usize {
        self.me
    }

    /// Queue a packet for worker `to`; gives it back when `to` is out of
    /// range or is this worker.
    #[inline]
    pub fn push(&mut self, to: usize, m: Mbuf) -> std::result::Result<(), Mbuf> {
        if to >= self.mesh.n || to == self.me {
            return Err(m);
        }
        if self.out[to].is_full() {
            self.dropped += self.flush_one(to);
        }
        self.out[to].push(m)
    }

    /// Send everything queued; returns how many packets were dropped
    /// because a ring was full (since the last call: `push` flushes a full
    /// queue early).
    pub fn flush(&mut self) -> u64 {
        let early = std::mem::take(&mut self.dropped);
        early + (0..self.mesh.n).map(|to| self.flush_one(to)).sum::<u64>()
    }

    fn flush_one(&mut self, to: usize) -> u64 {
        let burst = &mut self.out[to];
        if burst.is_empty() {
            return 0;
        }
        self.mesh.ring(self.me, to).enqueue(burst);
        let dropped = burst.len() as u64;
        burst.drain().for_each(drop);
        dropped
    }

    /// Receive packets other workers handed to this one into `burst`,
    /// taking the peers in turn so none starves.
    pub fn receive(&mut self, burst: &mut Burst) -> usize {
        let n = self.mesh.n;
        let mut got = 0;
        for k in 0..n {
            let from = (self.next_in + k) % n;
            if from == self.me {
                continue;
            }
            got += self.mesh.ring(from, self.me).dequeue(burst);
            if burst.is_full() {
                self.next_in = (from + 1) % n;
                break;
            }
        }
        got
    }
}
