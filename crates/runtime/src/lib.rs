//! husk's runtime library: everything that reads a bundle and touches the kernel.
//!
//! The CLI in `crates/shim` is a thin front end over [`lifecycle::Runtime`].
//! Unsafe code is denied everywhere except in [`sys`], the thin syscall layer.

pub mod cgroups;
pub mod dbus;
pub mod error;
pub mod extras;
pub mod features;
#[doc(hidden)]
pub mod fuzzing;
pub mod hooks;
pub mod lifecycle;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod rootless;
pub mod security;
pub mod signals;
pub mod spec;
pub mod state;
pub mod sys;

pub use error::{Error, Result};
pub use lifecycle::{CreateOpts, Runtime};

/// The runtime-spec version husk implements.
pub const OCI_VERSION: &str = "1.3.0";
