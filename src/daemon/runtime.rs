//! What the control handler asks of the running daemon: publish a
//! configuration to the workers, and report connections, ports, lcores and
//! counters.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;

use super::ports::PortSetup;
use crate::control::handler::{self, Runtime};
use crate::control::listener::ListenerStats;
use crate::control::proto::{ConnEntry, ConnProtocol, LcoreInfo, PortInfo, WorkerLatency};
use crate::control::server::ConnIter;
use crate::datapath::{ConnPage, Gauges, WorkerCmd};
use crate::dataplane::twin::TwinStats;
use crate::dataplane::worker::{LatencyControl, WorkerStats};
use crate::dataplane::{LcoreId, Port};
use crate::lb::engine::ConnInfo;
use crate::lb::rules::Snapshot;
use crate::net::SnapshotTx;

pub(super) struct DaemonRuntime {
    pub snap_tx: SnapshotTx<Snapshot>,
    pub mailboxes: Vec<Sender<WorkerCmd>>,
    pub ports: Vec<(PortSetup, Arc<Port>)>,
    pub lcores: Vec<LcoreId>,
    pub workers: Vec<Arc<WorkerStats>>,
    pub gauges: Vec<Arc<Gauges>>,
    pub conn_capacity: u32,
    pub listener: Arc<ListenerStats>,
    /// One per worker when rvsd measures latency, else empty.
    pub latency: Vec<Arc<LatencyControl>>,
    /// The kernel twins' frame mover, when ports have twins.
    pub twin: Option<Arc<TwinStats>>,
}

/// How long the control thread waits for a worker's answer.
const WORKER_ANSWER: Duration = Duration::from_secs(2);
/// Connections a worker lists per request (one per worker loop).
const LIST_PAGE: usize = 4096;

fn conn_entry(c: ConnInfo) -> ConnEntry {
    ConnEntry {
        protocol: c
            .proto
            .map_or(ConnProtocol::Ip, |p| handler::wire_protocol(p).into()),
        // The kernel prints the remaining time rounded down to seconds.
        expire: (c.expires_in_ms / 1000).min(u32::MAX as u64) as u32,
        state: c.state.to_string(),
        client: c.client,
        virtual_addr: c.vip,
        destination: c.dest,
        template: c.template,
    }
}

impl Runtime for DaemonRuntime {
    fn publish(&mut self, snap: Arc<Snapshot>) {
        self.snap_tx.publish(&snap);
    }

    fn connections(&self) -> ConnIter {
        // One worker at a time, a page at a time, asked for when the last
        // page is consumed: only one page is held, never the wire form.
        let mailboxes = self.mailboxes.clone();
        Box::new(mailboxes.into_iter().flat_map(|mb| {
            let mut from = Some(0);
            std::iter::from_fn(move || {
                let at = from.take()?;
                let (tx, rx) = crossbeam_channel::bounded(1);
                let cmd = WorkerCmd::ListConns {
                    from: at,
                    max: LIST_PAGE,
                    reply: tx,
                };
                let page = match mb.try_send(cmd) {
                    Ok(()) => rx.recv_timeout(WORKER_ANSWER).unwrap_or_default(),
                    Err(_) => ConnPage::default(),
                };
                from = page.next;
                Some(page.conns.into_iter().map(conn_entry))
            })
            .flatten()
        }))
    }

    fn ports(&self) -> Vec<PortInfo> {
        self.ports.iter().map(|(s, p)| s.info(p)).collect()
    }

    fn lcores(&self) -> Vec<LcoreInfo> {
        self.lcores
            .iter()
            .zip(self.workers.iter().zip(&self.gauges))
            .map(|(l, (w, g))| {
                let c = w.snapshot().tally;
                LcoreInfo {
                    lcore: l.0,
                    socket: 0,
                    role: "worker".into(),
                    rx_packets: c.rx,
                    tx_packets: c.tx,
                    dropped: c.drops.total(),
                    handoffs: c.handoff_out,
                    connections: g.connections.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    fn counters(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        let tallies: Vec<_> = self.workers.iter().map(|w| w.snapshot().tally).collect();
        let t = crate::drops::Tally::sum(&tallies);
        m.insert("worker.rx".into(), t.rx);
        m.insert("worker.handoff_in".into(), t.handoff_in);
        m.insert("worker.originated".into(), t.originated);
        m.insert("worker.tx".into(), t.tx);
        m.insert("worker.handoff_out".into(), t.handoff_out);
        m.insert("worker.held".into(), t.held);
        m.insert("worker.reassembled".into(), t.reassembled);
        m.insert("worker.to_kernel".into(), t.to_kernel);
        m.insert("worker.from_kernel".into(), t.from_kernel);
        m.insert("worker.dropped".into(), t.drops.total());
        for (r, n) in t.drops.iter() {
            m.insert(format!("drop.{}", r.name()), n);
        }
        let gauge = |f: fn(&Gauges) -> &std::sync::atomic::AtomicU64| -> u64 {
            self.gauges
                .iter()
                .map(|g| f(g).load(Ordering::Relaxed))
                .sum()
        };
        m.insert("lb.connections".into(), gauge(|g| &g.connections));
        m.insert(
            "lb.embryonic_evicted".into(),
            gauge(|g| &g.embryonic_evicted),
        );
        m.insert(
            "icmp.port_unreachable".into(),
            gauge(|g| &g.port_unreachable),
        );
        m.insert(
            "icmp.port_unreachable_limited".into(),
            gauge(|g| &g.port_unreachable_limited),
        );
        m.insert("neigh.learn_dropped".into(), gauge(|g| &g.learn_dropped));
        if let Some(t) = &self.twin {
            let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            m.insert("twin.to_kernel".into(), ld(&t.to_kernel));
            m.insert("twin.to_kernel_dropped".into(), ld(&t.to_kernel_dropped));
            m.insert("twin.from_kernel".into(), ld(&t.from_kernel));
            m.insert(
                "twin.from_kernel_dropped".into(),
                ld(&t.from_kernel_dropped),
            );
            m.insert("twin.bad_source".into(), ld(&t.bad_source));
        }
        let l = &self.listener;
        m.insert(
            "control.accepted".into(),
            l.accepted.load(Ordering::Relaxed) as u64,
        );
        m.insert(
            "control.refused_busy".into(),
            l.refused_busy.load(Ordering::Relaxed) as u64,
        );
        m.insert(
            "control.too_long".into(),
            l.too_long.load(Ordering::Relaxed) as u64,
        );
        m.insert(
            "control.idle_closed".into(),
            l.idle_closed.load(Ordering::Relaxed) as u64,
        );
        m.insert(
            "control.slow_closed".into(),
            l.slow_closed.load(Ordering::Relaxed) as u64,
        );
        m.insert(
            "control.evicted".into(),
            l.evicted.load(Ordering::Relaxed) as u64,
        );
        m
    }

    fn latency(&self, reset: bool) -> Result<Vec<WorkerLatency>, String> {
        if self.latency.is_empty() {
            return Err("rvsd does not measure latency (start it with --latency)".into());
        }
        // Ask every worker first, then collect: the windows of all workers
        // end (and restart) within one poll loop of each other.
        let tickets: Vec<Option<u64>> = self.latency.iter().map(|c| c.ask(reset)).collect();
        let mut out = Vec::new();
        for ((l, ctl), t) in self.lcores.iter().zip(&self.latency).zip(tickets) {
            let w = t
                .and_then(|t| ctl.answer(t, WORKER_ANSWER))
                .ok_or_else(|| format!("worker on {l} did not answer"))?;
            let b = super::BurstLatency::from_window(&w);
            out.push(WorkerLatency {
                lcore: l.0,
                bursts: b.bursts,
                p50_ns: b.p50_ns.round() as u64,
                p99_ns: b.p99_ns.round() as u64,
                p999_ns: b.p999_ns.round() as u64,
                max_ns: b.max_ns.round() as u64,
            });
        }
        Ok(out)
    }

    fn conn_tab_size(&self) -> u32 {
        self.conn_capacity
            .saturating_mul(self.mailboxes.len().max(1) as u32)
    }
}
