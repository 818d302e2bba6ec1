//! The container's cgroup: placement (create the cgroup in every hierarchy, put processes in
//! it, list them, remove what husk created) and management through a [`Manager`] driver chosen
//! by what the host mounts: the v1 driver when any v1 hierarchy is mounted (a hybrid host
//! included, as runc does), the v2 driver on a pure cgroup v2 host. See docs/cgroups.md.
//!
//! Hierarchies come from `/proc/self/mountinfo`: every cgroup v1 mount (one per hierarchy) and
//! the cgroup2 mount, so on a hybrid host the container also joins `/sys/fs/cgroup/unified`,
//! as runc does. The path inside each hierarchy is `linux.cgroupsPath` (absolute or relative,
//! both taken from the hierarchy root) or `/<id>` (runc's default).
//!
//! With `--systemd-cgroup` the cgroup is a systemd scope instead ([`systemd`]): systemd makes
//! and removes it, husk finds it from init's `/proc/PID/cgroup` and manages it the same way.

mod control;
pub mod convert;
pub mod devices;
pub mod ebpf;
mod manager;
pub(crate) mod mountinfo;
mod path;
pub mod resources;
pub mod stats;
pub mod systemd;
mod v1;
mod v2;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;

pub use manager::{Manager, OomWatch};
use mountinfo::{Hierarchy, Kind};
pub use resources::{requested_resources, Resources};
pub use stats::Stats;

/// The controllers whose `linux.resources` fields husk applies (v1 names and v2 names; the
/// v2 `devices` and `freezer` are the eBPF device filter and cgroup.freeze). See
/// docs/cgroups.md for which field goes where.
pub const CONTROLLERS: &[&str] = &[
    "blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "hugetlb", "io", "memory",
    "net_cls", "net_prio", "pids", "rdma",
];

/// Errors of the cgroup module; each names the path or field and the OS error.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("systemd cgroup driver: {what}: {source}")]
    Systemd {
        what: String,
        #[source]
        source: crate::dbus::DbusError,
    },
    #[error(
        "systemd cgroup driver (--systemd-cgroup): cannot reach systemd on {bus}: {reason} \
         (is systemd running? without it, use the cgroupfs driver: no --systemd-cgroup)"
    )]
    SystemdUnavailable { bus: String, reason: String },
    #[error(
        "rootless: linux.resources asks for {limits}, but this user cannot make a cgroup \
         ({cause}); cgroup v1 is never delegated to users: use cgroup v2 with a delegated \
         subtree (--systemd-cgroup and the user's systemd), or drop the limits"
    )]
    RootlessLimit { limits: String, cause: String },
    #[error("invalid linux.cgroupsPath {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("reading /proc/self/mountinfo: {}", io_errno(source))]
    Mountinfo {
        #[source]
        source: io::Error,
    },
    #[error(
        "no cgroup filesystem is mounted (no cgroup or cgroup2 entry in /proc/self/mountinfo)"
    )]
    NoHierarchy,
    #[error("creating cgroup {}: {}", path.display(), io_errno(source))]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("creating cgroup {}: it exists and is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("reading {}: {}", path.display(), io_errno(source))]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing {what} to {}: {}", path.display(), io_errno(source))]
    Write {
        what: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("removing cgroup {}: {}", path.display(), io_errno(source))]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("linux.resources.{field} is not supported on this host: {reason}")]
    Unsupported { field: String, reason: String },
    #[error("setting linux.resources.{field}: writing {value:?} to {}: {}{note}", path.display(), io_errno(source))]
    Apply {
        field: String,
        value: String,
        path: PathBuf,
        note: String,
        #[source]
        source: io::Error,
    },
    #[error("{} did not become {state} within 10s", path.display())]
    Freeze { path: PathBuf, state: &'static str },
    #[error("{what} for cgroup {}: {errno}{}", path.display(), if log.is_empty() { String::new() } else { format!(" (verifier: {log})") })]
    Bpf {
        what: String,
        path: PathBuf,
        errno: nix::Error,
        log: String,
    },
}

/// An OS error by its errno name (`EACCES`), anything else by its message.
pub(crate) fn io_errno(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => format!("{:?}", nix::errno::Errno::from_raw(n)),
        None => e.to_string(),
    }
}

/// A container's cgroup: one leaf directory per hierarchy. Serializable so that it can be
/// stored in state.json and rebuilt for `delete`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, Default, PartialEq)]
pub struct Cgroup {
    /// Absolute leaf directories, one per hierarchy; the pids, memory and freezer hierarchies
    /// first, the cgroup2 one last.
    paths: Vec<PathBuf>,
    /// For each entry of `paths`, the top-most directory husk created on the way to it (`None`:
    /// the leaf existed already, husk removes nothing there). `None` as a whole means unknown
    /// (built by [`Cgroup::from_paths`]): the leaf alone counts as husk's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created: Option<Vec<Option<PathBuf>>>,
    /// The leaf in the cgroup2 hierarchy, when there is one (hybrid or pure v2 host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unified: Option<PathBuf>,
    /// Each v1 controller's leaf (`memory` -> `/sys/fs/cgroup/memory/husk/x`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    subsystems: BTreeMap<String, PathBuf>,
    /// The resources applied so far (by create, then each update): what `update` merges into.
    #[serde(default, skip_serializing_if = "Resources::is_empty")]
    resources: Resources,
    /// The systemd scope unit holding the cgroup (`--systemd-cgroup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    systemd: Option<systemd::Unit>,
}

impl CgroupError {
    /// Whether the kernel refused the caller the cgroup (EACCES, EPERM, EROFS).
    pub fn is_permission(&self) -> bool {
        match self {
            CgroupError::Create { source, .. } | CgroupError::Write { source, .. } => {
                is_denied(source)
            }
            _ => false,
        }
    }
}

/// Whether a cgroup filesystem operation failed because the caller may not do it (EACCES,
/// EPERM, EROFS): what a rootless caller meets outside its delegated subtree.
pub(crate) fn is_denied(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM | libc::EROFS))
}

/// How eagerly a hierarchy's `cgroup.procs` is read by [`Cgroup::pids`], lower first.
fn rank(h: &Hierarchy) -> u8 {
    match &h.kind {
        Kind::V1 { .. } if h.has_controller("pids") => 0,
        Kind::V1 { .. } if h.has_controller("memory") => 1,
        Kind::V1 { .. } if h.has_controller("freezer") => 2,
        Kind::V1 { .. } => 3,
        Kind::V2 => 4,
    }
}

impl Cgroup {
    /// Compute the container's cgroup path and create it (mkdir -p) in every hierarchy. On a
    /// pure v2 host the parents' `cgroup.subtree_control` get all their controllers (best
    /// effort); in a v1 cpuset hierarchy new cgroups get their parent's cpus and mems. On error
    /// everything created so far is removed again.
    pub fn create(spec: &Spec, id: &str) -> Result<Cgroup, CgroupError> {
        let cgroups_path = spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_deref());
        let inner = path::inner_path(cgroups_path, id)?;
        let text = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|source| CgroupError::Mountinfo { source })?;
        let mut hierarchies = mountinfo::parse(&text);
        if hierarchies.is_empty() {
            return Err(CgroupError::NoHierarchy);
        }
        hierarchies.sort_by_key(rank);
        let pure_v2 = hierarchies.iter().all(|h| h.kind == Kind::V2);

        // husk owns `/husk` above the default paths: the last container out removes it, even
        // when another container created it.
        let owned_parent = match cgroups_path {
            None => inner.parent().map(Path::to_path_buf),
            Some(_) => None,
        };

        let mut cg = Cgroup {
            paths: Vec::new(),
            created: Some(Vec::new()),
            ..Default::default()
        };
        for h in &hierarchies {
            let leaf = h.mount_point.join(&inner);
            match create_dirs(h, &inner, pure_v2) {
                Ok(mut top) => {
                    if let (Some(_), Some(parent)) = (&top, &owned_parent) {
                        top = Some(h.mount_point.join(parent));
                    }
                    if let Some(created) = cg.created.as_mut() {
                        created.push(top);
                    }
                    cg.add_leaf(h, leaf);
                }
                Err(e) => {
                    if let Err(undo) = cg.remove() {
                        tracing::warn!(error = %undo, "removing the partly created cgroup");
                    }
                    return Err(e);
                }
            }
        }
        tracing::debug!(paths = ?cg.paths, "created cgroup");
        Ok(cg)
    }

    /// The cgroup of the systemd scope `unit` that holds process `pid`: its leaf in every
    /// mounted hierarchy, from `/proc/PID/cgroup`. systemd made it and removes it with the unit.
    pub fn of_scope(pid: i32, unit: systemd::Unit) -> Result<Cgroup, CgroupError> {
        let file = PathBuf::from(format!("/proc/{pid}/cgroup"));
        let text = fs::read_to_string(&file).map_err(|source| CgroupError::Read {
            path: file.clone(),
            source,
        })?;
        let lines = crate::rootfs::mountinfo::parse_proc_cgroup(&text);
        let mounts = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|source| CgroupError::Mountinfo { source })?;
        let mut hierarchies = mountinfo::parse(&mounts);
        hierarchies.sort_by_key(rank);
        let mut cg = Cgroup {
            systemd: Some(unit),
            ..Default::default()
        };
        for h in &hierarchies {
            let path = match &h.kind {
                Kind::V2 => crate::rootfs::mountinfo::v2_path(&lines).map(Path::to_path_buf),
                Kind::V1 { controllers } => crate::rootfs::mountinfo::v1_path_in_mount(
                    &lines,
                    controllers,
                    Path::new("/"),
                ),
            };
            let Some(path) = path else { continue };
            let leaf = h.mount_point.join(path.strip_prefix("/").unwrap_or(&path));
            cg.add_leaf(h, leaf);
        }
        if cg.paths.is_empty() {
            return Err(CgroupError::Invalid {
                field: file.display().to_string(),
                reason: format!("no mounted hierarchy matches {text:?}"),
            });
        }
        // Only the leaves, and only if systemd left them behind.
        cg.created = Some(cg.paths.iter().cloned().map(Some).collect());
        tracing::debug!(paths = ?cg.paths, "joined the systemd scope's cgroup");
        Ok(cg)
    }

    /// Record `leaf` as the container's directory in hierarchy `h` (and, for cgroup2 or a v1
    /// hierarchy, as the unified leaf or each controller's).
    fn add_leaf(&mut self, h: &Hierarchy, leaf: PathBuf) {
        match &h.kind {
            Kind::V2 => self.unified = Some(leaf.clone()),
            Kind::V1 { controllers } => {
                for c in controllers.iter().filter(|c| !c.starts_with("name=")) {
                    self.subsystems.insert(c.clone(), leaf.clone());
                }
            }
        }
        self.paths.push(leaf);
    }

    /// Only the unit, for stopping it when its cgroup is not known.
    pub fn for_unit(unit: systemd::Unit) -> Cgroup {
        Cgroup {
            systemd: Some(unit),
            ..Default::default()
        }
    }

    /// The systemd scope unit, with `--systemd-cgroup`.
    pub fn systemd_unit(&self) -> Option<&systemd::Unit> {
        self.systemd.as_ref()
    }

    /// Rebuild a cgroup from its leaf paths alone. Without the record of what husk created,
    /// [`Cgroup::remove`] removes each leaf, and its parent if that is an empty `husk` (the
    /// default `/husk/<id>` layout). Prefer storing the whole (serializable) `Cgroup`.
    pub fn from_paths(paths: Vec<PathBuf>) -> Cgroup {
        Cgroup {
            paths,
            ..Default::default()
        }
    }

    /// The absolute leaf directories, one per hierarchy.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// The leaf in the cgroup2 hierarchy (for `CLONE_INTO_CGROUP`), if known.
    pub fn unified_path(&self) -> Option<&Path> {
        self.unified.as_deref()
    }

    /// Whether the cgroup2 hierarchy is the only one (a pure v2 host): then placing a process
    /// with `CLONE_INTO_CGROUP` into [`Cgroup::unified_path`] places it completely.
    pub fn is_unified_only(&self) -> bool {
        self.unified.is_some() && self.paths.len() == 1
    }

    /// Move the calling process, which must be single-threaded, into the cgroup in every v1
    /// hierarchy by writing "0" to each `tasks` file. A thread that moves itself this way
    /// skips the kernel's global threadgroup lock, whose write side waits for an RCU grace
    /// period (about 8 ms here) on every `cgroup.procs` write of a pid.
    pub fn join_self_v1(&self) -> Result<(), CgroupError> {
        for leaf in self.paths.iter().filter(|p| Some(p.as_path()) != self.unified.as_deref()) {
            let file = leaf.join("tasks");
            fs::write(&file, "0").map_err(|source| CgroupError::Write {
                what: "the container init itself".into(),
                path: file.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Move process `pid` into the cgroup in every hierarchy (`cgroup.procs`).
    pub fn add_task(&self, pid: i32) -> Result<(), CgroupError> {
        for leaf in &self.paths {
            let file = leaf.join("cgroup.procs");
            fs::write(&file, pid.to_string()).map_err(|source| CgroupError::Write {
                what: format!("pid {pid}"),
                path: file.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// The processes in the cgroup, from the first hierarchy whose `cgroup.procs` exists
    /// (pids, memory or freezer preferred). Empty when the cgroup is gone.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        for leaf in &self.paths {
            let file = leaf.join("cgroup.procs");
            match fs::read_to_string(&file) {
                Ok(text) => return Ok(parse_procs(&text, &file)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(CgroupError::Read { path: file, source }),
            }
        }
        Ok(Vec::new())
    }

    /// Remove what husk created: each leaf (retrying EBUSY briefly while the kernel lets go of
    /// exited processes), then the parents husk created, as long as they are empty. A missing
    /// directory is fine. Every hierarchy is tried; the first error is returned.
    pub fn remove(&self) -> Result<(), CgroupError> {
        let mut first_err = None;
        if let Some(unit) = &self.systemd {
            if let Err(e) = systemd::stop(unit) {
                first_err = Some(e);
            }
        }
        // Wait for a busy leaf only once: if it stays busy it has live processes, and the
        // other hierarchies will say the same at once.
        let mut retry_busy = true;
        for (i, leaf) in self.paths.iter().enumerate() {
            let top = match &self.created {
                // Unknown: the leaf, and `husk` above it (the default layout) if it is empty.
                None => match leaf.parent() {
                    Some(p) if p.file_name().is_some_and(|n| n == "husk") => Some(p.to_path_buf()),
                    _ => Some(leaf.clone()),
                },
                Some(created) => created.get(i).cloned().flatten(),
            };
            let Some(top) = top else {
                tracing::debug!(path = %leaf.display(), "cgroup existed before husk; leaving it");
                continue;
            };
            if let Err(e) = remove_chain(leaf, &top, retry_busy) {
                if matches!(&e, CgroupError::Remove { source, .. } if source.raw_os_error() == Some(libc::EBUSY))
                {
                    retry_busy = false;
                }
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// How many processes the memory controller has OOM-killed in this cgroup: cgroup2's
    /// `memory.events` `oom_kill`, else the v1 memory hierarchy's `memory.oom_control`
    /// `oom_kill` (Linux 4.13+). `None` when neither can be read (no memory controller, or the
    /// cgroup is gone).
    pub fn oom_kills(&self) -> Option<u64> {
        let read = |file: PathBuf| -> Option<u64> {
            let text = fs::read_to_string(file).ok()?;
            stats::parse_flat_keyed(&text).get("oom_kill").copied()
        };
        self.unified
            .as_ref()
            .and_then(|u| read(u.join("memory.events")))
            .or_else(|| read(self.subsystems.get("memory")?.join("memory.oom_control")))
    }
}

/// Pids in a `cgroup.procs` text; lines that are not numbers are logged and skipped.
fn parse_procs(text: &str, file: &Path) -> Vec<i32> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter_map(|l| match l.parse() {
            Ok(pid) => Some(pid),
            Err(_) => {
                tracing::warn!(path = %file.display(), line = l, "unexpected line in cgroup.procs");
                None
            }
        })
        .collect()
}

/// mkdir -p `inner` below the hierarchy's mount point. Returns the top-most directory created
/// (`None` if all existed). On error, removes what it created.
fn create_dirs(h: &Hierarchy, inner: &Path, pure_v2: bool) -> Result<Option<PathBuf>, CgroupError> {
    let mut dir = h.mount_point.clone();
    let mut top: Option<PathBuf> = None;
    let undo = |deepest: &Path, top: &Option<PathBuf>| {
        if let Some(top) = top {
            if let Err(e) = remove_chain(deepest, top, false) {
                tracing::warn!(error = %e, "undoing cgroup creation");
            }
        }
    };
    for comp in inner.components() {
        if pure_v2 {
            v2::enable_subtree_controllers(&dir);
        }
        let child = dir.join(comp);
        match fs::create_dir(&child) {
            Ok(()) => {
                if top.is_none() {
                    top = Some(child.clone());
                }
                if h.has_controller("cpuset") {
                    if let Err(e) = v1::init_cpuset(&child) {
                        undo(&child, &top);
                        return Err(e);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if !child.is_dir() {
                    undo(&dir, &top);
                    return Err(CgroupError::NotADirectory { path: child });
                }
            }
            Err(source) => {
                undo(&dir, &top);
                return Err(CgroupError::Create {
                    path: child,
                    source,
                });
            }
        }
        dir = child;
    }
    Ok(top)
}

/// Delays between attempts to remove a busy leaf cgroup.
const BUSY_RETRY_MS: [u64; 6] = [1, 2, 4, 8, 10, 10];

/// rmdir `leaf` (retrying a while if it is busy and `retry_busy`), then its parents up to and
/// including `top`, stopping quietly at the first parent that is not empty. Only an error on
/// the leaf itself is returned.
fn remove_chain(leaf: &Path, top: &Path, retry_busy: bool) -> Result<(), CgroupError> {
    let top = if leaf.starts_with(top) { top } else { leaf };
    let mut attempt = 0;
    loop {
        match fs::remove_dir(leaf) {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => break,
            Err(e)
                if retry_busy
                    && e.raw_os_error() == Some(libc::EBUSY)
                    && attempt < BUSY_RETRY_MS.len() =>
            {
                sleep(Duration::from_millis(BUSY_RETRY_MS[attempt]));
                attempt += 1;
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: leaf.to_path_buf(),
                    source,
                })
            }
        }
    }
    let mut dir = leaf;
    while dir != top {
        let Some(parent) = dir.parent() else { break };
        dir = parent;
        match fs::remove_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::debug!(path = %dir.display(), error = %e, "leaving cgroup parent in place");
                break;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_round_trip() {
        let cg = Cgroup {
            paths: vec![
                "/sys/fs/cgroup/pids/husk/a".into(),
                "/sys/fs/cgroup/unified/husk/a".into(),
            ],
            created: Some(vec![Some("/sys/fs/cgroup/pids/husk".into()), None]),
            unified: Some("/sys/fs/cgroup/unified/husk/a".into()),
            ..Default::default()
        };
        let json = serde_json::to_string(&cg).unwrap_or_default();
        let back: Cgroup = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back, cg);
        assert!(!back.is_unified_only());
        assert_eq!(
            back.unified_path(),
            Some(Path::new("/sys/fs/cgroup/unified/husk/a"))
        );

        // Only paths stored: still loads.
        let old: Cgroup = serde_json::from_str(r#"{"paths":["/x"]}"#).unwrap_or_default();
        assert_eq!(old, Cgroup::from_paths(vec!["/x".into()]));
    }

    #[test]
    fn ranks_pids_memory_freezer_first() {
        let h = |mp: &str, c: &[&str]| Hierarchy {
            mount_point: mp.into(),
            kind: Kind::V1 {
                controllers: c.iter().map(|s| s.to_string()).collect(),
            },
        };
        let mut hs = [
            Hierarchy {
                mount_point: "/u".into(),
                kind: Kind::V2,
            },
            h("/cpu", &["cpu", "cpuacct"]),
            h("/freezer", &["freezer"]),
            h("/memory", &["memory"]),
            h("/pids", &["pids"]),
            h("/systemd", &["name=systemd"]),
        ];
        hs.sort_by_key(rank);
        let order: Vec<_> = hs
            .iter()
            .map(|h| h.mount_point.display().to_string())
            .collect();
        assert_eq!(
            order,
            ["/pids", "/memory", "/freezer", "/cpu", "/systemd", "/u"]
        );
    }

    #[test]
    fn parses_procs() {
        assert_eq!(parse_procs("1\n23\n\nx\n", Path::new("/p")), [1, 23]);
    }

    #[test]
    fn errno_names() {
        let e = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(io_errno(&e), "EACCES");
        let err = CgroupError::Create {
            path: "/sys/fs/cgroup/memory/husk/x".into(),
            source: e,
        };
        assert_eq!(
            err.to_string(),
            "creating cgroup /sys/fs/cgroup/memory/husk/x: EACCES"
        );
    }
}
