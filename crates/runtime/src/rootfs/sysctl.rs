//! `linux.sysctl`: write each value under /proc/sys (after pivot, so the container's /proc).

use std::collections::HashMap;

use super::{paths, RootfsError};

/// Write every sysctl, in key order so failures are reproducible.
pub(crate) fn apply(sysctl: &HashMap<String, String>) -> Result<(), RootfsError> {
    let mut keys: Vec<&String> = sysctl.keys().collect();
    keys.sort();
    let mut procfs = None;
    for key in keys {
        let value = &sysctl[key];
        let what = || format!("setting sysctl {key}={value}");
        let path = paths::sysctl_path(key)
            .map_err(|why| RootfsError::Invalid(format!("{}: {why}", what())))?;
        tracing::debug!(key = %key, value = %value, path = %path.display(), "sysctl");
        // Through a verified private procfs: never a file mounted over /proc/sys.
        if procfs.is_none() {
            procfs = Some(
                crate::security::procfs::ProcFs::open()
                    .map_err(|e| RootfsError::Invalid(format!("{}: {e}", what())))?,
            );
        }
        let rel = path.strip_prefix("/proc").unwrap_or(&path).to_string_lossy().into_owned();
        if let Some(p) = &procfs {
            p.write(&rel, value.as_bytes()).map_err(|e| match e {
                crate::security::SecurityError::Syscall { errno, .. } => RootfsError::Sys {
                    what: format!("{} ({})", what(), path.display()),
                    errno,
                },
                other => RootfsError::Invalid(format!("{}: {other}", what())),
            })?;
        }
    }
    Ok(())
}
