//! rvsgen: write synthetic client traffic toward a VIP as a pcap capture,
//! for packet generators (e.g. `dpdk-testpmd` replaying it with net_pcap).

use std::io::BufWriter;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rvs::gen::{generate, FlowSpec, Pattern, PcapWriter};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Write synthetic client traffic toward a VIP as a pcap file"
)]
struct Args {
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

fn main() -> ExitCode {
    let a = Args::parse();
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
