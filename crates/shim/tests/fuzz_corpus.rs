//! The CLI fuzz target's inputs as a regression test (see crates/runtime/tests/fuzz_corpus.rs):
//! each file of fuzz/seeds/cli and fuzz/regressions/cli, split at NULs, is parsed as husk's
//! argv. A panic fails the test.

use std::path::{Path, PathBuf};

#[test]
fn cli_inputs() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut files: Vec<PathBuf> = ["seeds", "regressions"]
        .iter()
        .filter_map(|d| std::fs::read_dir(fuzz.join(d).join("cli")).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs under {}", fuzz.display());
    for path in files {
        eprintln!("cli: {}", path.display());
        husk_cli::cli::parse_for_fuzzing(&std::fs::read(&path).expect("reading a fuzz input"));
    }
}
