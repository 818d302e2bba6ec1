//! `run`: create + start in one process; in the foreground, forward signals to the
//! container and return its exit status (128+signal when killed), then delete it. With
//! process.terminal and no `--console-socket`, husk receives the pty master itself and proxies
//! it to its own terminal.

use std::os::fd::AsFd;

use nix::unistd::Pid;

use super::create::Created;
use super::delete::delete_locked;
use super::start::start_locked;
use super::{CreateOpts, Runtime};
use crate::error::{Error, Result};
use crate::process::console::{self, TtyProxy};
use crate::process::foreground::Foreground;
use crate::state::StateDir;

impl Runtime {
    pub fn run(&self, id: &str, opts: &CreateOpts, detach: bool, keep: bool) -> Result<i32> {
        let sys = |what: &'static str| move |e: nix::Error| Error::Other(format!("{what}: {e}"));
        let mut foreground = None;
        if !detach {
            // Become the reaper of a container init that is our grandchild (pid/time ns join),
            // and hold every signal from now on: they are forwarded, not acted on.
            nix::sys::prctl::set_child_subreaper(true)
                .map_err(sys("prctl(PR_SET_CHILD_SUBREAPER)"))?;
            foreground = Some(Foreground::new()?);
        }
        let Created {
            dir,
            mut state,
            console,
        } = self.create_locked(id, opts, !detach)?;
        // The master is already in the socket (init sent it before "ready").
        let tty = console.map(|sock| console::recv_master(sock.as_fd()).and_then(TtyProxy::new));
        let mut tty = match tty.transpose() {
            Ok(t) => t,
            Err(e) => {
                let _ = delete_locked(dir, &state, true);
                return Err(e.into());
            }
        };
        if let Err(e) = start_locked(&dir, &mut state) {
            drop(tty);
            let _ = delete_locked(dir, &state, true);
            return Err(e);
        }
        drop(dir);
        let Some(fg) = foreground else { return Ok(0) };
        let code = fg.wait(Pid::from_raw(state.pid), tty.as_mut())?;
        // Restore husk's terminal before anything else is printed.
        drop(tty);
        if !keep {
            let dir = StateDir::open(&self.root, id)?;
            let st = dir.load()?;
            delete_locked(dir, &st, true)?;
        }
        Ok(code)
    }
}
