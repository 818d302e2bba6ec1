//! `tmpcopyup`: copy what was in a directory into the tmpfs just mounted over it.
//!
//! The source is an fd of the directory opened before the mount, so it still reaches the
//! covered contents; everything is done with *at calls relative to directory fds and never
//! follows a symlink.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fchmodat, fstat, fstatat, mkdirat, mknodat, FchmodatFlags, Mode, SFlag};
use nix::unistd::{fchown, fchownat, symlinkat, Gid, Uid};

use super::RootfsError;

/// Deeper trees than this are refused rather than risk the stack.
const MAX_DEPTH: usize = 128;

/// Copy the contents of `from` into `to` (both directory fds opened O_RDONLY), keeping
/// types, modes and owners. `label` names the mount in errors.
pub(crate) fn copy_tree(from: BorrowedFd, to: BorrowedFd, label: &str) -> Result<(), RootfsError> {
    let st = fstat(from).map_err(err(label, OsStr::new(".")))?;
    unmapped_ok(fchown(
        to,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    ))
    .map_err(err(label, OsStr::new(".")))?;
    copy_dir(from, to, label, 0)
}

/// In a user namespace, an owner that is not mapped cannot be kept (EINVAL): the copy then
/// belongs to the namespace's root, which is the best that can be done.
fn unmapped_ok(r: Result<(), Errno>) -> Result<(), Errno> {
    match r {
        Err(Errno::EINVAL) => {
            tracing::debug!("tmpcopyup: owner not mapped in this user namespace; not kept");
            Ok(())
        }
        other => other,
    }
}

fn err<'a>(label: &'a str, name: &'a OsStr) -> impl FnOnce(Errno) -> RootfsError + 'a {
    move |errno| RootfsError::Sys {
        what: format!("tmpcopyup into {label}: copying {}", name.to_string_lossy()),
        errno,
    }
}

fn copy_dir(
    from: BorrowedFd,
    to: BorrowedFd,
    label: &str,
    depth: usize,
) -> Result<(), RootfsError> {
    if depth > MAX_DEPTH {
        return Err(RootfsError::Invalid(format!(
            "tmpcopyup into {label}: tree deeper than {MAX_DEPTH}"
        )));
    }
    // Listing through /proc/self/fd keeps us on the covered directory the fd refers to.
    let list = std::fs::read_dir(super::resolve::fd_path(&from)).map_err(|e| RootfsError::Sys {
        what: format!("tmpcopyup into {label}: listing the covered directory"),
        errno: super::io_errno(&e),
    })?;
    for entry in list {
        let entry = entry.map_err(|e| RootfsError::Sys {
            what: format!("tmpcopyup into {label}: listing the covered directory"),
            errno: super::io_errno(&e),
        })?;
        let name = entry.file_name();
        copy_entry(from, to, &name, label, depth)?;
    }
    Ok(())
}

fn copy_entry(
    from: BorrowedFd,
    to: BorrowedFd,
    name: &OsStr,
    label: &str,
    depth: usize,
) -> Result<(), RootfsError> {
    let e = || err(label, name);
    let st = fstatat(from, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(e())?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let perm = Mode::from_bits_truncate(st.st_mode & 0o7777);
    let nofollow = OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match kind {
        SFlag::S_IFDIR => {
            mkdirat(to, name, Mode::from_bits_truncate(0o700)).map_err(e())?;
            let src = openat(
                from,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | nofollow,
                Mode::empty(),
            )
            .map_err(e())?;
            let dst = openat(
                to,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | nofollow,
                Mode::empty(),
            )
            .map_err(e())?;
            copy_dir(src.as_fd(), dst.as_fd(), label, depth + 1)?;
        }
        SFlag::S_IFREG => {
            let src = openat(from, name, OFlag::O_RDONLY | nofollow, Mode::empty()).map_err(e())?;
            let dst = openat(
                to,
                name,
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | nofollow,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(e())?;
            let mut src = std::fs::File::from(src);
            let mut dst = std::fs::File::from(dst);
            std::io::copy(&mut src, &mut dst).map_err(|io| e()(super::io_errno(&io)))?;
        }
        SFlag::S_IFLNK => {
            let target = readlinkat(from, name).map_err(e())?;
            symlinkat(target.as_bytes(), to, name).map_err(e())?;
        }
        SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO => {
            mknodat(to, name, kind, perm, st.st_rdev).map_err(e())?;
        }
        // Sockets are bound to their creator; there is nothing to copy.
        _ => return Ok(()),
    }
    unmapped_ok(fchownat(
        to,
        name,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    ))
    .map_err(e())?;
    if kind != SFlag::S_IFLNK {
        // Not a symlink, and we just created it in the fresh tmpfs: following is safe.
        fchmodat(to, name, perm, FchmodatFlags::FollowSymlink).map_err(e())?;
    }
    Ok(())
}
