//! Mount-related syscalls nix does not wrap safely (owner: rootfs).
//!
//! nix covers mount(2), umount2(2), pivot_root(2) and openat2(2); what is left here is
//! mount_setattr(2), used for the recursive mount attributes (`rro`, `rnosuid`, ...) and for
//! id-mapped mounts.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::errno::Errno;

/// `MS_NOSYMFOLLOW` (Linux 5.10), missing from nix's `MsFlags`.
pub const MS_NOSYMFOLLOW: libc::c_ulong = libc::MS_NOSYMFOLLOW;

/// Mount attributes for [`mount_setattr_recursive`] (`MOUNT_ATTR_*` in `<linux/mount.h>`).
pub mod attr {
    pub const RDONLY: u64 = libc::MOUNT_ATTR_RDONLY;
    pub const NOSUID: u64 = libc::MOUNT_ATTR_NOSUID;
    pub const NODEV: u64 = libc::MOUNT_ATTR_NODEV;
    pub const NOEXEC: u64 = libc::MOUNT_ATTR_NOEXEC;
    /// The access-time setting is an enum in these bits, not a set of flags.
    pub const ATIME_MASK: u64 = libc::MOUNT_ATTR__ATIME;
    pub const RELATIME: u64 = libc::MOUNT_ATTR_RELATIME;
    pub const NOATIME: u64 = libc::MOUNT_ATTR_NOATIME;
    pub const STRICTATIME: u64 = libc::MOUNT_ATTR_STRICTATIME;
    pub const NODIRATIME: u64 = libc::MOUNT_ATTR_NODIRATIME;
    pub const NOSYMFOLLOW: u64 = libc::MOUNT_ATTR_NOSYMFOLLOW;
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, {attr_set, attr_clr})`: change the
/// per-mount attributes of the mount `fd` refers to and of every mount beneath it.
pub fn mount_setattr_recursive<Fd: AsFd>(
    fd: Fd,
    attr_set: u64,
    attr_clr: u64,
) -> Result<(), Errno> {
    let attr = libc::mount_attr {
        attr_set,
        attr_clr,
        propagation: 0,
        userns_fd: 0,
    };
    mount_setattr(fd.as_fd(), true, attr)
}

/// `mount_setattr(tree, "", AT_EMPTY_PATH [| AT_RECURSIVE], MOUNT_ATTR_IDMAP with userns)`:
/// give a detached mount tree (from `open_tree(OPEN_TREE_CLONE)`; the kernel refuses an
/// attached one) the id mapping of the user namespace `userns`; with `recursive`, every
/// mount in the tree, otherwise only its top.
pub fn mount_setattr_idmap(
    tree: BorrowedFd,
    userns: BorrowedFd,
    recursive: bool,
) -> Result<(), Errno> {
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    mount_setattr(tree, recursive, attr)
}

fn mount_setattr(fd: BorrowedFd, recursive: bool, mut attr: libc::mount_attr) -> Result<(), Errno> {
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    let empty = c"";
    // SAFETY: the fd (and the user namespace fd in `attr`, if any) is borrowed and valid for
    // the call; `empty` is a NUL-terminated string that outlives the call; `attr` is a properly
    // initialised `struct mount_attr` whose size we pass, and the kernel only reads it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            empty.as_ptr(),
            flags,
            &mut attr as *mut libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    Errno::result(ret).map(drop)
}
