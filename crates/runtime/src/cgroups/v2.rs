//! cgroup v2 specifics.

use std::fs;
use std::path::Path;

/// Enable in `dir`'s `cgroup.subtree_control` every controller `dir` has, so that the cgroups
/// below it get them. Best effort: a controller the kernel refuses (a parent with processes of
/// its own, a threaded subtree, ...) is logged and skipped.
pub(crate) fn enable_subtree_controllers(dir: &Path) {
    let available = match fs::read_to_string(dir.join("cgroup.controllers")) {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(dir = %dir.display(), error = %e, "reading cgroup.controllers");
            return;
        }
    };
    let enabled = fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    let enabled: Vec<&str> = enabled.split_whitespace().collect();
    let missing: Vec<&str> = available
        .split_whitespace()
        .filter(|c| !enabled.contains(c))
        .collect();
    if missing.is_empty() {
        return;
    }
    let file = dir.join("cgroup.subtree_control");
    let all: String = missing.iter().map(|c| format!("+{c} ")).collect();
    if fs::write(&file, all.trim_end()).is_ok() {
        return;
    }
    for c in missing {
        if let Err(e) = fs::write(&file, format!("+{c}")) {
            tracing::debug!(path = %file.display(), controller = c, error = %e, "enabling controller");
        }
    }
}
