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
    Errno::result(ret).map(drop)
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
