//! The runtime-spec 1.3 extras of a process and of `linux`: scheduler, I/O priority, exec CPU
//! affinity (`process`), personality, NUMA memory policy, network devices and Intel RDT
//! (`linux`). Each field is checked by [`validate`] before any side effect and applied by the
//! container's init (or the `husk exec` child) right before it drops its privileges.

pub mod cpulist;
pub mod mempolicy;
pub mod netdev;
pub mod netlink;
pub mod personality;
pub mod rdt;
pub mod sched;

use oci_spec::runtime::{Process, Spec};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ExtrasError {
    /// A value of config.json that husk refuses; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// A syscall applying a field failed.
    #[error("{what}: {source}")]
    Sys { what: String, source: nix::Error },
}

impl ExtrasError {
    pub(crate) fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> ExtrasError {
        let what = what.into();
        move |source| ExtrasError::Sys { what, source }
    }
}

/// Every check of these fields that needs no side effect (config.json is refused before
/// anything is created).
pub fn validate(spec: &Spec) -> Result<(), ExtrasError> {
    if let Some(p) = spec.process() {
        validate_process(p)?;
    }
    if let Some(linux) = spec.linux() {
        if let Some(pers) = linux.personality() {
            personality::validate(pers)?;
        }
        if let Some(mp) = linux.memory_policy() {
            mempolicy::Policy::from_spec(mp)?;
        }
        if let Some(rdt) = linux.intel_rdt() {
            rdt::validate(rdt)?;
        }
    }
    netdev::validate(spec)?;
    Ok(())
}

/// The checks of `process.scheduler`, `process.ioPriority` and `process.execCPUAffinity`
/// (also for the process of `husk exec`).
pub fn validate_process(p: &Process) -> Result<(), ExtrasError> {
    if let Some(s) = p.scheduler() {
        sched::sched_attr(s)?;
    }
    if let Some(io) = p.io_priority() {
        sched::ioprio_value(io)?;
    }
    if let Some(a) = p.exec_cpu_affinity() {
        sched::Affinity::from_spec(a)?;
    }
    Ok(())
}

/// Applies `process.scheduler` and `process.ioPriority` to the calling process (init, or the
/// `husk exec` child), while it still has CAP_SYS_NICE / CAP_SYS_ADMIN.
pub fn apply_process(p: &Process) -> Result<(), ExtrasError> {
    if let Some(io) = p.io_priority() {
        sched::apply_ioprio(io)?;
    }
    if let Some(s) = p.scheduler() {
        sched::apply_scheduler(s)?;
    }
    Ok(())
}

/// Applies `linux.personality` and `linux.memoryPolicy` to the container's init (both are
/// inherited across fork and execve).
pub fn apply_linux(spec: &Spec) -> Result<(), ExtrasError> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    if let Some(mp) = linux.memory_policy() {
        mempolicy::Policy::from_spec(mp)?.apply()?;
    }
    if let Some(pers) = linux.personality() {
        personality::apply(pers)?;
    }
    Ok(())
}
