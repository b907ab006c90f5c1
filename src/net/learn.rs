//! What workers learn about neighbours (from ARP and NS/NA), and the bounded
//! channel that carries it to the control thread, which owns the table.
//!
//! Workers never block on it: [`LearnTx::send`] is a `try_send`; when the
//! channel is full the report is dropped and counted (the neighbour will
//! speak again, or the worker will ask again).

use crate::ids::PortIndex;
use std::net::IpAddr;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::lb::time::Timestamp;
use crate::wire::EthernetAddress;

use super::neigh::NeighSnapshot;

/// How much a report says about the neighbour (RFC 826 merge rules and
/// RFC 4861 §7.2.5, simplified).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Evidence {
    /// An answer to us (ARP reply to our address, solicited NA): the
    /// mapping is confirmed; creates the entry, reachable.
    Reply,
    /// The neighbour asked for one of our addresses (ARP request, NS with a
    /// source link-layer option): creates the entry, unconfirmed (stale:
    /// usable, refreshed on first use).
    Request,
    /// Overheard or unsolicited (gratuitous ARP, someone else's request,
    /// unsolicited NA with override): updates an existing entry's MAC, never
    /// creates one.
    Overheard,
}

/// One learned (address, MAC) pair on a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Learned {
    pub port: PortIndex,
    pub ip: IpAddr,
    pub mac: EthernetAddress,
    pub evidence: Evidence,
}

impl Learned {
    /// Whether the control thread would learn anything from this that the
    /// worker's snapshot does not already say: always for a `Reply` (it
    /// refreshes the entry); otherwise only if the MAC is new or differs,
    /// or a `Request` finds the entry due for refresh. Lets a worker on a
    /// busy LAN skip reporting the same broadcast ARP over and over.
    pub fn worth_reporting(&self, snap: &NeighSnapshot, now: Timestamp) -> bool {
        match (self.evidence, snap.get(self.port, &self.ip)) {
            (Evidence::Reply, _) => true,
            (_, None) => self.evidence == Evidence::Request,
            (Evidence::Request, Some(e)) => e.mac != self.mac || e.needs_refresh(now),
            (Evidence::Overheard, Some(e)) => e.mac != self.mac,
        }
    }
}

/// A worker's end of the learn channel. Each worker clones its own; the
/// counters are per clone and a clone starts at zero.
#[derive(Debug)]
pub struct LearnTx {
    tx: Sender<Learned>,
    /// Reports handed to the channel.
    pub sent: u64,
    /// Reports dropped because the channel was full (or closed).
    pub dropped: u64,
}

impl Clone for LearnTx {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            sent: 0,
            dropped: 0,
        }
    }
}

impl LearnTx {
    /// Never blocks; `false` (and `dropped` + 1) if the channel is full.
    #[inline]
    pub fn send(&mut self, l: Learned) -> bool {
        match self.tx.try_send(l) {
            Ok(()) => {
                self.sent += 1;
                true
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped += 1;
                false
            }
        }
    }
}

/// The control thread's end.
#[derive(Debug)]
pub struct LearnRx {
    rx: Receiver<Learned>,
}

impl LearnRx {
    /// Hands up to `max` waiting reports to `f` (bounded so that a learn
    /// storm cannot starve the control loop); returns how many.
    pub fn drain(&self, max: usize, mut f: impl FnMut(Learned)) -> usize {
        let mut n = 0;
        while n < max {
            match self.rx.try_recv() {
                Ok(l) => {
                    f(l);
                    n += 1;
                }
                Err(_) => break,
            }
        }
        n
    }

    /// Reports waiting.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}

/// A bounded learn channel holding at most `capacity` reports.
pub fn learn_channel(capacity: usize) -> (LearnTx, LearnRx) {
    let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
    (
        LearnTx {
            tx,
            sent: 0,
            dropped: 0,
        },
        LearnRx { rx },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::neigh::{NeighConfig, NeighTable};

    fn l(ip: &str, mac: u8, evidence: Evidence) -> Learned {
        Learned {
            port: PortIndex(0),
            ip: ip.parse().unwrap(),
            mac: EthernetAddress([2, 0, 0, 0, 0, mac]),
            evidence,
        }
    }

    #[test]
    fn full_channel_drops_and_counts() {
        let (mut tx, rx) = learn_channel(2);
        assert!(tx.send(l("10.0.0.1", 1, Evidence::Reply)));
        assert_eq!(rx.drain(10, |_| ()), 1);
        let mut tx2 = tx.clone();
        assert_eq!((tx2.sent, tx2.dropped), (0, 0), "a clone counts afresh");
        tx.sent = 0;
        assert!(tx.send(l("10.0.0.1", 1, Evidence::Reply)));
        assert!(tx2.send(l("10.0.0.2", 2, Evidence::Reply)));
        assert!(!tx.send(l("10.0.0.3", 3, Evidence::Reply)));
        assert_eq!((tx.sent, tx.dropped, tx2.sent, tx2.dropped), (1, 1, 1, 0));
        assert_eq!(rx.len(), 2);
        let mut got = Vec::new();
        assert_eq!(rx.drain(1, |x| got.push(x)), 1);
        assert_eq!(rx.drain(10, |x| got.push(x)), 1);
        assert_eq!(rx.drain(10, |x| got.push(x)), 0);
        assert!(rx.is_empty());
        assert_eq!(got[0].ip, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(got[1].mac, EthernetAddress([2, 0, 0, 0, 0, 2]));
        drop(rx);
        assert!(!tx.send(l("10.0.0.3", 3, Evidence::Reply)));
        assert_eq!(tx.dropped, 2);
    }

    #[test]
    fn worth_reporting() {
        let mut t = NeighTable::new(NeighConfig::default());
        let now = Timestamp::from_secs(100);
        t.learn(&l("10.0.0.1", 1, Evidence::Reply), now);
        let s = t.snapshot();
        // Unknown: a request creates, an overheard one does not.
        assert!(l("10.0.0.9", 9, Evidence::Request).worth_reporting(&s, now));
        assert!(!l("10.0.0.9", 9, Evidence::Overheard).worth_reporting(&s, now));
        // Known and fresh, same MAC: only replies.
        assert!(l("10.0.0.1", 1, Evidence::Reply).worth_reporting(&s, now));
        assert!(!l("10.0.0.1", 1, Evidence::Request).worth_reporting(&s, now));
        assert!(!l("10.0.0.1", 1, Evidence::Overheard).worth_reporting(&s, now));
        // MAC changed.
        assert!(l("10.0.0.1", 7, Evidence::Overheard).worth_reporting(&s, now));
        // Due for refresh.
        let later = now + NeighConfig::default().reachable;
        assert!(l("10.0.0.1", 1, Evidence::Request).worth_reporting(&s, later));
        assert!(!l("10.0.0.1", 1, Evidence::Overheard).worth_reporting(&s, later));
    }
}
