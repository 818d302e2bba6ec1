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
    let mut header = CapUserHeader { version: CAPABILITY_VERSION_3, pid: 0 };
    let low = |v: u64| (v & 0xffff_ffff) as u32;
    let high = |v: u64| (v >> 32) as u32;
    let data = [
        CapUserData { effective: low(effective), permitted: low(permitted), inheritable: low(inheritable) },
        CapUserData { effective: high(effective), permitted: high(permitted), inheritable: high(inheritable) },
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

/// `pidfd_open(pid, 0)`: a file descriptor that becomes readable when process `pid` exits.
pub fn pidfd_open(pid: libc::pid_t) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags by value and touches no memory of ours.
    let rc = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
    let fd = Errno::result(rc)?;
    let fd = libc::c_int::try_from(fd).map_err(|_| Errno::EBADF)?;
    // SAFETY: on success the kernel returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
