//! Process identity and privileges (owner: security).
use oci_spec::runtime::{LinuxCapabilities, PosixRlimit, Process};

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("{0}")]
    Other(String),
}

pub fn set_rlimits(_rlimits: &[PosixRlimit]) -> Result<(), SecurityError> {
    Ok(())
}
pub fn set_oom_score_adj(_adj: i32) -> Result<(), SecurityError> {
    Ok(())
}
pub fn validate_capabilities(_caps: &LinuxCapabilities) -> Result<(), SecurityError> {
    Ok(())
}
pub fn apply_identity(_process: &Process) -> Result<(), SecurityError> {
    Ok(())
}
pub fn set_no_new_privs() -> Result<(), SecurityError> {
    Ok(())
}
