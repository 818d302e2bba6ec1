//! Parsing of `mounts[].options`.

use nix::mount::MsFlags;

use super::RootfsError;

/// Every option string [`parse`] accepts (besides `key=value` data options).
pub const KNOWN: &[&str] = &[];

/// A parsed mount option list.
#[derive(Debug, Clone, PartialEq)]
pub struct MountOptions {
    /// Flags to set.
    pub flags: MsFlags,
    /// Flags explicitly turned off (rw, suid, dev, exec, atime, ...).
    pub clear: MsFlags,
    /// Propagation changes, applied in order after the mount.
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific options, passed as mount data.
    pub data: Vec<String>,
    pub bind: bool,
    pub recursive: bool,
    pub tmpcopyup: bool,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            clear: MsFlags::empty(),
            propagation: Vec::new(),
            data: Vec::new(),
            bind: false,
            recursive: false,
            tmpcopyup: false,
        }
    }
}

/// Parse a mount's option list.
pub fn parse(opts: &[String]) -> Result<MountOptions, RootfsError> {
    let _ = opts;
    Ok(MountOptions::default())
}
