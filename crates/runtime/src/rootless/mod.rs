//! Rootless: husk run by an ordinary user, or by root inside a user namespace that is not
//! the host's (rootless podman runs its runtime so). What changes then: the state root
//! (`$XDG_RUNTIME_DIR/husk`), how the id maps are written (directly for the caller's own id,
//! through newuidmap/newgidmap for subordinate ids: [`idmap`]), and cgroups (none of its own
//! where the caller cannot write the hierarchy and the config asks for no limit). See
//! docs/rootless.md.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

pub mod idmap;
pub mod subid;

/// `--rootless auto|true|false`, as runc's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Auto,
    On,
    Off,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "auto" => Ok(Mode::Auto),
            "true" => Ok(Mode::On),
            "false" => Ok(Mode::Off),
            _ => Err(format!("--rootless: {s:?} is not one of auto, true, false")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RootlessError {
    #[error(
        "rootless: XDG_RUNTIME_DIR is not set, so there is no state root for uid {uid}: set it \
         to the user's runtime directory (e.g. /run/user/{uid}) or pass --root DIR"
    )]
    NoRuntimeDir { uid: u32 },
    #[error("rootless: XDG_RUNTIME_DIR {path}: {reason}; set it to the user's runtime directory or pass --root DIR")]
    BadRuntimeDir { path: PathBuf, reason: String },
    #[error(
        "rootless (euid {uid}): the config has no user namespace, and without one an \
         unprivileged user can make no container: add {{\"type\": \"user\"}} to \
         linux.namespaces with uidMappings and gidMappings (husk spec --rootless writes them)"
    )]
    NoUserNamespace { uid: u32 },
    #[error("{0}")]
    Mapping(String),
}

/// Whether the calling process is in a user namespace other than the initial one: its
/// uid_map is not the identity map of all ids.
pub fn in_user_namespace() -> bool {
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    !is_identity_map(&map)
}

fn is_identity_map(map: &str) -> bool {
    map.split_whitespace().eq(["0", "0", "4294967295"])
}

/// Whether husk runs rootless: as told, or (auto) when the effective uid is not 0 or when it
/// is 0 only inside a user namespace, as runc decides it for its cgroup manager.
pub fn detect(mode: Mode) -> bool {
    match mode {
        Mode::On => true,
        Mode::Off => false,
        Mode::Auto => !nix::unistd::geteuid().is_root() || in_user_namespace(),
    }
}

/// The state root when `--root` is not given: `$XDG_RUNTIME_DIR/husk` where runc would use
/// `$XDG_RUNTIME_DIR/runc` (an unprivileged caller, or root in a user namespace unless
/// `USER=root`), `/run/husk` otherwise. An unprivileged caller without a usable
/// XDG_RUNTIME_DIR gets an error that says so instead of EACCES on /run/husk.
pub fn default_root() -> Result<PathBuf, RootlessError> {
    let euid = nix::unistd::geteuid().as_raw();
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty());
    let honour = match euid {
        0 => in_user_namespace() && std::env::var("USER").map_or(true, |u| u != "root"),
        _ => true,
    };
    match (xdg, honour) {
        (Some(dir), true) => {
            let dir = PathBuf::from(dir);
            check_runtime_dir(&dir, euid)?;
            Ok(dir.join("husk"))
        }
        (None, true) if euid != 0 => Err(RootlessError::NoRuntimeDir { uid: euid }),
        _ => Ok(PathBuf::from("/run/husk")),
    }
}

/// XDG_RUNTIME_DIR must be an absolute directory of the caller's own.
fn check_runtime_dir(dir: &std::path::Path, euid: u32) -> Result<(), RootlessError> {
    let bad = |reason: String| RootlessError::BadRuntimeDir {
        path: dir.to_path_buf(),
        reason,
    };
    if !dir.is_absolute() {
        return Err(bad("not an absolute path".into()));
    }
    let meta = std::fs::metadata(dir).map_err(|e| bad(e.to_string()))?;
    if !meta.is_dir() {
        return Err(bad("not a directory".into()));
    }
    if meta.uid() != euid {
        return Err(bad(format!(
            "owned by uid {}, not by the caller (uid {euid})",
            meta.uid()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_runc_spells_them() {
        assert_eq!("auto".parse::<Mode>(), Ok(Mode::Auto));
        assert_eq!("true".parse::<Mode>(), Ok(Mode::On));
        assert_eq!("false".parse::<Mode>(), Ok(Mode::Off));
        assert!("yes".parse::<Mode>().unwrap_err().contains("auto, true, false"));
        assert!(detect(Mode::On));
        assert!(!detect(Mode::Off));
    }

    #[test]
    fn identity_map_is_the_initial_namespace() {
        assert!(is_identity_map("         0          0 4294967295\n"));
        assert!(!is_identity_map("         0       1000          1\n"));
        assert!(!is_identity_map("0 0 1000\n"));
    }

    #[test]
    fn runtime_dir_must_be_the_callers() {
        let euid = nix::unistd::geteuid().as_raw();
        let dir = std::env::temp_dir();
        assert!(check_runtime_dir(std::path::Path::new("rel"), euid)
            .unwrap_err()
            .to_string()
            .contains("not an absolute path"));
        let other = check_runtime_dir(&dir, euid + 1).unwrap_err().to_string();
        assert!(other.contains("not by the caller"), "{other}");
        let missing = std::path::Path::new("/nonexistent-husk-xdg");
        assert!(check_runtime_dir(missing, euid)
            .unwrap_err()
            .to_string()
            .contains("No such file"));
    }
}
