//! Process identity and privileges, applied inside the container init just before exec:
//! rlimits, oom_score_adj, user and groups, capabilities, no_new_privs.

mod caps;
mod rlimits;
mod user;

use nix::errno::Errno;

pub use self::caps::validate_capabilities;
pub use self::rlimits::{set_oom_score_adj, set_rlimits};
pub use self::user::apply_identity;

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
