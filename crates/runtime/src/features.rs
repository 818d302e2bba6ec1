//! `husk features`: what this build of husk implements (runtime-spec features.md and
//! features-linux.md). Decided at compile time, not by probing the host.

use serde_json::{json, Value};

/// The oldest config.json `ociVersion` husk accepts.
pub const OCI_VERSION_MIN: &str = "1.0.0";

/// The hooks husk runs, in spec order.
pub const HOOKS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Every namespace type husk recognizes in `linux.namespaces`.
pub const NAMESPACES: &[&str] = &[
    "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
];

/// Every capability name the `caps` crate knows, as `CAP_X`, in kernel bit order.
pub fn capability_names() -> Vec<String> {
    let mut all: Vec<caps::Capability> = caps::all().into_iter().collect();
    all.sort_by_key(|c| c.index());
    all.iter().map(|c| c.to_string()).collect()
}

/// The features document `husk features` prints.
pub fn features() -> Value {
    json!({
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": crate::OCI_VERSION,
        "hooks": HOOKS,
        "mountOptions": crate::rootfs::options::KNOWN,
        "linux": {
            "namespaces": NAMESPACES,
            "capabilities": capability_names(),
            "cgroup": {
                "v1": true,
                "v2": true,
                "systemd": true,
                "systemdUser": true,
                "rdma": true
            },
            "seccomp": {
                "enabled": true,
                "actions": crate::security::seccomp::ACTIONS,
                "operators": crate::security::seccomp::OPERATORS,
                "archs": crate::security::seccomp::architectures(),
                "knownFlags": crate::security::seccomp::FLAGS,
                "supportedFlags": crate::security::seccomp::FLAGS
            },
            "apparmor": { "enabled": true },
            "selinux": { "enabled": true },
            "intelRdt": crate::extras::rdt::features(),
            "memoryPolicy": {
                "modes": crate::extras::mempolicy::MODES.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
                "flags": crate::extras::mempolicy::FLAGS.iter().map(|(n, _)| *n).collect::<Vec<_>>()
            },
            "mountExtensions": { "idmap": { "enabled": true } },
            "netDevices": { "enabled": true }
        },
        "annotations": {
            "io.github.husk.version": env!("CARGO_PKG_VERSION"),
            "io.github.husk.cgroup.controllers": crate::cgroups::CONTROLLERS.join(",")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_the_spec_shape() {
        let f = features();
        let text = serde_json::to_string_pretty(&f).unwrap();
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["ociVersionMin"], "1.0.0");
        assert_eq!(back["ociVersionMax"], "1.3.0");
        assert_eq!(back["hooks"].as_array().unwrap().len(), 6);
        assert!(back["mountOptions"].is_array());
        let linux = &back["linux"];
        assert_eq!(linux["namespaces"].as_array().unwrap().len(), 8);
        let caps = linux["capabilities"].as_array().unwrap();
        assert!(caps.iter().any(|c| c == "CAP_SYS_ADMIN"));
        assert!(caps.iter().any(|c| c == "CAP_CHECKPOINT_RESTORE"));
        assert!(caps.iter().all(|c| c.as_str().unwrap().starts_with("CAP_")));
        assert_eq!(caps.first().unwrap(), "CAP_CHOWN");
        assert_eq!(linux["cgroup"]["v1"], true);
        assert_eq!(linux["cgroup"]["systemd"], true);
        assert_eq!(linux["cgroup"]["rdma"], true);
        let controllers = back["annotations"]["io.github.husk.cgroup.controllers"]
            .as_str()
            .unwrap();
        assert!(controllers.split(',').any(|c| c == "memory") && controllers.contains("pids"));
        assert_eq!(linux["seccomp"]["enabled"], true);
        let actions = linux["seccomp"]["actions"].as_array().unwrap();
        assert!(actions.iter().any(|a| a == "SCMP_ACT_NOTIFY"));
        assert_eq!(linux["seccomp"]["operators"].as_array().unwrap().len(), 7);
        assert!(linux["seccomp"]["archs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "SCMP_ARCH_X86_64"));
        assert_eq!(linux["apparmor"]["enabled"], true);
        assert_eq!(linux["mountExtensions"]["idmap"]["enabled"], true);
        let opts = back["mountOptions"].as_array().unwrap();
        assert!(opts.iter().any(|o| o == "idmap") && opts.iter().any(|o| o == "ridmap"));
        assert_eq!(linux["netDevices"]["enabled"], true);
        assert_eq!(linux["intelRdt"]["enabled"], true);
        assert_eq!(linux["memoryPolicy"]["modes"].as_array().unwrap().len(), 7);
        assert_eq!(linux["memoryPolicy"]["flags"].as_array().unwrap().len(), 3);
        assert!(back["annotations"]["io.github.husk.version"].is_string());
    }

    #[test]
    fn parses_as_oci_spec_features() {
        let f: oci_spec::runtime::Features = serde_json::from_value(features()).unwrap();
        assert_eq!(f.oci_version_min(), "1.0.0");
    }
}
