//! The process `husk exec` forks to enter a running container. It is born in the container's
//! pid and time namespaces (the parent joined those "for children" before forking, so no
//! second fork is needed), non-dumpable (inherited), and then: joins the container's cgroup,
//! joins every other namespace of the container's init in one setns(pidfd) (the kernel enters
//! the user namespace first), takes the container's root, starts a session, sets up its
//! terminal, and applies cwd, rlimits, AppArmor/SELinux labels, user, groups,
//! capabilities, no_new_privs and the container's seccomp filter before it execs. Every error goes back to `husk exec` over the channel; on
//! success the channel (close-on-exec) just closes.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::Process;

use super::privileges::drop_privileges;
use super::sync::Channel;
use super::{console, exec_path, ProcessError};
use crate::namespaces::io_errno;
use crate::security;
use crate::sys::process::reset_signal_dispositions;

/// What the exec'd process needs, prepared by `husk exec` before the fork.
pub struct ExecArgs<'a> {
    /// The container id (keyring name, console request).
    pub id: &'a str,
    pub process: &'a Process,
    /// The container's `linux.seccomp`, compiled by `husk exec`.
    pub seccomp: Option<&'a security::seccomp::Filter>,
    /// A pidfd of the container's init: the namespaces to join are its.
    pub pidfd: BorrowedFd<'a>,
    /// The namespaces to join here (pid and time were joined for children by the parent).
    pub join: CloneFlags,
    /// `/proc/<init>/root`, opened by the parent: the container's root even when it was set
    /// up with `--no-pivot` (MS_MOVE + chroot), where the mount namespace's root is not it.
    pub root: BorrowedFd<'a>,
    /// `cgroup.procs` of the container's cgroup (or the sub-cgroup asked for), every
    /// hierarchy.
    pub cgroup_procs: &'a [PathBuf],
    /// Rootless: a cgroup the caller may not move the process into (no write access to the
    /// common ancestor of its cgroup and the container's) is skipped, as runc does.
    pub rootless: bool,
    /// The connected console socket (or socketpair end) when the process has a terminal.
    pub console: Option<BorrowedFd<'a>>,
    pub preserve_fds: u32,
    pub chan: &'a Channel,
    /// The parent's fds the process must not keep (its channel end, its console end).
    pub close_fds: Vec<RawFd>,
}

/// Runs in the forked child; never returns. On error the cause goes to `husk exec` and the
/// child exits 1.
pub fn run(args: ExecArgs) -> ! {
    super::run_child("exec", &args.close_fds, args.chan, &args, setup)
}

fn setup(a: &ExecArgs) -> Result<Infallible, ProcessError> {
    let p = a.process;
    // process.execCPUAffinity: `initial` before joining the container's cgroup, `final`
    // after (runc 1.2's order); without `final` the kernel decides.
    let extras = |e: crate::extras::ExtrasError| ProcessError::Init(e.to_string());
    let affinity = match p.exec_cpu_affinity() {
        Some(a) => crate::extras::sched::Affinity::from_spec(a).map_err(extras)?,
        None => Default::default(),
    };
    if let Some(cpus) = &affinity.initial {
        crate::extras::sched::set_affinity(cpus, "initial").map_err(extras)?;
    }
    // Join the cgroup while the host's /sys/fs/cgroup is still in view ("0" is the writer).
    for procs in a.cgroup_procs {
        match std::fs::write(procs, "0") {
            Ok(()) => {}
            Err(e) if a.rootless && crate::cgroups::is_denied(&e) => tracing::debug!(
                "rootless: the process stays out of {}: {e} (no write access to the common \
                 ancestor of husk's cgroup and the container's)",
                procs.display()
            ),
            Err(e) => {
                return Err(ProcessError::Sys {
                    what: format!(
                        "joining the container's cgroup: writing to {}",
                        procs.display()
                    ),
                    source: io_errno(&e),
                })
            }
        }
    }
    if let Some(cpus) = &affinity.final_ {
        crate::extras::sched::set_affinity(cpus, "final").map_err(extras)?;
    }
    if !a.join.is_empty() {
        nix::sched::setns(a.pidfd, a.join).map_err(|e| ProcessError::Namespace {
            what: format!(
                "joining the namespaces {} of the container's init",
                ns_names(a.join)
            ),
            source: e,
        })?;
    }
    if a.join.contains(CloneFlags::CLONE_NEWUSER) {
        become_root()?;
    }
    take_root(a.root)?;
    nix::unistd::setsid().map_err(ProcessError::sys("setsid"))?;
    if let Some(sock) = a.console {
        let uid = Uid::from_raw(p.user().uid());
        console::setup(sock, a.id, console::console_size(p), uid, |_| Ok(()))?;
        let _ = nix::unistd::close(sock.as_raw_fd());
    }
    join_session_keyring(a.id);
    let cwd = p.cwd();
    nix::unistd::chdir(cwd).map_err(ProcessError::sys(format!(
        "chdir to process.cwd {} in the container",
        cwd.display()
    )))?;
    security::check_cwd_inside_root(cwd)?;

    let args = p.args().clone().unwrap_or_default();
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(exec_path::home_env(&env, p.user().uid()));
    let arg0 = args.first().map(String::as_str).unwrap_or_default();
    let exe = exec_path::resolve(arg0, exec_path::path_from_env(&env), cwd)
        .map_err(ProcessError::Init)?;
    let argv = cstrings(&args, "process.args")?;
    let envp = cstrings(&env, "process.env")?;
    let exe = CString::new(exe.as_os_str().as_encoded_bytes())
        .map_err(|_| ProcessError::Init("process.args[0] contains a NUL byte".into()))?;

    if let Some(rlimits) = p.rlimits() {
        security::set_rlimits(rlimits)?;
    }
    let labels = [p.apparmor_profile(), p.selinux_label()];
    if labels
        .iter()
        .any(|l| l.as_deref().is_some_and(|v| !v.is_empty()))
    {
        let procfs = security::procfs::ProcFs::open()?;
        security::lsm::apply_exec_labels(&procfs, p)?;
    }
    // process.ioPriority and process.scheduler, while still privileged, before seccomp.
    crate::extras::validate_process(p).map_err(extras)?;
    crate::extras::apply_process(p).map_err(extras)?;
    // seccomp as late as it can go, as in init (process/init.rs explains the three places).
    // Only stdio (or the terminal) and the preserved fds reach the process.
    let mut pending = drop_privileges(p, a.seccomp, a.preserve_fds, a.chan)?;
    reset_signal_dispositions();
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(ProcessError::sys("resetting the signal mask"))?;
    pending.finish(a.chan)?;
    let err = match nix::unistd::execve(&exe, &argv, &envp) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    Err(ProcessError::Sys {
        what: format!("exec {arg0:?}"),
        source: err,
    })
}

/// After setns(mnt) the root is the mount namespace's root; with `--no-pivot` the container's
/// root is a mount on top of it, entered by chroot. Take the init's root if it differs.
fn take_root(root: BorrowedFd) -> Result<(), ProcessError> {
    let want =
        nix::sys::stat::fstat(root).map_err(ProcessError::sys("fstat of the container's root"))?;
    let have = std::fs::metadata("/").map_err(|e| ProcessError::Sys {
        what: "stat of /".into(),
        source: io_errno(&e),
    })?;
    if have.dev() == want.st_dev as u64 && have.ino() == want.st_ino as u64 {
        return Ok(());
    }
    nix::unistd::fchdir(root).map_err(ProcessError::sys("fchdir to the container's root"))?;
    nix::unistd::chroot(".").map_err(ProcessError::sys("chroot to the container's root"))
}

/// setresuid/setresgid 0 in the joined user namespace, so the setup runs as its root.
fn become_root() -> Result<(), ProcessError> {
    let root = Gid::from_raw(0);
    nix::unistd::setresgid(root, root, root).map_err(ProcessError::sys(
        "setresgid(0) in the container's user namespace",
    ))?;
    let root = Uid::from_raw(0);
    nix::unistd::setresuid(root, root, root).map_err(ProcessError::sys(
        "setresuid(0) in the container's user namespace",
    ))
}

/// The container's session keyring `_ses.<id>` (joined, or made if it is not reachable), as
/// runc does for exec. A failure only costs the keyring: warned, not fatal.
fn join_session_keyring(id: &str) {
    let Ok(name) = CString::new(format!("_ses.{id}")) else {
        return;
    };
    match crate::sys::process::join_session_keyring(&name) {
        Ok(()) | Err(nix::Error::ENOSYS) => {}
        Err(e) => tracing::warn!("joining the session keyring _ses.{id}: {e}"),
    }
}

fn ns_names(flags: CloneFlags) -> String {
    let all = [
        (CloneFlags::CLONE_NEWUSER, "user"),
        (CloneFlags::CLONE_NEWNS, "mount"),
        (CloneFlags::CLONE_NEWNET, "network"),
        (CloneFlags::CLONE_NEWIPC, "ipc"),
        (CloneFlags::CLONE_NEWUTS, "uts"),
        (CloneFlags::CLONE_NEWCGROUP, "cgroup"),
        (CloneFlags::CLONE_NEWPID, "pid"),
        (CloneFlags::from_bits_retain(libc::CLONE_NEWTIME), "time"),
    ];
    let names: Vec<&str> = all
        .iter()
        .filter(|(f, _)| flags.contains(*f))
        .map(|(_, n)| *n)
        .collect();
    names.join(",")
}

fn cstrings(v: &[String], field: &str) -> Result<Vec<CString>, ProcessError> {
    v.iter()
        .map(|s| {
            CString::new(s.as_bytes())
                .map_err(|_| ProcessError::Init(format!("{field} entry {s:?} contains a NUL byte")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names() {
        let f = CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS;
        assert_eq!(ns_names(f), "user,mount,uts");
        assert_eq!(ns_names(CloneFlags::empty()), "");
    }
}
