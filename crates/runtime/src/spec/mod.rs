//! Loading and validating a bundle's config.json (before any side effect), and the default
//! spec `husk spec` writes. The config model is oci-spec's types; there is no second one.

mod default;
mod validate;

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

pub use default::default_spec;
pub use validate::validate;

/// The name of the config file inside a bundle.
pub const CONFIG_FILE: &str = "config.json";

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("bundle {}: {CONFIG_FILE} does not exist", bundle.display())]
    ConfigMissing { bundle: PathBuf },
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `field` is the JSON path of the failing value, e.g. `linux.namespaces[2].type`.
    #[error("{}: {field}: {source}", path.display())]
    Parse {
        path: PathBuf,
        field: String,
        #[source]
        source: serde_json::Error,
    },
    /// A rule of the spec (or of runc) that the config breaks; the message names the field.
    #[error("{CONFIG_FILE}: {0}")]
    Invalid(String),
    #[error("{CONFIG_FILE}: mounts[{index}] ({}): {source}", destination.display())]
    MountOptions {
        index: usize,
        destination: PathBuf,
        #[source]
        source: crate::rootfs::RootfsError,
    },
    #[error("rootfs {} does not exist", path.display())]
    RootfsMissing { path: PathBuf },
    #[error("rootfs {} is not a directory", path.display())]
    RootfsNotDir { path: PathBuf },
    #[error("resolving rootfs {}: {source}", path.display())]
    RootfsResolve {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Read `<bundle>/config.json`, parse it (errors name the failing field) and [`validate`] it.
pub fn load(bundle: &Path) -> Result<Spec, SpecError> {
    let path = bundle.join(CONFIG_FILE);
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(SpecError::ConfigMissing {
                bundle: bundle.to_path_buf(),
            })
        }
        Err(source) => return Err(SpecError::Read { path, source }),
    };
    let spec = parse(&data).map_err(|(field, source)| SpecError::Parse {
        path,
        field,
        source,
    })?;
    validate(&spec, bundle)?;
    Ok(spec)
}

/// Parse config.json text; on failure return the JSON path of the failing field and the error.
pub fn parse(data: &[u8]) -> Result<Spec, (String, serde_json::Error)> {
    // The spec's names of two scheduler flags are not the ones oci-spec parses.
    let renamed_flags = crate::extras::sched::FLAGS.iter().any(|(spec, serde, _)| {
        spec != serde && data.windows(spec.len()).any(|w| w == spec.as_bytes())
    });
    if !renamed_flags {
        let de = &mut serde_json::Deserializer::from_slice(data);
        match serde_path_to_error::deserialize(de) {
            Ok(spec) => return Ok(spec),
            // An unknown capability is ignored with a warning (below), as runc does: a config
            // may be newer than this build.
            Err(e) if e.path().to_string().starts_with("process.capabilities.") => {}
            Err(e) => return Err((field_name(e.path()), e.into_inner())),
        }
    }
    let mut value: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| ("(top level)".to_string(), e))?;
    if let Some(process) = value.get_mut("process") {
        crate::extras::sched::normalize_flag_names(process);
    }
    drop_unknown_capabilities(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| (field_name(e.path()), e.into_inner()))
}

fn field_name(path: &serde_path_to_error::Path) -> String {
    match path.to_string() {
        f if f == "." => "(top level)".to_string(),
        f => f,
    }
}

/// Removes, with a warning naming it, every capability name this build does not know from
/// the five sets of `process.capabilities`.
fn drop_unknown_capabilities(value: &mut serde_json::Value) {
    let Some(caps) = value
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    else {
        return;
    };
    for (set, names) in caps.iter_mut() {
        let Some(names) = names.as_array_mut() else {
            continue;
        };
        names.retain(|n| {
            let known = serde_json::from_value::<oci_spec::runtime::Capability>(n.clone()).is_ok();
            if !known {
                tracing::warn!("process.capabilities.{set}: unknown capability {n} ignored");
            }
            known
        });
    }
}

/// The container's root filesystem: `root.path` (relative to the bundle unless absolute),
/// canonical and absolute. It must exist and be a directory.
pub fn rootfs(spec: &Spec, bundle: &Path) -> Result<PathBuf, SpecError> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| SpecError::Invalid("root must be set".into()))?;
    if root.path().as_os_str().is_empty() {
        return Err(SpecError::Invalid("root.path must not be empty".into()));
    }
    let joined = bundle.join(root.path());
    let path = match joined.canonicalize() {
        Ok(p) => p,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(SpecError::RootfsMissing {
                path: absolute(&joined),
            })
        }
        Err(source) => {
            return Err(SpecError::RootfsResolve {
                path: joined,
                source,
            })
        }
    };
    if !path.is_dir() {
        return Err(SpecError::RootfsNotDir { path });
    }
    Ok(path)
}

/// Best-effort absolute form of a path for messages (no symlink resolution).
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests;
