//! Entry points for the fuzz targets (`fuzz/`) and their corpus regression test: each takes
//! arbitrary bytes, runs one of husk's parsers or validators on them and checks what must
//! hold whatever the input. None of them touches the system beyond reading files (a bundle's
//! rootfs, /proc): validation has no side effects. A panic here is a bug.

use std::path::Path;

use crate::state::ContainerState;

/// config.json: parse it (errors name the field), then validate it against `bundle`, a
/// directory with an empty `rootfs/` (so that validation gets past the rootfs check), and
/// derive the cgroup resources from it as create does before any side effect.
pub fn config(data: &[u8], bundle: &Path) {
    let Ok(spec) = crate::spec::parse(data) else {
        return;
    };
    if crate::spec::validate(&spec, bundle).is_ok() {
        let _ = crate::cgroups::Resources::from_spec(&spec);
        let _ = crate::namespaces::NsPlan::from_spec(&spec);
    }
}

/// state.json: whatever parses must write out and read back the same.
pub fn state(data: &[u8]) {
    let Ok(st) = serde_json::from_slice::<ContainerState>(data) else {
        return;
    };
    let out = serde_json::to_vec(&st).expect("a parsed state encodes");
    let again: ContainerState = serde_json::from_slice(&out).expect("an encoded state parses");
    assert_eq!(
        serde_json::to_vec(&again).expect("encodes"),
        out,
        "state.json does not round-trip"
    );
}

/// A mount's `options`: the input split at commas and NULs, as words.
pub fn mount_options(data: &[u8]) {
    let words: Vec<String> = data
        .split(|b| *b == b',' || *b == 0)
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    let _ = crate::rootfs::options::parse(&words);
}

/// `linux.seccomp`: parse and compile; a compiled program is never longer than the kernel
/// takes.
pub fn seccomp(data: &[u8]) {
    let Ok(s) = serde_json::from_slice::<oci_spec::runtime::LinuxSeccomp>(data) else {
        return;
    };
    if let Ok(f) = crate::security::seccomp::Filter::from_spec(&s) {
        assert!(f.len() <= 4096, "a seccomp program of {} instructions", f.len());
    }
}
