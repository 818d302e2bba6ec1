//! Unit tests of config loading and every validation rule, with small JSON configs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

use super::*;

/// A bundle in a fresh temp dir with an empty `rootfs/`; removed on drop.
struct Bundle(PathBuf);

impl Bundle {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "husk-spec-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("rootfs")).unwrap();
        Bundle(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn write(&self, config: &Value) {
        std::fs::write(self.0.join("config.json"), config.to_string()).unwrap();
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn base() -> Value {
    json!({
        "ociVersion": "1.0.2-dev",
        "root": { "path": "rootfs" },
        "process": { "user": { "uid": 0, "gid": 0 }, "args": ["sh"], "cwd": "/" },
        "linux": { "namespaces": [{ "type": "mount" }, { "type": "pid" }] }
    })
}

/// Load `config` from a temp bundle; the error message on failure.
fn load_err(config: &Value) -> String {
    let b = Bundle::new();
    b.write(config);
    match load(b.path()) {
        Ok(_) => panic!("config was accepted: {config}"),
        Err(e) => e.to_string(),
    }
}

fn load_ok(config: &Value) {
    let b = Bundle::new();
    b.write(config);
    if let Err(e) = load(b.path()) {
        panic!("config rejected: {e}\n{config}");
    }
}

fn with(mut v: Value, f: impl FnOnce(&mut Value)) -> Value {
    f(&mut v);
    v
}

#[track_caller]
fn assert_err(config: Value, want: &str) {
    let got = load_err(&config);
    assert!(
        got.contains(want),
        "error {got:?} does not contain {want:?}"
    );
}

#[test]
fn base_config_loads() {
    load_ok(&base());
}

#[test]
fn missing_config_is_clear() {
    let b = Bundle::new();
    let e = load(b.path()).unwrap_err().to_string();
    assert!(e.contains("config.json does not exist"), "{e}");
    assert!(e.contains(&b.path().display().to_string()), "{e}");
}

#[test]
fn parse_errors_name_the_field() {
    let c =
        with(
            base(),
            |v| {
                v["linux"]["namespaces"] =
                    json!([{ "type": "mount" }, { "type": "pid" }, { "type": "foo" }])
            },
        );
    let e = load_err(&c);
    assert!(
        e.contains("config.json: linux.namespaces[2].type: unknown variant `foo`"),
        "{e}"
    );

    let c = with(base(), |v| v["process"]["args"] = json!("sh"));
    let e = load_err(&c);
    assert!(e.contains("process.args"), "{e}");

    let b = Bundle::new();
    std::fs::write(b.path().join("config.json"), "{ not json").unwrap();
    let e = load(b.path()).unwrap_err().to_string();
    assert!(e.contains("config.json"), "{e}");
}

#[test]
fn oci_version() {
    for ok in ["1.0.0", "1.0.2-dev", "1.3.0", "1.1.0-rc.2", "1.2.0+build.5"] {
        load_ok(&with(base(), |v| v["ociVersion"] = json!(ok)));
    }
    for bad in [
        "", "2.0.0", "0.9.0", "1.0", "v1.0.0", "1.0.0-", "01.0.0", "1.0.0-01", "1.x.0",
    ] {
        assert_err(
            with(base(), |v| v["ociVersion"] = json!(bad)),
            &format!("unsupported ociVersion {bad:?}: husk supports 1.0.0 to 1.3.0"),
        );
    }
}

#[test]
fn root_and_rootfs() {
    assert_err(
        with(base(), |v| {
            v.as_object_mut().unwrap().remove("root").map(drop).unwrap()
        }),
        "root must be set",
    );
    assert_err(
        with(base(), |v| v["root"]["path"] = json!("nope")),
        "rootfs ",
    );
    assert_err(
        with(base(), |v| v["root"]["path"] = json!("nope")),
        "/nope does not exist",
    );
    let b = Bundle::new();
    std::fs::write(b.path().join("file"), "").unwrap();
    b.write(&with(base(), |v| v["root"]["path"] = json!("file")));
    let e = load(b.path()).unwrap_err().to_string();
    assert!(e.contains("is not a directory"), "{e}");
    // An absolute root.path is used as is.
    let abs = b.path().join("rootfs");
    b.write(&with(base(), |v| v["root"]["path"] = json!(abs)));
    let spec = load(b.path()).unwrap();
    assert_eq!(
        rootfs(&spec, Path::new("/nonexistent")).unwrap(),
        abs.canonicalize().unwrap()
    );
    // A relative one is resolved against the bundle.
    b.write(&base());
    let spec = load(b.path()).unwrap();
    let r = rootfs(&spec, b.path()).unwrap();
    assert!(r.is_absolute());
    assert_eq!(r, abs.canonicalize().unwrap());
}

#[test]
fn process_rules() {
    assert_err(
        with(base(), |v| {
            v.as_object_mut()
                .unwrap()
                .remove("process")
                .map(drop)
                .unwrap()
        }),
        "process must be set",
    );
    assert_err(
        with(base(), |v| v["process"]["args"] = json!([])),
        "process.args must not be empty",
    );
    assert_err(
        with(base(), |v| {
            v["process"]
                .as_object_mut()
                .unwrap()
                .remove("args")
                .map(drop)
                .unwrap()
        }),
        "process.args must not be empty",
    );
    assert_err(
        with(base(), |v| v["process"]["cwd"] = json!("tmp")),
        "process.cwd tmp is not absolute",
    );
}

#[test]
fn rlimits() {
    let r = |t: &str, s: u64, h: u64| json!({ "type": t, "soft": s, "hard": h });
    load_ok(&with(base(), |v| {
        v["process"]["rlimits"] = json!([r("RLIMIT_NOFILE", 10, 10), r("RLIMIT_NPROC", 1, 2)])
    }));
    assert_err(
        with(base(), |v| {
            v["process"]["rlimits"] = json!([r("RLIMIT_NOFILE", 10, 10), r("RLIMIT_NOFILE", 1, 2)])
        }),
        "process.rlimits[1]: duplicate rlimit type RLIMIT_NOFILE",
    );
    assert_err(
        with(base(), |v| {
            v["process"]["rlimits"] = json!([r("RLIMIT_NOFILE", 11, 10)])
        }),
        "soft limit 11 is greater than the hard limit 10",
    );
}

#[test]
fn namespace_rules() {
    assert_err(
        with(base(), |v| {
            v["linux"]["namespaces"] = json!([{ "type": "mount" }, { "type": "mount" }])
        }),
        "linux.namespaces[1]: duplicate namespace type mount",
    );
    // No mount namespace: the runtime's is inherited (mounts beneath the rootfs, chroot).
    load_ok(&with(base(), |v| {
        v["linux"]["namespaces"] = json!([{ "type": "pid" }])
    }));
    load_ok(&with(base(), |v| {
        v.as_object_mut()
            .unwrap()
            .remove("linux")
            .map(drop)
            .unwrap()
    }));
    // ... but then masked and readonly paths cannot be applied.
    assert_err(
        with(base(), |v| {
            v["linux"]["namespaces"] = json!([{ "type": "pid" }]);
            v["linux"]["maskedPaths"] = json!(["/proc/kcore"]);
        }),
        "linux.maskedPaths: unable to restrict sys entries without a private mount namespace",
    );
    assert_err(
        with(base(), |v| {
            v["linux"]["namespaces"] = json!([]);
            v["linux"]["readonlyPaths"] = json!(["/proc/sys"]);
        }),
        "linux.readonlyPaths: unable to restrict sys entries without a private mount namespace",
    );
    load_ok(&with(base(), |v| {
        v["linux"]["namespaces"] = json!([{ "type": "pid" }]);
        v["linux"]["maskedPaths"] = json!([]);
    }));
    // Joining by path counts as having the namespace.
    load_ok(&with(base(), |v| {
        v["linux"]["namespaces"] = json!([{ "type": "mount", "path": "/proc/self/ns/mnt" }])
    }));
    load_ok(&with(
        base(),
        |v| {
            v["linux"]["namespaces"] =
                json!([{ "type": "mount" }, { "type": "network", "path": "/proc/self/ns/net" }])
        },
    ));
    assert_err(
        with(
            base(),
            |v| {
                v["linux"]["namespaces"] =
                    json!([{ "type": "mount" }, { "type": "network", "path": "/etc/hostname" }])
            },
        ),
        "linux.namespaces[1]: /etc/hostname is not a namespace",
    );
    assert_err(
        with(
            base(),
            |v| {
                v["linux"]["namespaces"] =
                    json!([{ "type": "mount" }, { "type": "network", "path": "/nonexistent/ns" }])
            },
        ),
        "linux.namespaces[1]: namespace path /nonexistent/ns does not exist",
    );
    assert_err(
        with(
            base(),
            |v| {
                v["linux"]["namespaces"] =
                    json!([{ "type": "mount" }, { "type": "network", "path": "ns/net" }])
            },
        ),
        "linux.namespaces[1]: path ns/net is not absolute",
    );
}

#[test]
fn user_namespace_and_mappings() {
    let map = json!([{ "containerID": 0, "hostID": 1000, "size": 1 }]);
    assert_err(
        with(base(), |v| v["linux"]["uidMappings"] = map.clone()),
        "user namespace isn't enabled",
    );
    assert_err(
        with(base(), |v| v["linux"]["gidMappings"] = map.clone()),
        "user namespace isn't enabled",
    );
    assert_err(
        with(base(), |v| {
            v["linux"]["namespaces"] = json!([{ "type": "mount" }, { "type": "user" }])
        }),
        "no namespace path to join nor mappings",
    );
    load_ok(&with(base(), |v| {
        v["linux"]["namespaces"] = json!([{ "type": "mount" }, { "type": "user" }]);
        v["linux"]["uidMappings"] = map.clone();
        v["linux"]["gidMappings"] = map.clone();
    }));
    load_ok(&with(base(), |v| {
        v["linux"]["namespaces"] =
            json!([{ "type": "mount" }, { "type": "user", "path": "/proc/self/ns/user" }]);
    }));
    assert_err(
        with(base(), |v| {
            v["linux"]["timeOffsets"] = json!({ "monotonic": { "secs": 1 } })
        }),
        "linux.timeOffsets specified, but no new time namespace",
    );
}

#[test]
fn hostname_needs_uts() {
    assert_err(
        with(base(), |v| v["hostname"] = json!("box")),
        "unable to set hostname without a private UTS namespace",
    );
    assert_err(
        with(base(), |v| v["domainname"] = json!("example.org")),
        "unable to set domainname without a private UTS namespace",
    );
    load_ok(&with(base(), |v| {
        v["hostname"] = json!("box");
        v["linux"]["namespaces"] = json!([{ "type": "mount" }, { "type": "uts" }]);
    }));
    // Joining a pod's UTS namespace by path and setting the hostname is allowed (as runc).
    load_ok(&with(base(), |v| {
        v["hostname"] = json!("box");
        v["linux"]["namespaces"] =
            json!([{ "type": "mount" }, { "type": "uts", "path": "/proc/self/ns/uts" }]);
    }));
}

#[test]
fn mount_rules() {
    load_ok(&with(
        base(),
        |v| v["mounts"] = json!([{ "destination": "/proc", "type": "proc", "source": "proc" }]),
    ));
    assert_err(
        with(
            base(),
            |v| v["mounts"] = json!([{ "destination": "proc", "type": "proc", "source": "proc" }]),
        ),
        "mounts[0]: mount destination proc is not absolute",
    );
    let e = load_err(&with(base(), |v| {
        v["mounts"] = json!([
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/data", "type": "bind", "source": "/tmp", "options": ["rbind", "bogus-option"] }
        ])
    }));
    assert!(e.contains("config.json: mounts[1] (/data): "), "{e}");
}

#[test]
fn id_mapped_mount_rules() {
    let m = |extra: Value| {
        let mut mount =
            json!({ "destination": "/d", "type": "bind", "source": "/tmp", "options": ["rbind"] });
        for (k, val) in extra.as_object().into_iter().flatten() {
            mount[k] = val.clone();
        }
        with(base(), move |v| v["mounts"] = json!([mount]))
    };
    let one = json!([{ "containerID": 0, "hostID": 1, "size": 1 }]);
    // Mappings on the mount, with or without idmap/ridmap.
    load_ok(&m(json!({ "uidMappings": one, "gidMappings": one })));
    load_ok(&m(
        json!({ "options": ["rbind", "ridmap"], "uidMappings": one, "gidMappings": one }),
    ));
    assert_err(
        m(json!({ "uidMappings": one })),
        "mounts[0] (/d): uidMappings and gidMappings must be specified together",
    );
    assert_err(
        m(json!({ "type": "tmpfs", "options": ["idmap"], "uidMappings": one, "gidMappings": one })),
        "mounts[0] (/d): id-mapped mounts (idmap, ridmap, uidMappings/gidMappings) need a bind mount",
    );
    assert_err(
        m(
            json!({ "uidMappings": one, "gidMappings": [{ "containerID": 0, "hostID": 1, "size": 0 }] }),
        ),
        "gidMappings[0] (0 1 0): the size must be at least 1",
    );
    assert_err(
        m(
            json!({ "uidMappings": [{ "containerID": 4294967295u32, "hostID": 1, "size": 2 }], "gidMappings": one }),
        ),
        "each range must fit in 32 bits",
    );
    assert_err(
        m(json!({ "uidMappings": [], "gidMappings": one })),
        "uidMappings is empty",
    );
    // idmap alone takes the container's user namespace, which it must have.
    assert_err(
        m(json!({ "options": ["bind", "idmap"] })),
        "the container has no user namespace",
    );
    load_ok(&with(m(json!({ "options": ["bind", "idmap"] })), |v| {
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "type": "user" }));
        v["linux"]["uidMappings"] = json!([{ "containerID": 0, "hostID": 1000, "size": 10 }]);
        v["linux"]["gidMappings"] = json!([{ "containerID": 0, "hostID": 1000, "size": 10 }]);
    }));
}

#[test]
fn hook_rules() {
    load_ok(&with(base(), |v| {
        v["hooks"] = json!({ "prestart": [{ "path": "/bin/true" }] })
    }));
    assert_err(
        with(
            base(),
            |v| v["hooks"] = json!({ "poststop": [{ "path": "/bin/true" }, { "path": "true" }] }),
        ),
        "hooks.poststop[1].path true is not absolute",
    );
    assert_err(
        with(
            base(),
            |v| v["hooks"] = json!({ "createRuntime": [{ "path": "/bin/true", "timeout": 0 }] }),
        ),
        "hooks.createRuntime[0].timeout must be greater than zero",
    );
}

#[test]
fn sysctl_rules() {
    let ns = |types: &[&str]| {
        json!(types
            .iter()
            .map(|t| json!({ "type": t }))
            .collect::<Vec<_>>())
    };
    let cfg = |types: &[&str], key: &str| {
        with(base(), |v| {
            v["linux"]["namespaces"] = ns(types);
            v["linux"]["sysctl"] = json!({ key: "1" });
        })
    };
    load_ok(&cfg(&["mount", "network"], "net.ipv4.ip_forward"));
    load_ok(&cfg(&["mount", "network"], "net/ipv4/ip_forward"));
    assert_err(
        cfg(&["mount"], "net.ipv4.ip_forward"),
        "sysctl net.ipv4.ip_forward is not allowed in the host's network namespace",
    );
    load_ok(&cfg(&["mount", "ipc"], "kernel.shmmax"));
    load_ok(&cfg(&["mount", "ipc"], "fs.mqueue.msg_max"));
    assert_err(
        cfg(&["mount"], "kernel.msgmax"),
        "is not allowed in the host's ipc namespace",
    );
    load_ok(&cfg(&["mount", "uts"], "kernel.domainname"));
    load_ok(&cfg(&["mount", "uts"], "kernel.hostname"));
    assert_err(
        cfg(&["mount"], "kernel.hostname"),
        "not allowed in the host's uts namespace",
    );
    assert_err(
        cfg(&["mount", "ipc", "uts", "network"], "kernel.panic"),
        "sysctl kernel.panic is not allowed in the container",
    );
    assert_err(
        cfg(&["mount", "ipc", "uts", "network"], "vm.swappiness"),
        "sysctl vm.swappiness is not allowed in the container",
    );
    // The host's network namespace joined by path is still the host's.
    assert_err(
        with(base(), |v| {
            v["linux"]["namespaces"] =
                json!([{ "type": "mount" }, { "type": "network", "path": "/proc/self/ns/net" }]);
            v["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": "1" });
        }),
        "host's network namespace",
    );
    // kernel.hostname conflicting with the hostname field.
    assert_err(
        with(base(), |v| {
            v["hostname"] = json!("a");
            v["linux"]["namespaces"] = ns(&["mount", "uts"]);
            v["linux"]["sysctl"] = json!({ "kernel.hostname": "b" });
        }),
        "conflicts with the hostname field",
    );
}

#[test]
fn default_spec_is_valid() {
    for rootless in [false, true] {
        let json = default::default_spec_json(rootless);
        let spec: Spec = serde_json::from_value(json.clone()).expect("default spec parses");
        assert_eq!(spec, default_spec(rootless));
        assert_eq!(spec.version(), "1.3.0");
        assert_eq!(spec.hostname().as_deref(), Some("husk"));
        let b = Bundle::new();
        b.write(&json);
        load(b.path())
            .unwrap_or_else(|e| panic!("default spec (rootless={rootless}) invalid: {e}"));
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &vec!["sh".to_string()]);
        assert_eq!(p.terminal(), Some(false));
        assert_eq!(p.no_new_privileges(), Some(true));
        let linux = spec.linux().as_ref().unwrap();
        let types: Vec<String> = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| {
                serde_json::to_value(n.typ())
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        if rootless {
            assert!(types.contains(&"user".to_string()));
            assert!(!types.contains(&"network".to_string()));
            assert_eq!(linux.uid_mappings().as_ref().unwrap().len(), 1);
            let mounts = spec.mounts().as_ref().unwrap();
            let dests: Vec<_> = mounts.iter().map(|m| m.destination().as_path()).collect();
            let sys = dests.iter().position(|d| *d == Path::new("/sys"));
            let cgroup = dests.iter().position(|d| *d == Path::new("/sys/fs/cgroup"));
            assert!(
                matches!((sys, cgroup), (Some(s), Some(c)) if s < c),
                "a /sys bind, then the cgroup mount: {dests:?}"
            );
            assert!(mounts
                .iter()
                .flat_map(|m| m.options().iter().flatten())
                .all(|o| !o.starts_with("gid=")));
            assert!(linux.resources().is_none());
        } else {
            assert_eq!(types, ["pid", "network", "ipc", "uts", "mount", "cgroup"]);
            assert_eq!(spec.mounts().as_ref().unwrap().len(), 7);
        }
    }
}

#[test]
fn unknown_capability_is_dropped_not_an_error() {
    let json = br#"{"ociVersion":"1.0.0","process":{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0},
        "capabilities":{"bounding":["CAP_KILL","CAP_FROM_THE_FUTURE"],"effective":["CAP_FROM_THE_FUTURE"]}}}"#;
    let spec = super::parse(json).expect("parses");
    let caps = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().clone())
        .expect("caps");
    assert_eq!(caps.bounding().as_ref().map(|b| b.len()), Some(1));
    assert_eq!(caps.effective().as_ref().map(|b| b.len()), Some(0));
}
