//! Build script of the main package `rvs`: the build information that
//! `rvsd --version` and `rvsadm --version` print.
//!
//! `RVS_BUILD_INFO` is set for the crate's code, e.g. `git 1a2b3c4, DPDK 22.11.4`:
//! - the commit (`git rev-parse --short HEAD`), `unknown` without git or a
//!   repository (a Docker build context without `.git`, a source tarball);
//!   `RVS_GIT_COMMIT` in the environment takes its place when set;
//! - the DPDK version pkg-config finds (`pkg-config --modversion libdpdk`)
//!   when the `dpdk` feature is on, `none` without it or when absent.
//!
//! The script reruns only when HEAD moves (`.git/HEAD`, the branch it names,
//! `packed-refs`) or one of the variables it reads changes, never on a source
//! edit. The DPDK detection proper (headers, link flags) is the `ffi` crate's.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RVS_GIT_COMMIT");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_LIBDIR");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = match std::env::var("RVS_GIT_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_string(),
        _ => {
            watch_git(&manifest);
            git_commit(&manifest).unwrap_or_else(|| "unknown".into())
        }
    };
    let dpdk = if std::env::var_os("CARGO_FEATURE_DPDK").is_some() {
        dpdk_version().unwrap_or_else(|| "none".into())
    } else {
        "none".into()
    };
    println!("cargo:rustc-env=RVS_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=RVS_DPDK_VERSION={dpdk}");
    println!("cargo:rustc-env=RVS_BUILD_INFO=git {commit}, DPDK {dpdk}");
}

/// Output of a command that succeeded, trimmed; None for any failure.
fn run(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn git_commit(dir: &Path) -> Option<String> {
    run(Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--short", "HEAD"]))
}

/// Rerun when HEAD moves: the HEAD file, the ref it points to and
/// packed-refs. In a worktree `.git` is a file naming the real git dir.
fn watch_git(dir: &Path) {
    let Some(git_dir) = run(Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--absolute-git-dir"]))
    .map(PathBuf::from) else {
        return;
    };
    let head = git_dir.join("HEAD");
    println!("cargo:rerun-if-changed={}", head.display());
    let common = run(Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--git-common-dir"]))
    .map(|p| {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            dir.join(p)
        }
    })
    .unwrap_or_else(|| git_dir.clone());
    if let Ok(text) = std::fs::read_to_string(&head) {
        if let Some(r) = text.trim().strip_prefix("ref: ") {
            for base in [&git_dir, &common] {
                let p = base.join(r);
                if p.exists() {
                    println!("cargo:rerun-if-changed={}", p.display());
                }
            }
        }
    }
    let packed = common.join("packed-refs");
    if packed.exists() {
        println!("cargo:rerun-if-changed={}", packed.display());
    }
}

fn dpdk_version() -> Option<String> {
    run(Command::new("pkg-config").args(["--modversion", "libdpdk"]))
}
