//! Publishing configuration snapshots to workers: the control thread stores
//! a new `Arc` and bumps a version; a worker compares the version once per
//! loop (one relaxed load) and takes the lock only when it changed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The latest value of `T`, shared by one writer and many readers.
pub struct Published<T> {
    version: AtomicU64,
    slot: Mutex<Arc<T>>,
}

impl<T> Published<T> {
    pub fn new(initial: Arc<T>) -> Self {
        Published {
            version: AtomicU64::new(1),
            slot: Mutex::new(initial),
        }
    }

    /// Replace the value (control thread).
    pub fn publish(&self, value: Arc<T>) {
        let mut g = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        *g = value;
        // Release: a reader that sees the new version finds the new value.
        self.version.fetch_add(1, Ordering::Release);
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub fn get(&self) -> Arc<T> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A reader's view: the value it uses and the version it came from.
pub struct Subscriber<T> {
    source: Arc<Published<T>>,
    seen: u64,
}

impl<T> Subscriber<T> {
    pub fn new(source: Arc<Published<T>>) -> Self {
        Subscriber { source, seen: 0 }
    }

    /// The new value if one was published since the last call.
    #[inline]
    pub fn changed(&mut self) -> Option<Arc<T>> {
        let v = self.source.version();
        if v == self.seen {
            return None;
        }
        self.seen = v;
        Some(self.source.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_see_each_new_value_once() {
        let p = Arc::new(Published::new(Arc::new(1)));
        let mut a = Subscriber::new(p.clone());
        assert_eq!(a.changed().as_deref(), Some(&1));
        assert_eq!(a.changed(), None);
        p.publish(Arc::new(2));
        p.publish(Arc::new(3));
        assert_eq!(a.changed().as_deref(), Some(&3));
        assert_eq!(a.changed(), None);
        let mut b = Subscriber::new(p.clone());
        assert_eq!(b.changed().as_deref(), Some(&3));
    }
}
