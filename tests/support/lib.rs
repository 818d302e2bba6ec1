//! Support library for husk's integration tests (package `husk-tests`).
//!
//! The tests run real containers as root. Every test gets its own state root ([`Runtime`]),
//! its own bundle directory under /tmp ([`Bundle`]), its own cgroup path and unique container
//! ids, so the tests can run in parallel (cargo's default).
//!
//! The runtime under test is the binary named by the environment variable `HUSK_BIN`
//! (default: `<workspace>/target/release/husk`). Pointing `HUSK_BIN` at `runc` runs the same
//! suite against runc; only the expected error-message substrings differ, see [`Flavor`] and
//! [`Output::assert_msg`].
//!
//! Typical use:
//! ```ignore
//! let mut b = Bundle::new("hostname");
//! b.args(&["hostname"]).hostname("box");
//! let rt = Runtime::new("hostname");
//! let out = rt.run_capture(&b, &rt.id("c"));
//! out.assert_ok();
//! assert_eq!(out.stdout.trim(), "box");
//! ```
//! Declare the `Bundle` before the `Runtime`, so that the runtime (and its clean-up guard)
//! is dropped first, while the bundle still exists.

mod bundle;
mod host;
mod leftovers;
mod runtime;

pub use bundle::{default_config, Bundle, Hook, HookKind};
pub use host::*;
pub use leftovers::{clean_up, leftovers, stray_processes, Leftovers};
pub use runtime::{is_rfc3339, run_fails, run_ok, shell_quote, Output, Running, Runtime};

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The workspace root (where the root Cargo.toml is).
pub fn workspace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The runtime binary under test: `$HUSK_BIN` (a path, or a bare name looked up on PATH,
/// e.g. `HUSK_BIN=runc`; `make` sets it), else the newest of `<target>/<triple>/release/husk`
/// (what `make build` makes) and `<target>/release/husk`, `<target>` being
/// `$CARGO_TARGET_DIR` or `<workspace>/target`.
pub fn husk_bin() -> PathBuf {
    match std::env::var_os("HUSK_BIN") {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            if p.components().count() == 1 {
                // A bare name such as `runc`: resolve it on PATH.
                if let Some(found) = which(&p.to_string_lossy()) {
                    return found;
                }
            }
            p
        }
        _ => {
            let target = match std::env::var_os("CARGO_TARGET_DIR") {
                Some(t) if !t.is_empty() => PathBuf::from(t),
                _ => workspace_dir().join("target"),
            };
            newest_build(&target).unwrap_or_else(|| target.join("release/husk"))
        }
    }
}

/// The most recently built `husk` under a cargo target directory, with or without a triple.
fn newest_build(target: &std::path::Path) -> Option<PathBuf> {
    let triples = std::fs::read_dir(target).into_iter().flatten().flatten();
    triples
        .map(|e| e.path().join("release/husk"))
        .chain([target.join("release/husk")])
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
}

/// Finds an executable on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Which implementation the binary under test is. Only used to pick the expected
/// substring of error messages, which differ between runtimes; everything else that the
/// tests check is the same for all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Husk,
    Runc,
    Crun,
    Other,
}

/// The flavor of [`husk_bin`], read once from its `--version` output.
pub fn flavor() -> Flavor {
    static FLAVOR: OnceLock<Flavor> = OnceLock::new();
    *FLAVOR.get_or_init(|| {
        let out = std::process::Command::new(husk_bin())
            .arg("--version")
            .output();
        let text = match out {
            Ok(o) => String::from_utf8_lossy(&o.stdout).to_lowercase(),
            Err(_) => String::new(),
        };
        if text.starts_with("husk") {
            Flavor::Husk
        } else if text.starts_with("runc") {
            Flavor::Runc
        } else if text.starts_with("crun") {
            Flavor::Crun
        } else {
            Flavor::Other
        }
    })
}

/// A name that is unique in this machine's lifetime for this test process:
/// `<prefix>-<pid>-<counter>`. Used for container ids, temp dirs and cgroup paths.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let clean: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!("{clean}-{}-{n}", std::process::id())
}
