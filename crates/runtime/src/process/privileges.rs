//! The last privileged steps of a process about to exec in the container, shared by the
//! container's init and by `husk exec`, so that both drop privileges in the same order.
//!
//! The seccomp filter goes in as late as it can (docs/security.md): whatever the process does
//! after it must not depend on syscalls a profile may refuse. Before any filter: every fd but
//! stdio and the preserved ones marked close-on-exec (close_range, which older allow-lists do
//! not name), then user, groups and capabilities. Without no_new_privs, installing a filter
//! needs CAP_SYS_ADMIN, so the identity switch keeps it until the filter is in and a last
//! capset drops it: after the filter come only that capset and execve (and, for init, the
//! "0" written to exec.fifo).

use oci_spec::runtime::Process;

use super::sync::{Channel, Msg};
use super::ProcessError;
use crate::security::{self, seccomp::Filter, FinalCaps};
use crate::sys::process::cloexec_from;

/// What is left after [`drop_privileges`], for right before execve: [`Pending::finish`].
#[must_use = "the seccomp filter and the last capability drop are still to be applied"]
pub(crate) struct Pending<'f> {
    seccomp: Option<&'f Filter>,
    caps: Option<FinalCaps>,
}

impl Pending<'_> {
    /// Installs the filter (a NOTIFY listener goes to the parent over `chan`), then drops the
    /// CAP_SYS_ADMIN held for it.
    pub(crate) fn finish(&mut self, chan: &Channel) -> Result<(), ProcessError> {
        if let Some(f) = self.seccomp.take() {
            install_seccomp(chan, f)?;
        }
        if let Some(caps) = self.caps.take() {
            caps.apply()?;
        }
        Ok(())
    }
}

/// close-on-exec for every fd from 3 + `preserve_fds`, user, groups and capabilities,
/// no_new_privs; with a NOTIFY listener (which has to reach the parent over `chan` before it
/// exits) the filter too. Returns what is still to do right before execve.
pub(crate) fn drop_privileges<'f>(
    process: &Process,
    seccomp: Option<&'f Filter>,
    preserve_fds: u32,
    chan: &Channel,
) -> Result<Pending<'f>, ProcessError> {
    cloexec_from(3 + preserve_fds).map_err(ProcessError::sys("marking inherited fds close-on-exec"))?;
    let hold_sys_admin = seccomp.is_some() && !process.no_new_privileges().unwrap_or(false);
    let caps = security::apply_identity(process, hold_sys_admin)?;
    if process.no_new_privileges().unwrap_or(false) {
        security::set_no_new_privs()?;
    }
    let mut pending = Pending { seccomp, caps };
    if seccomp.is_some_and(Filter::needs_listener) {
        pending.finish(chan)?;
    }
    Ok(pending)
}

/// Installs `f`; a NOTIFY listener fd goes to the parent over `chan`.
fn install_seccomp(chan: &Channel, f: &Filter) -> Result<(), ProcessError> {
    if let Some(listener) = f.install().map_err(security::SecurityError::from)? {
        chan.send_with_fd(&Msg::SeccompListener, std::os::fd::AsFd::as_fd(&listener))?;
    }
    Ok(())
}
