//! One `mounts` entry: create the target inside the rootfs, mount by fd, then remount flags,
//! propagation and recursive attributes.

use std::cell::RefCell;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::stat::{fstat, mkdirat, Mode};
use nix::sys::statfs::{fstatfs, FsType, PROC_SUPER_MAGIC, SYSFS_MAGIC};
use nix::sys::statvfs::{statvfs, FsFlags};
use oci_spec::runtime::Mount;

use super::options::{self, MountOptions};
use super::resolve::{fd_path, is_dir, mount_id, open_dir_nofollow, Root};
use super::{cgroup, copyup, paths, sys, RootfsError};

/// What every mount needs to know about the container.
pub(crate) struct Ctx<'a> {
    pub root: &'a Root,
    pub in_userns: bool,
    /// The container has a cgroup namespace (new or joined).
    pub cgroupns: bool,
    /// [`super::RootfsConfig::proc_cgroup`].
    pub proc_cgroup: Option<&'a str>,
    /// `linux.mountLabel`: the SELinux `context=` of the filesystems that take one.
    pub mount_label: Option<&'a str>,
    /// The proc and sysfs mounts made so far, pinned by the fd of their root.
    pub pinned: RefCell<Vec<Pinned>>,
}

/// A proc or sysfs mount husk made, held by an O_PATH fd of its root that was opened right
/// after the mount and checked to be that mount. Its masked and readonly paths are applied
/// beneath this fd, never by path: whatever a process outside the container renames the
/// directory under it to meanwhile, the masks land on this mount (CVE-2023-27561).
pub(crate) struct Pinned {
    /// The configured destination (a clean container path).
    pub dest: PathBuf,
    /// The mount's root.
    pub root: OwnedFd,
    /// Its mount id, so that a later mount cannot be mistaken for it.
    mnt_id: u64,
}

/// Per-mount flags that a bind remount keeps from the current mount unless told otherwise.
/// In a user namespace the kernel refuses to drop them when they were locked by the host.
const KEEP: MsFlags = MsFlags::MS_RDONLY
    .union(MsFlags::MS_NOSUID)
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// mount(2) on the file an fd refers to, through `/proc/self/fd/N`.
pub(crate) fn mount_on<Fd: std::os::fd::AsRawFd>(
    source: Option<&str>,
    target: &Fd,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), Errno> {
    let data = data.filter(|d| !d.is_empty());
    nix::mount::mount(source, fd_path(target).as_str(), fstype, flags, data)
}

/// The per-mount flags a mount currently has (from statvfs of a path on it).
pub(crate) fn current_flags(path: &str) -> Result<MsFlags, Errno> {
    let f = statvfs(path)?.flags();
    let pairs = [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ];
    Ok(pairs
        .iter()
        .filter(|(st, _)| f.contains(*st))
        .fold(MsFlags::empty(), |acc, (_, ms)| acc | *ms))
}

/// Remount the bind mount at `target` with `set`, keeping its current ro/nosuid/nodev/noexec
/// unless `clear` turns them off. If the kernel refuses (locked flags in a user namespace),
/// retry keeping all of them.
pub(crate) fn remount_bind(
    target: &str,
    set: MsFlags,
    clear: MsFlags,
    what: &str,
) -> Result<(), RootfsError> {
    let cur = current_flags(target).map_err(sys(format!("statfs of {what}")))? & KEEP;
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | set;
    let flags = base | (cur - clear);
    tracing::debug!(target = what, ?flags, "remounting");
    match nix::mount::mount(None::<&str>, target, None::<&str>, flags, None::<&str>) {
        Err(Errno::EPERM) if !(cur & clear).is_empty() => {
            tracing::warn!(
                target = what,
                "cannot clear locked mount flags {:?}; keeping them",
                cur & clear
            );
            nix::mount::mount(None::<&str>, target, None::<&str>, base | cur, None::<&str>)
        }
        r => r,
    }
    .map_err(sys(format!("remounting {what} with {}", flag_names(set))))
}

/// `ro,nosuid,...` for an error message.
fn flag_names(f: MsFlags) -> String {
    let names = [
        (MsFlags::MS_RDONLY, "ro"),
        (MsFlags::MS_NOSUID, "nosuid"),
        (MsFlags::MS_NODEV, "nodev"),
        (MsFlags::MS_NOEXEC, "noexec"),
        (MsFlags::MS_NOATIME, "noatime"),
        (MsFlags::MS_NODIRATIME, "nodiratime"),
        (MsFlags::MS_RELATIME, "relatime"),
        (MsFlags::MS_STRICTATIME, "strictatime"),
    ];
    let v: Vec<&str> = names
        .iter()
        .filter(|(m, _)| f.contains(*m))
        .map(|(_, n)| *n)
        .collect();
    if v.is_empty() {
        format!("{f:?}")
    } else {
        v.join(",")
    }
}

/// Mount one `mounts` entry. `idmapped`: its id-mapped tree, when it is an id-mapped bind
/// mount (see [`super::idmap`]).
pub(crate) fn mount_entry(
    ctx: &Ctx,
    m: &Mount,
    idmapped: Option<BorrowedFd>,
) -> Result<(), RootfsError> {
    let dest = paths::clean(m.destination());
    let dest_s = dest.display().to_string();
    let opts: &[String] = match m.options() {
        Some(o) => o,
        None => &[],
    };
    let opts = options::parse(opts).map_err(|e| e.with_dest(&dest_s))?;
    let typ = m.typ().as_deref().unwrap_or("");
    let source = m.source().as_deref();
    tracing::debug!(destination = %dest_s, r#type = typ, source = ?source, options = ?m.options(), "mount");
    if opts.bind || typ == "bind" {
        let Some(source) = source else {
            return Err(RootfsError::Invalid(format!(
                "bind mount on {dest_s} has no source"
            )));
        };
        match idmapped {
            Some(tree) => attach_idmapped(ctx, &dest, tree, &opts)?,
            None => bind(ctx, &dest, &absolute(source), &opts)?,
        }
    } else {
        match typ {
            "cgroup" => return cgroup::mount(ctx, &dest, source, &opts),
            "" => {
                return Err(RootfsError::Invalid(format!(
                    "mount on {dest_s} has no type and is not a bind mount"
                )))
            }
            "proc" | "sysfs" => {
                let pinned = kernel_fs(ctx, &dest, typ, source, &opts)?;
                let r = propagate_fd(&pinned.root, &opts, &ctx.root.at(&dest));
                ctx.pinned.borrow_mut().push(pinned);
                return r;
            }
            _ => filesystem(ctx, &dest, typ, source, &opts)?,
        }
    }
    propagate(ctx.root, &dest, &opts)
}

/// Bind-mount sources are absolute or relative to the bundle, which is the current directory.
fn absolute(source: &Path) -> PathBuf {
    if source.is_absolute() {
        return source.to_path_buf();
    }
    match std::env::current_dir() {
        Ok(cwd) => cwd.join(source),
        Err(_) => source.to_path_buf(),
    }
}

/// Refuse mounts over /proc entries, looking at where the target really is in the rootfs.
fn check_proc(root: &Root, target: &OwnedFd, dest: &Path, fstype: &str) -> Result<(), RootfsError> {
    let real = root.real_path(target).unwrap_or_else(|| dest.to_path_buf());
    paths::check_proc_mount(&real, fstype).map_err(|why| {
        RootfsError::Invalid(format!(
            "mount on {} in rootfs {}: {why}",
            dest.display(),
            root.path().display()
        ))
    })
}

/// A bind mount of a host path (file or directory) onto `dest`, then a remount for flags.
pub(crate) fn bind(
    ctx: &Ctx,
    dest: &Path,
    source: &Path,
    opts: &MountOptions,
) -> Result<(), RootfsError> {
    let root = ctx.root;
    let src = match nix::fcntl::open(source, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => {
            return Err(RootfsError::Invalid(format!(
                "mount source {} does not exist (bind mount on {})",
                source.display(),
                dest.display()
            )))
        }
        Err(e) => return Err(sys(format!("opening mount source {}", source.display()))(e)),
    };
    let src_is_dir =
        is_dir(&src).map_err(sys(format!("stat of mount source {}", source.display())))?;
    let target = if src_is_dir {
        root.mkdir_all(dest)?
    } else {
        root.create_file(dest)?
    };
    check_proc(root, &target, dest, "bind")?;
    let mut flags = MsFlags::MS_BIND;
    if opts.recursive {
        flags |= MsFlags::MS_REC;
    }
    tracing::debug!(source = %source.display(), destination = %dest.display(), ?flags, "bind mount");
    mount_on(Some(fd_path(&src).as_str()), &target, None, flags, None).map_err(sys(format!(
        "bind-mounting {} on {}",
        source.display(),
        root.at(dest)
    )))?;
    drop(target);
    remount_extra(root, dest, opts)
}

/// An id-mapped bind mount: the parent's detached tree attached onto `dest` (a directory or
/// a file, like the source), then a remount for flags as for [`bind`].
fn attach_idmapped(
    ctx: &Ctx,
    dest: &Path,
    tree: BorrowedFd,
    opts: &MountOptions,
) -> Result<(), RootfsError> {
    let root = ctx.root;
    let target = if is_dir(tree).map_err(sys(format!(
        "stat of the id-mapped mount for {}",
        dest.display()
    )))? {
        root.mkdir_all(dest)?
    } else {
        root.create_file(dest)?
    };
    check_proc(root, &target, dest, "bind")?;
    tracing::debug!(destination = %dest.display(), "attaching an id-mapped bind mount");
    crate::sys::fsmount::attach(tree, target.as_fd()).map_err(sys(format!(
        "attaching the id-mapped bind mount on {}",
        root.at(dest)
    )))?;
    drop(target);
    remount_extra(root, dest, opts)
}

/// The flags a bind mount ignores take a second, remount call on the new mount.
fn remount_extra(root: &Root, dest: &Path, opts: &MountOptions) -> Result<(), RootfsError> {
    let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    if extra.is_empty() {
        return Ok(());
    }
    let target = root
        .open_path(dest)
        .map_err(sys(root.ctx("reopening", dest)))?;
    remount_bind(&fd_path(&target), extra, opts.clear, &root.at(dest))
}

/// A filesystem mount (proc, sysfs, tmpfs, mqueue, devpts, overlay, ...).
pub(crate) fn filesystem(
    ctx: &Ctx,
    dest: &Path,
    typ: &str,
    source: Option<&Path>,
    opts: &MountOptions,
) -> Result<(), RootfsError> {
    let root = ctx.root;
    let mut data = opts.data.clone();
    data.extend(crate::security::lsm::mount_label_option(
        typ,
        ctx.mount_label,
    ));
    let (target, existed) = match root.open_path(dest) {
        Ok(fd) => (fd, true),
        Err(Errno::ENOENT) => (root.mkdir_all(dest)?, false),
        Err(e) => return Err(sys(root.ctx("opening mount target", dest))(e)),
    };
    if existed && typ == "tmpfs" {
        let st = fstat(&target).map_err(sys(root.ctx("stat of", dest)))?;
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            data.insert(0, paths::tmpfs_mode_option(st.st_mode));
        }
    }
    check_proc(root, &target, dest, typ)?;
    let mut flags = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
    let delay_ro = typ == "tmpfs" || dest == Path::new("/dev");
    if delay_ro {
        // Files are created in /dev and under tmpfs mounts (targets of later mounts, devices,
        // copy-up); finalize() makes them read-only.
        flags.remove(MsFlags::MS_RDONLY);
    }
    let copy_from = if opts.tmpcopyup && typ == "tmpfs" && existed {
        Some(
            root.open_at(dest, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                .map_err(sys(root.ctx("opening for tmpcopyup", dest)))?,
        )
    } else {
        None
    };
    let src = source
        .map(|s| s.display().to_string())
        .unwrap_or_else(|| typ.to_string());
    let data = data.join(",");
    tracing::debug!(source = %src, destination = %dest.display(), r#type = typ, ?flags, data = %data, "mount");
    match mount_on(Some(&src), &target, Some(typ), flags, Some(&data)) {
        Ok(()) => {}
        // Without its own ipc namespace, a user namespace cannot mount mqueue: bind the
        // host's instead, as runc does.
        Err(Errno::EPERM | Errno::EBUSY) if ctx.in_userns && typ == "mqueue" => {
            drop(target);
            tracing::debug!(destination = %dest.display(), "falling back to a bind mount of /dev/mqueue");
            let mut b = opts.clone();
            b.bind = true;
            b.flags |= MsFlags::MS_BIND;
            return bind(ctx, dest, Path::new("/dev/mqueue"), &b);
        }
        // devpts refuses a gid= that is not mapped in the user namespace (the usual gid=5 of
        // default configs): mount without it, with a warning, rather than fail.
        Err(Errno::EINVAL) if ctx.in_userns && typ == "devpts" && data.contains("gid=") => {
            let without: Vec<&str> = data.split(',').filter(|o| !o.starts_with("gid=")).collect();
            tracing::warn!(destination = %dest.display(), "devpts gid= is not mapped in the user namespace; mounting without it");
            mount_on(
                Some(&src),
                &target,
                Some(typ),
                flags,
                Some(&without.join(",")),
            )
            .map_err(sys(format!("mounting {typ} on {}", root.at(dest))))?;
        }
        Err(e) => return Err(sys(format!("mounting {typ} on {}", root.at(dest)))(e)),
    }
    drop(target);
    if let Some(from) = copy_from {
        let to = root
            .open_at(dest, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            .map_err(sys(root.ctx("opening new tmpfs", dest)))?;
        copyup::copy_tree(from.as_fd(), to.as_fd(), &root.at(dest))?;
    }
    Ok(())
}

/// proc and sysfs: mounted only on a real directory, looked up once without following a
/// symlink and mounted on by fd, then pinned (see [`Pinned`]).
fn kernel_fs(
    ctx: &Ctx,
    dest: &Path,
    typ: &str,
    source: Option<&Path>,
    opts: &MountOptions,
) -> Result<Pinned, RootfsError> {
    let root = ctx.root;
    let not_dir = |why: String| {
        RootfsError::Invalid(format!(
            "{typ} must be mounted on an ordinary directory: {} in rootfs {} {why}",
            dest.display(),
            root.path().display()
        ))
    };
    let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
        return Err(not_dir("is the root".into()));
    };
    // The parent is resolved in the rootfs; it must be where the config says (no symlink).
    let dir = root.mkdir_all(parent)?;
    match root.real_path(&dir) {
        Some(real) if real == parent => {}
        real => {
            return Err(not_dir(format!(
                "resolves to {}",
                real.unwrap_or_default().join(name).display()
            )))
        }
    }
    let target = match open_dir_nofollow(&dir, name) {
        Err(Errno::ENOENT) => {
            match mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(sys(root.ctx("creating directory", dest))(e)),
            }
            open_dir_nofollow(&dir, name)
        }
        r => r,
    };
    let target = match target {
        Ok(fd) => fd,
        Err(Errno::ENOTDIR | Errno::ELOOP) => return Err(not_dir("is not one".into())),
        Err(e) => return Err(sys(root.ctx("opening mount target", dest))(e)),
    };
    check_proc(root, &target, dest, typ)?;
    let flags = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
    let src = source
        .map(|s| s.display().to_string())
        .unwrap_or_else(|| typ.to_string());
    let mut data = opts.data.clone();
    data.extend(crate::security::lsm::mount_label_option(
        typ,
        ctx.mount_label,
    ));
    let data = data.join(",");
    tracing::debug!(source = %src, destination = %dest.display(), r#type = typ, ?flags, data = %data, "mount");
    let magic = if typ == "proc" {
        PROC_SUPER_MAGIC
    } else {
        SYSFS_MAGIC
    };
    match mount_on(Some(&src), &target, Some(typ), flags, Some(&data)) {
        Ok(()) => pin(ctx, &dir, name, dest, typ, magic),
        // Without its own network namespace, a user namespace cannot mount sysfs: bind the
        // host's instead (recursively), as runc does.
        Err(Errno::EPERM | Errno::EBUSY) if ctx.in_userns && typ == "sysfs" => {
            tracing::debug!(destination = %dest.display(), "falling back to a bind mount of /sys");
            let host = nix::fcntl::open(
                "/sys",
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(sys("opening /sys"))?;
            let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
            mount_on(Some(&fd_path(&host)), &target, None, flags, None)
                .map_err(sys(format!("bind-mounting /sys on {}", root.at(dest))))?;
            let pinned = pin(ctx, &dir, name, dest, typ, magic)?;
            let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
            if !extra.is_empty() {
                remount_bind(&fd_path(&pinned.root), extra, opts.clear, &root.at(dest))?;
            }
            Ok(pinned)
        }
        Err(e) => Err(sys(format!("mounting {typ} on {}", root.at(dest)))(e)),
    }
}

/// Open the root of the mount just made on `name` in `dir` (the lookup crosses into it) and
/// check it is that mount: a new mount of the expected filesystem, at its root. A directory
/// renamed or swapped in between fails these checks, and then `create` fails.
fn pin(
    ctx: &Ctx,
    dir: &OwnedFd,
    name: &std::ffi::OsStr,
    dest: &Path,
    typ: &str,
    magic: FsType,
) -> Result<Pinned, RootfsError> {
    let replaced = || {
        RootfsError::Invalid(format!(
            "mounting {typ} on {}: the directory was replaced while it was mounted on (renamed or swapped for a symlink by another process?)",
            ctx.root.at(dest)
        ))
    };
    let what = || format!("checking the {typ} mount on {}", ctx.root.at(dest));
    let fd = match open_dir_nofollow(dir, name) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => return Err(replaced()),
        Err(e) => return Err(sys(what())(e)),
    };
    if fstatfs(&fd).map_err(sys(what()))?.filesystem_type() != magic {
        return Err(replaced());
    }
    // PROC_ROOT_INO: the root of a procfs. (A sysfs bound from the host need not be one.)
    if typ == "proc" && fstat(&fd).map_err(sys(what()))?.st_ino != 1 {
        return Err(replaced());
    }
    let mnt_id = mount_id(&fd).map_err(sys(what()))?;
    if ctx.pinned.borrow().iter().any(|p| p.mnt_id == mnt_id) {
        return Err(replaced());
    }
    Ok(Pinned {
        dest: dest.to_path_buf(),
        root: fd,
        mnt_id,
    })
}

/// Propagation changes and recursive attributes, each on a fresh fd of the new mount.
pub(crate) fn propagate(root: &Root, dest: &Path, opts: &MountOptions) -> Result<(), RootfsError> {
    for p in &opts.propagation {
        let fd = root
            .open_path(dest)
            .map_err(sys(root.ctx("reopening", dest)))?;
        tracing::debug!(destination = %dest.display(), flags = ?p, "propagation");
        mount_on(None, &fd, None, *p, None).map_err(sys(format!(
            "setting propagation {p:?} on {}",
            root.at(dest)
        )))?;
    }
    if opts.has_recursive_attrs() {
        let fd = root
            .open_path(dest)
            .map_err(sys(root.ctx("reopening", dest)))?;
        tracing::debug!(destination = %dest.display(), set = opts.attr_set, clr = opts.attr_clr, "mount_setattr");
        crate::sys::mount::mount_setattr_recursive(&fd, opts.attr_set, opts.attr_clr).map_err(
            sys(format!(
                "setting recursive mount attributes on {}",
                root.at(dest)
            )),
        )?;
    }
    Ok(())
}

/// [`propagate`] on a pinned mount root: by its fd, with no lookup by path. `what` names it.
fn propagate_fd(fd: &OwnedFd, opts: &MountOptions, what: &str) -> Result<(), RootfsError> {
    for p in &opts.propagation {
        tracing::debug!(destination = what, flags = ?p, "propagation");
        mount_on(None, fd, None, *p, None)
            .map_err(sys(format!("setting propagation {p:?} on {what}")))?;
    }
    if opts.has_recursive_attrs() {
        tracing::debug!(
            destination = what,
            set = opts.attr_set,
            clr = opts.attr_clr,
            "mount_setattr"
        );
        crate::sys::mount::mount_setattr_recursive(fd, opts.attr_set, opts.attr_clr)
            .map_err(sys(format!("setting recursive mount attributes on {what}")))?;
    }
    Ok(())
}
