//! Masked and readonly paths, and the rest of the setup after the mounts.
//!
//! Those under a proc or sysfs mount husk made are applied right before pivot_root, beneath
//! the pinned root of that mount ([`protect_kernel_mounts`]): never through the container's
//! path to it, which a process outside the container could be renaming (CVE-2023-27561).
//! After pivot_root ([`run`]): delayed read-only remounts, read-only root, sysctl, the other
//! readonly paths and masked paths (runc's order), then the rootfs propagation. Paths are
//! container paths there.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, makedev, Mode};
use oci_spec::runtime::Spec;

use super::mounts::{mount_on, remount_bind, Pinned};
use super::resolve::{fd_path, is_dir, open_beneath, Root};
use super::{io_errno, options, paths, pivot, sys, sysctl, RootfsError};

const NONE: Option<&str> = None;

/// A masked or readonly path that lies under a pinned proc or sysfs mount.
struct Target {
    /// The configured path (clean).
    path: PathBuf,
    /// Index of the mount in [`KernelPaths::mounts`].
    mount: usize,
    /// The path relative to that mount's destination (empty for the destination itself).
    rel: PathBuf,
}

/// The pinned proc and sysfs mounts and the masked and readonly paths under them, handed
/// from `prepare` to [`protect_kernel_mounts`].
pub(crate) struct KernelPaths {
    mounts: Vec<Pinned>,
    readonly: Vec<Target>,
    masked: Vec<Target>,
}

impl KernelPaths {
    pub(crate) fn new(spec: &Spec, mounts: Vec<Pinned>) -> KernelPaths {
        let linux = spec.linux().as_ref();
        let dests: Vec<&Path> = mounts.iter().map(|m| m.dest.as_path()).collect();
        let targets = |list: Option<&Vec<String>>| -> Vec<Target> {
            list.into_iter()
                .flatten()
                .filter_map(|p| {
                    let path = paths::clean(Path::new(p));
                    let (mount, rel) = under_kernel_mount(&path, &dests)?;
                    let rel = rel.to_path_buf();
                    Some(Target { path, mount, rel })
                })
                .collect()
        };
        let readonly = targets(linux.and_then(|l| l.readonly_paths().as_ref()));
        let masked = targets(linux.and_then(|l| l.masked_paths().as_ref()));
        KernelPaths {
            mounts,
            readonly,
            masked,
        }
    }

    /// The paths this covers (clean), which [`run`] then leaves alone.
    pub(crate) fn paths(&self) -> Vec<PathBuf> {
        self.readonly
            .iter()
            .chain(&self.masked)
            .map(|t| t.path.clone())
            .collect()
    }
}

/// The mount among `dests` that `p` is at or under: the deepest one, and of equal ones the
/// last (mounted on top). Returns its index and `p` relative to it. Both are clean paths.
fn under_kernel_mount<'a>(p: &'a Path, dests: &[&Path]) -> Option<(usize, &'a Path)> {
    dests
        .iter()
        .enumerate()
        .filter_map(|(i, d)| p.strip_prefix(d).ok().map(|rel| (i, d, rel)))
        .max_by_key(|(_, d, _)| d.components().count())
        .map(|(i, _, rel)| (i, rel))
}

/// Before pivot_root: readonly paths, then masked paths, under each pinned proc and sysfs
/// mount, resolved beneath its root fd (RESOLVE_BENEATH, no magic links) and mounted on by
/// fd. `/proc` is still the host's here, so `/proc/self/fd/N` cannot be redirected either.
pub(crate) fn protect_kernel_mounts(root: &Root, k: &KernelPaths) -> Result<(), RootfsError> {
    for t in &k.readonly {
        readonly_beneath(&k.mounts[t.mount], t)?;
    }
    let mut null = None;
    for t in &k.masked {
        mask_beneath(root, &k.mounts[t.mount], t, &mut null)?;
    }
    Ok(())
}

fn beneath(m: &Pinned, t: &Target) -> String {
    format!(
        "{} (in the mount on {})",
        t.path.display(),
        m.dest.display()
    )
}

/// [`readonly_path`] beneath a pinned mount. A path that does not exist is skipped.
fn readonly_beneath(m: &Pinned, t: &Target) -> Result<(), RootfsError> {
    tracing::debug!(path = %t.path.display(), "readonly path");
    let what = || format!("making {} read-only", beneath(m, t));
    let fd = match open_beneath(&m.root, &t.rel) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(sys(format!("{}: opening it", what()))(e)),
    };
    if t.rel.as_os_str().is_empty() {
        // The whole mount: remount it read-only.
        return remount_bind(
            &fd_path(&m.root),
            MsFlags::MS_RDONLY,
            MsFlags::empty(),
            &what(),
        );
    }
    let here = fd_path(&fd);
    mount_on(
        Some(&here),
        &fd,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .map_err(sys(format!("{}: bind-mounting it onto itself", what())))?;
    // The same lookup now ends on the new bind mount.
    let top = open_beneath(&m.root, &t.rel).map_err(sys(format!("{}: reopening it", what())))?;
    remount_bind(
        &fd_path(&top),
        MsFlags::MS_RDONLY,
        MsFlags::empty(),
        &what(),
    )
}

/// [`mask_path`] beneath a pinned mount, with the container's /dev/null (opened once, checked
/// to be the null device). A path that does not exist is skipped.
fn mask_beneath(
    root: &Root,
    m: &Pinned,
    t: &Target,
    null: &mut Option<OwnedFd>,
) -> Result<(), RootfsError> {
    let fd = match open_beneath(&m.root, &t.rel) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(sys(format!("masking {}: opening it", beneath(m, t)))(e)),
    };
    let dir = is_dir(&fd).map_err(sys(format!("masking {}: stat", beneath(m, t))))?;
    tracing::debug!(path = %t.path.display(), dir, "masked path");
    if dir {
        return mount_on(Some("tmpfs"), &fd, Some("tmpfs"), MsFlags::MS_RDONLY, None).map_err(sys(
            format!("masking {} with a read-only tmpfs", beneath(m, t)),
        ));
    }
    let null = match null {
        Some(n) => n,
        None => {
            let n = root
                .open_at(Path::new("/dev/null"), OFlag::O_PATH | OFlag::O_NOFOLLOW)
                .map_err(sys(
                    root.ctx("masking paths: opening", Path::new("/dev/null"))
                ))?;
            check_null(&n)?;
            null.insert(n)
        }
    };
    crate::sys::fsmount::bind_fd(null.as_fd(), fd.as_fd())
        .map_err(sys(format!("masking {} with /dev/null", beneath(m, t))))
}

/// After pivot_root. `done` are the masked and readonly paths [`protect_kernel_mounts`]
/// already applied.
pub(crate) fn run(spec: &Spec, done: &[PathBuf]) -> Result<(), RootfsError> {
    let linux = spec.linux().as_ref();
    let todo = |p: &&String| !done.contains(&paths::clean(Path::new(p)));
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
        for p in l.readonly_paths().iter().flatten().filter(todo) {
            readonly_path(Path::new(p))?;
        }
        for p in l.masked_paths().iter().flatten().filter(todo) {
            mask_path(Path::new(p))?;
        }
    }
    // Last: with `runbindable`, the binds for readonly paths above would no longer be allowed.
    let propagation = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .filter(|p| !p.is_empty());
    pivot::apply_root_propagation(propagation)
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
    check_null(&null)?;
    Ok(null)
}

/// Refuse a /dev/null that is not the null device (a symlink opened with O_NOFOLLOW, a
/// regular file, another device).
fn check_null(null: &OwnedFd) -> Result<(), RootfsError> {
    let st = fstat(null).map_err(sys("masking: stat of /dev/null"))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != makedev(1, 3) {
        return Err(RootfsError::Invalid(
            "masking paths: /dev/null in the container is not the null device (1:3); refusing to mount it".into(),
        ));
    }
    Ok(())
}

/// O_PATH fd of `p` itself (a final symlink is not followed).
fn open_nofollow(p: &Path) -> Result<OwnedFd, Errno> {
    nix::fcntl::open(
        p,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
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
            "/dev/console is neither a file nor a device: refusing to mount the console on it"
                .into(),
        ));
    }
    let source = open_nofollow(pty).map_err(sys(format!("opening console {}", pty.display())))?;
    if fstat(&source)
        .map_err(sys(format!("stat of {}", pty.display())))?
        .st_mode
        & libc::S_IFMT
        != libc::S_IFCHR
    {
        return Err(RootfsError::Invalid(format!(
            "console {} is not a device",
            pty.display()
        )));
    }
    crate::sys::fsmount::bind_fd(source.as_fd(), target.as_fd()).map_err(sys(format!(
        "bind-mounting console {} on /dev/console",
        pty.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_kernel_mounts() {
        let dests = [Path::new("/proc"), Path::new("/sys"), Path::new("/proc")];
        let under = |p: &'static str| under_kernel_mount(Path::new(p), &dests);
        // The last of equal destinations (the one on top).
        assert_eq!(under("/proc/sys"), Some((2, Path::new("sys"))));
        assert_eq!(under("/proc"), Some((2, Path::new(""))));
        assert_eq!(under("/sys/firmware"), Some((1, Path::new("firmware"))));
        assert_eq!(under("/processes"), None);
        assert_eq!(under("/etc/x"), None);
        assert_eq!(under("/"), None);
        // The deepest destination wins.
        let nested = [Path::new("/a/b"), Path::new("/a")];
        assert_eq!(
            under_kernel_mount(Path::new("/a/b/c"), &nested),
            Some((0, Path::new("c")))
        );
        assert_eq!(
            under_kernel_mount(Path::new("/a/x"), &nested),
            Some((1, Path::new("x")))
        );
    }
}
