//! Embed the git commit for `husk --version` as HUSK_GIT_COMMIT ("unknown" outside a git
//! checkout or before the first commit). Setting HUSK_GIT_COMMIT in the environment overrides it
//! (for builds from a tarball).

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
