//! Embed the git commit for `husk --version` as HUSK_GIT_COMMIT ("unknown" outside a git
//! checkout or before the first commit). Setting HUSK_GIT_COMMIT in the environment overrides it
//! (for builds from a tarball).
//!
//! Also lays out the binary's code: the functions the common commands run (hot-functions.txt,
//! made by integration/bench/hot_functions.py) go first and together in .text, so they fault
//! in as few pages as possible (see docs/benchmarks.md). This needs lld, the default linker of
//! Rust 1.90+ on x86_64-unknown-linux-gnu; elsewhere, or with HUSK_NO_SYMBOL_ORDERING set, the
//! layout is the linker's own.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=HUSK_GIT_COMMIT");
    let commit = std::env::var("HUSK_GIT_COMMIT")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| git(&["rev-parse", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=HUSK_GIT_COMMIT={commit}");

    layout();

    // Rebuild when HEAD moves: HEAD itself (checkout), refs/heads (commit), packed-refs (gc).
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        for name in ["HEAD", "refs/heads", "packed-refs"] {
            let p = Path::new(&dir).join(name);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
}

fn layout() {
    println!("cargo:rerun-if-env-changed=HUSK_NO_SYMBOL_ORDERING");
    println!("cargo:rerun-if-env-changed=HUSK_LINK_MAP");
    // The link map names every function with its address even in the stripped binary:
    // hot_functions.py probes the very build it reorders (a build with other profile settings
    // has other symbol hashes).
    if let Some(map) = std::env::var_os("HUSK_LINK_MAP") {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,-Map={}",
            Path::new(&map).display()
        );
    }
    println!("cargo:rerun-if-changed=hot-functions.txt");
    let target = std::env::var("TARGET").unwrap_or_default();
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let file = Path::new(&manifest).join("hot-functions.txt");
    if target != "x86_64-unknown-linux-gnu"
        || std::env::var_os("HUSK_NO_SYMBOL_ORDERING").is_some()
        || !file.exists()
        || !rustc_links_with_lld()
    {
        return;
    }
    // Names missing from a build (renamed or inlined since the list was made) are no error.
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={},--no-warn-symbol-ordering",
        file.display()
    );
}

/// Rust 1.90 made rust-lld the default linker of x86_64-unknown-linux-gnu; before it, the
/// system linker (GNU ld) does not know `--symbol-ordering-file`.
fn rustc_links_with_lld() -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("-vV").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.lines().find_map(|l| l.strip_prefix("release: "));
    let minor = version
        .and_then(|v| v.split('.').nth(1))
        .and_then(|m| m.parse::<u32>().ok());
    version.is_some_and(|v| v.starts_with("1.")) && minor.is_some_and(|m| m >= 90)
}
