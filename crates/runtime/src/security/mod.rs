//! Process identity and privileges, applied inside the container init just before exec:
//! rlimits, oom_score_adj, user and groups, capabilities, no_new_privs, AppArmor and SELinux
//! labels ([`lsm`]) and the seccomp filter ([`seccomp`]); procfs writes go through a verified
//! private procfs ([`procfs`]). docs/security.md explains the threat model.

mod caps;
pub mod exe;
pub mod lsm;
pub mod procfs;
mod rlimits;
pub mod seccomp;
mod user;

use nix::errno::Errno;

pub use self::caps::validate_capabilities;
pub use self::rlimits::{set_oom_score_adj, set_rlimits};
pub use self::user::{apply_identity, FinalCaps};

/// Errors of the security module; each says what was being set and the OS error.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// e.g. `setting RLIMIT_NOFILE to 1048576/1048576: EPERM (the host's hard limit is 20000)`.
    #[error("setting {name} to {soft}/{hard}: {errno:?}{hint}")]
    Rlimit {
        name: &'static str,
        soft: u64,
        hard: u64,
        errno: Errno,
        hint: String,
    },
    #[error("writing {value} to /proc/self/oom_score_adj: {reason}")]
    OomScoreAdj { value: i32, reason: String },
    #[error("unknown capability {name} in process.capabilities.{set}")]
    UnknownCapability { name: String, set: &'static str },
    /// A syscall failed: `what` says which and with what arguments.
    #[error("{what}: {errno:?}")]
    Syscall { what: String, errno: Errno },
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    /// An AppArmor profile or SELinux label that cannot be applied; the message names the field.
    #[error("{0}")]
    Lsm(String),
    /// Something that would let the container escape its confinement; the message says what.
    #[error("{0}")]
    Refused(String),
    /// No trustworthy procfs for the runtime's own writes.
    #[error("{0}")]
    Procfs(String),
    #[error("process.user.additionalGids {gids:?} cannot be set: setgroups is denied in this user namespace (/proc/self/setgroups)")]
    SetgroupsDenied { gids: Vec<u32> },
}

/// Set `no_new_privs`, so that exec can never grant privileges (setuid bits, file capabilities).
pub fn set_no_new_privs() -> Result<(), SecurityError> {
    nix::sys::prctl::set_no_new_privs().map_err(|errno| SecurityError::Syscall {
        what: "prctl(PR_SET_NO_NEW_PRIVS)".into(),
        errno,
    })
}

/// Everything about the container's confinement that can be checked before clone: the LSM
/// labels the host must support, and `linux.seccomp` compiled (so a bad profile fails
/// `create` with nothing left behind). Returns the filter init installs.
pub fn prepare(spec: &oci_spec::runtime::Spec) -> Result<Option<seccomp::Filter>, SecurityError> {
    lsm::validate(spec)?;
    let profile = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    Ok(profile.map(seccomp::Filter::from_spec).transpose()?)
}

/// Parent side of SCMP_ACT_NOTIFY: hand the listener init sent to `listenerPath`, with the
/// container process state (`state_json`, status `creating`).
pub fn forward_seccomp_listener(
    filter: Option<&seccomp::Filter>,
    pid: i32,
    state_json: &[u8],
    listener: std::os::fd::OwnedFd,
) -> Result<(), SecurityError> {
    let Some((path, metadata)) = filter.and_then(|f| f.listener()) else {
        return Err(SecurityError::Seccomp(seccomp::SeccompError::Invalid(
            "init sent a seccomp listener but no listenerPath is configured".into(),
        )));
    };
    Ok(seccomp::send_listener(path, metadata, pid, state_json, listener)?)
}

/// Fails unless the current directory is inside the process's root (after pivot_root: inside
/// the container). getcwd(2) returns a path that does not start with `/` ("(unreachable)/x")
/// for a directory outside the root, e.g. one reached through a leaked fd.
pub fn check_cwd_inside_root(cwd: &std::path::Path) -> Result<(), SecurityError> {
    let refuse = |seen: String| {
        SecurityError::Refused(format!(
            "process.cwd {} resolves outside the container ({seen}): refusing to start there",
            cwd.display()
        ))
    };
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        Ok(p) => Err(refuse(p.display().to_string())),
        // glibc turns an "(unreachable)" kernel answer into ENOENT.
        Err(Errno::ENOENT) => Err(refuse("unreachable from the container's root".into())),
        Err(errno) => Err(SecurityError::Syscall {
            what: format!("checking process.cwd {}: getcwd", cwd.display()),
            errno,
        }),
    }
}
