//! The config `husk spec` writes: runc's `runc spec` template (and its `--rootless` variant),
//! with husk's hostname, no terminal, and the current spec version.

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

const DEFAULT_CAPS: &[&str] = &["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Value {
    let mut m = json!({ "destination": dest, "type": typ, "source": source });
    if !options.is_empty() {
        m["options"] = json!(options);
    }
    m
}

/// The default config as JSON (what [`default_spec`] parses).
pub fn default_spec_json(rootless: bool) -> Value {
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &[]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ];
    let mut namespaces = vec!["pid", "network", "ipc", "uts", "mount", "cgroup"];
    if rootless {
        // As runc's ToRootless: sysfs cannot be mounted without a network namespace of our
        // own, so bind the host's; drop uid=/gid= options; no resources. The cgroup mount
        // stays (mounted after the /sys bind): with the cgroup namespace it shows the
        // container's own cgroup, not the host's tree that the /sys bind carries.
        for m in &mut mounts {
            if m["destination"] == "/sys" {
                *m = mount(
                    "/sys",
                    "none",
                    "/sys",
                    &["rbind", "nosuid", "noexec", "nodev", "ro"],
                );
            } else if let Some(opts) = m["options"].as_array_mut() {
                opts.retain(|o| {
                    let o = o.as_str().unwrap_or_default();
                    !o.starts_with("uid=") && !o.starts_with("gid=")
                });
            }
        }
        namespaces.retain(|n| *n != "network");
        namespaces.push("user");
    }
    let mut linux = json!({
        "namespaces": namespaces.iter().map(|t| json!({ "type": t })).collect::<Vec<_>>(),
        "maskedPaths": MASKED_PATHS,
        "readonlyPaths": READONLY_PATHS,
    });
    if rootless {
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        linux["uidMappings"] = json!([{ "containerID": 0, "hostID": uid, "size": 1 }]);
        linux["gidMappings"] = json!([{ "containerID": 0, "hostID": gid, "size": 1 }]);
    } else {
        linux["resources"] = json!({ "devices": [{ "allow": false, "access": "rwm" }] });
    }
    json!({
        "ociVersion": crate::OCI_VERSION,
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": DEFAULT_CAPS,
                "effective": DEFAULT_CAPS,
                "permitted": DEFAULT_CAPS
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "husk",
        "mounts": mounts,
        "linux": linux
    })
}

/// What `husk spec` writes (`rootless`: as `runc spec --rootless`).
pub fn default_spec(rootless: bool) -> Spec {
    // The JSON is a constant of this file, and a unit test checks it parses; should it ever
    // not, oci-spec's own default is a usable fallback.
    serde_json::from_value(default_spec_json(rootless)).unwrap_or_else(|e| {
        tracing::error!("built-in default spec does not parse: {e}");
        Spec::default()
    })
}
