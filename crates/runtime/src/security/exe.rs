//! CVE-2019-5736: a container must never reach the runtime's binary on the host through
//! `/proc/<pid>/exe`.
//!
//! husk clones the container's init from the `husk create` process, so until init execs, its
//! `/proc/self/exe` is husk's binary. A container program that gets itself exec'd as that
//! file (`args` of `/proc/self/exe`, a `#!/proc/self/exe` script, a symlink to it) could then
//! reopen it for writing once husk exits and replace the host's husk. As runc does, `create`
//! therefore first re-executes itself from a sealed memfd copy: everything a container could
//! reach through `/proc/self/exe` is then read-only.
//!
//! Cheapest first: if the binary already sits on a read-only mount there is nothing to do;
//! otherwise husk re-executes itself through a detached read-only bind mount of its own binary
//! (open_tree + mount_setattr: a few syscalls, no copy); only where that fails (old kernels) it
//! copies itself into a sealed memfd, as runc 1.1 does. An unprivileged caller running a
//! binary of root's that it cannot write needs neither (see [`out_of_callers_reach`]).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};

use super::SecurityError;

/// The memfd's name; `/proc/self/exe` then reads `/memfd:husk-sealed (deleted)`.
const NAME: &str = "husk-sealed";

/// Whether this process already runs from a binary that cannot be written through
/// `/proc/self/exe`: a sealed memfd copy, or a file on a read-only mount.
pub fn running_sealed() -> bool {
    let memfd = std::fs::read_link("/proc/self/exe").is_ok_and(|p| {
        p.as_os_str()
            .as_bytes()
            .starts_with(format!("/memfd:{NAME}").as_bytes())
    });
    memfd
        || nix::sys::statvfs::statvfs("/proc/self/exe")
            .is_ok_and(|st| st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// Whether the binary is beyond the reach of anything this caller's containers can run as:
/// husk is unprivileged in the host's user namespace (rootless by hand), the binary is
/// root's (owner and group 0, no group or other write bit, no ACL) and the kernel refuses
/// us write access. A container of an unprivileged user runs as that user or as its
/// subordinate ids, with no capability over root's files, so it can no more write the
/// binary than the user can without husk; the copy (6 MB a command, ~2.5 ms here) would
/// protect nothing. Root inside a user namespace (rootless podman) is not covered: its
/// read-only bind mount works, and costs nothing.
fn out_of_callers_reach() -> bool {
    use std::os::unix::fs::MetadataExt;
    if nix::unistd::geteuid().is_root() || crate::rootless::in_user_namespace() {
        return false;
    }
    let Ok(file) = std::fs::File::open("/proc/self/exe") else {
        return false;
    };
    let Ok(meta) = file.metadata() else {
        return false;
    };
    let writable = nix::unistd::access("/proc/self/exe", nix::unistd::AccessFlags::W_OK).is_ok();
    meta.uid() == 0
        && meta.gid() == 0
        && meta.mode() & 0o022 == 0
        && !writable
        && !crate::sys::security::fd_has_xattr(
            std::os::fd::AsFd::as_fd(&file),
            c"system.posix_acl_access",
        )
}

/// A detached, read-only bind mount of our own binary, opened as the file itself.
fn read_only_binary() -> Result<std::os::fd::OwnedFd, nix::Error> {
    use crate::sys::mount::attr;
    let tree = crate::sys::fsmount::clone_mount(
        std::os::fd::AsFd::as_fd(&std::fs::File::open("/proc/self")
            .map_err(|_| nix::Error::ENOENT)?),
        c"exe",
    )?;
    crate::sys::mount::mount_setattr_recursive(&tree, attr::RDONLY, 0)?;
    Ok(tree)
}

fn err(what: &str, e: impl std::fmt::Display) -> SecurityError {
    SecurityError::Refused(format!(
        "re-executing husk from a sealed copy (CVE-2019-5736): {what}: {e}"
    ))
}

/// Unless already done, re-execute husk with the same arguments and environment from a copy of
/// its binary that cannot be written through `/proc/self/exe` (see the module comment).
/// Returns only when already running from such a copy.
pub fn ensure_sealed() -> Result<(), SecurityError> {
    if running_sealed() {
        return Ok(());
    }
    if out_of_callers_reach() {
        tracing::debug!(
            "the husk binary is root's and this unprivileged caller cannot write it: no sealed copy needed"
        );
        return Ok(());
    }
    let to_c = |b: &[u8]| CString::new(b).map_err(|e| err("argument with a NUL byte", e));
    let args = std::env::args_os()
        .map(|a| to_c(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let env = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            to_c(&kv)
        })
        .collect::<Result<Vec<_>, _>>()?;
    match read_only_binary() {
        Ok(bin) => {
            tracing::debug!("re-executing through a read-only bind mount of the husk binary");
            let flags = nix::fcntl::AtFlags::AT_EMPTY_PATH;
            let e = match nix::unistd::execveat(&bin, c"", &args, &env, flags) {
                Ok(never) => match never {},
                Err(e) => e,
            };
            tracing::debug!("execveat of the read-only binary: {e}; copying to a memfd instead");
        }
        Err(e) => tracing::debug!("read-only bind mount of the husk binary: {e}; copying to a memfd"),
    }
    let mut src =
        std::fs::File::open("/proc/self/exe").map_err(|e| err("opening /proc/self/exe", e))?;
    let fd = memfd_create(NAME, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)
        .map_err(|e| err("memfd_create", e))?;
    let mut dst = std::fs::File::from(fd);
    std::io::copy(&mut src, &mut dst).map_err(|e| err("copying the binary", e))?;
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    fcntl(&dst, FcntlArg::F_ADD_SEALS(seals)).map_err(|e| err("sealing the copy", e))?;

    tracing::debug!("re-executing from a sealed copy of the husk binary");
    match nix::unistd::fexecve(&dst, &args, &env) {
        Ok(never) => match never {},
        Err(e) => Err(err("fexecve", e)),
    }
}
