//! Security-related syscalls nix does not wrap safely (owner: security).

use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit capability sets, two 32-bit words each.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapUserHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapUserData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Set the calling thread's effective, permitted and inheritable capability sets (bit `n` =
/// capability number `n`) in one `capset(2)`, so that no intermediate state has to be valid.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<(), Errno> {
    let mut header = CapUserHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let low = |v: u64| (v & 0xffff_ffff) as u32;
    let high = |v: u64| (v >> 32) as u32;
    let data = [
        CapUserData {
            effective: low(effective),
            permitted: low(permitted),
            inheritable: low(inheritable),
        },
        CapUserData {
            effective: high(effective),
            permitted: high(permitted),
            inheritable: high(inheritable),
        },
    ];
    // SAFETY: `header` is a valid, writable v3 header (the kernel may write the preferred
    // version into it) and `data` points to the two data structs a v3 capset reads; both
    // live across the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapUserHeader,
            data.as_ptr(),
        )
    };
    Errno::result(rc).map(drop)
}

/// The calling thread's (effective, permitted, inheritable) capability sets, as bit masks.
pub fn capget() -> Result<(u64, u64, u64), Errno> {
    let mut header = CapUserHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapUserData::default(); 2];
    // SAFETY: `header` is a valid v3 header and `data` has room for the two structs a v3
    // capget writes; both live across the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapUserHeader,
            data.as_mut_ptr(),
        )
    };
    Errno::result(rc)?;
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
        join(data[0].inheritable, data[1].inheritable),
    ))
}

/// `prctl(PR_CAPBSET_READ, cap)`: whether capability number `cap` is in the bounding set.
pub fn capbset_read(cap: u8) -> Result<bool, Errno> {
    // SAFETY: PR_CAPBSET_READ takes integer arguments only and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap), 0, 0, 0) };
    Errno::result(rc).map(|v| v == 1)
}

/// `pidfd_open(pid, 0)`: a file descriptor that becomes readable when process `pid` exits.
pub fn pidfd_open(pid: libc::pid_t) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags by value and touches no memory of ours.
    let rc = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
    let fd = Errno::result(rc)?;
    let fd = libc::c_int::try_from(fd).map_err(|_| Errno::EBADF)?;
    // SAFETY: on success the kernel returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `prctl(PR_CAPBSET_DROP, cap)`: remove capability number `cap` from the bounding set.
pub fn capbset_drop(cap: u8) -> Result<(), Errno> {
    // SAFETY: PR_CAPBSET_DROP takes integer arguments only and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
    Errno::result(rc).map(drop)
}

/// `prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)`: empty the ambient set.
pub fn ambient_clear_all() -> Result<(), Errno> {
    // SAFETY: integer arguments only; no memory is passed.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    Errno::result(rc).map(drop)
}

/// `prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)`: add capability number `cap` to the
/// ambient set (it must be permitted and inheritable already).
pub fn ambient_raise(cap: u8) -> Result<(), Errno> {
    // SAFETY: integer arguments only; no memory is passed.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
            libc::c_ulong::from(cap),
            0,
            0,
        )
    };
    Errno::result(rc).map(drop)
}

/// Whether the file open as `fd` has the extended attribute `name` (e.g. a POSIX ACL,
/// `system.posix_acl_access`). Errors other than "no such attribute" count as having it.
pub fn fd_has_xattr(fd: std::os::fd::BorrowedFd<'_>, name: &std::ffi::CStr) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: `name` is a NUL-terminated string that outlives the call; a NULL buffer of
    // size 0 asks only for the value's size, so the kernel writes no memory of ours.
    let n = unsafe { libc::fgetxattr(fd.as_raw_fd(), name.as_ptr(), std::ptr::null_mut(), 0) };
    n >= 0 || Errno::last() != Errno::ENODATA
}
