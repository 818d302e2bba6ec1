//! Where a container's cgroup goes inside each hierarchy (pure, unit-tested).

use std::path::{Component, Path, PathBuf};

use super::CgroupError;

/// The container's cgroup path relative to each hierarchy's root (no leading `/`).
///
/// `linux.cgroupsPath` when set, absolute or relative alike (a relative path is taken relative
/// to the hierarchy root), else `<id>` directly under the root, as runc and crun do (no shared
/// parent to create and remove with every container). `.` components and repeated slashes are dropped;
/// `..` and a path naming the root itself are rejected.
pub(crate) fn inner_path(cgroups_path: Option<&Path>, id: &str) -> Result<PathBuf, CgroupError> {
    let raw = match cgroups_path {
        Some(p) => p.to_path_buf(),
        None => PathBuf::from(id),
    };
    let shown = raw.display().to_string();
    let invalid = |reason: &str| CgroupError::InvalidPath {
        path: shown.clone(),
        reason: reason.to_owned(),
    };
    let mut out = PathBuf::new();
    for comp in raw.components() {
        match comp {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(c) => out.push(c),
            Component::ParentDir => return Err(invalid("\"..\" is not allowed")),
            Component::Prefix(_) => return Err(invalid("unexpected path prefix")),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(invalid(
            "it names the root cgroup; a container needs its own cgroup",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(p: Option<&str>) -> Result<PathBuf, CgroupError> {
        inner_path(p.map(Path::new), "ctr1")
    }

    #[test]
    fn default_is_the_id_under_the_root() {
        assert_eq!(ip(None).ok(), Some(PathBuf::from("ctr1")));
    }

    #[test]
    fn absolute_and_relative_paths() {
        assert_eq!(ip(Some("/a/b")).ok(), Some(PathBuf::from("a/b")));
        assert_eq!(ip(Some("a/b")).ok(), Some(PathBuf::from("a/b")));
        assert_eq!(ip(Some("//a/./b/")).ok(), Some(PathBuf::from("a/b")));
        assert_eq!(
            ip(Some("/default/x:y")).ok(),
            Some(PathBuf::from("default/x:y"))
        );
        // Without --systemd-cgroup, colons are just part of a cgroup name.
        assert_eq!(
            ip(Some("system.slice:husk:abc")).ok(),
            Some(PathBuf::from("system.slice:husk:abc"))
        );
    }

    #[test]
    fn rejects_dotdot_and_root() {
        let e = ip(Some("/a/../../etc"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("\"..\" is not allowed"), "{e}");
        assert!(e.contains("/a/../../etc"), "{e}");
        assert!(ip(Some("/")).is_err());
        assert!(ip(Some(".")).is_err());
        assert!(inner_path(None, "..").is_err());
    }
}
