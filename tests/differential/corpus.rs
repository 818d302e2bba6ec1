//! The corpus: configs captured from other generators (adapted to the test host) and the
//! hand-written cases.

use super::*;

// ---- cases ----------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Flow {
    /// `run` with the probe; the host reads the cgroup files while the probe waits.
    Run,
    /// `run`, and while the probe waits, `exec` with these extra options and the probe.
    Exec(Vec<String>),
    /// `exec --process FILE`, FILE holding this process object (its args: the probe).
    ExecProcess(Value),
    /// create, start (a startContainer hook fails), state, delete: which hooks ran when.
    FailingStart,
}

#[derive(Clone, Debug)]
pub(crate) struct Case {
    pub(crate) name: String,
    /// The adapted config (root.path, process.args and cgroupsPath are set per bundle).
    pub(crate) config: Value,
    pub(crate) flow: Flow,
    /// Recording hooks to add, each with or without an `env` field.
    pub(crate) hooks: Vec<(HookKind, bool)>,
}

impl Case {
    pub(crate) fn new(name: &str, config: Value) -> Case {
        Case {
            name: name.to_string(),
            config,
            flow: Flow::Run,
            hooks: vec![],
        }
    }
}

/// Host paths shared by all cases (bind-mount sources), removed at the end.
pub(crate) struct HostFiles {
    /// Stand-ins for the daemons' private bind-mount sources (resolv.conf, hosts, shm...).
    pub(crate) sources: HostDir,
    /// An rbind source with a tmpfs submount, for the recursive mount attributes.
    pub(crate) rbind: HostDir,
}

/// RLIMIT_* name -> the line name in /proc/self/limits.
pub(crate) fn limit_line_name(typ: &str) -> Option<&'static str> {
    Some(match typ {
        "RLIMIT_CPU" => "Max cpu time",
        "RLIMIT_FSIZE" => "Max file size",
        "RLIMIT_DATA" => "Max data size",
        "RLIMIT_STACK" => "Max stack size",
        "RLIMIT_CORE" => "Max core file size",
        "RLIMIT_RSS" => "Max resident set",
        "RLIMIT_NPROC" => "Max processes",
        "RLIMIT_NOFILE" => "Max open files",
        "RLIMIT_MEMLOCK" => "Max locked memory",
        "RLIMIT_AS" => "Max address space",
        "RLIMIT_LOCKS" => "Max file locks",
        "RLIMIT_SIGPENDING" => "Max pending signals",
        "RLIMIT_MSGQUEUE" => "Max msgqueue size",
        "RLIMIT_NICE" => "Max nice priority",
        "RLIMIT_RTPRIO" => "Max realtime priority",
        "RLIMIT_RTTIME" => "Max realtime timeout",
        _ => return None,
    })
}

pub(crate) fn host_has_lsm() -> bool {
    Path::new("/sys/kernel/security/apparmor").exists() || Path::new("/sys/fs/selinux/enforce").exists()
}

/// Adapts a captured config to this test's environment. Each step says why.
pub(crate) fn adapt(mut c: Value, files: &HostFiles) -> Value {
    // The rootfs is the test's busybox rootfs in each bundle (set per bundle in `prepare`);
    // the generators' overlay mounts are gone with their daemons.
    c["root"]["path"] = json!("rootfs");
    // The container's process is the probe (set per bundle too); no terminal: the test
    // reads the process's stdout from a file.
    c["process"]["terminal"] = json!(false);
    c["process"]["args"] = probe_args("wait");
    // Network namespaces joined by path point at the daemon's netns files (podman's CNI
    // netns under /run/netns): use a new network namespace instead. Other namespace paths
    // (none in the fixtures) would be dropped the same way.
    if let Some(list) = c.pointer_mut("/linux/namespaces").and_then(Value::as_array_mut) {
        for ns in list.iter_mut() {
            if let Some(o) = ns.as_object_mut() {
                o.remove("path");
            }
        }
    }
    // The host lacks CAP_SYS_RESOURCE: rlimits above its hard limits fail with EPERM
    // under every runtime. Clamp hard (and soft) to the host's hard limit.
    if let Some(list) = c.pointer_mut("/process/rlimits").and_then(Value::as_array_mut) {
        for r in list.iter_mut() {
            let Some(name) = r["type"].as_str().and_then(limit_line_name) else { continue };
            let Some(host) = host_hard_limit(name) else { continue }; // unlimited
            for k in ["hard", "soft"] {
                if r[k].as_u64().is_some_and(|v| v > host) {
                    r[k] = json!(host);
                }
            }
        }
    }
    // Hooks point at the daemons' binaries (docker's prestart `/proc/<dockerd>/exe
    // libnetwork-setkey`): remove them. Hook cases add their own recording hooks.
    if let Some(o) = c.as_object_mut() {
        o.remove("hooks");
    }
    // No AppArmor/SELinux on the host: a profile or label would make both runtimes fail
    // for a reason that has nothing to do with them.
    if !host_has_lsm() {
        for p in ["/process/apparmorProfile", "/process/selinuxLabel", "/linux/mountLabel"] {
            remove_ptr(&mut c, p);
        }
    }
    // Bind-mount sources that only existed in the daemons' storage (resolv.conf, hosts,
    // hostname, .containerenv, podman's shm dir): stand-ins in a shared host dir, a file
    // or a directory as the original was.
    if let Some(ms) = c.pointer_mut("/mounts").and_then(Value::as_array_mut) {
        for m in ms.iter_mut() {
            let Some(src) = m["source"].as_str() else { continue };
            if !src.starts_with('/') || Path::new(src).exists() {
                continue;
            }
            let base = src.rsplit('/').next().unwrap_or("x").to_string();
            let is_file = ["resolv.conf", "hosts", "hostname", ".containerenv"].contains(&base.as_str());
            let p = files.sources.path().join(&base);
            if is_file {
                if !p.exists() {
                    files.sources.file(&base, &format!("# stand-in for {base}\n"), 0, 0);
                }
            } else {
                let _ = fs::create_dir_all(&p);
            }
            m["source"] = json!(p.to_string_lossy());
        }
    }
    // linux.cgroupsPath: a unique path per bundle (set in `prepare`), so runs do not share
    // cgroups and the leftovers check knows where to look.
    c
}

pub(crate) fn remove_ptr(c: &mut Value, pointer: &str) -> bool {
    let Some((parent, key)) = pointer.rsplit_once('/') else { return false };
    let key = key.replace("~1", "/").replace("~0", "~");
    match c.pointer_mut(parent) {
        Some(Value::Object(m)) => m.remove(&key).is_some(),
        Some(Value::Array(a)) => match key.parse::<usize>() {
            Ok(i) if i < a.len() => {
                a.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// Sets `pointer` to `v`, creating missing objects on the way.
pub(crate) fn set_ptr(c: &mut Value, pointer: &str, v: Value) {
    let mut cur = c;
    for part in pointer.split('/').skip(1) {
        let part = part.replace("~1", "/").replace("~0", "~");
        if let Value::Array(a) = cur {
            let i: usize = part.parse().expect("array index");
            cur = &mut a[i];
            continue;
        }
        if !cur.is_object() {
            *cur = json!({});
        }
        cur = cur.as_object_mut().unwrap().entry(part).or_insert(Value::Null);
    }
    *cur = v;
}

pub(crate) fn push_ptr(c: &mut Value, pointer: &str, v: Value) {
    if !c.pointer(pointer).is_some_and(Value::is_array) {
        set_ptr(c, pointer, json!([]));
    }
    c.pointer_mut(pointer).and_then(Value::as_array_mut).unwrap().push(v);
}

pub(crate) fn fixtures_dir() -> PathBuf {
    workspace_dir().join("tests/differential/configs")
}

/// The captured configs, adapted, sorted by name.
pub(crate) fn fixture_cases(files: &HostFiles) -> Vec<Case> {
    let mut names: Vec<PathBuf> = fs::read_dir(fixtures_dir())
        .expect("tests/differential/configs (run tests/differential/capture.sh)")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no fixtures in {}", fixtures_dir().display());
    names
        .iter()
        .map(|p| {
            let text = fs::read_to_string(p).unwrap();
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            Case::new(&name, adapt(v, files))
        })
        .collect()
}

/// An old Docker-style allow-list (about 2019): default SCMP_ACT_ERRNO, and nothing that
/// appeared after Linux 5.8: no close_range, clone3, faccessat2, openat2, pidfd_*,
/// epoll_pwait2, rseq...
pub(crate) const OLD_ALLOW_LIST: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm", "arch_prctl", "bind", "brk", "capget",
    "capset", "chdir", "chmod", "chown", "chroot", "clock_getres", "clock_gettime",
    "clock_nanosleep", "clone", "close", "connect", "copy_file_range", "creat", "dup", "dup2",
    "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_wait",
    "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group", "faccessat",
    "fadvise64", "fallocate", "fchdir", "fchmod", "fchmodat", "fchown", "fchownat", "fcntl",
    "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr",
    "fstat", "fstatfs", "fsync", "ftruncate", "futex", "getcpu", "getcwd", "getdents",
    "getdents64", "getegid", "geteuid", "getgid", "getgroups", "getitimer", "getpeername",
    "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid",
    "getresuid", "getrlimit", "get_robust_list", "getrusage", "getsid", "getsockname",
    "getsockopt", "gettid", "gettimeofday", "getuid", "getxattr", "inotify_add_watch",
    "inotify_init", "inotify_init1", "inotify_rm_watch", "ioctl", "ioprio_get", "ioprio_set",
    "kill", "lchown", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr",
    "lremovexattr", "lseek", "lsetxattr", "lstat", "madvise", "memfd_create", "mincore",
    "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlockall", "mmap", "mprotect", "mremap",
    "msync", "munlock", "munlockall", "munmap", "nanosleep", "newfstatat", "open", "openat",
    "pause", "pipe", "pipe2", "poll", "ppoll", "prctl", "pread64", "preadv", "prlimit64",
    "pselect6", "pwrite64", "pwritev", "read", "readahead", "readlink", "readlinkat", "readv",
    "recvfrom", "recvmmsg", "recvmsg", "rename", "renameat", "renameat2", "restart_syscall",
    "rmdir", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo",
    "sched_getaffinity", "sched_getparam", "sched_get_priority_max", "sched_get_priority_min",
    "sched_getscheduler", "sched_setaffinity", "sched_yield", "seccomp", "select", "sendfile",
    "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsuid", "setgid", "setgroups",
    "setitimer", "setpgid", "setpriority", "setregid", "setresgid", "setresuid", "setreuid",
    "setrlimit", "set_robust_list", "setsid", "setsockopt", "set_tid_address", "setuid",
    "setxattr", "shutdown", "sigaltstack", "signalfd", "signalfd4", "socket", "socketpair",
    "splice", "stat", "statfs", "statx", "symlink", "symlinkat", "sync", "syncfs", "sysinfo",
    "tee", "tgkill", "time", "timer_create", "timer_delete", "timerfd_create",
    "timerfd_gettime", "timerfd_settime", "times", "tkill", "truncate", "umask", "uname",
    "unlink", "unlinkat", "utime", "utimensat", "utimes", "vfork", "wait4", "waitid", "write",
    "writev",
];

pub(crate) fn old_allow_list() -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{ "names": OLD_ALLOW_LIST, "action": "SCMP_ACT_ALLOW" }]
    })
}

/// The support library's default config (what `runc spec` writes, adapted), as a base.
pub(crate) fn base() -> Value {
    let mut c = default_config("husk-test", "/set-per-bundle");
    c["process"]["args"] = probe_args("wait");
    c
}

pub(crate) fn hand_written(files: &HostFiles) -> Vec<Case> {
    let mut v = vec![];
    let mut add = |name: &str, f: &dyn Fn(&mut Value)| {
        let mut c = base();
        f(&mut c);
        v.push(Case::new(name, c));
    };
    add("base", &|_| {});
    // Seccomp allow-lists, with and without noNewPrivileges (without it, the filter is
    // installed while the runtime still runs its own code in the container).
    add("seccomp-allowlist-nnp", &|c| {
        c["linux"]["seccomp"] = old_allow_list();
        c["process"]["noNewPrivileges"] = json!(true);
    });
    add("seccomp-allowlist-no-nnp", &|c| {
        c["linux"]["seccomp"] = old_allow_list();
        c["process"]["noNewPrivileges"] = json!(false);
    });
    // Configs without optional namespaces.
    let without = |c: &mut Value, t: &str| {
        let list = c["linux"]["namespaces"].as_array_mut().unwrap();
        list.retain(|n| n["type"] != t);
    };
    add("no-mount-ns", &|c| {
        without(c, "mount");
        // runc refuses masked/read-only paths without a mount namespace; keep the case
        // about the namespace alone.
        remove_ptr(c, "/linux/maskedPaths");
        remove_ptr(c, "/linux/readonlyPaths");
    });
    add("no-pid-ns", &|c| without(c, "pid"));
    add("no-network-ns", &|c| without(c, "network"));
    add("no-uts-ns", &|c| {
        without(c, "uts");
        remove_ptr(c, "/hostname");
    });
    add("no-uts-ns-with-hostname", &|c| without(c, "uts"));
    add("no-ipc-ns", &|c| without(c, "ipc"));
    add("only-user-ns-added", &|c| {
        push_ptr(c, "/linux/namespaces", json!({"type": "user"}));
        let map = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = map;
    });
    add("cgroup-ns-added", &|c| push_ptr(c, "/linux/namespaces", json!({"type": "cgroup"})));
    add("only-mount-ns", &|c| {
        c["linux"]["namespaces"] = json!([{ "type": "mount" }]);
        remove_ptr(c, "/hostname");
    });
    // Missing optional parts.
    add("no-rlimits", &|c| {
        remove_ptr(c, "/process/rlimits");
    });
    add("no-capabilities", &|c| {
        remove_ptr(c, "/process/capabilities");
    });
    add("empty-mounts", &|c| c["mounts"] = json!([]));
    add("no-hostname", &|c| {
        remove_ptr(c, "/hostname");
    });
    add("no-resources", &|c| {
        remove_ptr(c, "/linux/resources");
    });
    add("resources-set", &|c| {
        c["linux"]["resources"] = json!({
            "memory": { "limit": 268435456, "reservation": 134217728, "swappiness": 10 },
            "cpu": { "shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0" },
            "pids": { "limit": 123 },
            "blockIO": { "weight": 500 },
            "devices": [
                { "allow": false, "access": "rwm" },
                { "allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm" },
                { "allow": true, "type": "c", "major": 1, "minor": 5, "access": "rw" }
            ]
        });
    });
    // runtime-spec 1.3: pids.limit 0 is a limit of 0 (runc 1.1.5: unlimited).
    add("pids-limit-zero", &|c| c["linux"]["resources"] = json!({ "pids": { "limit": 0 } }));
    add("process-details", &|c| {
        c["process"]["user"] = json!({ "uid": 1000, "gid": 1000, "additionalGids": [5, 1], "umask": 63 });
        c["process"]["cwd"] = json!("/tmp");
        c["process"]["oomScoreAdj"] = json!(300);
        c["process"]["env"] = json!(["PATH=/bin", "A=1", "A=2", "B=x=y", "EMPTY="]);
    });
    // Capabilities outside the bounding set: runc fails the inheritable one, skips the ambient one.
    add("inheritable-outside-bounding", &|c| {
        c["process"]["capabilities"]["inheritable"] = json!(["CAP_KILL", "CAP_SYS_ADMIN"]);
    });
    add("ambient-outside-bounding", &|c| {
        c["process"]["capabilities"]["inheritable"] = json!(["CAP_KILL"]);
        c["process"]["capabilities"]["ambient"] = json!(["CAP_KILL", "CAP_SYS_ADMIN"]);
    });
    add("ambient-inside-bounding", &|c| {
        c["process"]["capabilities"]["inheritable"] = json!(["CAP_KILL"]);
        c["process"]["capabilities"]["ambient"] = json!(["CAP_KILL"]);
    });
    // Recursive mount attributes on an rbind mount of a dir with a submount.
    let src = files.rbind.path_str();
    for attr in [
        "rro", "rnosuid", "rnodev", "rnoexec", "rrelatime", "rnorelatime", "rstrictatime",
        "rnoatime", "rnodiratime",
    ] {
        let src = src.clone();
        add(&format!("mount-attr-{attr}"), &move |c| {
            push_ptr(c, "/mounts", json!({
                "destination": "/mnt/r", "type": "bind", "source": src,
                "options": ["rbind", attr]
            }));
        });
    }
    // Listed: runc 1.1.5 does not know time namespaces (runtime-spec 1.2).
    add("time-ns-offsets", &|c| {
        push_ptr(c, "/linux/namespaces", json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({ "monotonic": { "secs": 86400, "nanosecs": 0 } });
    });

    // Every hook kind, recording its stdin and env, with and without an `env` field.
    for with_env in [true, false] {
        let mut c = Case::new(
            if with_env { "hooks-all-with-env" } else { "hooks-all-without-env" },
            base(),
        );
        c.hooks = HookKind::ALL.iter().map(|k| (*k, with_env)).collect();
        v.push(c);
    }
    // A failing startContainer hook: start fails, the lifecycle goes on at delete.
    let mut c = Case::new("hook-startContainer-fails", base());
    c.flow = Flow::FailingStart;
    c.hooks = HookKind::ALL.iter().map(|k| (*k, true)).collect();
    v.push(c);

    // exec --env overriding a process.env variable.
    let mut c = Case::new("exec-env-override", base());
    c.config["process"]["env"] = json!(["PATH=/bin:/usr/bin", "FOO=orig", "KEEP=1"]);
    c.flow = Flow::Exec(vec!["--env".into(), "FOO=new".into(), "--env".into(), "BAR=added".into()]);
    v.push(c);
    // exec --process FILE.
    let mut c = Case::new("exec-process-file", base());
    c.flow = Flow::ExecProcess(json!({
        "terminal": false,
        "user": { "uid": 1000, "gid": 1000, "additionalGids": [5] },
        "args": probe_args("nowait"),
        "env": ["PATH=/bin", "FROM_FILE=1", "FROM_FILE=2"],
        "cwd": "/tmp",
        "capabilities": {
            "bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL"], "inheritable": [], "ambient": []
        },
        "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 512, "soft": 256 }],
        "noNewPrivileges": true
    }));
    v.push(c);
    v
}

