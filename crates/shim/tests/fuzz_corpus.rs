//! The fuzz targets' inputs as a regression test, on stable and in seconds: every file of
//! fuzz/seeds/TARGET and fuzz/regressions/TARGET (inputs that once made a target fail) goes
//! through the function the target fuzzes (husk_runtime::fuzzing, and husk_cli's parser for
//! `cli`). A panic fails the test. Here, in the crate that sees both libraries.

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut files: Vec<PathBuf> = ["seeds", "regressions"]
        .iter()
        .filter_map(|d| std::fs::read_dir(fuzz.join(d).join(target)).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs for fuzz target {target} under {}", fuzz.display());
    files
}

fn each(target: &str, f: impl Fn(&[u8])) {
    for path in inputs(target) {
        let data = std::fs::read(&path).expect("reading a fuzz input");
        eprintln!("{target}: {}", path.display());
        f(&data);
    }
}

#[test]
fn config_inputs() {
    let bundle = std::env::temp_dir().join(format!("husk-fuzz-corpus-{}", std::process::id()));
    std::fs::create_dir_all(bundle.join("rootfs")).expect("making a bundle");
    let r = std::panic::catch_unwind(|| {
        each("config", |d| husk_runtime::fuzzing::config(d, &bundle))
    });
    let _ = std::fs::remove_dir_all(&bundle);
    if let Err(p) = r {
        std::panic::resume_unwind(p);
    }
}

#[test]
fn state_inputs() {
    each("state", husk_runtime::fuzzing::state);
}

#[test]
fn mount_options_inputs() {
    each("mount_options", husk_runtime::fuzzing::mount_options);
}

#[test]
fn seccomp_inputs() {
    each("seccomp", husk_runtime::fuzzing::seccomp);
}

#[test]
fn cli_inputs() {
    each("cli", husk_cli::cli::parse_for_fuzzing);
}
