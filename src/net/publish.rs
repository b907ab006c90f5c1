//! Handing immutable snapshots (`Arc<T>`) from the control thread to the
//! workers without locks: one bounded(1) channel per worker. The control
//! thread replaces whatever the worker has not picked up yet; a worker
//! polls between bursts ([`SnapshotRx::latest`]: one load of a shared
//! publication counter, and a `try_recv` only when it moved; no blocking)
//! and keeps its current `Arc` until a newer one arrives.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

/// The control thread's end: one slot per worker.
#[derive(Debug)]
pub struct SnapshotTx<T> {
    slots: Vec<Slot<T>>,
    /// Bumped after every publication: what a worker checks per poll.
    published: Arc<AtomicU64>,
}

/// One worker's slot: the sending end and a receiver to take back an
/// unread snapshot.
#[derive(Debug)]
struct Slot<T> {
    tx: Sender<Arc<T>>,
    rx: Receiver<Arc<T>>,
}

/// A worker's end.
#[derive(Debug)]
pub struct SnapshotRx<T> {
    rx: Receiver<Arc<T>>,
    published: Arc<AtomicU64>,
    /// The counter's value at the last look into the channel.
    seen: Cell<u64>,
}

/// A publisher for `workers` workers, and their receivers in order.
pub fn snapshot_channel<T>(workers: usize) -> (SnapshotTx<T>, Vec<SnapshotRx<T>>) {
    let mut slots = Vec::with_capacity(workers);
    let mut rxs = Vec::with_capacity(workers);
    let published = Arc::new(AtomicU64::new(0));
    for _ in 0..workers {
        let (tx, rx) = crossbeam_channel::bounded(1);
        rxs.push(SnapshotRx {
            rx: rx.clone(),
            published: published.clone(),
            seen: Cell::new(0),
        });
        slots.push(Slot { tx, rx });
    }
    (SnapshotTx { slots, published }, rxs)
}

impl<T> SnapshotTx<T> {
    /// Offers `snap` to every worker, replacing one not yet picked up.
    /// The control thread is the only sender, so after the stale one is
    /// taken out the slot is free and the send succeeds.
    pub fn publish(&self, snap: &Arc<T>) {
        for s in &self.slots {
            while s.rx.try_recv().is_ok() {}
            let _ = s.tx.try_send(Arc::clone(snap));
        }
        // After the sends: a worker that sees the new count finds the
        // snapshot in its channel.
        self.published.fetch_add(1, Ordering::Release);
    }

    pub fn workers(&self) -> usize {
        self.slots.len()
    }
}

impl<T> SnapshotRx<T> {
    /// A snapshot published since the last call, if any.
    #[inline]
    pub fn latest(&self) -> Option<Arc<T>> {
        let p = self.published.load(Ordering::Acquire);
        if p == self.seen.get() {
            return None;
        }
        self.seen.set(p);
        let mut last = None;
        while let Ok(s) = self.rx.try_recv() {
            last = Some(s);
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_wins_and_nothing_blocks() {
        let (tx, rxs) = snapshot_channel::<u32>(2);
        assert_eq!(tx.workers(), 2);
        assert!(rxs[0].latest().is_none());
        tx.publish(&Arc::new(1));
        tx.publish(&Arc::new(2));
        tx.publish(&Arc::new(3));
        assert_eq!(rxs[0].latest().as_deref(), Some(&3));
        assert!(rxs[0].latest().is_none());
        tx.publish(&Arc::new(4));
        assert_eq!(rxs[0].latest().as_deref(), Some(&4));
        assert_eq!(rxs[1].latest().as_deref(), Some(&4));
    }

    #[test]
    fn across_threads() {
        let (tx, mut rxs) = snapshot_channel::<u64>(1);
        let rx = rxs.pop().unwrap();
        let h = std::thread::spawn(move || {
            let mut cur = 0;
            while cur < 1000 {
                if let Some(s) = rx.latest() {
                    assert!(*s >= cur, "snapshots never go backwards");
                    cur = *s;
                }
                std::hint::spin_loop();
            }
        });
        for i in 1..=1000u64 {
            tx.publish(&Arc::new(i));
        }
        h.join().unwrap();
    }
}
