//! `linux.seccomp`: validated and compiled to a BPF program by the parent before clone (so a
//! bad profile fails `create` before anything exists), installed by init as late as it can.
//!
//! husk compiles the profile itself (see docs/security.md for why not seccompiler or
//! libseccomp): [`compile`] is pure and unit-tested against a BPF interpreter; the syscall
//! tables are generated from the kernel headers (`gen-tables.sh`).

mod arch;
mod bpf;
mod compile;
mod notify;

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction as Action, LinuxSeccompFilterFlag as Flag,
    LinuxSeccompOperator,
};

use self::arch::Abi;
use self::compile::{Cond, Op, Plan, Rule};
pub use self::notify::send_listener;

/// Why a seccomp profile cannot be used, or could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The profile breaks a rule; the message names the field.
    #[error("linux.seccomp: {0}")]
    Invalid(String),
    #[error("linux.seccomp: husk has no syscall tables for this architecture ({0}); seccomp is not supported here")]
    Unsupported(&'static str),
    #[error(
        "linux.seccomp: the filter has {0} instructions, more than the kernel's limit of 4096"
    )]
    TooLong(usize),
    #[error("installing the seccomp filter (flags {flags:#x}): {errno}{hint}")]
    Install {
        flags: u32,
        errno: nix::errno::Errno,
        hint: String,
    },
    #[error(
        "sending the seccomp listener fd to linux.seccomp.listenerPath {path}: {what}: {reason}"
    )]
    Listener {
        path: PathBuf,
        what: String,
        reason: String,
    },
}

// SECCOMP_RET_* (linux/seccomp.h).
const RET_KILL_THREAD: u32 = 0;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_USER_NOTIF: u32 = 0x7fc0_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

// SECCOMP_FILTER_FLAG_* (linux/seccomp.h).
const FLAG_LOG: u32 = 1 << 1;
const FLAG_SPEC_ALLOW: u32 = 1 << 2;
const FLAG_NEW_LISTENER: u32 = 1 << 3;
const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

/// Every action, operator and flag husk implements, as the spec spells them (for `features`).
pub const ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];
pub const OPERATORS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];
pub const FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// The architectures husk can filter on this machine (for `features`).
pub fn architectures() -> Vec<&'static str> {
    arch::supported_names()
}

/// Syscalls that init itself makes between installing a NOTIFY filter and handing the listener
/// to the parent: a notification on them would wait for an agent that has no listener yet.
const NOTIFY_FORBIDDEN: &[&str] = &["sendmsg"];

/// A compiled profile, ready for [`Filter::install`].
#[derive(Debug, Clone)]
pub struct Filter {
    program: Vec<libc::sock_filter>,
    flags: u32,
    listener_path: Option<PathBuf>,
    metadata: Option<String>,
}

/// The action word for `action` with `errno` (`errnoRet`); `field` names it in errors.
fn action_word(action: Action, errno: Option<u32>, field: &str) -> Result<u32, SeccompError> {
    let takes_errno = matches!(action, Action::ScmpActErrno | Action::ScmpActTrace);
    if errno.is_some() && !takes_errno {
        return Err(SeccompError::Invalid(format!(
            "{field}: errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {action}"
        )));
    }
    let data = errno.unwrap_or(libc::EPERM as u32);
    if data > 0xffff {
        return Err(SeccompError::Invalid(format!(
            "{field}: errnoRet {data} does not fit the 16 bits seccomp returns"
        )));
    }
    Ok(match action {
        Action::ScmpActKill | Action::ScmpActKillThread => RET_KILL_THREAD,
        Action::ScmpActKillProcess => compile::RET_KILL_PROCESS,
        Action::ScmpActTrap => RET_TRAP,
        Action::ScmpActErrno => RET_ERRNO | data,
        Action::ScmpActTrace => RET_TRACE | data,
        Action::ScmpActNotify => RET_USER_NOTIF,
        Action::ScmpActLog => RET_LOG,
        Action::ScmpActAllow => RET_ALLOW,
    })
}

fn op(o: LinuxSeccompOperator) -> Op {
    match o {
        LinuxSeccompOperator::ScmpCmpNe => Op::Ne,
        LinuxSeccompOperator::ScmpCmpLt => Op::Lt,
        LinuxSeccompOperator::ScmpCmpLe => Op::Le,
        LinuxSeccompOperator::ScmpCmpEq => Op::Eq,
        LinuxSeccompOperator::ScmpCmpGe => Op::Ge,
        LinuxSeccompOperator::ScmpCmpGt => Op::Gt,
        LinuxSeccompOperator::ScmpCmpMaskedEq => Op::MaskedEq,
    }
}

/// The ABIs to cover: the native one first, then those listed, each once. Architectures that
/// cannot run here are left out (their syscalls can never reach this filter).
fn abis(s: &LinuxSeccomp) -> Result<Vec<Abi>, SeccompError> {
    let native = Abi::native().ok_or(SeccompError::Unsupported(std::env::consts::ARCH))?;
    let mut out = vec![native];
    for a in s.architectures().iter().flatten() {
        match Abi::from_spec(*a) {
            Some(abi) if !out.contains(&abi) => out.push(abi),
            Some(_) => {}
            None => {
                tracing::debug!(architecture = %a, "seccomp: architecture cannot run on this machine; not filtered")
            }
        }
    }
    Ok(out)
}

/// The rules of `syscalls[i]`, as runc turns them into libseccomp rules: a rule whose action
/// is the default one is left out; argument checks on distinct arguments are ANDed in one rule;
/// when one argument is checked more than once, each check becomes a rule of its own (ORed).
fn rules(s: &LinuxSeccomp, default: u32) -> Result<Vec<Rule>, SeccompError> {
    let mut out = Vec::new();
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        let field = format!("syscalls[{i}]");
        if sc.names().is_empty() {
            return Err(SeccompError::Invalid(format!(
                "{field}.names must not be empty"
            )));
        }
        if let Some(n) = sc.names().iter().position(|n| n.is_empty()) {
            return Err(SeccompError::Invalid(format!(
                "{field}.names[{n}] is empty"
            )));
        }
        let action = action_word(sc.action(), sc.errno_ret(), &field)?;
        if sc.action() == Action::ScmpActNotify {
            if let Some(n) = sc
                .names()
                .iter()
                .find(|n| NOTIFY_FORBIDDEN.contains(&n.as_str()))
            {
                return Err(SeccompError::Invalid(format!(
                    "{field}: SCMP_ACT_NOTIFY cannot be used for {n}: husk's init needs it to hand the listener to the runtime"
                )));
            }
        }
        let mut conds = Vec::new();
        for (j, a) in sc.args().iter().flatten().enumerate() {
            let index = u8::try_from(a.index())
                .ok()
                .filter(|x| *x < 6)
                .ok_or_else(|| {
                    SeccompError::Invalid(format!(
                    "{field}.args[{j}].index {} is out of range (a syscall has arguments 0 to 5)",
                    a.index()
                ))
                })?;
            conds.push(Cond {
                index,
                op: op(a.op()),
                value: a.value(),
                value_two: a.value_two().unwrap_or(0),
            });
        }
        if action == default {
            continue;
        }
        let mut seen = [0u8; 6];
        conds.iter().for_each(|c| seen[usize::from(c.index)] += 1);
        let groups: Vec<Vec<Cond>> = if seen.iter().any(|n| *n > 1) {
            conds.iter().map(|c| vec![*c]).collect()
        } else {
            vec![conds]
        };
        for name in sc.names() {
            for g in &groups {
                out.push(Rule {
                    name: name.clone(),
                    conds: g.clone(),
                    action,
                });
            }
        }
    }
    Ok(out)
}

/// Names no ABI of the filter knows: skipped (a profile may name syscalls newer than husk's
/// tables, or of other architectures), with a debug log as runc does.
fn log_unknown(rules: &[Rule], abis: &[Abi]) {
    let mut seen = std::collections::HashSet::new();
    for r in rules {
        if seen.insert(r.name.as_str()) && abis.iter().all(|a| a.lookup(&r.name).is_none()) {
            tracing::debug!(syscall = %r.name, "seccomp: unknown syscall ignored");
        }
    }
}

impl Filter {
    /// Validate and compile `linux.seccomp`. Errors name the field.
    pub fn from_spec(s: &LinuxSeccomp) -> Result<Filter, SeccompError> {
        if s.default_action() == Action::ScmpActNotify {
            return Err(SeccompError::Invalid(
                "defaultAction: SCMP_ACT_NOTIFY cannot be the default action".into(),
            ));
        }
        let default = action_word(s.default_action(), s.default_errno_ret(), "defaultAction")
            .map_err(|e| match e {
                SeccompError::Invalid(m) => {
                    SeccompError::Invalid(m.replace("defaultAction: errnoRet", "defaultErrnoRet"))
                }
                other => other,
            })?;
        let abis = abis(s)?;
        let rules = rules(s, default)?;
        let notify = s
            .syscalls()
            .iter()
            .flatten()
            .any(|sc| sc.action() == Action::ScmpActNotify);
        let listener_path = s
            .listener_path()
            .clone()
            .filter(|p| !p.as_os_str().is_empty());
        let metadata = s.listener_metadata().clone().filter(|m| !m.is_empty());
        match (&listener_path, notify) {
            (None, true) => {
                return Err(SeccompError::Invalid(
                    "SCMP_ACT_NOTIFY is used but listenerPath is not set".into(),
                ))
            }
            (Some(p), false) => {
                return Err(SeccompError::Invalid(format!(
                    "listenerPath {} is set but no syscall uses SCMP_ACT_NOTIFY",
                    p.display()
                )))
            }
            _ => {}
        }
        if metadata.is_some() && listener_path.is_none() {
            return Err(SeccompError::Invalid(
                "listenerMetadata is set without listenerPath".into(),
            ));
        }
        if let Some(p) = listener_path.as_ref().filter(|p| !p.is_absolute()) {
            return Err(SeccompError::Invalid(format!(
                "listenerPath {} must be an absolute path",
                p.display()
            )));
        }
        let mut flags = if notify { FLAG_NEW_LISTENER } else { 0 };
        for f in s.flags().iter().flatten() {
            match f {
                // init is single-threaded when it installs the filter: every thread gets it.
                Flag::SeccompFilterFlagTsync => {}
                Flag::SeccompFilterFlagLog => flags |= FLAG_LOG,
                Flag::SeccompFilterFlagSpecAllow => flags |= FLAG_SPEC_ALLOW,
                Flag::SeccompFilterFlagWaitKillableRecv if notify => flags |= FLAG_WAIT_KILLABLE_RECV,
                Flag::SeccompFilterFlagWaitKillableRecv => tracing::warn!(
                    "linux.seccomp.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV ignored: no syscall uses SCMP_ACT_NOTIFY"
                ),
            }
        }
        log_unknown(&rules, &abis);
        // runc's -ENOSYS stub: syscalls newer than every one the profile names get ENOSYS, so
        // programs fall back to older ones, unless the default already allows or says ENOSYS.
        let permissive = (default & 0xffff_0000) == RET_ALLOW
            || (default & 0xffff_0000) == RET_LOG
            || (default & 0xffff_0000) == RET_TRACE;
        let stub = !permissive && default != compile::RET_ENOSYS;
        let stub_names = stub.then(|| {
            s.syscalls()
                .iter()
                .flatten()
                .flat_map(|sc| sc.names().iter().cloned())
                .collect()
        });
        let plan = Plan {
            default,
            abis,
            rules,
            stub_names,
        };
        let program = compile::compile(&plan);
        if program.len() > bpf::MAX_INSNS {
            return Err(SeccompError::TooLong(program.len()));
        }
        let program = program
            .iter()
            .map(|i| libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect();
        Ok(Filter {
            program,
            flags,
            listener_path,
            metadata,
        })
    }

    /// Whether installing returns a listener that must go to `listenerPath`.
    pub fn needs_listener(&self) -> bool {
        self.flags & FLAG_NEW_LISTENER != 0
    }

    /// `listenerPath` and `listenerMetadata`, when a listener is used.
    pub fn listener(&self) -> Option<(&std::path::Path, Option<&str>)> {
        self.listener_path
            .as_deref()
            .map(|p| (p, self.metadata.as_deref()))
    }

    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.program.len()
    }

    pub fn is_empty(&self) -> bool {
        self.program.is_empty()
    }

    /// Install the filter on the calling process. Without no_new_privs this needs
    /// CAP_SYS_ADMIN. Returns the notification listener when the profile uses
    /// SCMP_ACT_NOTIFY.
    pub fn install(&self) -> Result<Option<OwnedFd>, SeccompError> {
        tracing::debug!(
            instructions = self.program.len(),
            flags = self.flags,
            "installing the seccomp filter"
        );
        crate::sys::seccomp::set_mode_filter(&self.program, self.flags).map_err(|errno| {
            let hint = match errno {
                nix::errno::Errno::EINVAL if self.flags != 0 => {
                    " (this kernel may not support one of the filter flags)".to_string()
                }
                nix::errno::Errno::EACCES => {
                    " (without noNewPrivileges a filter needs CAP_SYS_ADMIN)".to_string()
                }
                _ => String::new(),
            };
            SeccompError::Install {
                flags: self.flags,
                errno,
                hint,
            }
        })
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
#[path = "mod_tests.rs"]
mod tests;
