//! rvsd's runtime: EAL, pool, ports and workers from a [`Config`], run until
//! told to stop, then a clean shutdown with the final counters.

mod control_thread;
pub mod lbworker;
mod ports;
mod runtime;
mod twins;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use std::sync::Mutex;

use crate::config::{Config, Role};
use crate::control::handler::{NoDataPlane, RulesHandler, Runtime};
use crate::control::listener::ListenerStats;
use crate::control::server::Handler;
use crate::control::{self};
use crate::datapath::{Datapath, Forwarding, Gauges, Links, PortSide, VipOwners};
use crate::dataplane::handoff;
use crate::dataplane::lcore::{self, Exit};
use crate::dataplane::memory::{self, Placement};
use crate::dataplane::worker::{
    L2Forward, LatencyControl, LatencyWindow, Worker, WorkerCounts, WorkerStats,
};
use crate::dataplane::{Eal, LcoreId, Mempool, Port, PortStats};
use crate::drops::Tally;
use crate::hugepages::Hugepages;
use crate::ids::{PortIndex, WorkerIndex};
use crate::lb::conntable::ConnTable;
use crate::lb::engine::Engine;
use crate::lb::persist::TemplateTable;
use crate::lb::rules::{Rules, Snapshot};
use crate::lb::sched;
use crate::net::{
    self, Iface, IpCidr, NeighConfig, NeighSnapshot, NeighTable, NetConfig, RouteTable,
};
use crate::rss::{OwnerMap, Reta};
use crate::wire::EthernetAddress;
use control_thread::ControlThread;
use lbworker::{Clock, LbWorker};
use ports::Started;
use runtime::DaemonRuntime;

/// What the workers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// The load balancer (the default).
    #[default]
    Lb,
    /// Plain L2 forwarding between ports (the forwarding benchmark).
    L2Fwd,
}

/// How rvsd was asked to run, beyond the configuration file.
pub struct RunOptions {
    pub mode: Mode,
    /// EAL arguments from the command line (after `--`).
    pub cli_eal: Vec<String>,
    pub stop: Arc<AtomicBool>,
    pub duration: Option<Duration>,
    /// Rules in ipvsadm-save format to load before traffic starts.
    pub restore: Option<String>,
    /// Record per-burst processing time in each worker (reported at exit).
    pub latency: bool,
}

/// Per-burst processing time of one worker, in nanoseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct BurstLatency {
    pub bursts: u64,
    pub p50_ns: f64,
    pub p99_ns: f64,
    pub p999_ns: f64,
    pub max_ns: f64,
}

impl BurstLatency {
    fn from_histogram(h: &hdrhistogram::Histogram<u64>) -> Self {
        Self::from_window(&LatencyWindow::of(h))
    }

    pub(crate) fn from_window(w: &LatencyWindow) -> Self {
        let ns = |ticks: u64| ticks as f64 * 1e9 / crate::dataplane::tsc_hz().max(1) as f64;
        BurstLatency {
            bursts: w.bursts,
            p50_ns: ns(w.p50),
            p99_ns: ns(w.p99),
            p999_ns: ns(w.p999),
            max_ns: ns(w.max),
        }
    }
}

/// What rvsd did, for the shutdown report.
#[derive(Debug, Clone)]
pub struct Summary {
    pub elapsed: Duration,
    pub ports: Vec<(String, String, PortStats)>,
    pub lcores: Vec<(LcoreId, WorkerCounts, Exit)>,
    /// Per worker, when measured.
    pub latency: Vec<BurstLatency>,
    /// Connection-table memory per worker (bytes), its capacity, and where
    /// it lives ([`Placement`]).
    pub conn_memory: Vec<(usize, usize, Placement)>,
}

/// Each interface's addresses as the net module sees them: the ports,
/// then their VLANs ([`Config::interfaces`]).
fn net_config(cfg: &Config, macs: &[[u8; 6]]) -> Result<NetConfig, String> {
    let mut net = NetConfig::new();
    let mut port_macs = Vec::with_capacity(cfg.ports.len());
    for (i, pc) in cfg.ports.iter().enumerate() {
        port_macs.push(match &pc.mac {
            Some(m) => crate::config::parse_mac(m)
                .ok()
                .filter(|m| m[0] & 1 == 0)
                .ok_or_else(|| format!("port {}: mac {m:?}: not a unicast MAC", pc.name))?,
            None => macs[i],
        });
    }
    for (i, f) in cfg.interfaces().iter().enumerate() {
        let mut iface = Iface::new(i as u16, EthernetAddress(port_macs[f.port]))
            .with_mtu(f.mtu.unwrap_or(crate::net::iface::DEFAULT_MTU));
        if cfg.ports[f.port].twin.is_some() {
            iface = iface.with_twin();
        }
        if let Some(vid) = f.vlan {
            iface = iface.on_vlan(f.port as u16, vid);
        }
        let mut v6 = false;
        for a in f.addresses {
            let cidr: IpCidr = a
                .parse()
                .map_err(|e| format!("port {}: address {a}: {e:?}", f.name))?;
            v6 |= cidr.addr().is_ipv6();
            iface.add_addr(cidr);
        }
        if v6 {
            iface = iface.with_link_local();
        }
        net.set(iface);
    }
    Ok(net)
}

fn routes(cfg: &Config, net: &NetConfig) -> Result<RouteTable, String> {
    let mut t = RouteTable::from_config(net);
    for r in &cfg.routes {
        let port = cfg
            .interface_index(&r.port)
            .ok_or_else(|| format!("route {}: no port {}", r.prefix, r.port))?
            as u16;
        let prefix: IpCidr = r
            .prefix
            .parse()
            .map_err(|e| format!("route {}: {e:?}", r.prefix))?;
        let res = if prefix.prefix_len() == 0 {
            t.set_default(r.via, port)
        } else {
            t.add_static(prefix, r.via, port)
        };
        res.map_err(|e| format!("route {} via {}: {e:?}", r.prefix, r.via))?;
    }
    Ok(t)
}

/// Run the daemon until `opts.stop` is set (or the duration passes).
pub fn run(cfg: &Config, opts: RunOptions) -> Result<Summary, String> {
    let args = cfg.eal_args(&opts.cli_eal).map_err(|e| e.to_string())?;
    let on_hugepages = !args.iter().any(|a| a == "--no-huge");
    // The host's hugepages as they are before the EAL takes any: with -m
    // or --socket-mem it reserves them at init, and the pool comes from
    // that reservation, so the room for the pool is judged on this.
    let host = Hugepages::of_host();
    if on_hugepages {
        host.check_start(args.iter().any(|a| a == "--in-memory"))?;
    }
    eprintln!("rvsd: EAL arguments: {}", args[1..].join(" "));
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
    if on_hugepages {
        let tables = if cfg.lb.table_hugepages && opts.mode == Mode::Lb {
            ConnTable::layout(cfg.lb.connections as usize).bytes() as u64 * nq as u64
        } else {
            0
        };
        let what = format!("workers.mbufs = {}", cfg.workers.mbufs);
        if let Some(w) = host.check_room(cfg.pool_bytes(), tables, &what)? {
            eprintln!("rvsd: {w}");
        }
    }
    let pool = Arc::new(
        Mempool::new(
            &eal,
            "rvs_pkts",
            cfg.workers.mbufs,
            256,
            cfg.mbuf_data_room(),
            -1,
        )
        .map_err(|e| {
            format!(
                "packet pool of {} mbufs ({} MiB): {e}",
                cfg.workers.mbufs,
                cfg.pool_bytes() >> 20
            )
        })?,
    );
    // Reassembled datagrams too big for a packet mbuf. Freed, like the
    // packet pool, only once the ports (whose tx rings may hold its
    // buffers) are closed.
    let big_pool = match (cfg.fragments.big_buffers, opts.mode) {
        (0, _) | (_, Mode::L2Fwd) => None,
        (n, Mode::Lb) => Some(Arc::new(
            Mempool::new(&eal, "rvs_big", n, 0, crate::config::BIG_DATA_ROOM, -1)
                .map_err(|e| format!("reassembly pool of {n} buffers of 64 KiB: {e}"))?,
        )),
    };
    let started = ports::start(&eal, cfg, nq, &pool)?;
    let result = match opts.mode {
        Mode::L2Fwd => run_l2fwd(&eal, cfg, &opts, &lcores, started),
        Mode::Lb => run_lb(&eal, cfg, &opts, &lcores, started, &pool, &big_pool),
    };
    drop(big_pool);
    drop(pool);
    drop(eal);
    result
}

fn run_l2fwd(
    eal: &Eal,
    cfg: &Config,
    opts: &RunOptions,
    lcores: &[LcoreId],
    started: Started,
) -> Result<Summary, String> {
    let peers = cfg.peers();
    let lat_slots: Vec<LatencySlot> = lcores.iter().map(|_| Default::default()).collect();
    let run_flag = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    let mut stats = Vec::new();
    for (w, (rx, tx)) in started.queues.into_iter().enumerate() {
        let st = Arc::new(WorkerStats::default());
        stats.push(st.clone());
        let flag = run_flag.clone();
        let pipeline = L2Forward {
            peer: peers.clone(),
        };
        let lat = lat_slots[w].clone();
        let measure = opts.latency;
        let h = lcore::launch(eal, lcores[w], move || {
            let mut worker = Worker::new(rx, tx, pipeline, st);
            if measure {
                worker = worker.with_latency();
            }
            worker.run(&flag);
            if let (Some(h), Ok(mut slot)) = (worker.latency(), lat.lock()) {
                *slot = Some(BurstLatency::from_histogram(h));
            }
        })
        .map_err(|e| e.to_string())?;
        handles.push(h);
    }
    let started_at = std::time::Instant::now();
    wait(opts, started_at, || true);
    let mut s = finish(started_at, &run_flag, handles, &stats, started.ports)?;
    s.latency = collect_latency(&lat_slots);
    Ok(s)
}

/// Poll until told to stop, calling `every_20ms` meanwhile; it returns
/// false to stop too.
fn wait(opts: &RunOptions, started: std::time::Instant, mut every_20ms: impl FnMut() -> bool) {
    while !opts.stop.load(Ordering::Relaxed) {
        if opts.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        if !every_20ms() {
            break;
        }
    }
}

/// Stops the workers already running, then closes the ports: for a failure
/// once workers run. Without it rvsd would wait for them forever, deaf to
/// SIGTERM, since nothing else tells them to stop.
fn abandon(
    run_flag: &AtomicBool,
    handles: Vec<lcore::LaunchHandle>,
    ports: Vec<(String, String, Arc<Port>)>,
) {
    run_flag.store(true, Ordering::Relaxed);
    for h in handles {
        h.join();
    }
    ports::close_all(ports);
}

fn finish(
    started: std::time::Instant,
    run_flag: &AtomicBool,
    handles: Vec<lcore::LaunchHandle>,
    stats: &[Arc<WorkerStats>],
    ports: Vec<(String, String, Arc<Port>)>,
) -> Result<Summary, String> {
    run_flag.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let mut lc = Vec::new();
    for (h, st) in handles.into_iter().zip(stats) {
        let l = h.lcore();
        let exit = h.join();
        lc.push((l, st.snapshot(), exit));
    }
    let mut port_stats = Vec::new();
    for (name, dev, port) in &ports {
        port_stats.push((name.clone(), dev.clone(), port.stats().unwrap_or_default()));
    }
    ports::close_all(ports);
    Ok(Summary {
        elapsed,
        ports: port_stats,
        lcores: lc,
        latency: Vec::new(),
        conn_memory: Vec::new(),
    })
}

fn run_lb(
    eal: &Eal,
    cfg: &Config,
    opts: &RunOptions,
    lcores: &[LcoreId],
    started: Started,
    pool: &Arc<Mempool>,
    big_pool: &Option<Arc<Mempool>>,
) -> Result<Summary, String> {
    let nw = lcores.len();
    let hz = crate::dataplane::tsc_hz().max(1000);
    let clock = Clock {
        tsc0: crate::dataplane::tsc(),
        ticks_per_ms: hz / 1000,
    };
    let now = || clock.now(crate::dataplane::tsc());

    let mut rules = Rules::new(nw);
    let mut settings = *rules.settings();
    settings.expire_nodest_conn = cfg.lb.expire_nodest_conn;
    settings.expire_quiescent_template = cfg.lb.expire_quiescent_template;
    settings.conn_reuse_mode = cfg.lb.conn_reuse_mode;
    settings.evict_embryonic = cfg.lb.evict_embryonic;
    rules.set_settings(settings);

    let net = net_config(cfg, &started.macs)?;
    let routes = Arc::new(routes(cfg, &net)?);
    let mut neigh = NeighTable::new(NeighConfig::default());
    for n in &cfg.neighbors {
        let port = cfg
            .interface_index(&n.port)
            .ok_or_else(|| format!("neighbor {}: no port {}", n.address, n.port))?
            as u16;
        let mac = crate::config::parse_mac(&n.mac).map_err(|e| e.to_string())?;
        neigh.add_static(port, n.address, EthernetAddress(mac));
    }
    let (learn_tx, learn_rx) = net::learn_channel(4096);
    // One more reader of the configurations: the twins, for the VIPs.
    let (snap_tx, mut snap_rxs) = net::snapshot_channel::<Snapshot>(nw + 1);
    let twin_snaps = snap_rxs.pop().ok_or("no snapshot reader")?;
    let (owners_tx, owners_rxs) = net::snapshot_channel::<VipOwners>(nw);
    let (neigh_tx, neigh_rxs) = net::snapshot_channel::<NeighSnapshot>(nw);
    let templates = Arc::new(TemplateTable::new(64));
    let roles: Vec<Role> = cfg.interfaces().iter().map(|f| f.role).collect();
    let sides: Vec<PortSide> = roles
        .iter()
        .map(|r| match r {
            Role::Client => PortSide::Client,
            Role::Server => PortSide::Server,
            _ => PortSide::Both,
        })
        .collect();
    // A port carrying VLANs only takes no untagged frames: no VIP on it.
    let vip_ports: Vec<PortIndex> = roles
        .iter()
        .enumerate()
        .filter(|(_, r)| **r != Role::Server)
        .map(|(i, _)| PortIndex(i as u16))
        .filter(|&p| net.link(p).1.is_some() || net.carries_untagged(p))
        .collect();
    let owner = (nw > 1).then(|| {
        OwnerMap::new(
            crate::rss::DEFAULT_KEY,
            Reta::round_robin(started.reta_size, nw as u16),
        )
    });
    let mut handoffs = if nw > 1 {
        handoff::mesh(eal, nw, "lb").map_err(|e| e.to_string())?
    } else {
        Vec::new()
    };
    handoffs.reverse();

    let neigh_snap = neigh.snapshot();
    // --restore before any worker runs, so no packet sees an empty rule set.
    if let Some(path) = &opts.restore {
        let mut h = RulesHandler::new(rules, NoDataPlane);
        restore_file(&mut h, path)?;
        rules = h.rules;
    }
    let first = rules.snapshot();
    let lat_slots: Vec<LatencySlot> = lcores.iter().map(|_| Default::default()).collect();
    let lat_controls: Vec<Arc<LatencyControl>> = if opts.latency {
        lcores.iter().map(|_| Default::default()).collect()
    } else {
        Vec::new()
    };
    let mem_slots: Vec<MemorySlot> = lcores.iter().map(|_| Default::default()).collect();
    // Before any worker runs: a socket that cannot be bound stops rvsd
    // while there is nothing to unwind.
    let sock = std::path::PathBuf::from(&cfg.control.socket);
    let (listener, sock_file) = control::server::bind(&sock)
        .map_err(|e| format!("control socket {}: {e}", sock.display()))?;
    let port_ids: Vec<_> = started.ports.iter().map(|(_, _, p)| p.id()).collect();
    let mut twins = match twins::Twins::start(
        eal,
        cfg,
        &started.macs,
        &port_ids,
        pool,
        owners_tx,
        twin_snaps,
    ) {
        Ok(t) => t,
        Err(e) => {
            ports::close_all(started.ports);
            return Err(e);
        }
    };
    let idle_sleep = Duration::from_micros(cfg.workers.idle_sleep_us as u64);
    let run_flag = Arc::new(AtomicBool::new(false));
    let mut handles: Vec<lcore::LaunchHandle> = Vec::new();
    let mut stats = Vec::new();
    let mut gauges = Vec::new();
    let mut mailboxes = Vec::new();
    for (w, (((rx, tx), (snaps, neighs)), owners_rx)) in started
        .queues
        .into_iter()
        .zip(snap_rxs.into_iter().zip(neigh_rxs))
        .zip(owners_rxs)
        .enumerate()
    {
        let st = Arc::new(WorkerStats::default());
        let g = Arc::new(Gauges::default());
        let (mb_tx, mb_rx) = crossbeam_channel::bounded(4);
        stats.push(st.clone());
        gauges.push(g.clone());
        mailboxes.push(mb_tx);
        let (table, placement) = memory::conn_table(
            eal,
            lcores[w],
            cfg.lb.connections as usize,
            now(),
            cfg.lb.table_hugepages,
        );
        let mut engine = Engine::with_table(w, table, first.clone(), templates.clone(), sched::new);
        engine.set_prefetch(crate::dataplane::prefetch);
        let mut datapath = Datapath::new(Forwarding {
            engine,
            net: net.clone(),
            vip_ports: vip_ports.clone(),
            routes: routes.clone(),
            neigh: neigh_snap.clone(),
            ip_id_start: (w as u16).wrapping_mul(0x4000),
        })
        .with_icmp_limit(cfg.icmp.per_worker(lcores.len()))
        .with_reassembly(cfg.fragments.reassembly())
        .with_links(Links {
            snaps,
            neighs,
            learn: learn_tx.clone(),
            mailbox: mb_rx,
            gauges: g,
        });
        if let Some(o) = &owner {
            datapath = datapath.with_owners(WorkerIndex(w as u16), o.clone(), sides.clone());
        }
        if let Some(t) = &twins {
            datapath = datapath.with_vip_owners(t.owners(), Some(owners_rx));
        }
        let twin_link = twins.as_ref().map(|t| t.link(w));
        let mut pipeline = LbWorker::new(datapath, pool.clone(), clock);
        pipeline.big_pool = big_pool.clone();
        pipeline.room = cfg.mbuf_data_room() as usize - crate::config::MBUF_HEADROOM;
        let flag = run_flag.clone();
        let ho = handoffs.pop();
        let lat = lat_slots[w].clone();
        let lat_ctl = lat_controls.get(w).cloned();
        let mem = mem_slots[w].clone();
        let h = lcore::launch(eal, lcores[w], move || {
            let mut worker = Worker::new(rx, tx, pipeline, st);
            if let Some(ho) = ho {
                worker = worker.with_handoff(ho);
            }
            if let Some(ctl) = lat_ctl {
                worker = worker.with_latency_control(ctl);
            }
            if let Some(t) = twin_link {
                worker = worker.with_twin(t);
            }
            worker = worker.with_idle_sleep(idle_sleep);
            worker.run(&flag);
            if let (Some(h), Ok(mut slot)) = (worker.latency(), lat.lock()) {
                *slot = Some(BurstLatency::from_histogram(h));
            }
            if let Ok(mut m) = mem.lock() {
                let e = worker.pipeline.datapath.engine();
                *m = Some((e.memory_bytes(), e.capacity(), placement));
            }
        });
        let h = match h {
            Ok(h) => h,
            Err(e) => {
                // The workers already running stop before the ports and
                // the pool they use go away.
                abandon(&run_flag, handles, started.ports);
                return Err(e.to_string());
            }
        };
        handles.push(h);
    }

    // The control thread's state: the rules behind the socket.
    let runtime = DaemonRuntime {
        snap_tx,
        mailboxes,
        ports: started
            .ports
            .iter()
            .zip(&started.setups)
            .map(|((_, _, p), s)| (s.clone(), p.clone()))
            .collect(),
        lcores: lcores.to_vec(),
        workers: stats.clone(),
        gauges: gauges.clone(),
        conn_capacity: cfg.lb.connections,
        listener: Arc::new(ListenerStats::default()),
        latency: lat_controls,
        twin: twins.as_ref().and_then(|t| t.stats()),
    };
    let listener_stats = runtime.listener.clone();
    let handler = Arc::new(Mutex::new(RulesHandler::new(rules, runtime)));
    {
        // Nobody else has the lock yet: it cannot be poisoned.
        let mut h = handler.lock().unwrap_or_else(|p| p.into_inner());
        let snap = h.rules.snapshot();
        h.runtime.publish(snap);
    }
    let control = match ControlThread::start(
        listener,
        sock_file,
        handler.clone(),
        listener_stats,
        cfg.control.limits(),
    ) {
        Ok(c) => c,
        Err(e) => {
            abandon(&run_flag, handles, started.ports);
            return Err(e);
        }
    };
    eprintln!(
        "rvsd: balancing on {} port(s) with {nw} worker(s); control socket {}",
        started.ports.len(),
        sock.display()
    );

    let started_at = std::time::Instant::now();
    let mut last_estimate = started_at;
    let mut last_twin_sync = started_at;
    wait(opts, started_at, || {
        let t = now();
        if let Some(tw) = twins.as_mut() {
            if last_twin_sync.elapsed() >= twins::SYNC_EVERY {
                last_twin_sync = std::time::Instant::now();
                tw.sync();
            }
        }
        neigh.apply(&learn_rx, 4096, t);
        neigh.expire(t);
        if neigh.is_dirty() {
            neigh_tx.publish(&neigh.snapshot());
        }
        if last_estimate.elapsed() >= Duration::from_secs(2) {
            last_estimate = std::time::Instant::now();
            if let Ok(h) = handler.lock() {
                h.rules.estimate(t);
            }
        }
        // A control thread that ended failed: nobody could configure rvsd.
        !control.ended()
    });
    // Routing daemons withdraw the VIPs while the ports still carry
    // their updates.
    if let Some(tw) = twins.as_mut() {
        tw.withdraw();
    }
    let control_result = control.stop();
    let mut s = finish(started_at, &run_flag, handles, &stats, started.ports)?;
    drop(twins);
    // Reported once the workers are stopped and the ports closed.
    control_result?;
    s.latency = collect_latency(&lat_slots);
    s.conn_memory = mem_slots
        .iter()
        .filter_map(|m| m.lock().ok().and_then(|g| *g))
        .collect();
    Ok(s)
}

type LatencySlot = Arc<Mutex<Option<BurstLatency>>>;
/// A worker's connection-table bytes, capacity and placement, at exit.
type MemorySlot = Arc<Mutex<Option<(usize, usize, Placement)>>>;

fn collect_latency(slots: &[LatencySlot]) -> Vec<BurstLatency> {
    slots
        .iter()
        .filter_map(|s| s.lock().ok().and_then(|g| *g))
        .collect()
}

/// `rvsd --restore FILE`: ipvsadm-save text applied as one transaction,
/// as `rvsadm -R` would.
fn restore_file<R: Runtime>(h: &mut RulesHandler<R>, path: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("--restore {path}: {e}"))?;
    let changes = control::ipvsadm::restore::parse_restore(&text)
        .map_err(|e| format!("--restore {path}: line {}: {}", e.line, e.message))?;
    let request = control::proto::Request::Transaction {
        changes: changes.requests.clone(),
    };
    match h.handle(request) {
        control::proto::Response::Ok => Ok(()),
        control::proto::Response::Error {
            message,
            change: Some(i),
        } => Err(format!(
            "--restore {path}: line {}: {message}",
            changes.line(i).unwrap_or(0)
        )),
        control::proto::Response::Error { message, .. } => {
            Err(format!("--restore {path}: {message}"))
        }
        other => Err(format!("--restore {path}: unexpected answer {other:?}")),
    }
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
            s += &format!(
                "{l}: {}{}\n",
                tally_line(&c.tally),
                match exit {
                    Exit::Returned => String::new(),
                    Exit::Panicked(m) => format!(", PANICKED: {m}"),
                }
            );
        }
        if self.lcores.len() > 1 {
            let all = Tally::sum(self.lcores.iter().map(|(_, c, _)| &c.tally));
            s += &format!("all workers: {}\n", tally_line(&all));
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
                "lcore": l.0, "rx": c.tally.rx, "tx": c.tally.tx,
                "handoff_out": c.tally.handoff_out, "handoff_in": c.tally.handoff_in,
                "originated": c.tally.originated, "held": c.tally.held,
                "reassembled": c.tally.reassembled,
                "to_kernel": c.tally.to_kernel, "from_kernel": c.tally.from_kernel,
                "dropped": c.tally.drops.total(), "balanced": c.tally.balanced(),
                "loops": c.loops, "idle_loops": c.idle_loops,
                "drops": c.tally.drops.iter()
                    .map(|(r, n)| (r.name().to_string(), serde_json::Value::from(n)))
                    .collect::<serde_json::Map<_, _>>(),
                "panicked": matches!(exit, Exit::Panicked(_)),
            })).collect::<Vec<_>>(),
            "burst_latency": self.latency.iter().map(|l| serde_json::json!({
                "bursts": l.bursts, "p50_ns": l.p50_ns, "p99_ns": l.p99_ns,
                "p999_ns": l.p999_ns, "max_ns": l.max_ns,
            })).collect::<Vec<_>>(),
            "conn_memory": self.conn_memory.iter().map(|(b, c, p)| serde_json::json!({
                "bytes": b, "capacity": c, "placement": p.name(),
            })).collect::<Vec<_>>(),
        })
    }
}

/// One worker's (or all workers') accounting on one line: what came in,
/// where it went, and the drops by reason.
fn tally_line(t: &Tally) -> String {
    let drops: Vec<String> = t
        .drops
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{} {n}", r.name()))
        .collect();
    format!(
        "rx {} pkts, handed in {}, made {}, from the kernel {}; tx {} pkts, handed off {}, held {}, reassembled {}, to the kernel {}, dropped {}{}; {}",
        t.rx,
        t.handoff_in,
        t.originated,
        t.from_kernel,
        t.tx,
        t.handoff_out,
        t.held,
        t.reassembled,
        t.to_kernel,
        t.drops.total(),
        if drops.is_empty() {
            String::new()
        } else {
            format!(" ({})", drops.join(", "))
        },
        if t.balanced() {
            "balanced"
        } else {
            "UNBALANCED"
        }
    )
}
