//! `delete`: kill if forced (or never started), run poststop, remove cgroup and state dir.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::Runtime;
use crate::cgroups::Cgroup;
use crate::error::{Error, Result};
use crate::hooks::{self, HookKind};
use crate::state::{ContainerState, StateDir, Status};

impl Runtime {
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let dir = StateDir::open(&self.root, id)?;
        let st = dir.load()?;
        delete_locked(dir, &st, force)
    }
}

pub(crate) fn delete_locked(dir: StateDir, st: &ContainerState, force: bool) -> Result<()> {
    let status = st.current_status(dir.fifo_path().exists());
    let cgroup = &st.cgroup;
    match status {
        Status::Stopped => {}
        Status::Created | Status::Creating => kill_all(st, cgroup)?,
        Status::Running | Status::Paused if force => kill_all(st, cgroup)?,
        Status::Running | Status::Paused => {
            return Err(Error::Other(format!(
                "cannot delete container {} that is not stopped: {status} (use --force)",
                st.id
            )))
        }
    }
    if let Some(hs) = st.hooks.as_ref().and_then(|h| h.poststop().clone()) {
        // The spec: a failing poststop hook is a warning; deletion goes on.
        if let Err(e) = hooks::run(HookKind::Poststop, &hs, &st.hook_json(Status::Stopped)) {
            tracing::warn!("{e}");
        }
    }
    if let Some(id) = st.rootfs_mount {
        if let Err(e) = crate::rootfs::shared_ns::detach(&st.rootfs, id) {
            tracing::warn!("{e}");
        }
    }
    let removed = cgroup.remove();
    if let Err(e) = crate::extras::rdt::remove(&st.intel_rdt) {
        tracing::warn!("{e}");
    }
    dir.destroy()?;
    removed.map_err(Error::from)
}

/// SIGKILL to init and every process of the cgroup, then wait until init is gone.
fn kill_all(st: &ContainerState, cgroup: &Cgroup) -> Result<()> {
    // cgroup.kill, or freeze-kill-thaw: no process forks away, and a paused container is
    // thawed so that its processes die.
    if let Err(e) = cgroup.signal_all(Signal::SIGKILL) {
        tracing::warn!("killing the processes of container {}: {e}", st.id);
        for pid in cgroup.pids().unwrap_or_default() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    if st.process_alive() {
        let _ = kill(Pid::from_raw(st.pid), Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while st.process_alive() || !cgroup.pids().unwrap_or_default().is_empty() {
        if Instant::now() > deadline {
            return Err(Error::Other(format!(
                "container {} (pid {}) did not die within 10s of SIGKILL",
                st.id, st.pid
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}
