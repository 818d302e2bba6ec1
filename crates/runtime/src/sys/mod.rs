//! The syscall layer: the only module where `unsafe` is allowed.
//!
//! Each function is a thin typed wrapper over one syscall (or a tight group), and every
//! `unsafe` block carries a `// SAFETY:` comment saying why the call is sound. Everything
//! else in the crate uses these wrappers or nix's safe API.
#![allow(unsafe_code)]

pub mod bpf;
pub mod mount;
pub mod process;
pub mod sched;
pub mod fsmount;
pub mod seccomp;
pub mod security;
pub mod term;
