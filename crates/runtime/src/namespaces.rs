//! Which namespaces the container gets, and in what order they are created or joined.
//!
//! Order (DESIGN.md): user first -> (pid/time need a fork) -> others -> mount. New
//! namespaces are created by the clone flags when that is possible; the cgroup namespace is
//! unshared only after the parent has placed the init in its cgroup (so that the namespace's
//! root is the container's cgroup), and the time namespace is unshared in init because clone(2)
//! cannot take CLONE_NEWTIME.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::process::ProcessError;

/// What to do with namespaces, computed once from the spec.
#[derive(Debug, Clone, PartialEq)]
pub struct NsPlan {
    /// Passed to clone(2).
    pub clone_flags: CloneFlags,
    /// Unshared by init once the parent has written the id maps and set the cgroup.
    pub unshare_flags: CloneFlags,
    /// Joined by path, user namespace first.
    pub joins: Vec<(LinuxNamespaceType, PathBuf)>,
    /// A new user namespace: the parent writes uid_map/gid_map.
    pub new_user: bool,
    /// A new mount namespace, or a joined one: the rootfs is set up.
    pub has_mount: bool,
    /// A new time namespace: init writes timens_offsets before the fork.
    pub new_time: bool,
    /// Init must fork once more so the process that execs is inside the pid/time namespace.
    pub needs_fork: bool,
    /// husk itself runs in a user namespace that is not the initial one (rootless podman
    /// runs its runtime so): the container is in it even without one of its own.
    pub inherited_user: bool,
}

pub fn flag(typ: LinuxNamespaceType) -> CloneFlags {
    match typ {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

impl NsPlan {
    /// A new user namespace, one joined by path, or husk's own when that is not the initial
    /// one.
    pub fn in_userns(&self) -> bool {
        self.new_user
            || self.inherited_user
            || self.joins.iter().any(|(t, _)| *t == LinuxNamespaceType::User)
    }

    pub fn from_spec(spec: &Spec) -> NsPlan {
        let mut plan = NsPlan {
            clone_flags: CloneFlags::empty(),
            unshare_flags: CloneFlags::empty(),
            joins: Vec::new(),
            new_user: false,
            has_mount: false,
            new_time: false,
            needs_fork: false,
            inherited_user: false,
        };
        let namespaces = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default();
        let user_joined = namespaces
            .iter()
            .any(|ns| ns.typ() == LinuxNamespaceType::User && ns.path().is_some());
        let mut new = CloneFlags::empty();
        for ns in &namespaces {
            match ns.path() {
                Some(p) => plan.joins.push((ns.typ(), p.clone())),
                None => new |= flag(ns.typ()),
            }
            if ns.typ() == LinuxNamespaceType::Mount {
                plan.has_mount = true;
            }
        }
        // setns into a user namespace must come before the others it owns.
        plan.joins
            .sort_by_key(|(t, _)| if *t == LinuxNamespaceType::User { 0 } else { 1 });
        plan.new_user = new.contains(CloneFlags::CLONE_NEWUSER);
        plan.new_time = new.contains(flag(LinuxNamespaceType::Time));
        let late = CloneFlags::CLONE_NEWCGROUP | flag(LinuxNamespaceType::Time);
        if user_joined {
            // Namespaces created now would belong to our user namespace, not the joined one:
            // create them all in init, after setns(user).
            plan.unshare_flags = new;
        } else {
            plan.clone_flags = new - late;
            plan.unshare_flags = new & late;
        }
        let pid_joined = plan
            .joins
            .iter()
            .any(|(t, _)| *t == LinuxNamespaceType::Pid);
        let time_joined = plan
            .joins
            .iter()
            .any(|(t, _)| *t == LinuxNamespaceType::Time);
        plan.needs_fork = pid_joined
            || time_joined
            || plan.new_time
            || plan.unshare_flags.contains(CloneFlags::CLONE_NEWPID);
        if plan.needs_fork && plan.clone_flags.contains(CloneFlags::CLONE_NEWPID) {
            // The process that forks must stay outside the new pid namespace, so that the
            // one that execs is its pid 1 (and the pid it reports is in our namespace).
            plan.clone_flags -= CloneFlags::CLONE_NEWPID;
            plan.unshare_flags |= CloneFlags::CLONE_NEWPID;
        }
        plan
    }
}

/// setns(2) into the namespace at `path`.
pub fn join(typ: LinuxNamespaceType, path: &Path) -> Result<(), ProcessError> {
    let ctx = |e: nix::Error| ProcessError::Namespace {
        what: format!("joining {} namespace {}", ns_name(typ), path.display()),
        source: e,
    };
    let file = std::fs::File::open(path).map_err(|e| ctx(io_errno(&e)))?;
    nix::sched::setns(file.as_fd(), flag(typ)).map_err(ctx)
}

/// unshare(2) of `flags`.
pub fn unshare(flags: CloneFlags) -> Result<(), ProcessError> {
    if flags.is_empty() {
        return Ok(());
    }
    nix::sched::unshare(flags).map_err(|e| ProcessError::Namespace {
        what: format!("unsharing namespaces {flags:?}"),
        source: e,
    })
}

pub fn ns_name(typ: LinuxNamespaceType) -> &'static str {
    match typ {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

/// Writes `uid_map` and `gid_map` of process `pid`, which is in a new user namespace, one
/// `containerID hostID size` line per mapping; an empty list is not written. The error
/// names the file and what was written.
pub(crate) fn write_id_maps(
    pid: i32,
    uid: &[LinuxIdMapping],
    gid: &[LinuxIdMapping],
) -> Result<(), String> {
    write_id_map(pid, "uid_map", uid)?;
    write_id_map(pid, "gid_map", gid)
}

/// Writes one of them (`file`: `uid_map` or `gid_map`).
pub(crate) fn write_id_map(pid: i32, file: &str, maps: &[LinuxIdMapping]) -> Result<(), String> {
    let text: String = maps
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect();
    if text.is_empty() {
        return Ok(());
    }
    let path = format!("/proc/{pid}/{file}");
    std::fs::write(&path, &text).map_err(|e| format!("writing {:?} to {path}: {e}", text.trim_end()))
}

pub(crate) fn io_errno(e: &std::io::Error) -> nix::Error {
    nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ns: &str) -> Spec {
        let json = format!(r#"{{"ociVersion":"1.0.0","linux":{{"namespaces":{ns}}}}}"#);
        serde_json::from_str(&json).expect("test spec")
    }

    #[test]
    fn new_namespaces_go_to_clone_except_cgroup_and_time() {
        let p = NsPlan::from_spec(&spec(
            r#"[{"type":"pid"},{"type":"mount"},{"type":"cgroup"},{"type":"time"},{"type":"user"}]"#,
        ));
        assert!(p
            .clone_flags
            .contains(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUSER));
        // init forks for the time namespace, so the pid namespace is unshared with it.
        assert!(p.unshare_flags.contains(CloneFlags::CLONE_NEWPID));
        assert!(!p.clone_flags.contains(CloneFlags::CLONE_NEWCGROUP));
        assert!(p.unshare_flags.contains(CloneFlags::CLONE_NEWCGROUP));
        assert!(p.new_time && p.needs_fork && p.new_user && p.has_mount);
    }

    #[test]
    fn plain_new_pid_needs_no_fork() {
        let p = NsPlan::from_spec(&spec(r#"[{"type":"pid"},{"type":"network"}]"#));
        assert!(!p.needs_fork);
        assert!(p.joins.is_empty());
    }

    #[test]
    fn joined_user_namespace_moves_everything_to_unshare_and_comes_first() {
        let p = NsPlan::from_spec(&spec(
            r#"[{"type":"network","path":"/n"},{"type":"pid"},{"type":"user","path":"/u"}]"#,
        ));
        assert!(p.clone_flags.is_empty());
        assert!(p.unshare_flags.contains(CloneFlags::CLONE_NEWPID));
        assert!(p.needs_fork);
        assert_eq!(p.joins[0].0, LinuxNamespaceType::User);
        assert!(!p.new_user);
    }

    #[test]
    fn joined_pid_namespace_needs_fork() {
        let p = NsPlan::from_spec(&spec(r#"[{"type":"pid","path":"/p"},{"type":"mount"}]"#));
        assert!(p.needs_fork);
        assert!(!p.clone_flags.contains(CloneFlags::CLONE_NEWPID));
    }
}
