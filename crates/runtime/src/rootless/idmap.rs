//! The id maps of a new user namespace made by an unprivileged caller. The kernel lets such
//! a caller write one line that maps its own id (and the gid line only once setgroups is
//! denied); anything more goes through the setuid helpers newuidmap and newgidmap (package
//! uidmap), which check /etc/subuid and /etc/subgid. husk checks the mappings against those
//! files first, before any side effect, so that a refusal names the range.

use std::path::{Path, PathBuf};
use std::process::Command;

use oci_spec::runtime::{LinuxIdMapping, Spec};

use super::{subid, RootlessError};
use crate::namespaces::NsPlan;

/// How one of the two maps gets written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum How {
    /// One line of the caller's own id, written by husk itself.
    Direct,
    /// Through this helper (newuidmap or newgidmap).
    Helper(PathBuf),
}

/// How an unprivileged caller writes the maps of the container's new user namespace.
#[derive(Debug, Clone)]
pub struct IdMapPlan {
    uid: How,
    gid: How,
}

/// Before any side effect. `None`: husk is privileged (uid 0, in whatever user namespace),
/// or the config joins a user namespace instead of making one, and the maps need nothing
/// special. For an unprivileged caller the config must have a user namespace, its mappings
/// must be the caller's own ids or subordinate ids, and the helpers must exist.
pub fn plan(spec: &Spec, ns: &NsPlan) -> Result<Option<IdMapPlan>, RootlessError> {
    let (euid, egid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
    if euid == 0 {
        return Ok(None);
    }
    if !ns.in_userns() {
        return Err(RootlessError::NoUserNamespace { uid: euid });
    }
    if !ns.new_user {
        return Ok(None);
    }
    let linux = spec.linux().as_ref();
    let none = Vec::new();
    let uids = linux.and_then(|l| l.uid_mappings().as_ref()).unwrap_or(&none);
    let gids = linux.and_then(|l| l.gid_mappings().as_ref()).unwrap_or(&none);
    let user = subid::user_name(euid);
    let uid = how(uids, "linux.uidMappings", euid, "/etc/subuid", "newuidmap", user.as_deref())?;
    let gid = how(gids, "linux.gidMappings", egid, "/etc/subgid", "newgidmap", user.as_deref())?;
    Ok(Some(IdMapPlan { uid, gid }))
}

fn how(
    maps: &[LinuxIdMapping],
    field: &str,
    own: u32,
    file: &str,
    helper: &str,
    user: Option<&str>,
) -> Result<How, RootlessError> {
    match maps {
        [] => Err(RootlessError::Mapping(format!(
            "{field}: a rootless container's user namespace needs at least one mapping (its \
             own id is {own})"
        ))),
        [m] if m.size() == 1 && m.host_id() == own => Ok(How::Direct),
        _ => {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            let uid = nix::unistd::geteuid().as_raw();
            let ranges = subid::ranges(&text, user, uid);
            let name = user.map_or_else(|| uid.to_string(), str::to_string);
            subid::check(maps, field, own, Path::new(file), &name, &ranges)
                .map_err(RootlessError::Mapping)?;
            let path = find_helper(helper).ok_or_else(|| {
                RootlessError::Mapping(format!(
                    "{field}: mapping more than the caller's own id needs {helper}, which is not \
                     installed (Debian package uidmap)"
                ))
            })?;
            Ok(How::Helper(path))
        }
    }
}

/// `name` in $PATH, else in /usr/bin and /bin.
fn find_helper(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Writes the maps of `pid` (in its new user namespace, waiting) as `plan` says.
pub fn write(pid: i32, spec: &Spec, plan: &IdMapPlan) -> Result<(), String> {
    let linux = spec.linux().as_ref();
    let none = Vec::new();
    let uids = linux.and_then(|l| l.uid_mappings().as_ref()).unwrap_or(&none);
    let gids = linux.and_then(|l| l.gid_mappings().as_ref()).unwrap_or(&none);
    write_one(pid, "uid_map", uids, &plan.uid)?;
    if plan.gid == How::Direct {
        // The kernel lets an unprivileged process write gid_map only once setgroups(2) is
        // denied in the namespace (it could drop groups that deny it access otherwise).
        let path = format!("/proc/{pid}/setgroups");
        std::fs::write(&path, "deny").map_err(|e| format!("writing \"deny\" to {path}: {e}"))?;
    }
    write_one(pid, "gid_map", gids, &plan.gid)
}

fn write_one(pid: i32, file: &str, maps: &[LinuxIdMapping], how: &How) -> Result<(), String> {
    match how {
        How::Direct => crate::namespaces::write_id_map(pid, file, maps),
        How::Helper(helper) => {
            let mut args = vec![pid.to_string()];
            for m in maps {
                args.extend([m.container_id(), m.host_id(), m.size()].map(|v| v.to_string()));
            }
            let what = format!("{} {}", helper.display(), args.join(" "));
            tracing::debug!(command = %what, "writing {file} through the helper");
            let out = Command::new(helper)
                .args(&args)
                .output()
                .map_err(|e| format!("running {what}: {e}"))?;
            if out.status.success() {
                return Ok(());
            }
            let stderr = String::from_utf8_lossy(&out.stderr);
            Err(format!("{what}: {}: {}", out.status, stderr.trim()))
        }
    }
}
