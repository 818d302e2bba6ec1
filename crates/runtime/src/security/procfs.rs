//! A procfs the container cannot have tampered with, for the runtime's own writes to /proc
//! (LSM attr files, sysctl, oom_score_adj) and fd re-opens.
//!
//! The container's /proc is configured by the container: something may be mounted over a file
//! in it, or over /proc itself, so that a write meant for `attr/exec` lands in `core_pattern`
//! (CVE-2019-16884, CVE-2025-52881). husk therefore:
//! 1. uses a private procfs instance: a new detached mount (fsopen/fsmount) when the kernel
//!    allows it, else a detached non-recursive clone of the /proc mount (open_tree), which
//!    carries none of the mounts stacked over its files, else /proc itself;
//! 2. checks the root is a procfs root (statfs magic, inode 1);
//! 3. opens every file beneath it with openat2(RESOLVE_BENEATH | RESOLVE_NO_XDEV |
//!    RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS), so no mount point and no symlink is
//!    crossed on the way, and checks again that what it opened is on procfs.

use std::ffi::{CStr, OsStr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::fstat;
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};

use super::SecurityError;

/// The inode number of a procfs root (PROC_ROOT_INO).
const PROC_ROOT_INO: u64 = 1;

fn sys(what: impl Into<String>) -> impl FnOnce(Errno) -> SecurityError {
    let what = what.into();
    move |errno| SecurityError::Syscall { what, errno }
}

/// A verified procfs root.
#[derive(Debug)]
pub struct ProcFs {
    root: OwnedFd,
    /// What `self` is in this instance (the caller's pid in its pid namespace).
    self_pid: String,
}

fn is_proc<Fd: AsFd>(fd: Fd) -> Result<bool, Errno> {
    Ok(fstatfs(fd)?.filesystem_type() == PROC_SUPER_MAGIC)
}

impl ProcFs {
    /// A private procfs root (see the module doc for the order of attempts).
    pub fn open() -> Result<ProcFs, SecurityError> {
        const PROC: &CStr = c"proc";
        const SLASH_PROC: &CStr = c"/proc";
        let cwd = nix::fcntl::AT_FDCWD;
        let candidates: [(&str, Result<OwnedFd, Errno>); 3] = [
            (
                "a new procfs instance",
                crate::sys::fsmount::detached_mount(PROC),
            ),
            (
                "a clone of the /proc mount",
                crate::sys::fsmount::clone_mount(cwd, SLASH_PROC),
            ),
            (
                "/proc",
                nix::fcntl::open(
                    "/proc",
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                ),
            ),
        ];
        let mut why = Vec::new();
        for (what, fd) in candidates {
            match fd {
                Ok(fd) => match ProcFs::verify(fd) {
                    Ok(p) => {
                        tracing::debug!("procfs for runtime writes: {what}");
                        return Ok(p);
                    }
                    Err(e) => why.push(format!("{what}: {e}")),
                },
                Err(e) => why.push(format!("{what}: {e}")),
            }
        }
        Err(SecurityError::Procfs(format!(
            "no usable procfs: {}",
            why.join("; ")
        )))
    }

    fn verify(root: OwnedFd) -> Result<ProcFs, String> {
        match is_proc(&root) {
            Ok(true) => {}
            Ok(false) => return Err("not a procfs".into()),
            Err(e) => return Err(format!("statfs: {e}")),
        }
        match fstat(&root) {
            Ok(st) if st.st_ino == PROC_ROOT_INO => {}
            Ok(st) => return Err(format!("not a procfs root (inode {})", st.st_ino)),
            Err(e) => return Err(format!("stat: {e}")),
        }
        let link = readlinkat(&root, "self").map_err(|e| format!("reading self: {e}"))?;
        let self_pid = link.to_string_lossy().into_owned();
        if self_pid.is_empty() || !self_pid.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("self points to {self_pid:?}"));
        }
        Ok(ProcFs { root, self_pid })
    }

    /// Open `rel` (relative to the procfs root; a leading `self/` means this process) with
    /// `flags`, crossing no mount point and no symlink, and check it is on procfs.
    pub fn open_file(&self, rel: &str, flags: OFlag) -> Result<OwnedFd, SecurityError> {
        let path = self.resolve(rel);
        // openat2 refuses O_PATH with other flags than O_DIRECTORY, O_NOFOLLOW and O_CLOEXEC.
        let extra = if flags.contains(OFlag::O_PATH) {
            OFlag::O_CLOEXEC
        } else {
            OFlag::O_CLOEXEC | OFlag::O_NOCTTY
        };
        let how = OpenHow::new().flags(flags | extra).resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_XDEV
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
        let what = || format!("opening /proc/{rel} in a private procfs");
        let fd = openat2(self.root.as_fd(), OsStr::from_bytes(path.as_bytes()), how)
            .map_err(sys(what()))?;
        match is_proc(&fd) {
            Ok(true) => Ok(fd),
            Ok(false) => Err(SecurityError::Procfs(format!("{}: not on procfs", what()))),
            Err(e) => Err(sys(format!("{}: statfs", what()))(e)),
        }
    }

    /// Write `data` to `rel` in one write(2) (procfs files take a value per write).
    pub fn write(&self, rel: &str, data: &[u8]) -> Result<(), SecurityError> {
        let fd = self.open_file(rel, OFlag::O_WRONLY)?;
        let n = nix::unistd::write(&fd, data).map_err(sys(format!("writing /proc/{rel}")))?;
        if n != data.len() {
            return Err(SecurityError::Procfs(format!(
                "writing /proc/{rel}: short write ({n} of {} bytes)",
                data.len()
            )));
        }
        Ok(())
    }

    /// `self/x` -> `<pid>/x`: `self` is a symlink, which the lookup does not follow.
    fn resolve(&self, rel: &str) -> String {
        let rel = rel.trim_start_matches('/');
        match rel.strip_prefix("self/") {
            Some(rest) => format!("{}/{rest}", self.self_pid),
            None if rel == "self" => self.self_pid.clone(),
            None => rel.to_string(),
        }
    }

    /// Re-open one of our own fds (e.g. an O_PATH fd of a fifo) with `flags`, through
    /// `/proc/<pid>/fd/<n>` of this procfs; only that last magic link is followed.
    pub fn reopen_fd(
        &self,
        fd: std::os::fd::RawFd,
        flags: OFlag,
    ) -> Result<OwnedFd, SecurityError> {
        let dir = self.open_file("self/fd", OFlag::O_PATH | OFlag::O_DIRECTORY)?;
        let name = fd.to_string();
        nix::fcntl::openat(
            &dir,
            name.as_str(),
            flags | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(sys(format!("re-opening fd {fd} through /proc/self/fd")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_status_through_private_procfs() {
        // As root this gets a private instance; otherwise /proc itself. Either way it works.
        let p = ProcFs::open().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.self_pid, std::process::id().to_string());
        let fd = p
            .open_file("self/status", OFlag::O_RDONLY)
            .unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&fd)
        ))
        .unwrap_or_default();
        assert!(text.contains("Pid:"), "{text}");
        // Symlinks are not followed.
        assert!(p.open_file("self/cwd", OFlag::O_PATH).is_err());
        assert!(p.open_file("../etc/passwd", OFlag::O_RDONLY).is_err());
    }

    #[test]
    fn reopens_an_fd() {
        let p = ProcFs::open().unwrap_or_else(|e| panic!("{e}"));
        let (r, _w) = nix::unistd::pipe().unwrap_or_else(|e| panic!("{e}"));
        let fd = p
            .reopen_fd(
                std::os::fd::AsRawFd::as_raw_fd(&r),
                OFlag::O_RDONLY | OFlag::O_NONBLOCK,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(is_proc(&fd).is_ok());
    }

    #[test]
    fn resolves_self() {
        let p = ProcFs::open().unwrap_or_else(|e| panic!("{e}"));
        let me = std::process::id();
        assert_eq!(p.resolve("self/attr/exec"), format!("{me}/attr/exec"));
        assert_eq!(p.resolve("/sys/net/x"), "sys/net/x");
    }
}
