//! The last privileged steps of a process about to exec in the container, shared by the
//! container's init and by `husk exec`, so that both drop privileges in the same order.

use oci_spec::runtime::Process;

use super::sync::{Channel, Msg};
use super::ProcessError;
use crate::security::{self, seccomp::Filter};
use crate::sys::process::cloexec_from;

/// seccomp where it must precede the identity switch (installing needs CAP_SYS_ADMIN or
/// no_new_privs), then user, groups and capabilities, no_new_privs, every fd but stdio and the
/// preserved ones marked close-on-exec, then seccomp where a NOTIFY listener has to reach the
/// parent over `chan` before the process goes on. Returns the filter still to install, right
/// before execve (docs/security.md: as late as it can go).
pub(crate) fn drop_privileges<'f>(
    process: &Process,
    seccomp: Option<&'f Filter>,
    preserve_fds: u32,
    chan: &Channel,
) -> Result<Option<&'f Filter>, ProcessError> {
    let mut seccomp = seccomp;
    if let Some(f) = seccomp.filter(|_| security::seccomp_before_identity(process)) {
        install_seccomp(chan, f)?;
        seccomp = None;
    }
    security::apply_identity(process)?;
    if process.no_new_privileges().unwrap_or(false) {
        security::set_no_new_privs()?;
    }
    cloexec_from(3 + preserve_fds).map_err(ProcessError::sys("close_range"))?;
    if let Some(f) = seccomp.filter(|f| f.needs_listener()) {
        install_seccomp(chan, f)?;
        seccomp = None;
    }
    Ok(seccomp)
}

/// Installs `f`; a NOTIFY listener fd goes to the parent over `chan`.
pub(crate) fn install_seccomp(chan: &Channel, f: &Filter) -> Result<(), ProcessError> {
    if let Some(listener) = f.install().map_err(security::SecurityError::from)? {
        chan.send_with_fd(&Msg::SeccompListener, std::os::fd::AsFd::as_fd(&listener))?;
    }
    Ok(())
}
