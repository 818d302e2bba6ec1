//! `create`: validate, take the lock, make the cgroup, clone init, drive the sync protocol,
//! save `created`, write the pid file last. Any failure undoes everything done so far.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::Spec;

use super::{CreateOpts, Runtime};
use crate::cgroups::{self, Cgroup};
use crate::error::{Error, Result};
use crate::hooks::{self, HookKind};
use crate::namespaces::NsPlan;
use crate::process::console;
use crate::process::init::{self, InitArgs};
use crate::process::sync::{Channel, Msg};
use crate::process::ProcessError;
use crate::state::{self, ContainerState, StateDir, Status};
use crate::sys::process::{clone3_into_cgroup, clone_process, Forked};
use crate::{security, spec};

/// A container that `create` finished: its state dir is still locked.
pub(crate) struct Created {
    pub dir: StateDir,
    pub state: ContainerState,
    /// husk's end of the console socketpair when husk itself receives the pty master
    /// (`run -t` in the foreground); the master is waiting in it.
    pub console: Option<OwnedFd>,
}

/// Undoes a half-done create unless disarmed.
struct Cleanup {
    dir: Option<StateDir>,
    cgroup: Option<Cgroup>,
    /// What `linux.intelRdt` created in resctrl.
    rdt: crate::extras::rdt::RdtCreated,
    pids: Vec<Pid>,
    /// Once the container exists, a failure continues at the spec's step 12: destroy it and
    /// run the poststop hooks (with the state they get).
    poststop: Option<(Vec<oci_spec::runtime::Hook>, Vec<u8>)>,
    /// Without a mount namespace of its own: the rootfs, and the mount that was on top of it
    /// before init (the one init stacks on it holds every mount it made).
    shared_root: Option<(PathBuf, Option<u64>)>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for pid in &self.pids {
            let _ = kill(*pid, Signal::SIGKILL);
            let _ = waitpid(*pid, None);
        }
        if let Some((rootfs, before)) = &self.shared_root {
            let detached = crate::rootfs::shared_ns::created_mount(rootfs, *before).and_then(
                |id| id.map_or(Ok(()), |id| crate::rootfs::shared_ns::detach(rootfs, id)),
            );
            if let Err(e) = detached {
                tracing::warn!("cleaning up after a failed create: {e}");
            }
        }
        if let Some((hs, state)) = &self.poststop {
            // hooks::run logs each failing poststop hook as a warning and goes on.
            let _ = hooks::run(HookKind::Poststop, hs, state);
        }
        if let Some(cg) = &self.cgroup {
            if let Err(e) = cg.remove() {
                tracing::warn!("cleaning up after a failed create: {e}");
            }
        }
        if let Err(e) = crate::extras::rdt::remove(&self.rdt) {
            tracing::warn!("cleaning up after a failed create: {e}");
        }
        if let Some(dir) = self.dir.take() {
            if let Err(e) = dir.destroy() {
                tracing::warn!("cleaning up after a failed create: {e}");
            }
        }
    }
}

pub(crate) fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| Error::Other(format!("resolving path {}: {e}", p.display())))
}

impl Runtime {
    /// `husk create`: the container is `created` when this returns.
    pub fn create(&self, id: &str, opts: &CreateOpts) -> Result<()> {
        self.create_locked(id, opts, false).map(drop)
    }

    /// `foreground`: husk stays with the container (`run` without `--detach`), so with a
    /// terminal and no `--console-socket` it receives the pty master itself.
    pub(crate) fn create_locked(
        &self,
        id: &str,
        opts: &CreateOpts,
        foreground: bool,
    ) -> Result<Created> {
        // CVE-2019-5736: run from a sealed copy of the binary before any container process
        // exists (re-executes this command once; see security::exe).
        security::exe::ensure_sealed().map_err(ProcessError::from)?;
        state::validate_id(id)?;
        let bundle = absolute(&opts.bundle)?;
        let spec = spec::load(&bundle)?;
        let rootfs = spec::rootfs(&spec, &bundle)?;
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::Other("config.json: process is required by create".into()))?;
        let terminal = process.terminal().unwrap_or(false);
        console::check_terminal(terminal, opts.console_socket.is_some(), !foreground)
            .map_err(Error::Other)?;
        if let Some(caps) = process.capabilities() {
            security::validate_capabilities(caps).map_err(ProcessError::from)?;
        }
        // LSM labels the host must support, and linux.seccomp compiled: before any side effect.
        let seccomp = security::prepare(&spec).map_err(ProcessError::from)?;
        // Parsed before any side effect; applied right after the cgroup exists.
        let resources = cgroups::Resources::from_spec(&spec)?;
        let mut plan = NsPlan::from_spec(&spec);
        plan.inherited_user = crate::rootless::in_user_namespace();
        // An unprivileged caller's id maps: checked against /etc/subuid and /etc/subgid now.
        let rootless_maps = crate::rootless::idmap::plan(&spec, &plan)?;
        // Which driver gets the resources. systemd: the scope's name (checked now, before any
        // side effect) and the bus, until init exists (a scope needs a pid); cgroupfs: once the
        // state dir exists.
        let (mut scope, cgroupfs) = match self.systemd_cgroup {
            true => {
                let user = self.rootless;
                let path = spec.linux().as_ref().and_then(|l| l.cgroups_path().as_deref());
                let name = cgroups::systemd::unit::parse(path.and_then(|p| p.to_str()), id, user)?;
                (Some((name, user, resources)), None)
            }
            false => (None, Some(resources)),
        };

        // (husk's end, init's end) of the console socket.
        let (console_ours, console_init) = match (terminal, &opts.console_socket) {
            (false, _) => (None, None),
            (true, Some(path)) => (None, Some(console::connect_socket(path)?)),
            (true, None) => {
                let (ours, theirs) = console::socketpair()?;
                (Some(ours), Some(theirs))
            }
        };
        let mut cleanup = Cleanup {
            dir: None,
            cgroup: None,
            rdt: Default::default(),
            pids: Vec::new(),
            poststop: None,
            shared_root: None,
        };
        let dir = StateDir::create(&self.root, id)?;
        let fifo = make_fifo(&dir.fifo_path());
        cleanup.dir = Some(dir);
        let fifo = fifo?;
        let mut cgroup = Cgroup::default();
        if let Some(resources) = cgroupfs {
            if let Some(cg) = self.create_cgroup(&spec, id, &resources)? {
                cgroup = cg;
                cleanup.cgroup = Some(cgroup.clone());
                cgroup.apply(resources, !self.rootless)?;
            }
        }

        let mut st = ContainerState {
            oci_version: crate::OCI_VERSION.into(),
            id: id.into(),
            status: Status::Creating,
            pid: 0,
            pid_start_time: 0,
            bundle: bundle.clone(),
            rootfs: rootfs.clone(),
            created: state::now_rfc3339(),
            owner: owner_name(),
            annotations: spec.annotations().clone().unwrap_or_default().into_iter().collect(),
            cgroup: cgroup.clone(),
            hooks: spec.hooks().clone(),
            intel_rdt: Default::default(),
            rootfs_mount: None,
        };
        let (mut preserve_fds, mut extra_env) = (opts.preserve_fds, Vec::new());
        if let Some(n) = listen_fds() {
            preserve_fds += n;
            extra_env.push(format!("LISTEN_FDS={n}"));
            extra_env.push("LISTEN_PID=1".into());
        }
        // Made here, in the host's namespaces; init inherits the fds (see rootfs::idmap).
        let idmapped =
            crate::rootfs::IdmappedMounts::prepare(&spec, &bundle).map_err(ProcessError::from)?;
        let (parent_chan, init_chan) = Channel::pair()?;
        let lock_fd = cleanup.dir.as_ref().map(|d| d.lock_fd());

        if !plan.has_mount {
            let before = crate::rootfs::shared_ns::top_mount_id(&rootfs).map_err(ProcessError::from)?;
            cleanup.shared_root = Some((rootfs.clone(), before));
        }
        let (cloned, in_unified) = clone_init(plan.clone_flags.bits(), &cgroup)?;
        // Without a user namespace init is host root and joins the v1 hierarchies itself,
        // which is far cheaper than our writing its pid (see Cgroup::join_self_v1).
        let self_join = scope.is_none()
            && !plan.in_userns()
            && (in_unified || cgroup.unified_path().is_none());
        let child = match cloned {
            Forked::Child => {
                std::mem::forget(cleanup);
                init::run(InitArgs {
                    spec: &spec,
                    plan: &plan,
                    rootfs: &rootfs,
                    fifo_fd: fifo.as_raw_fd(),
                    close_fds: lock_fd
                        .into_iter()
                        .chain([parent_chan.raw_fd()])
                        .chain(console_ours.as_ref().map(|f| f.as_raw_fd()))
                        .collect(),
                    chan: &init_chan,
                    no_pivot: opts.no_pivot,
                    no_new_keyring: opts.no_new_keyring,
                    preserve_fds,
                    extra_env,
                    hook_state: &st,
                    seccomp: seccomp.as_ref(),
                    console: console_init.as_ref().map(|f| f.as_fd()),
                    join_cgroup: self_join.then_some(&cgroup),
                    idmapped: &idmapped,
                })
            }
            Forked::Parent(pid) => pid,
        };
        cleanup.pids.push(child);
        if let Some(hs) = spec.hooks().as_ref().and_then(|h| h.poststop().clone()) {
            let mut stopped = st.clone();
            stopped.pid = child.as_raw();
            cleanup.poststop = Some((hs, stopped.hook_json(Status::Stopped)));
        }
        drop(init_chan);
        drop(fifo);
        drop(idmapped);
        drop(console_init);

        if plan.new_user {
            match &rootless_maps {
                Some(how) => crate::rootless::idmap::write(child.as_raw(), &spec, how)
                    .map_err(Error::Other)?,
                None => write_id_maps(&spec, child)?,
            }
        }
        if in_unified {
            tracing::debug!(
                pid = child.as_raw(),
                "init cloned into its cgroup2 leaf (clone3)"
            );
        }
        if let Some((name, user, resources)) = scope.take() {
            let unit = cgroups::systemd::start_scope(&name, user, child.as_raw(), id, &resources)?;
            // Stopped on failure even before its cgroup is known.
            cleanup.cgroup = Some(Cgroup::for_unit(unit.clone()));
            cgroup = Cgroup::of_scope(child.as_raw(), unit)?;
            cleanup.cgroup = Some(cgroup.clone());
            cgroup.apply(resources, !self.rootless)?;
            st.cgroup = cgroup.clone();
        } else if !self_join {
            cgroup.add_task(child.as_raw())?;
        }
        if let Some(rdt) = spec.linux().as_ref().and_then(|l| l.intel_rdt().as_ref()) {
            cleanup.rdt = crate::extras::rdt::apply(rdt, id, child.as_raw())
                .map_err(|e| Error::Other(e.to_string()))?;
            st.intel_rdt = cleanup.rdt.clone();
        }
        // linux.netDevices: the container's network namespace exists now (cloned, or joined
        // by path); init has not started using it.
        crate::extras::netdev::move_into(&spec, &plan, child.as_raw())
            .map_err(|e| Error::Other(e.to_string()))?;
        // A channel that fails or ends while init is dead means init died: say how.
        let limit = memory_limit(&spec);
        parent_chan
            .send(&Msg::Go)
            .map_err(|e| init_gone(e, child, &mut cleanup.pids, &cgroup, limit))?;
        let mut pid = child;
        loop {
            let (msg, fd) = parent_chan
                .recv_with_fd()
                .map_err(|e| init_gone(e, pid, &mut cleanup.pids, &cgroup, limit))?;
            match msg {
                Some(Msg::Pid(p)) => {
                    let _ = waitpid(child, None);
                    cleanup.pids = vec![Pid::from_raw(p)];
                    pid = Pid::from_raw(p);
                }
                Some(Msg::RunHooks) => {
                    st.pid = pid.as_raw();
                    let json = st.hook_json(Status::Creating);
                    let result = run_runtime_hooks(&spec, &json);
                    if let Err(e) = result {
                        let _ = parent_chan.send(&Msg::Error(e.to_string()));
                        return Err(e.into());
                    }
                    parent_chan
                        .send(&Msg::HooksDone)
                        .map_err(|e| init_gone(e, pid, &mut cleanup.pids, &cgroup, limit))?;
                }
                Some(Msg::SeccompListener) => {
                    let listener = fd.ok_or_else(|| {
                        ProcessError::Protocol("SeccompListener arrived without its fd".into())
                    })?;
                    st.pid = pid.as_raw();
                    let json = st.hook_json(Status::Creating);
                    security::forward_seccomp_listener(seccomp.as_ref(), st.pid, &json, listener)
                        .map_err(ProcessError::from)?;
                }
                Some(Msg::Ready) => break,
                Some(Msg::Error(e)) => return Err(ProcessError::Init(e).into()),
                Some(m) => {
                    return Err(ProcessError::Protocol(format!(
                        "unexpected {} from init",
                        m.name()
                    ))
                    .into())
                }
                None => {
                    let closed = ProcessError::Protocol(format!(
                        "container init {pid} closed the channel during create without reporting an error"
                    ));
                    return Err(init_gone(closed, pid, &mut cleanup.pids, &cgroup, limit).into());
                }
            }
        }
        st.pid = pid.as_raw();
        st.pid_start_time = state::process_start_time(st.pid)
            .ok_or_else(|| Error::Other(format!("container init {pid} exited during create")))?;
        st.status = Status::Created;
        if let Some((rootfs, before)) = &cleanup.shared_root {
            st.rootfs_mount =
                crate::rootfs::shared_ns::created_mount(rootfs, *before).map_err(ProcessError::from)?;
        }
        if let Some(d) = cleanup.dir.as_ref() {
            d.save(&st)?;
        }
        if let Some(pf) = &opts.pid_file {
            write_pid_file(pf, st.pid)?;
        }
        cleanup.pids.clear();
        cleanup.cgroup = None;
        cleanup.rdt = Default::default();
        cleanup.poststop = None;
        cleanup.shared_root = None;
        let dir = cleanup
            .dir
            .take()
            .ok_or_else(|| Error::Other("state dir lost".into()))?;
        Ok(Created {
            dir,
            state: st,
            console: console_ours,
        })
    }
}

impl Runtime {
    /// The cgroupfs driver's cgroup. Rootless, where the caller may not create it (cgroup v1,
    /// or v2 outside a delegated subtree), the container goes without one if the config asks
    /// for no limit (`None`, said at debug level), as runc's rootless manager does; a limit
    /// it cannot get is an error that says why.
    fn create_cgroup(
        &self,
        spec: &Spec,
        id: &str,
        resources: &cgroups::Resources,
    ) -> Result<Option<Cgroup>> {
        match Cgroup::create(spec, id) {
            Ok(cg) => Ok(Some(cg)),
            Err(e) if self.rootless && e.is_permission() => match resources.limits()[..] {
                [] => {
                    tracing::debug!(
                        "rootless: running without a cgroup of its own ({e}; the config asks for no limit)"
                    );
                    Ok(None)
                }
                ref limits => Err(cgroups::CgroupError::RootlessLimit {
                    limits: limits.join(", "),
                    cause: e.to_string(),
                }
                .into()),
            },
            Err(e) => Err(e.into()),
        }
    }
}

/// Clones the container init. On a pure cgroup v2 host it is cloned straight into its cgroup
/// (clone3 with `CLONE_INTO_CGROUP`), so it never runs in husk's cgroup; kernels or seccomp
/// filters without that (EINVAL, ENOSYS, E2BIG) get a plain clone, and so do v1 and hybrid
/// hosts. Returns whether init is already in its cgroup2 leaf (on a hybrid host the v1
/// hierarchies remain: init joins them itself, or the caller writes cgroup.procs).
fn clone_init(flags: libc::c_int, cgroup: &Cgroup) -> Result<(Forked, bool)> {
    if let Some(dir) = cgroup.unified_path() {
        let fd = File::options()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(dir);
        match fd {
            Ok(fd) => match clone3_into_cgroup(flags, fd.as_fd()) {
                Ok(forked) => return Ok((forked, true)),
                Err(e @ (Errno::EINVAL | Errno::ENOSYS | Errno::E2BIG)) => {
                    tracing::debug!(cgroup = %dir.display(), "clone3 into the cgroup: {e}; falling back");
                }
                Err(e) => {
                    // The child is charged to the cgroup's pids.max from birth.
                    let full = if e == Errno::EAGAIN {
                        " (is linux.resources.pids.limit 0?)"
                    } else {
                        ""
                    };
                    let what = format!("cloning the container init into cgroup {}", dir.display());
                    return Err(Error::Other(format!("{what}: {e}{full}")));
                }
            },
            Err(e) => {
                tracing::debug!(cgroup = %dir.display(), "opening the cgroup: {e}; falling back")
            }
        }
    }
    let forked = clone_process(flags).map_err(ProcessError::sys("cloning the container init"))?;
    Ok((forked, false))
}

fn make_fifo(path: &Path) -> Result<OwnedFd> {
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o622))
        .map_err(|e| Error::Other(format!("creating {}: {e}", path.display())))?;
    // Writable by the container's user whatever our umask: init opens it after setuid.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .map_err(|e| Error::Other(format!("chmod {}: {e}", path.display())))?;
    File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|e| Error::Other(format!("opening {}: {e}", path.display())))
}

fn run_runtime_hooks(spec: &Spec, state_json: &[u8]) -> Result<(), crate::hooks::HookError> {
    let Some(h) = spec.hooks() else { return Ok(()) };
    #[allow(deprecated)]
    if let Some(prestart) = h.prestart() {
        hooks::run(HookKind::Prestart, prestart, state_json)?;
    }
    if let Some(cr) = h.create_runtime() {
        hooks::run(HookKind::CreateRuntime, cr, state_json)?;
    }
    Ok(())
}

fn write_id_maps(spec: &Spec, pid: Pid) -> Result<()> {
    let linux = spec.linux().as_ref();
    let none = Vec::new();
    let uid = linux
        .and_then(|l| l.uid_mappings().as_ref())
        .unwrap_or(&none);
    let gid = linux
        .and_then(|l| l.gid_mappings().as_ref())
        .unwrap_or(&none);
    crate::namespaces::write_id_maps(pid.as_raw(), uid, gid).map_err(Error::Other)
}

/// How a container init that broke off the sync protocol ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InitEnd {
    Exited(i32),
    Killed(Signal),
    /// Gone, but not husk's child (it was forked into its pid namespace): no status to read.
    Gone,
}

/// `linux.resources.memory.limit`, if set.
fn memory_limit(spec: &Spec) -> Option<i64> {
    spec.linux()
        .as_ref()?
        .resources()
        .as_ref()?
        .memory()
        .as_ref()?
        .limit()
}

/// `e` came from the sync channel with init `pid`: if init is dead, the error is its death
/// (reaped, and dropped from `pids` so that the clean-up kills no recycled pid), said with
/// its exit status or signal and whether the memory cgroup OOM-killed something; otherwise
/// `e` as it is.
fn init_gone(
    e: ProcessError,
    pid: Pid,
    pids: &mut Vec<Pid>,
    cgroup: &Cgroup,
    limit: Option<i64>,
) -> ProcessError {
    let Some(end) = reap_dead_init(pid) else {
        return e;
    };
    if end != InitEnd::Gone {
        pids.retain(|p| *p != pid);
    }
    tracing::debug!(pid = pid.as_raw(), cause = %e, "container init died during create");
    ProcessError::Init(init_death_message(end, cgroup.oom_kills(), limit))
}

/// Whether `pid` is dead, reaping it if it is our child; `None` while it is alive. A
/// process's sockets close while it exits, a moment before it becomes a zombie, so a broken
/// channel gets up to a second for that.
fn reap_dead_init(pid: Pid) -> Option<InitEnd> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus};
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Some(InitEnd::Exited(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Some(InitEnd::Killed(sig)),
            Ok(_) | Err(Errno::EINTR) => {}
            // Not our child: dead once /proc has nothing but (at most) a zombie of it.
            Err(Errno::ECHILD) => {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
                if matches!(state, None | Some('Z') | Some('X')) {
                    return Some(InitEnd::Gone);
                }
            }
            Err(_) => return None,
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// `container init was killed by SIGKILL during create (the memory cgroup recorded an OOM
/// kill: linux.resources.memory.limit 65536 is too small)`.
fn init_death_message(end: InitEnd, oom_kills: Option<u64>, limit: Option<i64>) -> String {
    let what = match end {
        InitEnd::Killed(sig) => format!("container init was killed by {sig} during create"),
        InitEnd::Exited(code) => format!("container init exited with status {code} during create"),
        InitEnd::Gone => "container init exited during create".to_string(),
    };
    match (oom_kills.unwrap_or(0), limit) {
        (0, _) => what,
        (_, Some(l)) => format!(
            "{what} (the memory cgroup recorded an OOM kill: linux.resources.memory.limit {l} is too small)"
        ),
        (_, None) => format!("{what} (the memory cgroup recorded an OOM kill)"),
    }
}

/// Writes the pid file atomically (tmp + rename), digits only.
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = absolute(path)?;
    let tmp = path.with_extension("husk-tmp");
    std::fs::write(&tmp, pid.to_string())
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::Other(format!("writing pid file {}: {e}", path.display()))
        })
}

fn listen_fds() -> Option<u32> {
    std::env::var("LISTEN_FDS")
        .ok()?
        .parse()
        .ok()
        .filter(|n| *n > 0)
}

/// The caller's user name from /etc/passwd (as runc does, without NSS), or the uid.
fn owner_name() -> String {
    let uid = nix::unistd::geteuid().as_raw();
    crate::rootless::subid::user_name(uid).unwrap_or_else(|| uid.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_death_messages() {
        assert_eq!(
            init_death_message(InitEnd::Killed(Signal::SIGKILL), Some(0), Some(65536)),
            "container init was killed by SIGKILL during create"
        );
        assert_eq!(
            init_death_message(InitEnd::Killed(Signal::SIGKILL), Some(1), Some(65536)),
            "container init was killed by SIGKILL during create (the memory cgroup recorded an \
             OOM kill: linux.resources.memory.limit 65536 is too small)"
        );
        assert_eq!(
            init_death_message(InitEnd::Killed(Signal::SIGKILL), Some(2), None),
            "container init was killed by SIGKILL during create (the memory cgroup recorded an OOM kill)"
        );
        assert_eq!(
            init_death_message(InitEnd::Exited(3), None, Some(1)),
            "container init exited with status 3 during create"
        );
        assert_eq!(
            init_death_message(InitEnd::Gone, None, None),
            "container init exited during create"
        );
    }

    #[test]
    fn a_live_process_is_not_dead() {
        assert_eq!(reap_dead_init(nix::unistd::getpid()), None);
    }
}
