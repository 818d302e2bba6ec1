//! `start`: open exec.fifo so init execs the user program, save `running`, run poststart.

use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};

use super::Runtime;
use crate::error::{Error, Result};
use crate::hooks::{self, HookKind};
use crate::state::{ContainerState, StateDir, Status};

impl Runtime {
    /// `husk start`: the container must be `created`.
    pub fn start(&self, id: &str) -> Result<()> {
        let dir = StateDir::open(&self.root, id)?;
        let mut st = dir.load()?;
        start_locked(&dir, &mut st)
    }
}

pub(crate) fn start_locked(dir: &StateDir, st: &mut ContainerState) -> Result<()> {
    let fifo = dir.fifo_path();
    let status = st.current_status(fifo.exists());
    if status != Status::Created {
        return Err(Error::Other(format!(
            "cannot start container {}: it is {status}, not created",
            st.id
        )));
    }
    release_init(st, &fifo)?;
    std::fs::remove_file(&fifo)
        .map_err(|e| Error::Other(format!("removing {}: {e}", fifo.display())))?;
    st.status = Status::Running;
    dir.save(st)?;
    let poststart = st.hooks.as_ref().and_then(|h| h.poststart().clone());
    if let Some(hs) = poststart {
        if let Err(e) = hooks::run(HookKind::Poststart, &hs, &st.hook_json(Status::Running)) {
            // The spec: a failing poststart hook stops the container.
            let _ = kill(nix::unistd::Pid::from_raw(st.pid), Signal::SIGKILL);
            return Err(e.into());
        }
    }
    Ok(())
}

/// Opens exec.fifo for reading and waits for init's byte, noticing if init died meanwhile.
fn release_init(st: &ContainerState, fifo: &std::path::Path) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(fifo)
        .map_err(|e| Error::Other(format!("opening {}: {e}", fifo.display())))?;
    loop {
        let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(Error::Other(format!("waiting on {}: {e}", fifo.display()))),
            Ok(0) => {
                if !st.process_alive() {
                    return Err(Error::Other(format!(
                        "container {} init (pid {}) exited before start",
                        st.id, st.pid
                    )));
                }
            }
            Ok(_) => {
                // "0", or the cause of a failure in init's last steps (startContainer hooks).
                // Blocking from here: init closes the fifo right after writing.
                nix::fcntl::fcntl(
                    &f,
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
                )
                .map_err(|e| Error::Other(format!("fcntl on {}: {e}", fifo.display())))?;
                let mut buf = Vec::new();
                return match f.read_to_end(&mut buf) {
                    Ok(_) if buf == b"0" => Ok(()),
                    Ok(0) => Err(Error::Other(format!(
                        "container {} init (pid {}) exited before start",
                        st.id, st.pid
                    ))),
                    Ok(_) => Err(Error::Other(String::from_utf8_lossy(&buf).into_owned())),
                    Err(e) => Err(Error::Other(format!("reading {}: {e}", fifo.display()))),
                };
            }
        }
    }
}
