//! rvsd's runtime: EAL, pool, ports and workers from a [`Config`], run until
//! told to stop, then a clean shutdown with the final counters.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::dataplane::lcore::{self, Exit};
use crate::dataplane::port::rss_types;
use crate::dataplane::worker::{DropReason, L2Forward, Worker, WorkerCounts, WorkerStats};
use crate::dataplane::{Eal, LcoreId, Mempool, Port, PortConfig, PortStats, RssConfig};

/// The RSS key most NICs ship with (Microsoft's verification key); rvs's
/// software Toeplitz mirrors whatever key is configured.
pub const DEFAULT_RSS_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// What rvsd did, for the shutdown report.
#[derive(Debug, Clone)]
pub struct Summary {
    pub elapsed: Duration,
    pub ports: Vec<(String, String, PortStats)>,
    pub lcores: Vec<(LcoreId, WorkerCounts, Exit)>,
}

/// Run the daemon until `stop` is set (or `duration` passes).
/// `cli_eal` are EAL arguments from the command line (after `--`).
pub fn run(
    cfg: &Config,
    cli_eal: &[String],
    stop: Arc<AtomicBool>,
    duration: Option<Duration>,
    mut progress: impl FnMut(Duration, &[Arc<WorkerStats>]),
) -> Result<Summary, String> {
    let mut args = vec!["rvsd".to_string()];
    args.extend(cfg.eal.args.iter().cloned());
    args.extend(cfg.device_args());
    args.extend(cli_eal.iter().cloned());
    let eal = Eal::init(&args).map_err(|e| e.to_string())?;

    let mut lcores = eal.worker_lcores();
    if !cfg.workers.lcores.is_empty() {
        let wanted: Vec<LcoreId> = cfg.workers.lcores.iter().map(|&l| LcoreId(l)).collect();
        if let Some(l) = wanted.iter().find(|l| !lcores.contains(l)) {
            return Err(format!(
                "workers.lcores names {l}, which is not an EAL worker lcore (give it to -l)"
            ));
        }
        lcores = wanted;
    }
    if lcores.is_empty() {
        return Err("no worker lcore: give the EAL at least two lcores, e.g. -l 0,1".into());
    }
    let nq = lcores.len() as u16;

    let pool = Mempool::new("rvs_pkts", cfg.workers.mbufs, 256, 2048 + 128, -1)
        .map_err(|e| e.to_string())?;

    let mut ports = Vec::new();
    // queues[w] = (rx of every port, tx of every port) for worker w.
    let mut per_worker: Vec<(Vec<_>, Vec<_>)> = (0..nq).map(|_| (Vec::new(), Vec::new())).collect();
    for pc in &cfg.ports {
        let port = Port::by_name(pc.dev_name()).map_err(|e| format!("port {}: {e}", pc.name))?;
        let info = port.info().map_err(|e| e.to_string())?;
        let want_rss = nq > 1 && info.rss_offloads != 0;
        let pcfg = PortConfig {
            rx_queues: nq,
            tx_queues: nq,
            rx_desc: cfg.workers.rx_desc,
            tx_desc: cfg.workers.tx_desc,
            rss: want_rss.then(|| RssConfig {
                key: DEFAULT_RSS_KEY,
                hash_types: rss_types::ip() | rss_types::tcp() | rss_types::udp(),
                reta: Vec::new(),
            }),
            promiscuous: true,
            mtu: pc.mtu,
        };
        let (rx, tx) = port
            .start(&pcfg, &pool)
            .map_err(|e| format!("port {} ({}): {e}", pc.name, pc.device))?;
        for (w, (r, t)) in rx.into_iter().zip(tx).enumerate() {
            per_worker[w].0.push(r);
            per_worker[w].1.push(t);
        }
        ports.push((pc.name.clone(), pc.device.clone(), port));
    }

    let peers = cfg.peers();
    let run_flag = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    let mut stats = Vec::new();
    for (w, (rx, tx)) in per_worker.into_iter().enumerate() {
        let st = Arc::new(WorkerStats::default());
        stats.push(st.clone());
        let flag = run_flag.clone();
        let pipeline = L2Forward {
            peer: peers.clone(),
        };
        let h = lcore::launch(lcores[w], move || {
            let mut worker = Worker::new(rx, tx, pipeline, st);
            worker.run(&flag);
        })
        .map_err(|e| e.to_string())?;
        handles.push(h);
    }

    let started = Instant::now();
    let mut last_progress = started;
    while !stop.load(Ordering::Relaxed) {
        if duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        if last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            progress(started.elapsed(), &stats);
        }
    }
    run_flag.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let mut lc = Vec::new();
    for (h, st) in handles.into_iter().zip(&stats) {
        let l = h.lcore();
        let exit = h.join();
        lc.push((l, st.snapshot(), exit));
    }
    let mut port_stats = Vec::new();
    for (name, dev, port) in &ports {
        port_stats.push((name.clone(), dev.clone(), port.stats().unwrap_or_default()));
    }
    for (_, _, port) in &ports {
        let _ = port.stop();
        let _ = port.close();
    }
    drop(pool);
    drop(eal);
    Ok(Summary {
        elapsed,
        ports: port_stats,
        lcores: lc,
    })
}

impl Summary {
    /// Human-readable shutdown report.
    pub fn report(&self) -> String {
        let mut s = format!("rvsd: stopped after {:.2} s\n", self.elapsed.as_secs_f64());
        for (name, dev, p) in &self.ports {
            s += &format!(
                "port {name} ({dev}): rx {} pkts {} bytes, tx {} pkts {} bytes, missed {}, rx errors {}, tx errors {}\n",
                p.ipackets, p.ibytes, p.opackets, p.obytes, p.imissed, p.ierrors, p.oerrors
            );
        }
        for (l, c, exit) in &self.lcores {
            let drops: Vec<String> = DropReason::ALL
                .iter()
                .filter(|r| c.drops[**r as usize] > 0)
                .map(|r| format!("{} {}", r.name(), c.drops[*r as usize]))
                .collect();
            s += &format!(
                "{l}: rx {} pkts, tx {} pkts, handed off {} out {} in, dropped {}{}{}\n",
                c.rx,
                c.tx,
                c.handoff_out,
                c.handoff_in,
                c.drops.iter().sum::<u64>(),
                if drops.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", drops.join(", "))
                },
                match exit {
                    Exit::Returned => String::new(),
                    Exit::Panicked(m) => format!(", PANICKED: {m}"),
                }
            );
        }
        s
    }

    /// Machine-readable report (one JSON object).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "elapsed_s": self.elapsed.as_secs_f64(),
            "ports": self.ports.iter().map(|(name, dev, p)| serde_json::json!({
                "name": name, "device": dev,
                "ipackets": p.ipackets, "opackets": p.opackets,
                "ibytes": p.ibytes, "obytes": p.obytes,
                "imissed": p.imissed, "ierrors": p.ierrors, "oerrors": p.oerrors,
            })).collect::<Vec<_>>(),
            "lcores": self.lcores.iter().map(|(l, c, exit)| serde_json::json!({
                "lcore": l.0, "rx": c.rx, "tx": c.tx, "loops": c.loops,
                "handoff_out": c.handoff_out, "handoff_in": c.handoff_in,
                "idle_loops": c.idle_loops,
                "drops": DropReason::ALL.iter()
                    .map(|r| (r.name().to_string(), serde_json::Value::from(c.drops[*r as usize])))
                    .collect::<serde_json::Map<_, _>>(),
                "panicked": matches!(exit, Exit::Panicked(_)),
            })).collect::<Vec<_>>(),
        })
    }
}
