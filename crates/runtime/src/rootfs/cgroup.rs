//! Mounts of type `cgroup`: the container's view of /sys/fs/cgroup.
//!
//! On a pure cgroup v2 host: a cgroup2 mount (a bind of the host's /sys/fs/cgroup when the
//! kernel refuses, i.e. in a user namespace without a cgroup namespace). On a v1 or hybrid
//! host, as runc does: a tmpfs with one directory per v1 hierarchy, each the container's own
//! cgroup bind-mounted from the host (or, with a cgroup namespace, the hierarchy mounted
//! afresh), plus `cpu -> cpu,cpuacct` style symlinks for co-mounted controllers.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::unistd::symlinkat;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::mounts::{self, mount_on, Ctx};
use super::options::MountOptions;
use super::{io, mountinfo, sys, RootfsError};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Whether the container gets a cgroup namespace (created or joined).
pub(crate) fn has_cgroupns(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Cgroup))
}

fn host_is_unified() -> bool {
    nix::sys::statfs::statfs(CGROUP_ROOT)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

const DEFAULT_FLAGS: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

pub(crate) fn mount(
    ctx: &Ctx,
    dest: &Path,
    source: Option<&Path>,
    opts: &MountOptions,
) -> Result<(), RootfsError> {
    if host_is_unified() {
        v2(ctx, dest, source, opts)
    } else {
        v1(ctx, dest, opts)
    }
}

fn v2(
    ctx: &Ctx,
    dest: &Path,
    source: Option<&Path>,
    opts: &MountOptions,
) -> Result<(), RootfsError> {
    let root = ctx.root;
    let target = root.mkdir_all(dest)?;
    let src = source
        .map(|s| s.display().to_string())
        .unwrap_or_else(|| "cgroup2".to_string());
    let flags = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
    tracing::debug!(destination = %dest.display(), ?flags, "mount cgroup2");
    match mount_on(
        Some(&src),
        &target,
        Some("cgroup2"),
        flags,
        Some(&opts.data.join(",")),
    ) {
        Ok(()) => {}
        Err(Errno::EPERM | Errno::EBUSY) => {
            drop(target);
            tracing::debug!(destination = %dest.display(), "cgroup2 refused; binding the host's /sys/fs/cgroup");
            let mut b = opts.clone();
            b.bind = true;
            b.recursive = true;
            mounts::bind(ctx, dest, Path::new(CGROUP_ROOT), &b)?;
        }
        Err(e) => return Err(sys(format!("mounting cgroup2 on {}", root.at(dest)))(e)),
    }
    mounts::propagate(root, dest, opts)
}

fn v1(ctx: &Ctx, dest: &Path, opts: &MountOptions) -> Result<(), RootfsError> {
    let root = ctx.root;
    let tmpfs = MountOptions {
        flags: DEFAULT_FLAGS,
        data: vec!["mode=755".to_string()],
        propagation: opts.propagation.clone(),
        ..MountOptions::default()
    };
    mounts::filesystem(ctx, dest, "tmpfs", Some(Path::new("tmpfs")), &tmpfs)?;
    mounts::propagate(root, dest, &tmpfs)?;

    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(io("reading /proc/self/mountinfo"))?;
    let cgroups =
        std::fs::read_to_string("/proc/self/cgroup").map_err(io("reading /proc/self/cgroup"))?;
    let lines = mountinfo::parse_proc_cgroup(&cgroups);
    let ro = opts.flags.contains(MsFlags::MS_RDONLY);
    let mut links: Vec<(String, String)> = Vec::new();
    for e in mountinfo::parse(&info)
        .iter()
        .filter(|e| e.fstype == "cgroup")
    {
        let Some(name) = e.mount_point.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        // Only the host's own hierarchies, not cgroup mounts in some container rootfs.
        if e.mount_point.parent() != Some(Path::new(CGROUP_ROOT)) {
            continue;
        }
        let controllers = mountinfo::v1_controllers(e);
        let sub = dest.join(name);
        if ctx.cgroupns && mount_hierarchy(ctx, &sub, &controllers, ro)? {
            // mounted afresh: the namespace shows the container's cgroup as the root
        } else {
            let Some(own) = mountinfo::v1_path_in_mount(&lines, &controllers, &e.root) else {
                tracing::debug!(hierarchy = name, "not in /proc/self/cgroup; skipped");
                continue;
            };
            let source: PathBuf = e.mount_point.join(own.strip_prefix("/").unwrap_or(&own));
            let mut b = MountOptions {
                bind: true,
                recursive: true,
                ..MountOptions::default()
            };
            b.flags = MsFlags::MS_BIND | MsFlags::MS_REC | DEFAULT_FLAGS;
            if ro {
                b.flags |= MsFlags::MS_RDONLY;
            }
            mounts::bind(ctx, &sub, &source, &b)?;
        }
        if name.contains(',') {
            links.extend(
                name.split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| (p.to_string(), name.to_string())),
            );
        }
    }
    let dir = root.mkdir_all(dest)?;
    for (link, target) in &links {
        match symlinkat(target.as_str(), dir.as_fd(), link.as_str()) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(sys(root.ctx("creating symlink", &dest.join(link.as_str())))(e)),
        }
    }
    drop(dir);
    if ro {
        let fd = root
            .open_path(dest)
            .map_err(sys(root.ctx("reopening", dest)))?;
        mounts::remount_bind(
            &super::resolve::fd_path(&fd),
            MsFlags::MS_RDONLY | DEFAULT_FLAGS,
            MsFlags::empty(),
            &root.at(dest),
        )?;
    }
    Ok(())
}

/// With a cgroup namespace, mount the v1 hierarchy itself; `Ok(false)` when the kernel refuses
/// (the caller binds instead).
fn mount_hierarchy(
    ctx: &Ctx,
    sub: &Path,
    controllers: &[String],
    ro: bool,
) -> Result<bool, RootfsError> {
    let root = ctx.root;
    let target = root.mkdir_all(sub)?;
    let mut flags = DEFAULT_FLAGS;
    if ro {
        flags |= MsFlags::MS_RDONLY;
    }
    let data = controllers.join(",");
    tracing::debug!(destination = %sub.display(), data = %data, "mount cgroup");
    match mount_on(Some("cgroup"), &target, Some("cgroup"), flags, Some(&data)) {
        Ok(()) => Ok(true),
        Err(Errno::EPERM | Errno::EBUSY | Errno::EINVAL) => Ok(false),
        Err(e) => Err(sys(format!("mounting cgroup ({data}) on {}", root.at(sub)))(e)),
    }
}
