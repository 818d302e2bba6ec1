//! `linux.sysctl`: write each value under /proc/sys (after pivot, so the container's /proc).

use std::collections::HashMap;
use std::io::Write;

use super::{io_errno, paths, RootfsError};

/// Write every sysctl, in key order so failures are reproducible.
pub(crate) fn apply(sysctl: &HashMap<String, String>) -> Result<(), RootfsError> {
    let mut keys: Vec<&String> = sysctl.keys().collect();
    keys.sort();
    for key in keys {
        let value = &sysctl[key];
        let what = || format!("setting sysctl {key}={value}");
        let path = paths::sysctl_path(key)
            .map_err(|why| RootfsError::Invalid(format!("{}: {why}", what())))?;
        tracing::debug!(key = %key, value = %value, path = %path.display(), "sysctl");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(value.as_bytes()))
            .map_err(|e| RootfsError::Sys {
                what: format!("{} ({})", what(), path.display()),
                errno: io_errno(&e),
            })?;
    }
    Ok(())
}
