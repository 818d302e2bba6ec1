//! cgroup v1 specifics.

use std::fs;
use std::path::Path;

use super::CgroupError;

/// A new cpuset cgroup starts with empty `cpuset.cpus` and `cpuset.mems` (unless the parent
/// has `cgroup.clone_children`), and the kernel refuses tasks in it (ENOSPC): copy the parent's.
pub(crate) fn init_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for name in ["cpuset.cpus", "cpuset.mems"] {
        let file = dir.join(name);
        let current = fs::read_to_string(&file).map_err(|e| CgroupError::Read {
            path: file.clone(),
            source: e,
        })?;
        if !current.trim().is_empty() {
            continue;
        }
        let from = parent.join(name);
        let value = fs::read_to_string(&from).map_err(|e| CgroupError::Read {
            path: from.clone(),
            source: e,
        })?;
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        tracing::debug!(path = %file.display(), value, "copying cpuset from parent");
        fs::write(&file, value).map_err(|source| CgroupError::Write {
            what: format!("{value:?}"),
            path: file.clone(),
            source,
        })?;
    }
    Ok(())
}
