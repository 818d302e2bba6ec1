//! Propagation of `/`, the rootfs bind, pivot_root and the no-pivot fallback (runc's order).

use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir};

use super::options::propagation_flags;
use super::{io, mountinfo, sys, RootfsError};

const NONE: Option<&str> = None;

/// The flags for `linux.rootfsPropagation`.
fn rootfs_propagation(value: &str) -> Result<MsFlags, RootfsError> {
    propagation_flags(value).ok_or_else(|| {
        RootfsError::Invalid(format!(
            "linux.rootfsPropagation: unknown value {value:?} (want shared, slave, private or unbindable, or their r-variants)"
        ))
    })
}

/// Before the mounts: set the propagation of `/` (rslave unless configured), make the mount that
/// holds the rootfs private if it is shared (pivot_root refuses shared parents, and our mounts
/// must not propagate to the host), then bind the rootfs onto itself so it is a mount point.
pub(crate) fn prepare_root(rootfs: &Path, propagation: Option<&str>) -> Result<(), RootfsError> {
    let mut flags = match propagation {
        Some(p) => rootfs_propagation(p)?,
        None => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    // An unbindable parent would make the rootfs bind below fail: apply it after pivot.
    if flags.contains(MsFlags::MS_UNBINDABLE) {
        flags = MsFlags::MS_PRIVATE | MsFlags::MS_REC;
    }
    tracing::debug!(?flags, "propagation of /");
    mount(NONE, "/", NONE, flags, NONE)
        .map_err(sys(format!("setting propagation {flags:?} on /")))?;

    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(io("reading /proc/self/mountinfo"))?;
    let entries = mountinfo::parse(&info);
    if let Some(parent) = mountinfo::containing(&entries, rootfs).filter(|e| e.is_shared()) {
        tracing::debug!(mount = %parent.mount_point.display(), "making the rootfs's parent mount private");
        mount(NONE, &parent.mount_point, NONE, MsFlags::MS_PRIVATE, NONE).map_err(sys(format!(
            "making {} (the mount holding rootfs {}) private",
            parent.mount_point.display(),
            rootfs.display()
        )))?;
    }
    tracing::debug!(rootfs = %rootfs.display(), "bind-mounting the rootfs onto itself");
    mount(
        Some(rootfs),
        rootfs,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )
    .map_err(sys(format!(
        "bind-mounting rootfs {} onto itself",
        rootfs.display()
    )))
}

/// Without a mount namespace of its own, init mounts in the runtime's, so it must not change
/// any mount that was there before (runc makes the host's `/` rslave and leaves every mount
/// behind). Everything the container mounts goes beneath one bind of the rootfs onto itself,
/// made private at once (the submounts it copied too) so that nothing mounted on it propagates
/// anywhere; `delete` detaches that bind, and everything beneath it, in one go
/// ([`super::shared_ns`]).
pub(crate) fn prepare_shared_root(rootfs: &Path) -> Result<(), RootfsError> {
    tracing::debug!(rootfs = %rootfs.display(), "no mount namespace: bind-mounting the rootfs onto itself, private");
    mount(Some(rootfs), rootfs, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE)
        .map_err(sys(format!("bind-mounting rootfs {} onto itself", rootfs.display())))?;
    mount(NONE, rootfs, NONE, MsFlags::MS_PRIVATE | MsFlags::MS_REC, NONE)
        .map_err(sys(format!("making the rootfs bind {} private", rootfs.display())))
}

/// Without a mount namespace of its own: chroot into the rootfs (pivot_root would swap the
/// runtime's own root), as runc does.
pub(crate) fn chroot_into(rootfs: &Path) -> Result<(), RootfsError> {
    chdir(rootfs).map_err(sys(format!("chdir to rootfs {}", rootfs.display())))?;
    tracing::debug!(rootfs = %rootfs.display(), "chroot (no mount namespace)");
    chroot(".").map_err(sys(format!("chroot into {}", rootfs.display())))?;
    chdir("/").map_err(sys("chdir to the new /"))
}

/// After pivot: apply the configured propagation to the new `/` (a fresh peer group for
/// `shared`), as runc does; private needs nothing more.
pub(crate) fn apply_root_propagation(propagation: Option<&str>) -> Result<(), RootfsError> {
    let Some(p) = propagation else { return Ok(()) };
    let flags = rootfs_propagation(p)?;
    if flags.contains(MsFlags::MS_PRIVATE) {
        return Ok(());
    }
    tracing::debug!(?flags, "rootfs propagation");
    mount(NONE, "/", NONE, flags, NONE).map_err(sys(format!("setting rootfsPropagation {p} on /")))
}

fn open_dir(p: &Path) -> Result<std::os::fd::OwnedFd, RootfsError> {
    nix::fcntl::open(
        p,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys(format!("opening {}", p.display())))
}

/// pivot_root(".", ".") in the rootfs, then detach the old root stacked underneath.
pub(crate) fn pivot_root(rootfs: &Path) -> Result<(), RootfsError> {
    let old = open_dir(Path::new("/"))?;
    let new = open_dir(rootfs)?;
    fchdir(&new).map_err(sys(format!("chdir to rootfs {}", rootfs.display())))?;
    tracing::debug!(rootfs = %rootfs.display(), "pivot_root");
    nix::unistd::pivot_root(".", ".")
        .map_err(sys(format!("pivot_root into {}", rootfs.display())))?;
    // "." is the old root now; fchdir to be sure rather than rely on the kernel's choice.
    fchdir(&old).map_err(sys("chdir to the old root"))?;
    // rslave first so the unmount does not propagate to the host.
    mount(NONE, ".", NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE)
        .map_err(sys("making the old root rslave"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(sys("detaching the old root"))?;
    chdir("/").map_err(sys("chdir to the new /"))
}

/// `--no-pivot`: move the rootfs onto `/` and chroot into it. Full proc and sysfs mounts of the
/// host stay reachable in this mount namespace, so they are detached (or covered) first, as
/// runc does: the kernel checks them when the container mounts its own proc.
pub(crate) fn move_root(rootfs: &Path) -> Result<(), RootfsError> {
    chdir(rootfs).map_err(sys(format!("chdir to rootfs {}", rootfs.display())))?;
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(io("reading /proc/self/mountinfo"))?;
    let mut victims: Vec<_> = mountinfo::parse(&info)
        .into_iter()
        .filter(|e| {
            e.root == Path::new("/")
                && (e.fstype == "proc" || e.fstype == "sysfs")
                && !e.mount_point.starts_with(rootfs)
        })
        .map(|e| e.mount_point)
        .collect();
    victims.dedup();
    for p in victims {
        match mount(NONE, &p, NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE) {
            Ok(()) => {}
            Err(Errno::ENOENT) => continue, // a parent was already detached
            Err(e) => return Err(sys(format!("making {} rslave", p.display()))(e)),
        }
        tracing::debug!(mount = %p.display(), "detaching host mount before chroot");
        match umount2(&p, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(Errno::EINVAL | Errno::EPERM) => {
                mount(Some("tmpfs"), &p, Some("tmpfs"), MsFlags::empty(), NONE)
                    .map_err(sys(format!("covering {} with a tmpfs", p.display())))?;
            }
            Err(e) => return Err(sys(format!("detaching {}", p.display()))(e)),
        }
    }
    tracing::debug!(rootfs = %rootfs.display(), "moving the rootfs onto / and chroot");
    mount(Some(rootfs), "/", NONE, MsFlags::MS_MOVE, NONE)
        .map_err(sys(format!("moving rootfs {} onto /", rootfs.display())))?;
    chroot(".").map_err(sys(format!("chroot into {}", rootfs.display())))?;
    chdir("/").map_err(sys("chdir to the new /"))
}
