//! Resolving and creating paths inside the rootfs without leaving it.
//!
//! Every lookup goes through openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) from a directory
//! fd of the rootfs, so `..` and absolute symlinks stay inside it. The resulting O_PATH fds are
//! what gets mounted on, through `/proc/self/fd/N`.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, mkdirat, Mode, SFlag};

use super::{paths, sys, RootfsError};

/// An open rootfs directory.
pub(crate) struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

/// `/proc/self/fd/N` for an fd: the path that mount(2) and friends follow to the fd's file.
pub(crate) fn fd_path<Fd: AsRawFd>(fd: &Fd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// The id of the mount an fd is on (`mnt_id` in `/proc/self/fdinfo/N`, the id mountinfo
/// shows). Only called before pivot_root, when `/proc` is the host's.
pub(crate) fn mount_id<Fd: AsRawFd>(fd: &Fd) -> Result<u64, Errno> {
    let path = format!("/proc/self/fdinfo/{}", fd.as_raw_fd());
    let text = std::fs::read_to_string(path).map_err(|e| super::io_errno(&e))?;
    parse_mnt_id(&text).ok_or(Errno::EINVAL)
}

/// The `mnt_id:` field of an fdinfo file.
fn parse_mnt_id(fdinfo: &str) -> Option<u64> {
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .and_then(|v| v.trim().parse().ok())
}

/// O_PATH fd of `rel` beneath `dir` (`dir` itself when `rel` is empty): the lookup cannot
/// leave `dir` (RESOLVE_BENEATH) and follows no magic link, only ordinary symlinks that stay
/// beneath it. Used inside a proc or sysfs mount husk made, whose contents the kernel owns.
pub(crate) fn open_beneath<Fd: AsFd>(dir: Fd, rel: &Path) -> Result<OwnedFd, Errno> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let mut tries = 0;
    loop {
        match openat2(dir.as_fd(), rel, how) {
            Err(Errno::EAGAIN) if tries < 16 => tries += 1,
            r => return r,
        }
    }
}

/// O_PATH fd of the directory `name` in `dir`, not following a symlink: ENOTDIR (or ELOOP)
/// when `name` is anything but a directory.
pub(crate) fn open_dir_nofollow(dir: &OwnedFd, name: &OsStr) -> Result<OwnedFd, Errno> {
    openat(
        dir.as_fd(),
        name,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Whether an fd refers to a directory.
pub(crate) fn is_dir<Fd: AsFd>(fd: Fd) -> Result<bool, Errno> {
    let st = fstat(fd)?;
    Ok(SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
}

impl Root {
    /// Open the (already canonical) rootfs directory.
    pub(crate) fn open(path: &Path) -> Result<Root, RootfsError> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(sys(format!("opening rootfs {}", path.display())))?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The rootfs's host path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// `<dest> in rootfs <rootfs>`, how errors name a path inside the rootfs.
    pub(crate) fn at(&self, dest: &Path) -> String {
        format!("{} in rootfs {}", dest.display(), self.path.display())
    }

    /// `<what> <dest> in rootfs <rootfs>`.
    pub(crate) fn ctx(&self, what: &str, dest: &Path) -> String {
        format!("{what} {}", self.at(dest))
    }

    /// Open `cpath` (a container path) inside the rootfs with `flags` (O_CLOEXEC is added).
    /// Symlinks are followed, but inside the rootfs; with `O_NOFOLLOW` a final symlink is
    /// opened itself (only meaningful with `O_PATH`).
    pub(crate) fn open_at(&self, cpath: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
        let clean = paths::clean(cpath);
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        // openat2 returns EAGAIN with RESOLVE_IN_ROOT when a concurrent rename might have
        // let the lookup escape; retrying is the documented answer.
        let mut tries = 0;
        loop {
            match openat2(self.fd.as_fd(), clean.as_path(), how) {
                Err(Errno::EAGAIN) if tries < 16 => tries += 1,
                r => return r,
            }
        }
    }

    /// O_PATH fd of `cpath`, following symlinks inside the rootfs.
    pub(crate) fn open_path(&self, cpath: &Path) -> Result<OwnedFd, Errno> {
        self.open_at(cpath, OFlag::O_PATH)
    }

    /// The real container path of an fd opened inside this rootfs, after symlinks; `None` if
    /// the kernel reports a path outside it (which RESOLVE_IN_ROOT should make impossible).
    pub(crate) fn real_path<Fd: AsRawFd>(&self, fd: &Fd) -> Option<PathBuf> {
        let host = std::fs::read_link(fd_path(fd)).ok()?;
        paths::inside(&host, &self.path)
    }

    /// `mkdir -p` of a container path inside the rootfs; returns an O_PATH fd of the directory.
    pub(crate) fn mkdir_all(&self, cpath: &Path) -> Result<OwnedFd, RootfsError> {
        self.mkdir_all_depth(cpath, 0)
    }

    /// `mkdir_all`, where a dangling symlink on the way is followed (inside the rootfs, as
    /// RESOLVE_IN_ROOT would) and its target created; `depth` bounds symlink chains.
    fn mkdir_all_depth(&self, cpath: &Path, depth: u32) -> Result<OwnedFd, RootfsError> {
        const MAX_SYMLINKS: u32 = 40;
        let dest = paths::clean(cpath);
        let dir = OFlag::O_PATH | OFlag::O_DIRECTORY;
        match self.open_at(&dest, dir) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(sys(self.ctx("opening directory", &dest))(e)),
        }
        // Walk down from the root: resolve each prefix in the root (so symlinks in the image are
        // followed, but only inside it), create what is missing with mkdirat relative to the
        // parent fd, then open it without following anything.
        let mut cur = self
            .open_at(Path::new("/"), dir)
            .map_err(sys(format!("opening rootfs {}", self.path.display())))?;
        let mut prefix = PathBuf::from("/");
        for name in dest.components().skip(1) {
            let name: &OsStr = name.as_os_str();
            prefix.push(name);
            cur = match self.open_at(&prefix, dir) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) if depth < MAX_SYMLINKS && is_symlink(&cur, name) => {
                    // A dangling symlink: create its target, resolved against the rootfs.
                    let target = readlinkat(cur.as_fd(), name)
                        .map_err(sys(self.ctx("reading symlink", &prefix)))?;
                    let parent = prefix.parent().unwrap_or(Path::new("/"));
                    let resolved = paths::clean(&parent.join(target));
                    let fd = self.mkdir_all_depth(&resolved, depth + 1)?;
                    prefix = resolved;
                    fd
                }
                Err(Errno::ENOENT) => {
                    match mkdirat(cur.as_fd(), name, Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(sys(self.ctx("creating directory", &prefix))(e)),
                    }
                    openat(
                        cur.as_fd(),
                        name,
                        dir | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(sys(self.ctx("opening new directory", &prefix)))?
                }
                Err(e) => return Err(sys(self.ctx("opening directory", &prefix))(e)),
            };
        }
        Ok(cur)
    }

    /// Make sure a non-directory exists at `cpath` (an empty file if nothing is there, parents
    /// created as needed); returns an O_PATH fd of it. Used as a bind-mount target for files.
    pub(crate) fn create_file(&self, cpath: &Path) -> Result<OwnedFd, RootfsError> {
        let dest = paths::clean(cpath);
        match self.open_path(&dest) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(sys(self.ctx("opening", &dest))(e)),
        }
        let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
            return Err(RootfsError::Invalid(format!(
                "cannot create a file at {} in rootfs {}",
                dest.display(),
                self.path.display()
            )));
        };
        let dir = self.mkdir_all(parent)?;
        let flags =
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match openat(dir.as_fd(), name, flags, Mode::from_bits_truncate(0o644)) {
            Ok(_) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(sys(self.ctx("creating file", &dest))(e)),
        }
        self.open_path(&dest)
            .map_err(sys(self.ctx("opening new file", &dest)))
    }
}

/// Whether `name` in the directory `dir` is a symlink (not followed).
fn is_symlink(dir: &OwnedFd, name: &OsStr) -> bool {
    nix::sys::stat::fstatat(dir.as_fd(), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).is_ok_and(
        |st| SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFLNK,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mnt_id_from_fdinfo() {
        let text = "pos:\t0\nflags:\t02100000\nmnt_id:\t1234\nino:\t56\n";
        assert_eq!(parse_mnt_id(text), Some(1234));
        assert_eq!(parse_mnt_id("pos:\t0\n"), None);
        assert_eq!(parse_mnt_id("mnt_id:\tx\n"), None);
    }

    #[test]
    fn beneath_stays_beneath() {
        let dir = nix::fcntl::open(
            "/proc",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        // Ordinary symlinks beneath are followed; magic links and escapes are not.
        assert!(open_beneath(&dir, Path::new("self/status")).is_ok());
        assert!(open_beneath(&dir, Path::new("")).is_ok());
        assert!(open_beneath(&dir, Path::new("self/cwd/x")).is_err());
        assert!(open_beneath(&dir, Path::new("../etc")).is_err());
        assert!(open_beneath(&dir, Path::new("/etc")).is_err());
        assert_eq!(
            mount_id(&dir).ok(),
            mount_id(&open_beneath(&dir, Path::new("")).unwrap_or_else(|e| panic!("{e}"))).ok()
        );
    }
}
