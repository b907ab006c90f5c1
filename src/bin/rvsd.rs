//! rvsd: the rvs data-plane daemon.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use rvs::config::{Config, PortConfig, Role};

/// rvs data-plane daemon: DPDK poll-mode forwarding on worker lcores.
#[derive(Parser, Debug)]
#[command(
    name = "rvsd",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("RVS_BUILD_INFO"), ")"),
    about,
    after_help = "EAL arguments go after `--`, e.g.\n  rvsd -c rvsd.toml -- -l 0,1 --no-huge -m 512"
)]
struct Args {
    /// Daemon configuration file (TOML, see docs/config.md).
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// A port without a config file: NAME=DEVICE (vdev spec or PCI address); repeatable.
    #[arg(long = "port", value_name = "NAME=DEVICE")]
    ports: Vec<String>,
    /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long)]
    duration: Option<f64>,
    /// What the workers run: `lb` (the load balancer) or `l2fwd` (plain
    /// forwarding between ports, for benchmarks).
    #[arg(long, default_value = "lb", value_parser = ["lb", "l2fwd"])]
    mode: String,
    /// Load rules (ipvsadm-save format) before traffic starts.
    #[arg(long, value_name = "FILE")]
    restore: Option<PathBuf>,
    /// Measure per-burst processing time in each worker (reported at exit).
    #[arg(long)]
    latency: bool,
    /// The control socket (overrides the config file's control.socket).
    #[arg(long, value_name = "PATH")]
    sock: Option<PathBuf>,
    /// Print the shutdown report as JSON.
    #[arg(long)]
    json: bool,
    /// EAL arguments.
    #[arg(last = true)]
    eal: Vec<String>,
}

fn load(args: &Args) -> Result<Config, String> {
    let mut cfg = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Config::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => Config::default(),
    };
    for spec in &args.ports {
        let (name, device) = spec
            .split_once('=')
            .ok_or_else(|| format!("--port {spec:?}: expected NAME=DEVICE"))?;
        cfg.ports.push(PortConfig {
            name: name.into(),
            device: device.into(),
            role: Role::Both,
            peer: None,
            mtu: None,
            mac: None,
            addresses: Vec::new(),
            vlans: Vec::new(),
            twin: None,
        });
    }
    if let Some(sock) = &args.sock {
        cfg.control.socket = sock.display().to_string();
    }
    cfg.normalise().map_err(|e| e.to_string())?;
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(cfg)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let cfg = match load(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rvsd: {e}");
            return ExitCode::from(2);
        }
    };
    let duration = match args.duration {
        Some(d) if !(d.is_finite() && d > 0.0) => {
            eprintln!("rvsd: --duration must be a positive number of seconds");
            return ExitCode::from(2);
        }
        d => d.map(Duration::from_secs_f64),
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            eprintln!("rvsd: cannot handle signal {sig}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let opts = rvs::daemon::RunOptions {
        mode: if args.mode == "l2fwd" {
            rvs::daemon::Mode::L2Fwd
        } else {
            rvs::daemon::Mode::Lb
        },
        cli_eal: args.eal.clone(),
        stop,
        duration,
        restore: args.restore.as_ref().map(|p| p.display().to_string()),
        latency: args.latency,
    };
    let result = rvs::daemon::run(&cfg, opts);
    match result {
        Ok(summary) => {
            if args.json {
                println!("{}", summary.to_json());
            } else {
                print!("{}", summary.report());
            }
            let panicked = summary
                .lcores
                .iter()
                .any(|(_, _, e)| !matches!(e, rvs::dataplane::lcore::Exit::Returned));
            if panicked {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("rvsd: {e}");
            ExitCode::FAILURE
        }
    }
}
