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

impl ProcessError {
    pub(crate) fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> ProcessError {
        let what = what.into();
        move |source| ProcessError::Sys { what, source }
    }
}
