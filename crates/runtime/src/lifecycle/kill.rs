//! `kill`: signal the init (or, with --all, every process in the container's cgroup).

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::Runtime;
use crate::error::{Error, Result};
use crate::state::{StateDir, Status};

impl Runtime {
    pub fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<()> {
        let dir = StateDir::open(&self.root, id)?;
        let st = dir.load()?;
        let status = st.current_status(dir.fifo_path().exists());
        // With --all, a stopped container's leftover processes (no pid namespace) can still
        // be signalled through its cgroup, as runc allows.
        if !all && !matches!(status, Status::Created | Status::Running | Status::Paused) {
            return Err(Error::Other(format!(
                "container not running: {id} is {status}"
            )));
        }
        if all {
            // Freeze-signal-thaw (or cgroup.kill), so that no process forks away meanwhile.
            st.cgroup.signal_all(signal)?;
            return Ok(());
        }
        kill(Pid::from_raw(st.pid), signal).map_err(|e| {
            Error::Other(format!(
                "sending {signal} to container {id} (pid {}): {e}",
                st.pid
            ))
        })
    }
}
