//! Process creation and process-wide settings that nix does not wrap safely.

use nix::errno::Errno;
use nix::unistd::Pid;

/// Which side of a clone or fork the caller is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    Parent(Pid),
    Child,
}

/// Fails unless the calling process has exactly one thread: cloning or forking a
/// multi-threaded process leaves locks held by threads that do not exist in the child.
fn ensure_single_threaded() -> Result<(), Errno> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|_| Errno::EIO)?;
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse::<u32>().ok());
    match threads {
        Some(1) => Ok(()),
        _ => Err(Errno::EDEADLK),
    }
}

/// clone(2) with `flags` (namespace flags; SIGCHLD is added) and no new stack: like fork,
/// the child continues here on a copy-on-write copy of the caller's stack.
/// Refuses (EDEADLK) when the process has more than one thread.
pub fn clone_process(flags: libc::c_int) -> Result<Forked, Errno> {
    ensure_single_threaded()?;
    let flags = (flags | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: raw clone without CLONE_VM and with a null stack behaves like fork: the child
    // gets a private copy of the address space. The process is single-threaded (checked
    // above), so no lock can be held by a thread that does not exist in the child. The
    // remaining arguments (parent_tid, child_tid, tls) are unused without the matching flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as libc::pid_t))),
    }
}

/// The kernel's `struct clone_args` (include/uapi/linux/sched.h) up to `cgroup`
/// (`CLONE_ARGS_SIZE_VER2`, Linux 5.7): eleven `__aligned_u64` fields, 88 bytes.
#[repr(C, align(8))]
#[derive(Debug, Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP` (clone3 only, Linux 5.7).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// clone3(2) with `flags` (namespace flags, no signal bits: the exit signal is SIGCHLD) and
/// `CLONE_INTO_CGROUP`: the child starts life in the cgroup2 directory `cgroup` (an fd on it,
/// `O_PATH` is enough), never running an instruction in the caller's cgroup. No new stack:
/// like fork, the child continues here on a copy-on-write copy of the caller's stack.
/// Refuses (EDEADLK) when the process has more than one thread. Kernels before 5.7 answer
/// E2BIG (clone3 without `cgroup`) or ENOSYS (no clone3); a seccomp filter may answer ENOSYS.
pub fn clone3_into_cgroup(
    flags: libc::c_int,
    cgroup: std::os::fd::BorrowedFd<'_>,
) -> Result<Forked, Errno> {
    use std::os::fd::AsRawFd;
    ensure_single_threaded()?;
    let args = CloneArgs {
        // Through u32 so that a flag in bit 31 (CLONE_IO) is not sign-extended.
        flags: u64::from(flags as u32) | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: `args` is a live, properly aligned `struct clone_args` of the size passed; the
    // kernel only reads it during the call. No CLONE_VM, CLONE_PIDFD, CLONE_*SETTID or
    // CLONE_SETTLS, so no pointer in it is used (they are all 0), and a zero stack makes the
    // child a copy-on-write copy of the caller that returns here, as with fork. The process is
    // single-threaded (checked above), so no lock is held by a thread missing in the child.
    // `cgroup` is an open fd borrowed for the duration of the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as libc::pid_t))),
    }
}

/// fork(2), refused (EDEADLK) when the process has more than one thread.
pub fn fork_process() -> Result<Forked, Errno> {
    clone_process(0)
}

/// setdomainname(2).
pub fn set_domainname(name: &str) -> Result<(), Errno> {
    // SAFETY: the pointer and length describe `name`'s bytes, which outlive the call;
    // the kernel copies at most `len` bytes and does not need a NUL terminator.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    Errno::result(ret).map(drop)
}

/// Marks every fd from `first` up as close-on-exec (close_range with CLOSE_RANGE_CLOEXEC).
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on open fds; it touches
    // no memory of ours and closes nothing now.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
        )
    };
    match Errno::result(ret) {
        // Kernels before 5.9 (ENOSYS) or 5.11 (EINVAL: no CLOSE_RANGE_CLOEXEC), or a filter of
        // the runtime's own caller that refuses it: walk /proc/self/fd instead.
        Err(Errno::ENOSYS | Errno::EINVAL | Errno::EPERM) => cloexec_from_procfs(first),
        other => other.map(drop),
    }
}

/// [`cloexec_from`] without close_range: FD_CLOEXEC on each fd listed in /proc/self/fd.
fn cloexec_from_procfs(first: u32) -> Result<(), Errno> {
    let dir = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| e.raw_os_error().map(Errno::from_raw).unwrap_or(Errno::EIO))?;
    let fds: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd: &i32| *fd >= 0 && *fd as u32 >= first)
        .collect();
    for fd in fds {
        // SAFETY: F_GETFD/F_SETFD only read and set the fd's flags; an fd that was the
        // directory's own (closed by now) gives EBADF, which is skipped.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags < 0 {
            continue;
        }
        // SAFETY: as above.
        let ret = unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) };
        if ret < 0 && Errno::last() != Errno::EBADF {
            return Err(Errno::last());
        }
    }
    Ok(())
}

/// Resets every catchable signal's disposition to the default (before exec of the user
/// process; handlers are reset by exec anyway, ignored signals are not).
pub fn reset_signal_dispositions() {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL installs no handler code; invalid numbers just return EINVAL.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
}

/// _exit(2): ends the process now, without atexit handlers or flushing stdio buffers that
/// the clone copied from the parent.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes no pointers and never returns.
    unsafe { libc::_exit(code) }
}

/// keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): a new session keyring named `name`, so the
/// container does not share the caller's keys.
pub fn join_session_keyring(name: &std::ffi::CStr) -> Result<(), Errno> {
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call; the kernel
    // only reads it. The unused trailing arguments are passed as 0.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_JOIN_SESSION_KEYRING,
            name.as_ptr(),
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    Errno::result(ret).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_args_is_laid_out_as_the_kernels() {
        // CLONE_ARGS_SIZE_VER2 and the offsets of include/uapi/linux/sched.h.
        assert_eq!(std::mem::size_of::<CloneArgs>(), 88);
        assert_eq!(std::mem::align_of::<CloneArgs>(), 8);
        assert_eq!(std::mem::offset_of!(CloneArgs, exit_signal), 32);
        assert_eq!(std::mem::offset_of!(CloneArgs, set_tid), 64);
        assert_eq!(std::mem::offset_of!(CloneArgs, cgroup), 80);
    }
}
