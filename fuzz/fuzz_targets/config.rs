#![no_main]
//! config.json loading and validation (husk_runtime::fuzzing::config).

use std::path::PathBuf;
use std::sync::OnceLock;

/// A bundle with an empty rootfs, made once per fuzzing process, so that validation gets
/// past the rootfs check.
fn bundle() -> &'static PathBuf {
    static B: OnceLock<PathBuf> = OnceLock::new();
    B.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("husk-fuzz-bundle-{}", std::process::id()));
        std::fs::create_dir_all(d.join("rootfs")).expect("making the fuzz bundle");
        d
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| husk_runtime::fuzzing::config(data, bundle()));
