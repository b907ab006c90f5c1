//! rvsadm: the ipvsadm-compatible command line for rvsd. All logic lives in
//! `rvs::control::ipvsadm`; this binary adds the build information (commit,
//! DPDK version: build.rs) under the version line of `-v`/`--version`.

#![forbid(unsafe_code)]

use rvs::control::client::SOCKET_ENV;
use rvs::control::ipvsadm::{main_with, parse, Command};
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env_sock = std::env::var(SOCKET_ENV).ok();
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    // Buffered: a listing of a million connections is a million lines, and
    // a locked stdout writes each line with a syscall of its own.
    let mut out = std::io::BufWriter::with_capacity(64 << 10, stdout.lock());
    let code = main_with(
        &args,
        env_sock.as_deref(),
        &mut stdin.lock(),
        &mut out,
        &mut stderr.lock(),
    );
    if code == 0 && matches!(parse(&args), Ok(inv) if inv.command == Command::Version) {
        let _ = writeln!(out, "build: {}", env!("RVS_BUILD_INFO"));
    }
    let _ = out.flush();
    std::process::exit(code);
}
