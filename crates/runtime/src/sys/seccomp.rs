//! seccomp(2): installing a filter program, with flags, and getting the notification listener.

use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;

/// SECCOMP_SET_MODE_FILTER.
const SET_MODE_FILTER: libc::c_uint = 1;
/// SECCOMP_FILTER_FLAG_NEW_LISTENER: the call returns a notification fd.
const FLAG_NEW_LISTENER: u32 = 1 << 3;

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog)`: attach `program` to the calling thread.
/// With SECCOMP_FILTER_FLAG_NEW_LISTENER in `flags`, returns the listener fd.
pub fn set_mode_filter(
    program: &[libc::sock_filter],
    flags: u32,
) -> Result<Option<OwnedFd>, Errno> {
    let len = libc::c_ushort::try_from(program.len()).map_err(|_| Errno::EINVAL)?;
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    let prog = libc::sock_fprog {
        len,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points to `program`, `len` instructions long, both alive across the call;
    // the kernel copies the program and never writes through the pointer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SET_MODE_FILTER,
            libc::c_uint::from(flags),
            &prog as *const libc::sock_fprog,
        )
    };
    let rc = Errno::result(rc)?;
    if flags & FLAG_NEW_LISTENER == 0 {
        return Ok(None);
    }
    let fd = libc::c_int::try_from(rc).map_err(|_| Errno::EBADF)?;
    // SAFETY: with NEW_LISTENER, a successful call returns a new fd that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Takes ownership of an fd this process just received in an SCM_RIGHTS message (e.g. the
/// seccomp listener sent by init).
pub fn adopt_received_fd(fd: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: the kernel installed `fd` in our table when the message was received; nothing
    // else in this process knows or owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
