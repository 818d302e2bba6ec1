//! Id-mapped bind mounts: `mounts[].uidMappings`/`gidMappings` and the `idmap`/`ridmap`
//! options.
//!
//! Unlike the rest of this module, the trees are made by the `create` process, in the host's
//! user and mount namespaces, before the init is cloned: `mount_setattr(MOUNT_ATTR_IDMAP)`
//! needs CAP_SYS_ADMIN over the filesystem's user namespace (the host's), which an init in a
//! new user namespace no longer has. For each such mount: `open_tree(OPEN_TREE_CLONE)` of the
//! source (`AT_RECURSIVE` for `rbind`), then the mapping of a user namespace on the detached
//! tree (every mount of it for `ridmap`, only its top for `idmap`). The init inherits the fds
//! and attaches each tree with `move_mount` where the bind mount would go.
//!
//! The user namespace is the mount's own mappings (a short-lived helper process in a new user
//! namespace with those maps, one per distinct mapping), or without them the container's: its
//! `linux.uidMappings`/`gidMappings` the same way, or the user namespace it joins by path.
//! The mapping reads as for a user namespace: an id `containerID + n` on disk shows as
//! `hostID + n` through the mount.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Mount, Spec};

use super::options::{self, Idmap};
use super::{sys, RootfsError};
use crate::sys::process::{clone_process, exit_now, Forked};

/// The detached, id-mapped trees of a config's mounts, by index in `mounts`.
#[derive(Default)]
pub struct IdmappedMounts {
    trees: Vec<(usize, OwnedFd)>,
}

impl IdmappedMounts {
    /// Make the tree of every id-mapped mount of `spec` (relative sources are relative to
    /// `bundle`). Nothing is attached anywhere: dropping the result frees them.
    pub fn prepare(spec: &Spec, bundle: &Path) -> Result<IdmappedMounts, RootfsError> {
        let mut out = IdmappedMounts::default();
        let Some(mounts) = spec.mounts() else {
            return Ok(out);
        };
        let mut userns = UsernsCache::default();
        for (index, m) in mounts.iter().enumerate() {
            let opts: &[String] = m.options().as_deref().unwrap_or(&[]);
            // Most mounts are not id-mapped: skip them without parsing their options again
            // (validation did) on create's hot path.
            let maybe = m.uid_mappings().is_some()
                || m.gid_mappings().is_some()
                || opts.iter().any(|o| o == "idmap" || o == "ridmap");
            if !maybe {
                continue;
            }
            let opts = options::parse(opts)?;
            let Some(how) = idmap_of(m, opts.idmap) else {
                continue;
            };
            let dest = m.destination().display().to_string();
            let ns = userns.get(spec, m, &dest)?;
            let source = m
                .source()
                .as_deref()
                .map(|s| bundle.join(s))
                .ok_or_else(|| {
                    RootfsError::Invalid(format!("id-mapped bind mount on {dest} has no source"))
                })?;
            let tree = mapped_tree(&source, &dest, opts.recursive, how, ns.as_fd())?;
            out.trees.push((index, tree));
        }
        Ok(out)
    }

    /// The tree for `mounts[index]`, if that mount is id-mapped.
    pub(crate) fn tree(&self, index: usize) -> Option<BorrowedFd<'_>> {
        self.trees
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, fd)| fd.as_fd())
    }
}

/// Whether (and how) a mount is id-mapped: `idmap`/`ridmap`, or mappings on the mount alone
/// (then as `idmap`, like runc).
fn idmap_of(m: &Mount, option: Option<Idmap>) -> Option<Idmap> {
    option.or_else(|| {
        (m.uid_mappings().is_some() || m.gid_mappings().is_some()).then_some(Idmap::Flat)
    })
}

/// The detached copy of `source` with the mapping of `userns` on it.
fn mapped_tree(
    source: &Path,
    dest: &str,
    rbind: bool,
    how: Idmap,
    userns: BorrowedFd,
) -> Result<OwnedFd, RootfsError> {
    let what = format!("id-mapped bind mount of {} on {dest}", source.display());
    let path = CString::new(source.as_os_str().as_bytes())
        .map_err(|_| RootfsError::Invalid(format!("{what}: the source contains a NUL byte")))?;
    let tree = crate::sys::fsmount::clone_tree(&path, rbind).map_err(|e| match e {
        Errno::ENOENT => RootfsError::Invalid(format!(
            "mount source {} does not exist (bind mount on {dest})",
            source.display()
        )),
        e => sys(format!("{what}: open_tree"))(e),
    })?;
    let recursive = how == Idmap::Recursive;
    tracing::debug!(source = %source.display(), destination = dest, recursive, "id-mapping a bind mount");
    crate::sys::mount::mount_setattr_idmap(tree.as_fd(), userns, recursive).map_err(|e| {
        let why = match e {
            Errno::EINVAL => " (does the filesystem support id-mapped mounts?)",
            Errno::ENOSYS => " (the kernel has no mount_setattr: Linux 5.12 or later is needed)",
            _ => "",
        };
        RootfsError::Invalid(format!("{what}: setting the id mapping: {e}{why}"))
    })?;
    Ok(tree)
}

/// User namespaces with a given mapping, made once each.
#[derive(Default)]
struct UsernsCache {
    made: Vec<(Vec<LinuxIdMapping>, Vec<LinuxIdMapping>, OwnedFd)>,
    /// The user namespace the container joins by path, once opened.
    joined: Option<OwnedFd>,
}

impl UsernsCache {
    /// The user namespace whose mapping the mount takes (see the module doc).
    fn get(&mut self, spec: &Spec, m: &Mount, dest: &str) -> Result<&OwnedFd, RootfsError> {
        let linux = spec.linux().as_ref();
        let (uid, gid) = match (m.uid_mappings(), m.gid_mappings()) {
            (Some(u), Some(g)) => (u.clone(), g.clone()),
            _ => match linux.and_then(|l| l.uid_mappings().clone().zip(l.gid_mappings().clone())) {
                Some((u, g)) if !u.is_empty() => (u, g),
                _ => return self.joined(spec, dest),
            },
        };
        let found = self
            .made
            .iter()
            .position(|(u, g, _)| *u == uid && *g == gid);
        let i = match found {
            Some(i) => i,
            None => {
                let fd = new_userns(&uid, &gid)
                    .map_err(|e| RootfsError::Invalid(format!("id-mapped mount on {dest}: {e}")))?;
                self.made.push((uid, gid, fd));
                self.made.len() - 1
            }
        };
        Ok(&self.made[i].2)
    }

    /// The user namespace the container joins by path (opened once).
    fn joined(&mut self, spec: &Spec, dest: &str) -> Result<&OwnedFd, RootfsError> {
        let slot = match &mut self.joined {
            Some(fd) => return Ok(fd),
            slot @ None => slot,
        };
        let path: Option<PathBuf> = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .and_then(|ns| ns.iter().find(|n| n.typ() == LinuxNamespaceType::User))
            .and_then(|n| n.path().clone());
        let Some(path) = path else {
            return Err(RootfsError::Invalid(format!(
                "idmap on {dest} without uidMappings/gidMappings needs a user namespace for the container"
            )));
        };
        let fd = nix::fcntl::open(&path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(sys(format!(
                "opening user namespace {} for the id-mapped mount on {dest}",
                path.display()
            )))?;
        Ok(slot.insert(fd))
    }
}

/// A new user namespace with these mappings, held by an fd: a child cloned into it waits on
/// a pipe while we write its maps and open its `ns/user`, then exits.
fn new_userns(uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<OwnedFd, String> {
    let (rd, wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| format!("creating a pipe for a user namespace: {e}"))?;
    let child = match clone_process(CloneFlags::CLONE_NEWUSER.bits()) {
        Ok(Forked::Child) => {
            drop(wr);
            // EOF (or any error) once the parent is done with us.
            let _ = nix::unistd::read(&rd, &mut [0u8; 1]);
            exit_now(0)
        }
        Ok(Forked::Parent(pid)) => pid,
        Err(e) => return Err(format!("cloning a process into a new user namespace: {e}")),
    };
    drop(rd);
    let result = crate::namespaces::write_id_maps(child.as_raw(), uid, gid).and_then(|()| {
        let path = format!("/proc/{child}/ns/user");
        nix::fcntl::open(
            path.as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| format!("opening {path}: {e}"))
    });
    drop(wr);
    let _ = nix::sys::wait::waitpid(child, None);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(json: &str) -> Mount {
        serde_json::from_str(json).expect("test mount")
    }

    #[test]
    fn which_mounts_are_id_mapped() {
        let plain = mount(r#"{"destination":"/d","source":"/s","options":["rbind"]}"#);
        assert_eq!(idmap_of(&plain, None), None);
        assert_eq!(
            idmap_of(&plain, Some(Idmap::Recursive)),
            Some(Idmap::Recursive)
        );
        let maps = mount(
            r#"{"destination":"/d","source":"/s","options":["rbind"],
                "uidMappings":[{"containerID":0,"hostID":1,"size":1}],
                "gidMappings":[{"containerID":0,"hostID":1,"size":1}]}"#,
        );
        assert_eq!(idmap_of(&maps, None), Some(Idmap::Flat));
        assert_eq!(
            idmap_of(&maps, Some(Idmap::Recursive)),
            Some(Idmap::Recursive)
        );
    }
}
