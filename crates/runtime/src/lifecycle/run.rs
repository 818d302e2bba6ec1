//! `run`: create + start in one process; in the foreground, forward signals to the
//! container and return its exit status (128+signal when killed), then delete it.

use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::create::Created;
use super::delete::delete_locked;
use super::start::start_locked;
use super::{CreateOpts, Runtime};
use crate::error::{Error, Result};
use crate::state::StateDir;

impl Runtime {
    pub fn run(&self, id: &str, opts: &CreateOpts, detach: bool, keep: bool) -> Result<i32> {
        let sys = |what: &'static str| move |e: nix::Error| Error::Other(format!("{what}: {e}"));
        let mut signals = None;
        if !detach {
            // Become the reaper of a container init that is our grandchild (pid/time ns join),
            // and hold every signal from now on: they are forwarded, not acted on.
            nix::sys::prctl::set_child_subreaper(true).map_err(sys("prctl(PR_SET_CHILD_SUBREAPER)"))?;
            let all = SigSet::all();
            sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None).map_err(sys("blocking signals"))?;
            signals = Some(SignalFd::with_flags(&all, SfdFlags::SFD_CLOEXEC).map_err(sys("signalfd"))?);
        }
        let Created { dir, mut state } = self.create_locked(id, opts)?;
        if let Err(e) = start_locked(&dir, &mut state) {
            let _ = delete_locked(dir, &state, true);
            return Err(e);
        }
        drop(dir);
        let Some(sfd) = signals else { return Ok(0) };
        let code = forward_until_exit(&sfd, Pid::from_raw(state.pid))?;
        if !keep {
            let dir = StateDir::open(&self.root, id)?;
            let st = dir.load()?;
            delete_locked(dir, &st, true)?;
        }
        Ok(code)
    }
}

/// Forwards every signal to `init` until it exits; reaps any other orphan meanwhile.
fn forward_until_exit(sfd: &SignalFd, init: Pid) -> Result<i32> {
    loop {
        // A child may already have exited before the first SIGCHLD was read.
        if let Some(code) = reap(init)? {
            return Ok(code);
        }
        let info = match sfd.read_signal() {
            Ok(Some(i)) => i,
            Ok(None) | Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(Error::Other(format!("reading signalfd: {e}"))),
        };
        let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else { continue };
        if sig != Signal::SIGCHLD {
            tracing::debug!("forwarding {sig} to container init {init}");
            let _ = kill(init, sig);
        }
    }
}

/// Reaps exited children; Some(exit code) once `init` has exited.
fn reap(init: Pid) -> Result<Option<i32>> {
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == init => return Ok(Some(code)),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == init => return Ok(Some(128 + sig as i32)),
            Ok(WaitStatus::StillAlive) | Err(nix::Error::ECHILD) => return Ok(None),
            Ok(_) => continue,
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(Error::Other(format!("waiting for container init {init}: {e}"))),
        }
    }
}
