//! The container's filesystem: mount propagation, the rootfs bind, `mounts`, /dev and devices,
//! pivot_root, masked and readonly paths, read-only root and sysctl.
//!
//! Everything here runs inside the container's init, already in its new mount namespace.
//! Order (driven by the caller): [`prepare`] -> createContainer hooks -> [`pivot`] -> [`finalize`].

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

pub mod options;

/// Why setting up the container's filesystem failed.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A mount option string husk does not know.
    #[error("unknown mount option {option:?} for {dest}")]
    UnknownOption { option: String, dest: String },
    /// A mount option husk knows but does not implement yet.
    #[error("mount option {option:?} for {dest} is not supported yet")]
    UnsupportedOption { option: String, dest: String },
    /// A syscall on a path failed.
    #[error("{op} {path}: {errno}")]
    Sys { op: String, path: PathBuf, errno: nix::errno::Errno },
    /// Invalid configuration found while setting up.
    #[error("{0}")]
    Invalid(String),
}

/// What [`prepare`] needs.
pub struct RootfsConfig<'a> {
    pub spec: &'a Spec,
    /// Absolute host path of the rootfs.
    pub rootfs: &'a Path,
    /// True when a new user namespace was created: devices are bind-mounted from the host.
    pub in_userns: bool,
}

/// Set up the rootfs before pivot_root.
pub fn prepare(cfg: &RootfsConfig) -> Result<(), RootfsError> {
    let _ = cfg;
    Ok(())
}

/// Make the rootfs the process's root.
pub fn pivot(rootfs: &Path, no_pivot: bool) -> Result<(), RootfsError> {
    let _ = (rootfs, no_pivot);
    Ok(())
}

/// After pivot: masked and readonly paths, read-only root, sysctl.
pub fn finalize(spec: &Spec) -> Result<(), RootfsError> {
    let _ = spec;
    Ok(())
}
