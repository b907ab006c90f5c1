//! rvsgen: synthetic client traffic toward a VIP. `write` makes a pcap
//! capture (for `dpdk-testpmd` with net_pcap, or `send`); `send` replays
//! captures over a DPDK port at a paced rate (`rvs::dataplane::replay`).

#![forbid(unsafe_code)]

use std::io::BufWriter;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rvs::traffic::{generate, FlowSpec, Pattern, PcapWriter};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Synthetic client traffic toward a VIP: write pcap captures, replay them over DPDK"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Write synthetic client traffic toward a VIP as a pcap file.
    Write(WriteArgs),
    /// Replay pcap captures over a DPDK port (one capture per tx queue) at
    /// a paced rate; prints a JSON summary on stdout. SIGINT/SIGTERM stop
    /// it; SIGUSR1 stops the sending only (the port stays open, --linger).
    #[command(
        after_help = "EAL arguments go after `--`, e.g.\n  rvsgen send --pcap q0.pcap --pps 1000000 --secs 5 -- \\\n    -l 0 --no-huge --no-pci -m 512 --file-prefix gen \\\n    --vdev net_memif0,role=client,socket=/tmp/m.sock,socket-abstract=no"
    )]
    Send(SendArgs),
}

#[derive(clap::Args, Debug)]
struct WriteArgs {
    /// Output pcap file.
    #[arg(short, long)]
    out: PathBuf,
    /// syn | established | lifecycle | udp
    #[arg(long, default_value = "established")]
    pattern: String,
    /// Number of flows (client address:port pairs).
    #[arg(long, default_value_t = 1000)]
    flows: u32,
    /// Packets per flow after the opening SYN (established, udp).
    #[arg(long, default_value_t = 4)]
    rounds: u32,
    /// Flows per client address (1 = every flow a new client).
    #[arg(long, default_value_t = 1)]
    ports_per_client: u32,
    #[arg(long, default_value = "172.16.0.1")]
    client_base: Ipv4Addr,
    #[arg(long)]
    vip: Ipv4Addr,
    #[arg(long, default_value_t = 80)]
    vport: u16,
    #[arg(long, default_value = "02:00:00:00:00:01")]
    src_mac: String,
    /// The balancer's client-port MAC.
    #[arg(long)]
    dst_mac: String,
    /// Frame length without FCS (60 = 64-byte frames on the wire).
    #[arg(long, default_value_t = 60)]
    frame_len: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(clap::Args, Debug)]
struct SendArgs {
    /// A capture to replay; repeat for more tx queues (capture i on queue i).
    #[arg(long = "pcap", value_name = "FILE", required = true)]
    pcaps: Vec<PathBuf>,
    /// Target rate in packets per second over all queues (0: as fast as
    /// the port takes them).
    #[arg(long, default_value_t = 0)]
    pps: u64,
    /// Stop after this many seconds (default: until SIGINT/SIGTERM, or
    /// the end of the captures with --once).
    #[arg(long)]
    secs: Option<f64>,
    /// Play each capture once (frames refused by a full queue are retried,
    /// so all of them go, in order).
    #[arg(long)]
    once: bool,
    /// Packets per transmit call (1..=32).
    #[arg(long, default_value_t = 32)]
    burst: usize,
    /// The DPDK port to send on (default: the first one).
    #[arg(long)]
    port: Option<String>,
    /// How long to wait for the port's link (e.g. a memif peer).
    #[arg(long, default_value_t = 10.0)]
    link_wait: f64,
    /// After the last frame (the end of --once or --secs, or SIGUSR1), keep
    /// the port open this long so that the peer reads what is still in the
    /// rings (memif's live in the sender's memory), or can be stopped first;
    /// SIGINT ends it early.
    #[arg(long, default_value_t = 1.0)]
    linger: f64,
    /// EAL arguments.
    #[arg(last = true)]
    eal: Vec<String>,
}

fn main() -> ExitCode {
    match Cli::parse().cmd {
        Cmd::Write(a) => write(a),
        Cmd::Send(a) => send(a),
    }
}

fn write(a: WriteArgs) -> ExitCode {
    let mac = |s: &str| rvs::config::parse_mac(s).map_err(|e| e.to_string());
    let (src_mac, dst_mac) = match (mac(&a.src_mac), mac(&a.dst_mac)) {
        (Ok(s), Ok(d)) => (s, d),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("rvsgen: {e}");
            return ExitCode::from(2);
        }
    };
    let pattern = match a.pattern.as_str() {
        "syn" => Pattern::Syn,
        "established" => Pattern::Established { rounds: a.rounds },
        "lifecycle" => Pattern::Lifecycle,
        "udp" => Pattern::Udp { rounds: a.rounds },
        p => {
            eprintln!("rvsgen: unknown pattern {p:?} (syn, established, lifecycle, udp)");
            return ExitCode::from(2);
        }
    };
    if a.flows == 0 || !(60..=1514).contains(&a.frame_len) {
        eprintln!("rvsgen: --flows must be positive and --frame-len within 60..=1514");
        return ExitCode::from(2);
    }
    let spec = FlowSpec {
        flows: a.flows,
        ports_per_client: a.ports_per_client,
        client_base: a.client_base,
        vip: a.vip,
        vport: a.vport,
        src_mac,
        dst_mac,
        frame_len: a.frame_len,
        seed: a.seed,
    };
    let result = std::fs::File::create(&a.out)
        .and_then(|f| PcapWriter::new(BufWriter::new(f)))
        .and_then(|mut w| {
            generate(&spec, pattern, |f| w.write(f))?;
            w.finish()
        });
    match result {
        Ok(n) => {
            eprintln!("rvsgen: {n} frames to {}", a.out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rvsgen: {}: {e}", a.out.display());
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "dpdk")]
fn send(a: SendArgs) -> ExitCode {
    use rvs::dataplane::replay::{self, Capture, SendOptions};
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    let fail = |msg: String| {
        eprintln!("rvsgen send: {msg}");
        ExitCode::from(2)
    };
    if a.secs.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
        return fail("--secs must be a positive number of seconds".into());
    }
    for (name, v) in [("--link-wait", a.link_wait), ("--linger", a.linger)] {
        if !(v.is_finite() && (0.0..=3600.0).contains(&v)) {
            return fail(format!("{name} must be a number of seconds"));
        }
    }
    if !(1..=rvs::dataplane::BURST_SIZE).contains(&a.burst) {
        return fail(format!(
            "--burst must be within 1..={}",
            rvs::dataplane::BURST_SIZE
        ));
    }
    if a.eal.is_empty() {
        return fail("EAL arguments after `--` are needed (at least the port's --vdev)".into());
    }
    let mut captures = Vec::new();
    for p in &a.pcaps {
        match Capture::read(p) {
            Ok(c) => captures.push(c),
            Err(e) => return fail(e),
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let pause = Arc::new(AtomicBool::new(false));
    for (sig, flag) in [
        (signal_hook::consts::SIGINT, &stop),
        (signal_hook::consts::SIGTERM, &stop),
        (signal_hook::consts::SIGUSR1, &pause),
    ] {
        if let Err(e) = signal_hook::flag::register(sig, flag.clone()) {
            eprintln!("rvsgen send: cannot handle signal {sig}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let opts = SendOptions {
        pps: a.pps,
        burst: a.burst,
        once: a.once,
        secs: a.secs,
        linger: std::time::Duration::from_secs_f64(a.linger),
    };
    match replay::send(
        &a.eal,
        a.port.as_deref(),
        &captures,
        &opts,
        std::time::Duration::from_secs_f64(a.link_wait),
        &stop,
        &pause,
    ) {
        Ok(report) => {
            println!("{}", report.to_json());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rvsgen send: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "dpdk"))]
fn send(_: SendArgs) -> ExitCode {
    eprintln!("rvsgen send: this build has no DPDK (built without the `dpdk` feature)");
    ExitCode::FAILURE
}
