//! After pivot_root: delayed read-only remounts, read-only root, sysctl, readonly paths and
//! masked paths (runc's order), then the rootfs propagation. Paths are container paths now.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, makedev, Mode};
use oci_spec::runtime::Spec;

use super::mounts::remount_bind;
use super::{io_errno, options, paths, pivot, sys, sysctl, RootfsError};

const NONE: Option<&str> = None;

pub(crate) fn run(spec: &Spec) -> Result<(), RootfsError> {
    let linux = spec.linux().as_ref();
    check_kernel_mounts_in_place(spec)?;
    delayed_readonly(spec)?;
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        tracing::debug!("remounting / read-only");
        remount_bind("/", MsFlags::MS_RDONLY, MsFlags::empty(), "/")?;
    }
    if let Some(l) = linux {
        if let Some(s) = l.sysctl() {
            sysctl::apply(s)?;
        }
        for p in l.readonly_paths().iter().flatten() {
            readonly_path(Path::new(p))?;
        }
        for p in l.masked_paths().iter().flatten() {
            mask_path(Path::new(p))?;
        }
    }
    // Last: with `runbindable`, the binds for readonly paths above would no longer be allowed.
    let propagation = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .filter(|p| !p.is_empty());
    pivot::apply_root_propagation(propagation)
}

/// proc and sysfs must still be where the config put them before masked and readonly paths
/// are applied by path: a directory renamed away after the mount (CVE-2023-27561, a racing
/// container sharing the rootfs) would leave an unmasked, writable proc elsewhere.
fn check_kernel_mounts_in_place(spec: &Spec) -> Result<(), RootfsError> {
    use nix::sys::statfs::{statfs, PROC_SUPER_MAGIC, SYSFS_MAGIC};
    for m in spec.mounts().iter().flatten() {
        let magic = match m.typ().as_deref() {
            Some("proc") => PROC_SUPER_MAGIC,
            Some("sysfs") => SYSFS_MAGIC,
            _ => continue,
        };
        let dest = paths::clean(m.destination());
        let is_dir = std::fs::symlink_metadata(&dest).is_ok_and(|md| md.is_dir());
        let fs_ok = statfs(&dest).is_ok_and(|st| st.filesystem_type() == magic);
        if !is_dir || !fs_ok {
            return Err(RootfsError::Invalid(format!(
                "the {} mount on {} is no longer there (was the directory renamed or replaced during setup?)",
                m.typ().as_deref().unwrap_or_default(),
                dest.display()
            )));
        }
    }
    Ok(())
}

/// tmpfs and /dev mounts asked to be `ro` were mounted read-write so that files could be made
/// in them; make them read-only now.
fn delayed_readonly(spec: &Spec) -> Result<(), RootfsError> {
    for m in spec.mounts().iter().flatten() {
        let Ok(opts) = options::parse(m.options().as_deref().unwrap_or(&[])) else {
            continue; // prepare() already refused these
        };
        let dest = paths::clean(m.destination());
        let typ = m.typ().as_deref().unwrap_or("");
        if opts.bind || typ == "bind" || !opts.flags.contains(MsFlags::MS_RDONLY) {
            continue;
        }
        if typ == "tmpfs" || dest == Path::new("/dev") {
            let d = dest.display().to_string();
            let keep = opts.flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
            remount_bind(&d, MsFlags::MS_RDONLY | keep, opts.clear, &d)?;
        }
    }
    Ok(())
}

/// Bind the path onto itself and remount that read-only, keeping nosuid/nodev/noexec.
/// A path that does not exist is skipped, as in runc.
fn readonly_path(p: &Path) -> Result<(), RootfsError> {
    tracing::debug!(path = %p.display(), "readonly path");
    match mount(Some(p), p, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE) {
        Ok(()) => {}
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => {
            return Err(sys(format!(
                "making {} read-only: bind-mounting it onto itself",
                p.display()
            ))(e))
        }
    }
    let d = p.display().to_string();
    remount_bind(&d, MsFlags::MS_RDONLY, MsFlags::empty(), &d)
}

/// Hide a path: a read-only empty tmpfs over a directory, /dev/null over anything else.
/// A path that does not exist is skipped, as in runc.
fn mask_path(p: &Path) -> Result<(), RootfsError> {
    let meta = match std::fs::metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(RootfsError::Sys {
                what: format!("masking {}: stat", p.display()),
                errno: io_errno(&e),
            })
        }
    };
    tracing::debug!(path = %p.display(), dir = meta.is_dir(), "masked path");
    let r = if meta.is_dir() {
        mount(Some("tmpfs"), p, Some("tmpfs"), MsFlags::MS_RDONLY, NONE)
    } else {
        let null = open_null()?;
        // The target may be a symlink: after pivot_root it can only lead inside the container.
        nix::fcntl::open(p, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .and_then(|target| crate::sys::fsmount::bind_fd(null.as_fd(), target.as_fd()))
    };
    match r {
        Ok(()) => Ok(()),
        // The path went away in between; a missing /dev/null is still an error.
        Err(Errno::ENOENT) if std::fs::symlink_metadata(p).is_err() => Ok(()),
        Err(e) => Err(sys(format!(
            "masking {} with {}",
            p.display(),
            if meta.is_dir() {
                "a read-only tmpfs"
            } else {
                "/dev/null"
            }
        ))(e)),
    }
}

/// The container's /dev/null, opened without following a symlink and checked to be the null
/// device: a /dev/null swapped for a symlink (CVE-2025-31133) must never be bind-mounted over
/// a masked path.
fn open_null() -> Result<OwnedFd, RootfsError> {
    let null = open_nofollow(Path::new("/dev/null")).map_err(sys("masking: opening /dev/null"))?;
    let st = fstat(&null).map_err(sys("masking: stat of /dev/null"))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != makedev(1, 3) {
        return Err(RootfsError::Invalid(
            "masking paths: /dev/null in the container is not the null device (1:3); refusing to mount it".into(),
        ));
    }
    Ok(null)
}

/// O_PATH fd of `p` itself (a final symlink is not followed).
fn open_nofollow(p: &Path) -> Result<OwnedFd, Errno> {
    nix::fcntl::open(p, OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
}

/// Bind the console pty onto /dev/console (created as an empty file if missing).
pub(crate) fn mount_console(pty: &Path) -> Result<(), RootfsError> {
    let console = Path::new("/dev/console");
    if let Ok(m) = std::fs::symlink_metadata(console) {
        if m.file_type().is_symlink() {
            std::fs::remove_file(console)
                .map_err(super::io("removing the /dev/console symlink"))?;
        } else if m.is_dir() {
            return Err(RootfsError::Invalid(
                "/dev/console is a directory".to_string(),
            ));
        }
    }
    if !console.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .custom_flags(libc::O_NOFOLLOW)
            .open(console)
            .map(drop)
            .or_else(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(super::io("creating /dev/console"))?;
    }
    tracing::debug!(pty = %pty.display(), "bind-mounting the console");
    // By fd at both ends, checked after opening: nothing swapped in between the checks above
    // and the mount can redirect it (CVE-2025-52565).
    let target = open_nofollow(console).map_err(sys("opening /dev/console"))?;
    let kind = fstat(&target).map_err(sys("stat of /dev/console"))?.st_mode & libc::S_IFMT;
    if kind != libc::S_IFREG && kind != libc::S_IFCHR {
        return Err(RootfsError::Invalid(
            "/dev/console is neither a file nor a device: refusing to mount the console on it".into(),
        ));
    }
    let source = open_nofollow(pty).map_err(sys(format!("opening console {}", pty.display())))?;
    if fstat(&source).map_err(sys(format!("stat of {}", pty.display())))?.st_mode & libc::S_IFMT
        != libc::S_IFCHR
    {
        return Err(RootfsError::Invalid(format!("console {} is not a device", pty.display())));
    }
    crate::sys::fsmount::bind_fd(source.as_fd(), target.as_fd()).map_err(sys(format!(
        "bind-mounting console {} on /dev/console",
        pty.display()
    )))
}
