//! The container's init: runs in the cloned child, sets the container up in the order
//! DESIGN.md gives, reports "ready", blocks on exec.fifo, then execs the user program
//! (the pid stays the same). Every error travels back to the parent over the channel.

use std::convert::Infallible;
use std::ffi::CString;
use std::io::Write;
use std::os::fd::RawFd;
use std::path::Path;

use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::exec_path;
use super::privileges::drop_privileges;
use super::sync::{Channel, Msg};
use super::ProcessError;
use crate::hooks::{self, HookKind};
use crate::namespaces::{self, NsPlan};
use crate::state::{ContainerState, Status};
use crate::sys::process::{fork_process, reset_signal_dispositions, Forked};
use crate::{rootfs, security};

/// Everything init needs, prepared by the parent before clone.
pub struct InitArgs<'a> {
    /// Join the v1 hierarchies of this cgroup itself, first thing (the parent does not).
    pub join_cgroup: Option<&'a crate::cgroups::Cgroup>,
    pub spec: &'a Spec,
    pub plan: &'a NsPlan,
    pub rootfs: &'a Path,
    /// exec.fifo, opened O_PATH by the parent.
    pub fifo_fd: RawFd,
    /// fds of the parent that init must not keep (the state lock, the parent's channel end).
    pub close_fds: Vec<RawFd>,
    pub chan: &'a Channel,
    pub no_pivot: bool,
    /// `--no-new-keyring`: keep the caller's session keyring.
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// Appended to process.env (LISTEN_FDS/LISTEN_PID for socket activation).
    pub extra_env: Vec<String>,
    /// The state as hooks see it (pid filled in by init).
    pub hook_state: &'a ContainerState,
    /// `linux.seccomp`, compiled by the parent before clone.
    pub seccomp: Option<&'a security::seccomp::Filter>,
    /// With process.terminal: the connected console socket the pty master is sent over.
    pub console: Option<std::os::fd::BorrowedFd<'a>>,
    /// The id-mapped bind mounts the parent made before the clone.
    pub idmapped: &'a rootfs::IdmappedMounts,
}

/// Runs init; never returns. On error the cause is sent to the parent and init exits 1.
pub fn run(args: InitArgs) -> ! {
    // After Ready the parent may be gone (create returned): errors then go to stderr.
    super::run_child("init", &args.close_fds, args.chan, &args, setup)
}

fn setup(a: &InitArgs) -> Result<Infallible, ProcessError> {
    let process = a
        .spec
        .process()
        .as_ref()
        .ok_or_else(|| ProcessError::Init("config.json has no process".into()))?;
    if let Some(cg) = a.join_cgroup {
        cg.join_self_v1().map_err(|e| ProcessError::Init(e.to_string()))?;
    }
    a.chan.expect(&Msg::Go)?;
    // process.oomScoreAdj while init is still dumpable (as early as runc's nsexec): once it
    // is not, its /proc/self files belong to the host's root, which root of a user namespace
    // may not write even to raise its own value. Lowering it still needs CAP_SYS_RESOURCE.
    if let Some(adj) = process.oom_score_adj() {
        security::set_oom_score_adj(adj)?;
    }
    // Non-dumpable from here until exec: nothing in the container can ptrace or read our
    // memory. Not before Go: an unprivileged parent writes our /proc/PID/setgroups and id
    // maps, which the kernel gives to root alone while we are not dumpable. Until Go we have
    // joined and run nothing of the container's.
    nix::sys::prctl::set_dumpable(false).map_err(ProcessError::sys("prctl(PR_SET_DUMPABLE)"))?;
    if a.plan.new_user {
        become_root()?;
    }
    for (typ, path) in &a.plan.joins {
        namespaces::join(*typ, path)?;
        if *typ == LinuxNamespaceType::User {
            become_root()?;
        }
    }
    // Our cgroups as the host names them, before a new cgroup namespace names them "/": in a
    // user namespace the kernel may refuse to mount a cgroup filesystem, and the container's
    // own cgroup is then bound in by that name (rootfs::cgroup).
    let proc_cgroup = (a.plan.in_userns()
        && a.plan.unshare_flags.contains(nix::sched::CloneFlags::CLONE_NEWCGROUP))
    .then(|| std::fs::read_to_string("/proc/self/cgroup").ok())
    .flatten();
    namespaces::unshare(a.plan.unshare_flags)?;
    if a.plan.new_time {
        write_time_offsets(a.spec, a.plan.in_userns())?;
    }
    if a.plan.needs_fork {
        match fork_process().map_err(ProcessError::sys("forking into the pid/time namespace"))? {
            Forked::Parent(pid) => {
                let _ = a.chan.send(&Msg::Pid(pid.as_raw()));
                crate::sys::process::exit_now(0);
            }
            Forked::Child => {}
        }
    }
    nix::unistd::setsid().map_err(ProcessError::sys("setsid"))?;
    if !a.no_new_keyring {
        join_session_keyring(&a.hook_state.id)?;
    }
    if let Some(h) = a.spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(ProcessError::sys(format!("setting hostname {h:?}")))?;
    }
    if let Some(d) = a.spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        crate::sys::process::set_domainname(d)
            .map_err(ProcessError::sys(format!("setting domainname {d:?}")))?;
    }
    // Relative bind-mount sources are relative to the bundle (as in runc).
    let bundle = &a.hook_state.bundle;
    nix::unistd::chdir(bundle).map_err(ProcessError::sys(format!("chdir to bundle {}", bundle.display())))?;
    // Without a mount namespace of its own, the mounts go into the runtime's, beneath one
    // private bind of the rootfs that delete detaches (rootfs::shared_ns), then chroot.
    let switch = rootfs::RootSwitch::new(a.plan.has_mount, a.no_pivot);
    rootfs::prepare(&rootfs::RootfsConfig {
        spec: a.spec,
        rootfs: a.rootfs,
        in_userns: a.plan.in_userns(),
        idmapped: a.idmapped,
        switch,
        proc_cgroup: proc_cgroup.as_deref(),
    })?;
    let spec_hooks = a.spec.hooks().as_ref();
    let has_runtime_hooks = spec_hooks.is_some_and(|h| {
        #[allow(deprecated)]
        let prestart = h.prestart().as_ref().is_some_and(|v| !v.is_empty());
        prestart || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
    });
    if has_runtime_hooks {
        a.chan.send(&Msg::RunHooks)?;
        a.chan.expect(&Msg::HooksDone)?;
    }
    // One entry per name, the last value where the name first appears (runc's init sets
    // each entry in turn): getenv() and the program's own view agree. In-container hooks
    // without `env` get it too, as in runc (startContainer with HOME, added below).
    let env = process.env().iter().flatten().chain(&a.extra_env).cloned();
    let mut env = exec_path::merge_env(env);
    if let Some(hs) = spec_hooks.and_then(|h| h.create_container().as_ref()) {
        nix::unistd::chdir(a.rootfs)
            .map_err(ProcessError::sys(format!("chdir to rootfs {}", a.rootfs.display())))?;
        let state = in_container_state(a, Status::Creating);
        hooks::run_with_default_env(HookKind::CreateContainer, hs, &state, &env)?;
    }
    let cwd = process.cwd();
    rootfs::pivot(a.rootfs, switch)?;
    if let Some(sock) = a.console {
        // runc's order: after pivot_root (the pty is made in the container's devpts), before
        // finalize may make /dev read-only.
        let uid = Uid::from_raw(process.user().uid());
        let size = super::console::console_size(process);
        super::console::setup(sock, &a.hook_state.id, size, uid, |pty| {
            rootfs::mount_console(pty)?;
            Ok(())
        })?;
        let _ = nix::unistd::close(std::os::fd::AsRawFd::as_raw_fd(&sock));
    }
    // Before finalize: with root.readonly a missing cwd could no longer be created.
    std::fs::create_dir_all(cwd).map_err(|e| ProcessError::Sys {
        what: format!("creating process.cwd {}", cwd.display()),
        source: namespaces::io_errno(&e),
    })?;
    rootfs::finalize(a.spec)?;
    nix::unistd::chdir(cwd).map_err(ProcessError::sys(format!("chdir to {}", cwd.display())))?;
    // A cwd reached through a leaked fd (CVE-2024-21626, `/proc/self/fd/N`) lies outside the
    // container's root, which getcwd reports as "(unreachable)/...": refuse it.
    security::check_cwd_inside_root(cwd)?;
    let args = process.args().clone().unwrap_or_default();
    env.extend(exec_path::home_env(&env, process.user().uid()));
    let arg0 = args.first().map(String::as_str).unwrap_or_default();
    let exe = exec_path::resolve(arg0, exec_path::path_from_env(&env), cwd)
        .map_err(ProcessError::Init)?;
    let argv = cstrings(&args, "process.args")?;
    let envp = cstrings(&env, "process.env")?;
    let exe = CString::new(exe.as_os_str().as_encoded_bytes())
        .map_err(|_| ProcessError::Init("process.args[0] contains a NUL byte".into()))?;

    if let Some(rlimits) = process.rlimits() {
        security::set_rlimits(rlimits)?;
    }
    // Runtime writes to /proc (LSM labels, exec.fifo) go through a private, verified procfs,
    // opened while init is still privileged.
    let procfs = security::procfs::ProcFs::open()?;
    security::lsm::apply_exec_labels(&procfs, process)?;
    // linux.memoryPolicy, linux.personality, process.ioPriority and process.scheduler, while
    // init still has CAP_SYS_NICE/CAP_SYS_ADMIN and before any seccomp filter
    // (execCPUAffinity is for `husk exec` only).
    let extras = |e: crate::extras::ExtrasError| ProcessError::Init(e.to_string());
    crate::extras::apply_linux(a.spec).map_err(extras)?;
    crate::extras::apply_process(process).map_err(extras)?;
    // Only stdio and the preserved fds reach the user program. seccomp goes in as late as it
    // can (process/privileges.rs): right before execve, unless a NOTIFY listener has to reach
    // the parent before it exits.
    let mut pending = drop_privileges(process, a.seccomp, a.preserve_fds, a.chan)?;
    a.chan.send(&Msg::Ready)?;

    let mut fifo = open_exec_fifo(&procfs, a.fifo_fd)?;
    drop(procfs);
    // The O_PATH fd of exec.fifo must not survive into the container (it is close-on-exec
    // too; closing it now also covers kernels that reset dumpable late in execve).
    let _ = nix::unistd::close(a.fifo_fd);
    // `husk start` is reading the fifo now: it gets "0" once nothing is left to fail but
    // execve itself, or the cause of the failure, which it reports as its own error.
    let mut last_steps = || -> Result<(), ProcessError> {
        if let Some(hs) = spec_hooks.and_then(|h| h.start_container().as_ref()) {
            let state = in_container_state(a, Status::Created);
            hooks::run_with_default_env(HookKind::StartContainer, hs, &state, &env)?;
        }
        reset_signal_dispositions();
        sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
            .map_err(ProcessError::sys("resetting the signal mask"))?;
        pending.finish(a.chan)
    };
    if let Err(e) = last_steps() {
        let _ = fifo.write_all(e.to_string().as_bytes());
        return Err(e);
    }
    fifo.write_all(b"0").map_err(|e| ProcessError::Sys {
        what: "writing to exec.fifo".into(),
        source: namespaces::io_errno(&e),
    })?;
    drop(fifo);
    let err = match nix::unistd::execve(&exe, &argv, &envp) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    Err(ProcessError::Sys { what: format!("exec {arg0:?}"), source: err })
}

/// A session keyring of the container's own (runc names it `_ses.<id>`); kernels without
/// keyrings (ENOSYS) are fine.
fn join_session_keyring(id: &str) -> Result<(), ProcessError> {
    let name = CString::new(format!("_ses.{id}"))
        .map_err(|_| ProcessError::Init("container id contains a NUL byte".into()))?;
    match crate::sys::process::join_session_keyring(&name) {
        Ok(()) | Err(nix::Error::ENOSYS) => Ok(()),
        Err(e) => Err(ProcessError::Sys { what: "joining a new session keyring".into(), source: e }),
    }
}

/// setresuid/setresgid 0 inside a user namespace so init has its full capabilities there.
fn become_root() -> Result<(), ProcessError> {
    let root = Gid::from_raw(0);
    nix::unistd::setresgid(root, root, root).map_err(ProcessError::sys("setresgid(0)"))?;
    let root = Uid::from_raw(0);
    nix::unistd::setresuid(root, root, root).map_err(ProcessError::sys("setresuid(0)"))
}

/// `linux.timeOffsets`, written by init itself once it has unshared the time namespace (its
/// children's), before the fork into it. The kernel wants CAP_SYS_TIME over the user namespace
/// that owns the time namespace: init has it, being root of that namespace (user ns first,
/// then time ns). In a user namespace init must be dumpable for the write: the /proc/self
/// files of a non-dumpable process belong to the host's root, whom init is not there, so the
/// open fails with EACCES. Nothing else runs in the container yet, and dumpable goes off again
/// right after.
fn write_time_offsets(spec: &Spec, in_userns: bool) -> Result<(), ProcessError> {
    let offsets = spec.linux().as_ref().and_then(|l| l.time_offsets().clone());
    let mut text = String::new();
    for (clock, off) in offsets.iter().flatten() {
        text.push_str(&format!("{clock} {} {}\n", off.secs().unwrap_or(0), off.nanosecs().unwrap_or(0)));
    }
    if text.is_empty() {
        return Ok(());
    }
    let dumpable = |on: bool| {
        nix::sys::prctl::set_dumpable(on).map_err(ProcessError::sys("prctl(PR_SET_DUMPABLE)"))
    };
    if in_userns {
        dumpable(true)?;
    }
    let written = std::fs::write("/proc/self/timens_offsets", &text);
    if in_userns {
        dumpable(false)?;
    }
    written.map_err(|e| ProcessError::Sys {
        what: format!("writing linux.timeOffsets {:?} to /proc/self/timens_offsets", text.trim()),
        source: namespaces::io_errno(&e),
    })
}

/// Blocks until `husk start` opens exec.fifo for reading; returns the fifo to write to. The
/// O_PATH fd is re-opened for writing through the verified procfs.
fn open_exec_fifo(
    procfs: &security::procfs::ProcFs,
    fifo_fd: RawFd,
) -> Result<std::fs::File, ProcessError> {
    let fd = procfs.reopen_fd(fifo_fd, nix::fcntl::OFlag::O_WRONLY)?;
    Ok(std::fs::File::from(fd))
}

fn in_container_state(a: &InitArgs, status: Status) -> Vec<u8> {
    let mut st = a.hook_state.clone();
    st.pid = nix::unistd::getpid().as_raw();
    st.hook_json(status)
}

fn cstrings(v: &[String], field: &str) -> Result<Vec<CString>, ProcessError> {
    v.iter()
        .map(|s| {
            CString::new(s.as_bytes())
                .map_err(|_| ProcessError::Init(format!("{field} entry {s:?} contains a NUL byte")))
        })
        .collect()
}
