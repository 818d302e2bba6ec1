//! The container's filesystem: mount propagation, the rootfs bind, `mounts`, /dev and devices,
//! pivot_root, masked and readonly paths, read-only root and sysctl.
//!
//! Everything here runs inside the container's init, already in its new mount namespace, as
//! root of that namespace (or, for a config without a mount namespace, in the runtime's own,
//! beneath one private bind of the rootfs: [`shared_ns`]). Order (driven by the caller):
//! [`prepare`] -> createContainer hooks -> [`pivot`] -> ([`mount_console`]) -> [`finalize`].
//!
//! Paths inside the rootfs are resolved with openat2(RESOLVE_IN_ROOT) and mounted through
//! `/proc/self/fd/N` of the opened target, so a symlink in the image (or one swapped in while we
//! work) cannot redirect a mount outside the rootfs. proc and sysfs mounts are pinned by an fd
//! of their root, and their masked and readonly paths applied beneath it before pivot_root.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use nix::errno::Errno;
use oci_spec::runtime::Spec;

pub use idmap::IdmappedMounts;

mod cgroup;
mod copyup;
mod devices;
mod finalize;
mod idmap;
pub(crate) mod mountinfo;
mod mounts;
pub mod options;
mod paths;
mod pivot;
mod resolve;
pub mod shared_ns;
mod sysctl;

/// Why setting up the container's filesystem failed.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A mount option string husk does not know.
    #[error("unknown mount option {option:?}{}", for_dest(dest))]
    UnknownOption {
        option: String,
        dest: Option<String>,
    },
    /// A syscall failed; `what` says what was being done to which path, e.g.
    /// `mounting proc on /proc in rootfs /x`.
    #[error("{what}: {errno}")]
    Sys { what: String, errno: Errno },
    /// The configuration asks for something that cannot be done, e.g. a missing bind source.
    #[error("{0}")]
    Invalid(String),
}

fn for_dest(dest: &Option<String>) -> String {
    match dest {
        Some(d) => format!(" for {d}"),
        None => String::new(),
    }
}

impl RootfsError {
    /// Name the mount destination in an option error from [`options::parse`].
    pub fn with_dest(self, dest: &str) -> Self {
        match self {
            RootfsError::UnknownOption { option, .. } => RootfsError::UnknownOption {
                option,
                dest: Some(dest.to_string()),
            },
            other => other,
        }
    }
}

/// `map_err` helper: a failed syscall with its context.
pub(crate) fn sys(what: impl Into<String>) -> impl FnOnce(Errno) -> RootfsError {
    let what = what.into();
    move |errno| RootfsError::Sys { what, errno }
}

/// `map_err` helper for std::io errors, keeping the OS error number.
pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RootfsError {
    let what = what.into();
    move |e| RootfsError::Sys {
        what,
        errno: io_errno(&e),
    }
}

pub(crate) fn io_errno(e: &std::io::Error) -> Errno {
    e.raw_os_error().map(Errno::from_raw).unwrap_or(Errno::EIO)
}

/// What [`prepare`] hands to [`pivot`] (the pinned proc and sysfs mounts and the paths to
/// protect under them) and [`pivot`] to [`finalize`] (the paths done). init calls the three
/// in turn in one single-threaded process; the lock only makes the static sound.
struct Handover {
    kernel: Option<finalize::KernelPaths>,
    done: Vec<PathBuf>,
}

static HANDOVER: Mutex<Handover> = Mutex::new(Handover {
    kernel: None,
    done: Vec::new(),
});

fn handover() -> std::sync::MutexGuard<'static, Handover> {
    HANDOVER.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What [`prepare`] needs.
pub struct RootfsConfig<'a> {
    pub spec: &'a Spec,
    /// Absolute host path of the rootfs.
    pub rootfs: &'a Path,
    /// True when a new user namespace was created (or joined): devices are bind-mounted from
    /// the host instead of mknod'ed, and some filesystems fall back to bind mounts.
    pub in_userns: bool,
    /// The id-mapped bind mounts, made by the parent ([`IdmappedMounts::prepare`]).
    pub idmapped: &'a IdmappedMounts,
    /// How the rootfs becomes the root: without a mount namespace of its own
    /// ([`RootSwitch::Chroot`]) nothing outside the rootfs is touched.
    pub switch: RootSwitch,
    /// `/proc/self/cgroup` as read before init made its cgroup namespace (which names every
    /// cgroup of its own `/`): where the kernel refuses a fresh cgroup mount, the container's
    /// own cgroup is bound from the host's hierarchy under this name.
    pub proc_cgroup: Option<&'a str>,
}

/// How init makes the rootfs its root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootSwitch {
    /// pivot_root(".", ".") and the old root detached: the normal case.
    PivotRoot,
    /// `--no-pivot`: the rootfs moved onto `/`, then chroot.
    MoveRoot,
    /// No mount namespace of its own (the runtime's is inherited): chroot, as runc does.
    Chroot,
}

impl RootSwitch {
    pub fn new(own_mount_ns: bool, no_pivot: bool) -> RootSwitch {
        match (own_mount_ns, no_pivot) {
            (false, _) => RootSwitch::Chroot,
            (true, true) => RootSwitch::MoveRoot,
            (true, false) => RootSwitch::PivotRoot,
        }
    }
}

/// Set up the rootfs before pivot_root: propagation of `/`, the rootfs bind onto itself, every
/// `mounts` entry in order, then /dev: devices, `/dev/ptmx` and the `/dev/fd`-style symlinks.
///
/// Relative bind-mount sources are taken relative to the current directory, which the caller
/// keeps at the bundle.
pub fn prepare(cfg: &RootfsConfig) -> Result<(), RootfsError> {
    let rootfs = canonical(cfg.rootfs)?;
    *handover() = Handover {
        kernel: None,
        done: Vec::new(),
    };
    let linux = cfg.spec.linux().as_ref();
    let propagation = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .filter(|p| !p.is_empty());
    if cfg.switch == RootSwitch::Chroot {
        pivot::prepare_shared_root(&rootfs)?;
    } else {
        pivot::prepare_root(&rootfs, propagation)?;
    }
    let root = resolve::Root::open(&rootfs)?;
    let mounts: &[oci_spec::runtime::Mount] = match cfg.spec.mounts() {
        Some(m) => m,
        None => &[],
    };
    let ctx = mounts::Ctx {
        root: &root,
        in_userns: cfg.in_userns,
        cgroupns: cgroup::has_cgroupns(cfg.spec),
        proc_cgroup: cfg.proc_cgroup,
        mount_label: linux.and_then(|l| l.mount_label().as_deref()),
        pinned: Default::default(),
    };
    for (index, m) in mounts.iter().enumerate() {
        mounts::mount_entry(&ctx, m, cfg.idmapped.tree(index))?;
    }
    let kernel = finalize::KernelPaths::new(cfg.spec, ctx.pinned.take());
    if devices::needs_dev_setup(mounts) {
        let spec_devices: &[oci_spec::runtime::LinuxDevice] =
            match linux.and_then(|l| l.devices().as_ref()) {
                Some(d) => d,
                None => &[],
            };
        devices::setup(&root, spec_devices, cfg.in_userns)?;
    }
    handover().kernel = Some(kernel);
    Ok(())
}

/// Make the rootfs the process's root as `switch` says: pivot_root(".", ".") and detach the old
/// root, move the rootfs onto `/` and chroot into it, or only chroot. Leaves the cwd at the new
/// `/`.
///
/// First (after the createContainer hooks, as late as possible before pivot_root), the
/// readonly and masked paths under the proc and sysfs mounts [`prepare`] made are applied
/// beneath those mounts' pinned roots.
pub fn pivot(rootfs: &Path, switch: RootSwitch) -> Result<(), RootfsError> {
    let rootfs = canonical(rootfs)?;
    let mut h = handover();
    if let Some(kernel) = h.kernel.take() {
        finalize::protect_kernel_mounts(&resolve::Root::open(&rootfs)?, &kernel)?;
        h.done = kernel.paths();
        // `kernel` (the pinned fds) is dropped here.
    }
    drop(h);
    match switch {
        RootSwitch::PivotRoot => pivot::pivot_root(&rootfs),
        RootSwitch::MoveRoot => pivot::move_root(&rootfs),
        RootSwitch::Chroot => pivot::chroot_into(&rootfs),
    }
}

/// Bind the console's pty (a path inside the container, e.g. `/dev/pts/0`) onto `/dev/console`,
/// creating it if needed. Call after [`pivot`] and before [`finalize`] (which may make `/`
/// read-only).
pub fn mount_console(pty: &Path) -> Result<(), RootfsError> {
    finalize::mount_console(pty)
}

/// After pivot (cwd is `/`): read-only remounts that had to wait (tmpfs and /dev), read-only
/// root, sysctl, readonly paths, masked paths (runc's order; those under proc and sysfs were
/// done by [`pivot`]), then `rootfsPropagation` on `/`.
pub fn finalize(spec: &Spec) -> Result<(), RootfsError> {
    let done = std::mem::take(&mut handover().done);
    finalize::run(spec, &done)
}

fn canonical(rootfs: &Path) -> Result<PathBuf, RootfsError> {
    rootfs
        .canonicalize()
        .map_err(io(format!("resolving rootfs {}", rootfs.display())))
}
