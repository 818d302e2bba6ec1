//! Resource limits and the OOM score.

use nix::errno::Errno;
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

use super::SecurityError;

/// The kernel resource and its spec name for an OCI rlimit type.
pub(crate) fn resource(typ: PosixRlimitType) -> (Resource, &'static str) {
    use PosixRlimitType as T;
    match typ {
        T::RlimitCpu => (Resource::RLIMIT_CPU, "RLIMIT_CPU"),
        T::RlimitFsize => (Resource::RLIMIT_FSIZE, "RLIMIT_FSIZE"),
        T::RlimitData => (Resource::RLIMIT_DATA, "RLIMIT_DATA"),
        T::RlimitStack => (Resource::RLIMIT_STACK, "RLIMIT_STACK"),
        T::RlimitCore => (Resource::RLIMIT_CORE, "RLIMIT_CORE"),
        T::RlimitRss => (Resource::RLIMIT_RSS, "RLIMIT_RSS"),
        T::RlimitNproc => (Resource::RLIMIT_NPROC, "RLIMIT_NPROC"),
        T::RlimitNofile => (Resource::RLIMIT_NOFILE, "RLIMIT_NOFILE"),
        T::RlimitMemlock => (Resource::RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK"),
        T::RlimitAs => (Resource::RLIMIT_AS, "RLIMIT_AS"),
        T::RlimitLocks => (Resource::RLIMIT_LOCKS, "RLIMIT_LOCKS"),
        T::RlimitSigpending => (Resource::RLIMIT_SIGPENDING, "RLIMIT_SIGPENDING"),
        T::RlimitMsgqueue => (Resource::RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE"),
        T::RlimitNice => (Resource::RLIMIT_NICE, "RLIMIT_NICE"),
        T::RlimitRtprio => (Resource::RLIMIT_RTPRIO, "RLIMIT_RTPRIO"),
        T::RlimitRttime => (Resource::RLIMIT_RTTIME, "RLIMIT_RTTIME"),
    }
}

/// Why a setrlimit may have failed, from the current hard limit: raising a hard limit needs
/// CAP_SYS_RESOURCE, and a soft limit above the hard one is invalid.
fn hint(errno: Errno, soft: u64, hard: u64, current_hard: Option<u64>) -> String {
    match (errno, current_hard) {
        (Errno::EPERM, Some(cur)) if hard > cur => format!(" (the host's hard limit is {cur})"),
        (Errno::EINVAL, _) if soft > hard => " (the soft limit is above the hard limit)".into(),
        _ => String::new(),
    }
}

/// setrlimit each of `rlimits` in order; the error names the limit and the host's hard limit.
pub fn set_rlimits(rlimits: &[PosixRlimit]) -> Result<(), SecurityError> {
    for rl in rlimits {
        let (res, name) = resource(rl.typ());
        let (soft, hard) = (rl.soft(), rl.hard());
        if let Err(errno) = setrlimit(res, soft, hard) {
            let current_hard = getrlimit(res).ok().map(|(_, h)| h);
            return Err(SecurityError::Rlimit {
                name,
                soft,
                hard,
                errno,
                hint: hint(errno, soft, hard, current_hard),
            });
        }
    }
    Ok(())
}

/// Write `adj` to `/proc/self/oom_score_adj`, through a verified private procfs (a file the
/// container mounted over /proc must not receive it).
pub fn set_oom_score_adj(adj: i32) -> Result<(), SecurityError> {
    let procfs = super::procfs::ProcFs::open()?;
    procfs.write("self/oom_score_adj", adj.to_string().as_bytes()).map_err(|e| {
        let reason = match &e {
            SecurityError::Syscall { errno: errno @ (Errno::EACCES | Errno::EPERM), .. } => {
                format!("{errno:?} (lowering it needs CAP_SYS_RESOURCE)")
            }
            SecurityError::Syscall { errno, .. } => format!("{errno:?}"),
            other => other.to_string(),
        };
        SecurityError::OomScoreAdj { value: adj, reason }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [PosixRlimitType; 16] = [
        PosixRlimitType::RlimitCpu,
        PosixRlimitType::RlimitFsize,
        PosixRlimitType::RlimitData,
        PosixRlimitType::RlimitStack,
        PosixRlimitType::RlimitCore,
        PosixRlimitType::RlimitRss,
        PosixRlimitType::RlimitNproc,
        PosixRlimitType::RlimitNofile,
        PosixRlimitType::RlimitMemlock,
        PosixRlimitType::RlimitAs,
        PosixRlimitType::RlimitLocks,
        PosixRlimitType::RlimitSigpending,
        PosixRlimitType::RlimitMsgqueue,
        PosixRlimitType::RlimitNice,
        PosixRlimitType::RlimitRtprio,
        PosixRlimitType::RlimitRttime,
    ];

    #[test]
    fn names_match_the_spec_spelling() {
        for t in ALL {
            let json = serde_json::to_string(&t).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", resource(t).1));
        }
    }

    #[test]
    fn maps_to_kernel_resources() {
        assert_eq!(
            resource(PosixRlimitType::RlimitNofile).0 as i32,
            libc::RLIMIT_NOFILE as i32
        );
        assert_eq!(
            resource(PosixRlimitType::RlimitNproc).0 as i32,
            libc::RLIMIT_NPROC as i32
        );
        assert_eq!(
            resource(PosixRlimitType::RlimitCore).0 as i32,
            libc::RLIMIT_CORE as i32
        );
        assert_eq!(
            resource(PosixRlimitType::RlimitRttime).0 as i32,
            libc::RLIMIT_RTTIME as i32
        );
        assert_eq!(
            resource(PosixRlimitType::RlimitAs).0 as i32,
            libc::RLIMIT_AS as i32
        );
    }

    #[test]
    fn error_message_names_host_limit() {
        let e = SecurityError::Rlimit {
            name: "RLIMIT_NOFILE",
            soft: 1048576,
            hard: 1048576,
            errno: Errno::EPERM,
            hint: hint(Errno::EPERM, 1048576, 1048576, Some(20000)),
        };
        assert_eq!(
            e.to_string(),
            "setting RLIMIT_NOFILE to 1048576/1048576: EPERM (the host's hard limit is 20000)"
        );
        assert_eq!(
            hint(Errno::EINVAL, 10, 5, Some(20000)),
            " (the soft limit is above the hard limit)"
        );
        assert_eq!(hint(Errno::EPERM, 10, 10, Some(20000)), "");
    }
}
