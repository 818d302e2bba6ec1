//! Mounts of type `cgroup`: the container's view of /sys/fs/cgroup.
//!
//! On a pure cgroup v2 host: a cgroup2 mount. Where the kernel refuses it (in a user
//! namespace), a bind of the container's own cgroup when it has a cgroup namespace (what the
//! namespace would show, as runc does), else of the host's whole /sys/fs/cgroup. On a v1 or hybrid
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
            let own = ctx
                .cgroupns
                .then(|| own_unified(ctx.proc_cgroup?))
                .flatten()
                .filter(|p| p.is_dir());
            let source = own.as_deref().unwrap_or(Path::new(CGROUP_ROOT));
            tracing::debug!(destination = %dest.display(), source = %source.display(), "cgroup2 refused; binding");
            let mut b = opts.clone();
            b.bind = true;
            b.recursive = true;
            mounts::bind(ctx, dest, source, &b)?;
        }
        Err(e) => return Err(sys(format!("mounting cgroup2 on {}", root.at(dest)))(e)),
    }
    mounts::propagate(root, dest, opts)
}

/// The host path of our cgroup2 cgroup, from `/proc/self/cgroup` text read outside the
/// cgroup namespace; `None` at the root (nothing narrower to bind) or without a `0::` line.
fn own_unified(proc_cgroup: &str) -> Option<PathBuf> {
    let lines = mountinfo::parse_proc_cgroup(proc_cgroup);
    let rel = mountinfo::v2_path(&lines)?.strip_prefix("/").ok()?;
    let normal = rel
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    (normal && !rel.as_os_str().is_empty()).then(|| Path::new(CGROUP_ROOT).join(rel))
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
    // Read outside the cgroup namespace when init made one (inside, every path is "/").
    let read;
    let cgroups = match ctx.proc_cgroup {
        Some(text) => text,
        None => {
            read = std::fs::read_to_string("/proc/self/cgroup")
                .map_err(io("reading /proc/self/cgroup"))?;
            &read
        }
    };
    let lines = mountinfo::parse_proc_cgroup(cgroups);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_unified_cgroup_from_proc_self_cgroup() {
        let scope = "0::/user.slice/user-1000.slice/user@1000.service/user.slice/husk-a.scope\n";
        assert_eq!(
            own_unified(scope).as_deref(),
            Some(Path::new(
                "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/user.slice/husk-a.scope"
            ))
        );
        // hybrid: the 0:: line, not a v1 one
        assert_eq!(
            own_unified("5:memory:/m\n1:name=systemd:/s\n0::/u/v\n").as_deref(),
            Some(Path::new("/sys/fs/cgroup/u/v"))
        );
        // nothing narrower than the root, no v2 line, a path outside our namespace
        assert_eq!(own_unified("0::/\n"), None);
        assert_eq!(own_unified("4:memory:/m\n"), None);
        assert_eq!(own_unified("0::/../../x\n"), None);
        assert_eq!(own_unified(""), None);
    }
}
