//! CVE-2019-5736: a container must never reach the runtime's binary on the host through
//! `/proc/<pid>/exe`.
//!
//! husk clones the container's init from the `husk create` process, so until init execs, its
//! `/proc/self/exe` is husk's binary. A container program that gets itself exec'd as that
//! file (`args` of `/proc/self/exe`, a `#!/proc/self/exe` script, a symlink to it) could then
//! reopen it for writing once husk exits and replace the host's husk. As runc does, `create`
//! therefore first re-executes itself from a sealed memfd copy: everything a container could
//! reach through `/proc/self/exe` is then an anonymous, write-sealed file.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};

use super::SecurityError;

/// The memfd's name; `/proc/self/exe` then reads `/memfd:husk-sealed (deleted)`.
const NAME: &str = "husk-sealed";

/// Whether this process already runs from the sealed copy.
pub fn running_sealed() -> bool {
    std::fs::read_link("/proc/self/exe").is_ok_and(|p| {
        p.as_os_str()
            .as_bytes()
            .starts_with(format!("/memfd:{NAME}").as_bytes())
    })
}

fn err(what: &str, e: impl std::fmt::Display) -> SecurityError {
    SecurityError::Refused(format!(
        "re-executing husk from a sealed copy (CVE-2019-5736): {what}: {e}"
    ))
}

/// Unless already done, copy husk's binary into a sealed memfd and re-execute it with the same
/// arguments and environment. Returns only when already running sealed.
pub fn ensure_sealed() -> Result<(), SecurityError> {
    if running_sealed() {
        return Ok(());
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
    tracing::debug!("re-executing from a sealed copy of the husk binary");
    match nix::unistd::fexecve(&dst, &args, &env) {
        Ok(never) => match never {},
        Err(e) => Err(err("fexecve", e)),
    }
}
