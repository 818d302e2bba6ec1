//! The operations on a container: one file per verb. Each checks the status, acts, saves.

use std::path::PathBuf;

mod create;
mod delete;
mod events;
mod exec;
mod kill;
mod pause;
mod ps;
mod run;
mod start;
mod status;
mod update;

pub use events::Event;
pub use exec::ExecOpts;
pub use status::ContainerInfo;

/// Global options shared by every operation (runc's global flags).
#[derive(Debug, Clone)]
pub struct Runtime {
    /// State root, `/run/husk` by default.
    pub root: PathBuf,
    /// `--systemd-cgroup`: a transient scope per container (see cgroups::systemd).
    pub systemd_cgroup: bool,
    /// Rootless (see [`crate::rootless::detect`]): the systemd driver uses the user's
    /// manager, and a cgroup the caller may not create is done without when the config asks
    /// for no limit.
    pub rootless: bool,
}

/// Options of `create` and `run`.
#[derive(Debug, Clone, Default)]
pub struct CreateOpts {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
}
