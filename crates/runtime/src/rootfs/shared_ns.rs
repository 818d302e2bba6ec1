//! A container without a mount namespace of its own (the spec: a namespace type that is not
//! listed is inherited from the runtime) has its mounts in the runtime's mount namespace, all
//! of them beneath one private bind of the rootfs onto itself (`pivot::prepare_shared_root`).
//! `create` records that bind's mount id and `delete` (or a failed `create`) detaches it, and
//! with it every mount the container made: runc leaves them all behind.

use std::path::Path;

use nix::mount::{umount2, MntFlags};

use super::{io, mountinfo, sys, RootfsError};

/// The id of the mount on top of `path` in this process's mount namespace, if `path` is a mount
/// point (the last of a stack at the same point: mountinfo lists mounts in the order they were
/// mounted).
pub fn top_mount_id(path: &Path) -> Result<Option<u64>, RootfsError> {
    let path = path
        .canonicalize()
        .map_err(io(format!("resolving rootfs {}", path.display())))?;
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(io("reading /proc/self/mountinfo"))?;
    Ok(mountinfo::parse(&text)
        .iter()
        .rev()
        .find(|e| e.mount_point == path)
        .map(|e| e.id))
}

/// After `create`: the rootfs bind it made, i.e. the mount on top of `rootfs` when that is not
/// the one that was there before (`before`).
pub fn created_mount(rootfs: &Path, before: Option<u64>) -> Result<Option<u64>, RootfsError> {
    Ok(top_mount_id(rootfs)?.filter(|id| Some(*id) != before))
}

/// Detaches the rootfs bind `id` and everything beneath it (MNT_DETACH takes the whole
/// subtree), if it is still the mount on top of `rootfs`; a rootfs that is gone, or a bind
/// already detached, is nothing left to do.
pub fn detach(rootfs: &Path, id: u64) -> Result<(), RootfsError> {
    if !rootfs.exists() || top_mount_id(rootfs)? != Some(id) {
        return Ok(());
    }
    tracing::debug!(rootfs = %rootfs.display(), id, "detaching the container's mounts from the runtime's mount namespace");
    umount2(rootfs, MntFlags::MNT_DETACH).map_err(sys(format!(
        "detaching the container's mounts beneath rootfs {} (mount {id})",
        rootfs.display()
    )))
}
