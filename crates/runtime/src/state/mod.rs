//! The per-container state directory: `<root>/<id>/state.json` (written tmp+fsync+rename),
//! `exec.fifo`, and an exclusive `flock` on the directory held while a verb works on it.

mod proc;
mod time;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{DirBuilder, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};

pub use proc::{process_is_zombie, process_start_time};
pub use time::{format_rfc3339, now_rfc3339};

const STATE_FILE: &str = "state.json";
const STATE_TMP: &str = "state.json.tmp";
const FIFO_NAME: &str = "exec.fifo";
const MAX_ID_LEN: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("container with id {0} already exists")]
    Exists(String),
    #[error("invalid container id {0:?}: {1}")]
    InvalidId(String, &'static str),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state file {} is corrupt: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("encoding state for {id}: {source}")]
    Encode {
        id: String,
        #[source]
        source: serde_json::Error,
    },
}

fn io_err(what: impl Into<String>, path: &Path, source: std::io::Error) -> StateError {
    StateError::Io {
        what: what.into(),
        path: path.to_path_buf(),
        source,
    }
}

fn errno_err(what: impl Into<String>, path: &Path, e: Errno) -> StateError {
    io_err(what, path, std::io::Error::from(e))
}

/// A container's status (runtime-spec runtime.md "State").
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Stopped,
    Paused,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Paused => "paused",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What husk records about a container in state.json.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    pub oci_version: String,
    pub id: String,
    /// The status as recorded; see [`ContainerState::current_status`] for the live one.
    pub status: Status,
    pub pid: i32,
    /// Field 22 of /proc/<pid>/stat when the container init was started: tells a reused pid apart.
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339, nanoseconds, UTC.
    pub created: String,
    pub owner: String,
    /// Sorted by key, so that state.json and `husk state` list them in one order every time
    /// (runc's, from Go's encoding/json, are sorted too).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The container's cgroup, including which directories husk created (removed on delete).
    #[serde(default)]
    pub cgroup: crate::cgroups::Cgroup,
    #[serde(default)]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// `linux.intelRdt`: the resctrl directories husk created (removed on delete).
    #[serde(
        default,
        skip_serializing_if = "crate::extras::rdt::RdtCreated::is_empty"
    )]
    pub intel_rdt: crate::extras::rdt::RdtCreated,
    /// Without a mount namespace of its own: the id of the rootfs bind that holds every mount
    /// the container made in the runtime's mount namespace (detached on delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs_mount: Option<u64>,
}

impl ContainerState {
    /// Live status: the recorded status refined by the process. The pid gone, a zombie, or
    /// started at a different time -> Stopped; alive and recorded Created/Creating -> Created
    /// while the exec fifo exists, else Running; Paused while the cgroup is frozen.
    pub fn current_status(&self, fifo_exists: bool) -> Status {
        if self.status == Status::Stopped || !self.process_alive() {
            return Status::Stopped;
        }
        let live = match self.status {
            Status::Created | Status::Creating => {
                if fifo_exists {
                    Status::Created
                } else {
                    Status::Running
                }
            }
            other => other,
        };
        // husk does not record Paused: it is whatever the freezer says (as runc derives it).
        if live != Status::Paused && self.cgroup.is_frozen() {
            Status::Paused
        } else {
            live
        }
    }

    /// The recorded pid still runs the container init: same start time and not a zombie.
    pub fn process_alive(&self) -> bool {
        if self.pid <= 0 {
            return false;
        }
        process_start_time(self.pid) == Some(self.pid_start_time) && !process_is_zombie(self.pid)
    }

    /// The spec's state JSON, as hooks receive it on stdin.
    pub fn hook_json(&self, status: Status) -> Vec<u8> {
        let mut v = serde_json::json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "status": status.as_str(),
            "bundle": self.bundle,
        });
        if self.pid > 0 {
            v["pid"] = serde_json::json!(self.pid);
        }
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::json!(self.annotations);
        }
        // Serializing a Value built from strings and numbers cannot fail.
        serde_json::to_vec(&v).unwrap_or_default()
    }
}

/// A container's state directory, locked (flock LOCK_EX) for as long as this value lives.
#[derive(Debug)]
pub struct StateDir {
    path: PathBuf,
    id: String,
    lock: Flock<OwnedFd>,
}

/// Valid ids as runc accepts them: `[A-Za-z0-9_+.-]+`, not "." or "..", at most 1024 bytes.
pub fn validate_id(id: &str) -> Result<(), StateError> {
    let bad = |why| Err(StateError::InvalidId(id.to_string(), why));
    if id.is_empty() {
        return bad("must not be empty");
    }
    if id.len() > MAX_ID_LEN {
        return bad("longer than 1024 characters");
    }
    if id == "." || id == ".." {
        return bad("must not be . or ..");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'))
    {
        return bad("only letters, digits and _ + - . are allowed");
    }
    Ok(())
}

/// Container ids under the state root, sorted. A missing root means no containers.
pub fn list_ids(root: &Path) -> Result<Vec<String>, StateError> {
    let rd = match std::fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("reading state root", root, e)),
    };
    let mut ids = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| io_err("reading state root", root, e))?;
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if let (true, Some(name)) = (is_dir, entry.file_name().to_str()) {
            if validate_id(name).is_ok() {
                ids.push(name.to_string());
            }
        }
    }
    ids.sort();
    Ok(ids)
}

fn open_dir(path: &Path) -> Result<OwnedFd, Errno> {
    nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn lock_exclusive(fd: OwnedFd, path: &Path) -> Result<Flock<OwnedFd>, StateError> {
    let mut fd = fd;
    loop {
        match Flock::lock(fd, FlockArg::LockExclusive) {
            Ok(l) => return Ok(l),
            Err((back, Errno::EINTR)) => fd = back,
            Err((_, e)) => return Err(errno_err("locking state directory", path, e)),
        }
    }
}

impl StateDir {
    /// Create `<root>/<id>` (0711) and lock it. An existing directory is [`StateError::Exists`].
    pub fn create(root: &Path, id: &str) -> Result<Self, StateError> {
        validate_id(id)?;
        DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(root)
            .map_err(|e| io_err("creating state root", root, e))?;
        let path = root.join(id);
        match DirBuilder::new().mode(0o711).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(StateError::Exists(id.to_string()))
            }
            Err(e) => return Err(io_err("creating state directory", &path, e)),
        }
        let locked = open_dir(&path)
            .map_err(|e| errno_err("opening state directory", &path, e))
            .and_then(|fd| lock_exclusive(fd, &path));
        match locked {
            Ok(lock) => Ok(StateDir {
                path,
                id: id.to_string(),
                lock,
            }),
            Err(e) => {
                let _ = std::fs::remove_dir(&path);
                Err(e)
            }
        }
    }

    /// Open and lock an existing `<root>/<id>`, waiting for whoever holds the lock.
    pub fn open(root: &Path, id: &str) -> Result<Self, StateError> {
        validate_id(id)?;
        let path = root.join(id);
        // A few rounds: the directory may be deleted, or deleted and re-created, while we wait.
        for _ in 0..5 {
            let fd = match open_dir(&path) {
                Ok(fd) => fd,
                Err(Errno::ENOENT | Errno::ENOTDIR) => {
                    return Err(StateError::NotFound(id.to_string()))
                }
                Err(e) => return Err(errno_err("opening state directory", &path, e)),
            };
            let lock = lock_exclusive(fd, &path)?;
            let held = nix::sys::stat::fstat(&*lock)
                .map_err(|e| errno_err("checking state directory", &path, e))?;
            match std::fs::metadata(&path) {
                Ok(m) if m.dev() == held.st_dev as u64 && m.ino() == held.st_ino as u64 => {
                    return Ok(StateDir {
                        path,
                        id: id.to_string(),
                        lock,
                    });
                }
                Ok(_) => continue, // replaced by a new directory: lock that one instead
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    return Err(StateError::NotFound(id.to_string()))
                }
                Err(e) => return Err(io_err("checking state directory", &path, e)),
            }
        }
        Err(StateError::NotFound(id.to_string()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The fd holding the lock; the container init closes its copy right after clone.
    pub fn lock_fd(&self) -> RawFd {
        self.lock.as_raw_fd()
    }

    /// `<dir>/exec.fifo`.
    pub fn fifo_path(&self) -> PathBuf {
        self.path.join(FIFO_NAME)
    }

    /// Read state.json. A directory without one (a create that died early) is NotFound.
    pub fn load(&self) -> Result<ContainerState, StateError> {
        let file = self.path.join(STATE_FILE);
        let data = match std::fs::read(&file) {
            Ok(d) => d,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(StateError::NotFound(self.id.clone()))
            }
            Err(e) => return Err(io_err("reading state file", &file, e)),
        };
        serde_json::from_slice(&data).map_err(|source| StateError::Corrupt { path: file, source })
    }

    /// Write state.json atomically: tmp file, fsync, rename, fsync the directory.
    pub fn save(&self, s: &ContainerState) -> Result<(), StateError> {
        let data = serde_json::to_vec(s).map_err(|source| StateError::Encode {
            id: s.id.clone(),
            source,
        })?;
        let tmp = self.path.join(STATE_TMP);
        let file = self.path.join(STATE_FILE);
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(|e| io_err("creating state file", &tmp, e))?;
        f.write_all(&data)
            .and_then(|()| f.sync_all())
            .map_err(|e| io_err("writing state file", &tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, &file).map_err(|e| io_err("renaming state file to", &file, e))?;
        nix::unistd::fsync(&*self.lock)
            .map_err(|e| errno_err("syncing state directory", &self.path, e))
    }

    /// Remove the directory and everything in it; the lock goes with it.
    pub fn destroy(self) -> Result<(), StateError> {
        match std::fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("removing state directory", &self.path, e)),
        }
    }
}

#[cfg(test)]
mod tests;
