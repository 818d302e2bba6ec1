//! The container's init process: the sync channel with the parent, and the init side.

pub mod console;
pub mod exec_init;
pub mod exec_path;
pub mod foreground;
pub mod init;
mod privileges;
pub mod sync;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ProcessError {
    #[error("{what}: {source}")]
    Namespace { what: String, source: nix::Error },
    #[error("{what}: {source}")]
    Sys { what: String, source: nix::Error },
    #[error("sync channel: {what}: {source}")]
    Sync { what: String, source: nix::Error },
    #[error("sync channel: {0}")]
    Protocol(String),
    /// The other end closed the channel while this side waited for the named message: a
    /// parent that gives up reports its own error.
    #[error("sync channel: the other side exited while husk waited for {0}")]
    PeerGone(&'static str),
    /// An error that happened inside the container's init, as it reported it.
    #[error("{0}")]
    Init(String),
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    #[error(transparent)]
    Security(#[from] crate::security::SecurityError),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
}

/// Runs a child's setup (`init` or `exec`), which only returns on error: closes the parent's
/// fds first, sends the error's whole cause over `chan` (or, if the parent is gone, prints it
/// as `husk <who>: ...`), and exits 1.
pub(crate) fn run_child<A>(
    who: &str,
    close_fds: &[std::os::fd::RawFd],
    chan: &sync::Channel,
    args: &A,
    setup: fn(&A) -> Result<std::convert::Infallible, ProcessError>,
) -> ! {
    for fd in close_fds {
        let _ = nix::unistd::close(*fd);
    }
    let err = match setup(args) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    // The parent gave up on us (and says why itself): nobody to tell, nothing to add.
    if matches!(err, ProcessError::PeerGone(_)) {
        crate::sys::process::exit_now(1)
    }
    if chan.send(&sync::Msg::Error(err.to_string())).is_err() {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "husk {who}: {err}");
    }
    crate::sys::process::exit_now(1)
}

impl ProcessError {
    pub(crate) fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> ProcessError {
        let what = what.into();
        move |source| ProcessError::Sys { what, source }
    }
}
