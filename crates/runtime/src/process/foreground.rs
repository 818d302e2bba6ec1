//! husk in the foreground (`run`, `exec` without `--detach`): every signal is held from before
//! the container's process exists and read through a signalfd, then forwarded to that
//! process; its exit status is returned (128+signal when it was killed). With a terminal, the
//! same loop copies between husk's terminal and the container's pty and resizes the pty on
//! SIGWINCH. No threads: one poll(2) loop.

use std::os::fd::AsFd;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::console::TtyProxy;
use super::ProcessError;

/// Signals held and readable through a signalfd for as long as this lives.
pub struct Foreground {
    sfd: SignalFd,
}

impl Foreground {
    /// Blocks every signal and opens a signalfd for them. Call it before the container's
    /// process is created, so that no signal meant for it is lost. Children inherit the mask:
    /// the container's process resets it before exec.
    pub fn new() -> Result<Foreground, ProcessError> {
        let all = SigSet::all();
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None)
            .map_err(ProcessError::sys("blocking signals"))?;
        let sfd = SignalFd::with_flags(&all, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(ProcessError::sys("signalfd"))?;
        Ok(Foreground { sfd })
    }

    /// Forwards every signal but SIGCHLD and SIGWINCH to `pid` until it exits, and reaps any
    /// other child meanwhile. With `tty`, copies husk's stdin to the pty and the pty to
    /// husk's stdout, and gives the pty husk's window size on SIGWINCH. Returns the exit code,
    /// or 128+signal.
    pub fn wait(&self, pid: Pid, mut tty: Option<&mut TtyProxy>) -> Result<i32, ProcessError> {
        let mut master_open = true;
        loop {
            // A child may have exited before its SIGCHLD was read.
            if let Some(code) = reap(pid)? {
                if let Some(t) = tty.as_deref_mut() {
                    t.drain();
                }
                return Ok(code);
            }
            let stdin = std::io::stdin();
            let (want_in, want_master) = match tty.as_deref() {
                Some(t) => (t.wants_stdin(), master_open),
                None => (false, false),
            };
            let mut fds = vec![PollFd::new(self.sfd.as_fd(), PollFlags::POLLIN)];
            let master_idx = match (want_master, tty.as_deref()) {
                (true, Some(t)) => {
                    let mut ev = PollFlags::POLLIN;
                    if t.wants_master_out() {
                        ev |= PollFlags::POLLOUT;
                    }
                    fds.push(PollFd::new(t.master(), ev));
                    Some(fds.len() - 1)
                }
                _ => None,
            };
            let stdin_idx = want_in.then(|| {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::Error::EINTR) => {}
                Err(e) => return Err(ProcessError::sys("poll")(e)),
            }
            let ready = |i: Option<usize>, flags: PollFlags| {
                i.and_then(|i| fds[i].revents())
                    .is_some_and(|r| r.intersects(flags))
            };
            let sig_ready = ready(Some(0), PollFlags::POLLIN);
            let master_in = ready(
                master_idx,
                PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR,
            );
            let master_out = ready(master_idx, PollFlags::POLLOUT);
            let stdin_in = ready(
                stdin_idx,
                PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR,
            );
            drop(fds);
            // Signals first: a resize is applied before the input typed after it.
            if sig_ready {
                self.forward_pending(pid, tty.as_deref())?;
            }
            if let Some(t) = tty.as_deref_mut() {
                if master_in && !t.on_master() {
                    // The slave side is closed: nothing more will come until the exit.
                    master_open = false;
                }
                if master_out {
                    t.flush_input();
                }
                if stdin_in {
                    t.on_stdin();
                }
            }
        }
    }

    fn forward_pending(&self, pid: Pid, tty: Option<&TtyProxy>) -> Result<(), ProcessError> {
        loop {
            let info = match self.sfd.read_signal() {
                Ok(Some(i)) => i,
                Ok(None) => return Ok(()),
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(ProcessError::sys("reading signalfd")(e)),
            };
            let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                continue;
            };
            match sig {
                Signal::SIGCHLD => {}
                // The kernel signals the pty's foreground process group when its size changes.
                Signal::SIGWINCH => {
                    if let Some(t) = tty {
                        t.resize();
                    }
                }
                _ => {
                    tracing::debug!("forwarding {sig} to {pid}");
                    let _ = kill(pid, sig);
                }
            }
        }
    }
}

/// Reaps exited children; Some(exit code) once `pid` has exited (128+signal if killed).
fn reap(pid: Pid) -> Result<Option<i32>, ProcessError> {
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p == pid => return Ok(Some(code)),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => return Ok(Some(128 + sig as i32)),
            Ok(WaitStatus::StillAlive) | Err(nix::Error::ECHILD) => return Ok(None),
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(ProcessError::sys(format!("waiting for process {pid}"))(e)),
        }
    }
}
