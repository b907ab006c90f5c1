//! rvsd on real hugepages: every page comes back when it exits, by SIGTERM
//! or by SIGKILL; and when pages are missing or too few, or a configured
//! PCI device does not exist, it says so instead of EAL's bare errno.
//!
//! Changes the host's 2 MiB hugepage reservation for its run (restored in
//! `Drop`) and assumes no other process holds hugepages meanwhile, so it is
//! ignored by default and `./scripts/test` runs it on its own:
//! `cargo test --test rvsd_hugepages -- --ignored --test-threads=1`.
#![cfg(feature = "dpdk")]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");
const RVSADM: &str = env!("CARGO_BIN_EXE_rvsadm");
const NR: &str = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages";

fn meminfo(key: &str) -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{key} in /proc/meminfo"))
}

/// The hugepage reservation and a scratch directory, restored and removed
/// on drop.
struct Host {
    saved: String,
    dir: PathBuf,
    child: Option<Child>,
}

impl Host {
    fn new(tag: &str) -> Host {
        let dir = std::env::temp_dir().join(format!("rvs-huge-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Host {
            saved: std::fs::read_to_string(NR).unwrap(),
            dir,
            child: None,
        }
    }

    fn reserve(&self, pages: u64) {
        std::fs::write(NR, pages.to_string()).unwrap();
        assert_eq!(
            meminfo("HugePages_Total:"),
            pages,
            "reserving {pages} pages"
        );
    }

    fn sock(&self) -> PathBuf {
        self.dir.join("rvsd.sock")
    }

    fn config(&self, device: &str) -> PathBuf {
        let p = self.dir.join("rvsd.toml");
        std::fs::write(
            &p,
            format!(
                "[workers]\nmbufs = 8191\n[lb]\nconnections = 65536\n[control]\nsocket = {:?}\n\
                 [[port]]\nname = 'client'\ndevice = {device:?}\nrole = 'client'\naddresses = ['192.0.2.1/24']\n\
                 [[port]]\nname = 'server'\ndevice = 'net_null1'\nrole = 'server'\naddresses = ['10.0.0.1/24']\n",
                self.sock().display().to_string()
            ),
        )
        .unwrap();
        p
    }

    fn rvsd(&self, device: &str) -> Command {
        let mut c = Command::new(RVSD);
        c.arg("-c")
            .arg(self.config(device))
            .args(["--duration", "60", "--", "-l", "0,1"]);
        c.stdin(Stdio::null());
        c
    }

    /// rvsd must refuse to start, quickly, saying `want`.
    fn refuses(&self, device: &str, want: &str) -> String {
        let out: Output = self.rvsd(device).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "rvsd started:\n{err}");
        assert!(err.contains(want), "wanted {want:?} in:\n{err}");
        err
    }

    /// Start rvsd and wait until it answers rvsadm.
    fn start(&mut self) {
        let err = std::fs::File::create(self.dir.join("rvsd.err")).unwrap();
        let out = std::fs::File::create(self.dir.join("rvsd.out")).unwrap();
        let child = self
            .rvsd("net_null0")
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let t0 = Instant::now();
        while !self.adm(&["-Ln"]).status.success() {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("rvsd exited ({st}):\n{}", self.log());
            }
            assert!(t0.elapsed() < Duration::from_secs(30), "{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn adm(&self, args: &[&str]) -> Output {
        Command::new(RVSADM)
            .args(args)
            .arg("--sock")
            .arg(self.sock())
            .output()
            .unwrap()
    }

    /// What rvsd printed: stdout (the exit report), then stderr.
    fn log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        read("rvsd.out") + &read("rvsd.err")
    }

    /// Send `sig` to rvsd (by the pid we started) and wait for it.
    fn stop(&mut self, sig: &str) {
        let mut child = self.child.take().expect("rvsd running");
        let pid = child.id().to_string();
        assert!(Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success());
        let t0 = Instant::now();
        while child.try_wait().unwrap().is_none() {
            assert!(t0.elapsed() < Duration::from_secs(20), "rvsd did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::write(NR, self.saved.trim());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn all_free() -> (u64, u64) {
    (meminfo("HugePages_Free:"), meminfo("HugePages_Total:"))
}

#[test]
#[ignore = "needs root; changes the host's hugepage reservation"]
fn every_hugepage_comes_back() {
    let mut h = Host::new("back");
    h.reserve(256);
    for sig in ["-TERM", "-KILL"] {
        h.start();
        let (free, total) = all_free();
        assert!(
            free < total,
            "rvsd holds hugepages while it runs ({free} free of {total})"
        );
        let ports = h.adm(&["--ports"]);
        let text = String::from_utf8_lossy(&ports.stdout);
        assert!(text.contains("driver net_null"), "{text}");
        assert!(text.contains("connection owners: single worker"), "{text}");
        h.stop(sig);
        if sig == "-TERM" {
            let log = h.log();
            assert!(log.contains("rvsd: stopped after"), "{log}");
        }
        assert_eq!(
            all_free(),
            (256, 256),
            "every page back after {sig}:\n{}",
            h.log()
        );
    }
}

#[test]
#[ignore = "needs root; changes the host's hugepage reservation"]
fn missing_memory_and_devices_are_explained() {
    let h = Host::new("why");
    h.reserve(0);
    h.refuses("net_null0", "no hugepages are reserved");
    // 8 pages = 16 MiB; the pool of 8191 mbufs alone needs about 19.
    h.reserve(8);
    let e = h.refuses("net_null0", "too few hugepages");
    assert!(e.contains("workers.mbufs = 8191"), "{e}");
    h.reserve(256);
    // A PCI address no machine has (bus ff, device 1f, function 7).
    let e = h.refuses("FF:1F.7", "PCI device 0000:ff:1f.7 is not present");
    assert!(!e.contains("No such device"), "{e}");
    assert_eq!(all_free(), (256, 256), "nothing held after refusals");
}
