//! The new mount API: fsopen, fsconfig, fsmount, open_tree and move_mount, for a private
//! procfs, for bind mounts from fd to fd that never go through /proc, and for detached trees
//! that get an id mapping before they are attached. No memory
//! is shared with the kernel beyond the call.

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
/// MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC.
const MOUNT_ATTRS: libc::c_uint = 0x2 | 0x4 | 0x8;
const OPEN_TREE_CLONE: libc::c_uint = 1;

fn new_fd(rc: libc::c_long) -> Result<OwnedFd, Errno> {
    let fd = Errno::result(rc)?;
    let fd = libc::c_int::try_from(fd).map_err(|_| Errno::EBADF)?;
    // SAFETY: the syscall succeeded and returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A new, detached mount of filesystem `fstype` (no options) with nosuid,nodev,noexec:
/// fsopen + fsconfig(FSCONFIG_CMD_CREATE) + fsmount. The mount is attached nowhere, so nothing
/// can be mounted over anything in it.
pub fn detached_mount(fstype: &CStr) -> Result<OwnedFd, Errno> {
    // SAFETY: `fstype` is a valid NUL-terminated string alive across the call.
    let fsfd = new_fd(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })?;
    // SAFETY: FSCONFIG_CMD_CREATE takes no key, value or aux argument (NULL, NULL, 0).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fsfd.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0 as libc::c_int,
        )
    };
    Errno::result(rc)?;
    // SAFETY: integer arguments only.
    new_fd(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fsfd.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            MOUNT_ATTRS,
        )
    })
}

/// `open_tree(dirfd, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)`: a detached copy of the mount
/// at `path`, without the mounts stacked on top of or below it (not recursive).
pub fn clone_mount(dirfd: BorrowedFd, path: &CStr) -> Result<OwnedFd, Errno> {
    open_tree(dirfd.as_raw_fd(), path, OPEN_TREE_CLONE)
}

/// `open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC [| AT_RECURSIVE])`: a
/// detached copy of the mount tree at `path` (with the mounts beneath it when `recursive`),
/// to be changed while nothing can see it and then attached with [`attach`].
pub fn clone_tree(path: &CStr, recursive: bool) -> Result<OwnedFd, Errno> {
    let rec = if recursive {
        libc::AT_RECURSIVE as libc::c_uint
    } else {
        0
    };
    open_tree(libc::AT_FDCWD, path, OPEN_TREE_CLONE | rec)
}

fn open_tree(dirfd: libc::c_int, path: &CStr, flags: libc::c_uint) -> Result<OwnedFd, Errno> {
    let flags = flags | libc::O_CLOEXEC as libc::c_uint;
    // SAFETY: `path` is a valid NUL-terminated string alive across the call; dirfd is open
    // or AT_FDCWD.
    new_fd(unsafe { libc::syscall(libc::SYS_open_tree, dirfd, path.as_ptr(), flags) })
}

const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

/// `move_mount` of the detached tree `tree` onto what `target` refers to, both by fd with
/// empty paths: nothing is looked up by path.
pub fn attach(tree: BorrowedFd, target: BorrowedFd) -> Result<(), Errno> {
    // SAFETY: both fds are open and both paths are the valid empty string.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(rc).map(drop)
}

/// Bind-mount what `source` refers to onto what `target` refers to, both by fd: open_tree
/// (OPEN_TREE_CLONE | AT_EMPTY_PATH) then move_mount with empty paths. Nothing is looked up
/// by path, so no symlink swapped in meanwhile can redirect either end.
pub fn bind_fd(source: BorrowedFd, target: BorrowedFd) -> Result<(), Errno> {
    let flags = OPEN_TREE_CLONE | libc::AT_EMPTY_PATH as libc::c_uint;
    let tree = open_tree(source.as_raw_fd(), c"", flags)?;
    attach(tree.as_fd(), target)
}
