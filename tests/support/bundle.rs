//! OCI bundles for tests: a temp dir with a busybox-static rootfs and a config.json built
//! from a runc-like default, modified through small helpers on a `serde_json::Value`.

use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The busybox binary copied into every rootfs (package busybox-static).
pub const BUSYBOX: &str = "/bin/busybox";

/// A bundle directory `/tmp/husk-test-<name>-<pid>-<n>/` holding `rootfs/` and `config.json`.
/// Dropping it lazily unmounts anything left mounted under it and removes the directory.
pub struct Bundle {
    dir: PathBuf,
    name: String,
    config: Value,
    raw: Option<String>,
}

/// The six hook kinds, in the order the runtime runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookKind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl HookKind {
    pub const ALL: [HookKind; 6] = [
        HookKind::Prestart,
        HookKind::CreateRuntime,
        HookKind::CreateContainer,
        HookKind::StartContainer,
        HookKind::Poststart,
        HookKind::Poststop,
    ];

    /// The key in config.json's `hooks` object.
    pub fn key(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }

    /// Whether the hook's path resolves inside the container (after pivot_root).
    pub fn in_container(self) -> bool {
        self == HookKind::StartContainer
    }
}

/// One hook entry of config.json.
#[derive(Clone, Debug)]
pub struct Hook {
    pub path: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub timeout: Option<u64>,
}

impl Hook {
    /// A hook running `sh -c SCRIPT` with a PATH set.
    pub fn sh(script: &str) -> Hook {
        Hook {
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["PATH=/usr/sbin:/usr/bin:/sbin:/bin".into()],
            timeout: None,
        }
    }

    pub fn timeout(mut self, secs: u64) -> Hook {
        self.timeout = Some(secs);
        self
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({ "path": self.path, "args": self.args, "env": self.env });
        if let Some(t) = self.timeout {
            v["timeout"] = json!(t);
        }
        v
    }
}

fn applets() -> &'static [String] {
    static APPLETS: OnceLock<Vec<String>> = OnceLock::new();
    APPLETS.get_or_init(|| {
        let out = std::process::Command::new(BUSYBOX)
            .arg("--list")
            .output()
            .unwrap_or_else(|e| panic!("running {BUSYBOX} --list (install busybox-static): {e}"));
        assert!(out.status.success(), "{BUSYBOX} --list failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty() && !l.contains('/') && l != "busybox")
            .collect()
    })
}

/// Makes a busybox-static rootfs at `rootfs`: /bin/busybox plus a symlink per applet, the
/// usual empty mount points, and /etc/passwd and /etc/group.
pub fn make_rootfs(rootfs: &Path) {
    for d in [
        "bin", "proc", "sys", "dev", "tmp", "etc", "root", "home", "run", "var", "mnt",
    ] {
        fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    set_mode(&rootfs.join("tmp"), 0o1777);
    fs::copy(BUSYBOX, rootfs.join("bin/busybox"))
        .unwrap_or_else(|e| panic!("copying {BUSYBOX} (install busybox-static): {e}"));
    for a in applets() {
        symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    // Some tools look in /usr/bin and /sbin.
    symlink("bin", rootfs.join("sbin")).unwrap();
    fs::create_dir_all(rootfs.join("usr")).unwrap();
    symlink("../bin", rootfs.join("usr/bin")).unwrap();
    symlink("../bin", rootfs.join("usr/sbin")).unwrap();
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n\
         daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
         user:x:1000:1000:user:/home:/bin/sh\n\
         nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    fs::write(
        rootfs.join("etc/group"),
        "root:x:0:\ndaemon:x:1:\ntty:x:5:\nuser:x:1000:\nnogroup:x:65534:\n",
    )
    .unwrap();
    fs::write(rootfs.join("etc/hostname"), "rootfs\n").unwrap();
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// The default config: what `runc spec` writes, with `terminal: false`, a writable root,
/// no `linux.resources`, and a cgroupsPath unique to the bundle.
pub fn default_config(hostname: &str, cgroups_path: &str) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["true"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
            },
            "rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 } ],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": false },
        "hostname": hostname,
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

impl Bundle {
    /// A new bundle with a fresh busybox rootfs and the default config (args `true`).
    pub fn new(name: &str) -> Bundle {
        let name = crate::unique(name);
        let dir = PathBuf::from(format!("/tmp/husk-test-{name}"));
        if dir.exists() {
            let _ = fs::remove_dir_all(&dir);
        }
        fs::create_dir_all(&dir).unwrap();
        make_rootfs(&dir.join("rootfs"));
        let config = default_config("husk-test", &format!("/husk-test-{name}"));
        let b = Bundle {
            dir,
            name,
            config,
            raw: None,
        };
        b.write();
        b
    }

    /// The bundle directory (absolute).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bundle directory as a string, for command lines.
    pub fn dir_str(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }

    /// The rootfs directory (absolute).
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// The unique name of this bundle (used in its dir and cgroup path).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> &Value {
        &self.config
    }

    /// The config to modify freely; it is written to config.json by [`Bundle::write`], which
    /// every [`crate::Runtime`] method that takes a bundle calls first.
    pub fn config_mut(&mut self) -> &mut Value {
        self.raw = None;
        &mut self.config
    }

    /// `linux.cgroupsPath`, if set.
    pub fn cgroups_path(&self) -> Option<String> {
        self.config
            .pointer("/linux/cgroupsPath")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// Writes config.json (the raw text given to [`Bundle::write_raw`], if any).
    pub fn write(&self) {
        let text = match &self.raw {
            Some(raw) => raw.clone(),
            None => serde_json::to_string_pretty(&self.config).unwrap(),
        };
        fs::write(self.dir.join("config.json"), text).unwrap();
    }

    /// Uses `text` verbatim as config.json (for malformed configs).
    pub fn write_raw(&mut self, text: &str) -> &mut Self {
        self.raw = Some(text.to_string());
        self.write();
        self
    }

    /// Sets the value at a JSON pointer (e.g. "/process/cwd"), creating missing objects.
    pub fn set(&mut self, pointer: &str, value: Value) -> &mut Self {
        let mut cur = self.config_mut();
        for part in pointer.split('/').skip(1) {
            let part = part.replace("~1", "/").replace("~0", "~");
            if !cur.is_object() {
                *cur = json!({});
            }
            cur = cur
                .as_object_mut()
                .unwrap()
                .entry(part)
                .or_insert(Value::Null);
        }
        *cur = value;
        self
    }

    /// Removes the value at a JSON pointer, if present.
    pub fn remove(&mut self, pointer: &str) -> &mut Self {
        let (parent, key) = pointer.rsplit_once('/').expect("pointer");
        if let Some(Value::Object(m)) = self.config_mut().pointer_mut(parent) {
            m.remove(key);
        }
        self
    }

    /// Appends `value` to the array at `pointer`, creating it if missing.
    pub fn push(&mut self, pointer: &str, value: Value) -> &mut Self {
        if !self.config.pointer(pointer).is_some_and(Value::is_array) {
            self.set(pointer, json!([]));
        }
        self.config_mut()
            .pointer_mut(pointer)
            .and_then(Value::as_array_mut)
            .unwrap()
            .push(value);
        self
    }

    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.set("/process/args", json!(args))
    }

    /// `process.args = ["sh", "-c", script]`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    /// Adds (or replaces) one `KEY=value` in `process.env`.
    pub fn env(&mut self, kv: &str) -> &mut Self {
        let key = kv.split('=').next().unwrap().to_string();
        let env = self
            .config_mut()
            .pointer_mut("/process/env")
            .and_then(Value::as_array_mut)
            .unwrap();
        env.retain(|e| {
            e.as_str()
                .map(|s| s.split('=').next() != Some(&key))
                .unwrap_or(true)
        });
        env.push(json!(kv));
        self
    }

    pub fn hostname(&mut self, h: &str) -> &mut Self {
        self.set("/hostname", json!(h))
    }

    pub fn cwd(&mut self, cwd: &str) -> &mut Self {
        self.set("/process/cwd", json!(cwd))
    }

    pub fn user(&mut self, uid: u32, gid: u32) -> &mut Self {
        self.set("/process/user/uid", json!(uid));
        self.set("/process/user/gid", json!(gid))
    }

    pub fn readonly_root(&mut self, ro: bool) -> &mut Self {
        self.set("/root/readonly", json!(ro))
    }

    /// Appends a mount entry.
    pub fn add_mount(
        &mut self,
        dest: &str,
        typ: &str,
        source: &str,
        options: &[&str],
    ) -> &mut Self {
        let mut m = json!({ "destination": dest, "type": typ, "source": source });
        if !options.is_empty() {
            m["options"] = json!(options);
        }
        self.push("/mounts", m)
    }

    /// A bind mount of `source` (a host path) onto `dest` with extra options.
    pub fn add_bind(&mut self, source: &str, dest: &str, options: &[&str]) -> &mut Self {
        let mut opts = vec!["bind"];
        opts.extend_from_slice(options);
        self.add_mount(dest, "bind", source, &opts)
    }

    /// Removes every mount whose destination is `dest`.
    pub fn remove_mount(&mut self, dest: &str) -> &mut Self {
        if let Some(ms) = self
            .config_mut()
            .pointer_mut("/mounts")
            .and_then(Value::as_array_mut)
        {
            ms.retain(|m| m["destination"] != json!(dest));
        }
        self
    }

    /// Replaces the namespace list by `types` (all new).
    pub fn namespaces(&mut self, types: &[&str]) -> &mut Self {
        let list: Vec<Value> = types.iter().map(|t| json!({ "type": t })).collect();
        self.set("/linux/namespaces", json!(list))
    }

    /// Adds a namespace (replacing an entry of the same type), joined if `path` is given.
    pub fn namespace(&mut self, typ: &str, path: Option<&str>) -> &mut Self {
        self.remove_namespace(typ);
        let mut ns = json!({ "type": typ });
        if let Some(p) = path {
            ns["path"] = json!(p);
        }
        self.push("/linux/namespaces", ns)
    }

    pub fn remove_namespace(&mut self, typ: &str) -> &mut Self {
        if let Some(list) = self
            .config_mut()
            .pointer_mut("/linux/namespaces")
            .and_then(Value::as_array_mut)
        {
            list.retain(|n| n["type"] != json!(typ));
        }
        self
    }

    /// A user namespace mapping `size` ids from `host` to container id 0, for uids and gids.
    pub fn userns(&mut self, host: u32, size: u32) -> &mut Self {
        self.namespace("user", None);
        let map = json!([{ "containerID": 0, "hostID": host, "size": size }]);
        self.set("/linux/uidMappings", map.clone());
        self.set("/linux/gidMappings", map)
    }

    /// Sets (or replaces) one rlimit.
    pub fn rlimit(&mut self, typ: &str, soft: u64, hard: u64) -> &mut Self {
        if let Some(list) = self
            .config_mut()
            .pointer_mut("/process/rlimits")
            .and_then(Value::as_array_mut)
        {
            list.retain(|r| r["type"] != json!(typ));
        }
        self.push(
            "/process/rlimits",
            json!({ "type": typ, "soft": soft, "hard": hard }),
        )
    }

    /// Sets one capability set ("bounding", "effective", "permitted", "inheritable",
    /// "ambient") to `caps`.
    pub fn capset(&mut self, set: &str, caps: &[&str]) -> &mut Self {
        self.set(&format!("/process/capabilities/{set}"), json!(caps))
    }

    /// Sets all five capability sets to `caps`.
    pub fn caps(&mut self, caps: &[&str]) -> &mut Self {
        for set in [
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ] {
            self.capset(set, caps);
        }
        self
    }

    /// Adds a `linux.devices` entry.
    pub fn add_device(
        &mut self,
        path: &str,
        typ: &str,
        major: i64,
        minor: i64,
        mode: u32,
    ) -> &mut Self {
        self.push(
            "/linux/devices",
            json!({ "path": path, "type": typ, "major": major, "minor": minor,
                    "fileMode": mode, "uid": 0, "gid": 0 }),
        )
    }

    /// Appends a hook of the given kind.
    pub fn add_hook(&mut self, kind: HookKind, hook: Hook) -> &mut Self {
        self.push(&format!("/hooks/{}", kind.key()), hook.to_json())
    }

    /// The host path of the file the recording hooks append to.
    pub fn hook_log_path(&self) -> PathBuf {
        self.rootfs().join("hooks.log")
    }

    /// A hook that appends `<kind> <status> <pid>` to [`Bundle::hook_log_path`] and saves
    /// the state it read on stdin to `rootfs/hook-<kind>.json`. Its env carries
    /// `HOOK_KIND=<kind>` and its args end with the kind, so both reach the hook.
    pub fn recording_hook(&self, kind: HookKind) -> Hook {
        let dir = if kind.in_container() {
            "".to_string()
        } else {
            self.rootfs().to_string_lossy().into_owned()
        };
        let script = format!(
            "s=$(cat); \
             st=$(printf '%s' \"$s\" | sed -n 's/.*\"status\": *\"\\([a-z]*\\)\".*/\\1/p'); \
             pid=$(printf '%s' \"$s\" | sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p'); \
             printf '%s\\n' \"$s\" > {dir}/hook-$HOOK_KIND.json; \
             echo \"$HOOK_KIND:$1 ${{st:-none}} ${{pid:-0}}\" >> {dir}/hooks.log"
        );
        Hook {
            path: "/bin/sh".into(),
            args: vec![
                "sh".into(),
                "-c".into(),
                script,
                "hook".into(),
                kind.key().into(),
            ],
            env: vec![
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin".into(),
                format!("HOOK_KIND={}", kind.key()),
            ],
            timeout: Some(10),
        }
    }

    /// Lines of the recording hooks' log, `["prestart running 123", ...]` (the
    /// `kind:arg` prefix is checked and reduced to `kind`).
    pub fn hook_log(&self) -> Vec<String> {
        let text = fs::read_to_string(self.hook_log_path()).unwrap_or_default();
        text.lines()
            .map(|l| {
                let (head, rest) = l.split_once(' ').unwrap_or((l, ""));
                let (env_kind, arg_kind) = head.split_once(':').unwrap_or((head, ""));
                assert_eq!(
                    env_kind, arg_kind,
                    "hook env and args disagree in line {l:?}"
                );
                format!("{env_kind} {rest}")
            })
            .collect()
    }

    /// The state JSON a recording hook of `kind` received on stdin.
    pub fn hook_state(&self, kind: HookKind) -> Option<Value> {
        let text =
            fs::read_to_string(self.rootfs().join(format!("hook-{}.json", kind.key()))).ok()?;
        serde_json::from_str(text.trim()).ok()
    }

    /// Reads a file of the rootfs (path relative to the rootfs).
    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.rootfs().join(rel.trim_start_matches('/'))).unwrap_or_default()
    }

    /// Makes another bundle dir whose config uses this bundle's rootfs (by absolute path),
    /// with its own cgroupsPath. Cheap: no rootfs copy.
    pub fn sibling(&self, name: &str) -> Bundle {
        let uname = crate::unique(name);
        let dir = PathBuf::from(format!("/tmp/husk-test-{uname}"));
        fs::create_dir_all(&dir).unwrap();
        let mut config = self.config.clone();
        config["root"]["path"] = json!(self.rootfs().to_string_lossy());
        config["linux"]["cgroupsPath"] = json!(format!("/husk-test-{uname}"));
        let b = Bundle {
            dir,
            name: uname,
            config,
            raw: None,
        };
        b.write();
        b
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let mounted = crate::host::mounts_under(&self.dir);
        for m in mounted.iter().rev() {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(m)
                .status();
        }
        let _ = fs::remove_dir_all(&self.dir);
        if !mounted.is_empty() && !std::thread::panicking() {
            panic!(
                "mounts left behind under bundle {}: {mounted:?}",
                self.dir.display()
            );
        }
    }
}
