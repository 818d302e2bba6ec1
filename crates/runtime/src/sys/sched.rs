//! Scheduling, I/O priority, NUMA memory policy and personality of the calling process
//! (owner: extras). Thin wrappers over one syscall each.

use nix::errno::Errno;

/// `struct sched_attr` (SCHED_ATTR_SIZE_VER1, 56 bytes) of sched_setattr(2).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub sched_policy: u32,
    pub sched_flags: u64,
    pub sched_nice: i32,
    pub sched_priority: u32,
    pub sched_runtime: u64,
    pub sched_deadline: u64,
    pub sched_period: u64,
    pub sched_util_min: u32,
    pub sched_util_max: u32,
}

/// sched_setattr(0, attr, 0): the calling thread (the whole process: init is single-threaded).
pub fn sched_setattr(attr: &SchedAttr) -> Result<(), Errno> {
    let mut attr = *attr;
    attr.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: `attr` is a valid, initialised sched_attr whose `size` field says how many bytes
    // the kernel may read; it lives across the call and the kernel does not keep it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            0 as libc::pid_t,
            &attr as *const SchedAttr,
            0 as libc::c_uint,
        )
    };
    Errno::result(rc).map(drop)
}

const IOPRIO_WHO_PROCESS: libc::c_int = 1;

/// ioprio_set(IOPRIO_WHO_PROCESS, 0, ioprio) for the calling process.
pub fn ioprio_set(ioprio: libc::c_int) -> Result<(), Errno> {
    // SAFETY: integer arguments only.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0 as libc::c_int,
            ioprio,
        )
    };
    Errno::result(rc).map(drop)
}

/// ioprio_get(IOPRIO_WHO_PROCESS, 0) of the calling process.
pub fn ioprio_get() -> Result<libc::c_int, Errno> {
    // SAFETY: integer arguments only.
    let rc = unsafe { libc::syscall(libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0 as libc::c_int) };
    Errno::result(rc).map(|v| v as libc::c_int)
}

/// set_mempolicy(mode | flags, nodemask, maxnode). `mask` holds the node bits (bit n of
/// word n/64 is node n); the kernel reads `mask.len() * 64` bits of it.
pub fn set_mempolicy(mode: libc::c_int, mask: &[u64]) -> Result<(), Errno> {
    let (ptr, maxnode) = if mask.is_empty() {
        (std::ptr::null::<u64>(), 0 as libc::c_ulong)
    } else {
        // The kernel uses maxnode - 1 bits.
        (mask.as_ptr(), (mask.len() * 64 + 1) as libc::c_ulong)
    };
    // SAFETY: `ptr` is NULL (with maxnode 0) or points to `mask`, whose mask.len() * 64 bits
    // are all the kernel reads (maxnode - 1 of them); the slice outlives the call.
    let rc = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) };
    Errno::result(rc).map(drop)
}

/// personality(persona); returns the previous persona.
pub fn set_personality(persona: libc::c_ulong) -> Result<libc::c_int, Errno> {
    // SAFETY: integer argument only.
    let rc = unsafe { libc::personality(persona) };
    Errno::result(rc)
}
