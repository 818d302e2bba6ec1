//! Differential test: the same configs under runc and under husk, compared from the inside.
//!
//! Every case is a config.json. It runs once under `runc` (found on PATH: the test fails,
//! never skips, without it) and once under husk ([`husk_bin`]), each with its own state root
//! and its own bundle (a fresh busybox rootfs), and with the same probe as the container's
//! process: a busybox shell script that prints what the process sees (namespaces compared
//! with the test's own, mountinfo, Cap*/NoNewPrivs/Seccomp/Uid/Gid/Groups of
//! /proc/self/status, /proc/self/limits, the exact environment, umask, cwd, hostname,
//! oom_score_adj, /proc/self/cgroup). While the probe waits (for `/.go` in its rootfs), the
//! test reads the cgroup files of the container from the host; hooks record their stdin
//! (the state) and their environment into the rootfs. The two observations are compared
//! field by field.
//!
//! A difference fails the test unless docs/runc-differences.md lists it: that doc holds a
//! markdown table whose first column is a key in backticks, a glob (`*` any text, `?` one
//! character) matched against `<case>/<field>`. The failure message names the case, the
//! field, husk's value and runc's value.
//!
//! The corpus: configs captured from real generators (tests/differential/configs/, made by
//! tests/differential/capture.sh), hand-written cases, and seeded mutations of the captured
//! configs. `DIFF_FILTER=substring` runs only the cases whose name contains it;
//! `DIFF_THREADS=n` sets the number of cases run at once (default 4).

use husk_tests::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

// ---- the probe ----------------------------------------------------------------------------

/// The container's process: prints what it sees, in `== section` blocks, then (with `wait`
/// as $1) waits until the host creates `/.go` in its rootfs, so that the host can read the
/// container's cgroup files while it runs. Always exits 0: a non-zero `run` means the
/// runtime refused the config.
const PROBE: &str = r#"
echo '== ns'
for n in cgroup ipc mnt net pid pid_for_children time time_for_children user uts; do
  echo "$n $(readlink /proc/self/ns/$n)"
done
echo '== mountinfo'
cat /proc/$$/mountinfo
echo '== status'
grep -E '^(Cap|NoNewPrivs|Seccomp|Uid|Gid|Groups)' /proc/$$/status
echo '== limits'
cat /proc/$$/limits
echo '== env'
tr '\0' '\n' < /proc/$$/environ
echo '== misc'
echo "umask $(umask)"
echo "cwd $(pwd -P)"
echo "hostname $(uname -n)"
echo "oom_score_adj $(cat /proc/$$/oom_score_adj)"
echo '== cgroup'
cat /proc/$$/cgroup
echo '== end'
if [ "$1" = wait ]; then
  n=0
  while [ ! -e /.go ] && [ $n -lt 4000 ]; do usleep 5000; n=$((n+1)); done
fi
exit 0
"#;

fn probe_args(mode: &str) -> Value {
    json!(["/bin/sh", "-c", PROBE, "probe", mode])
}

/// The cgroup v1 files read from the host for every container (what `linux.resources` and
/// `linux.devices` set), as `<controller>/<file>`.
const CGROUP_FILES: &[&str] = &[
    "memory/memory.limit_in_bytes",
    "memory/memory.soft_limit_in_bytes",
    "memory/memory.memsw.limit_in_bytes",
    "memory/memory.swappiness",
    "memory/memory.oom_control",
    "cpu/cpu.shares",
    "cpu/cpu.cfs_quota_us",
    "cpu/cpu.cfs_period_us",
    "cpuset/cpuset.cpus",
    "cpuset/cpuset.mems",
    "pids/pids.max",
    "blkio/blkio.weight",
    "devices/devices.list",
];

// ---- cases ----------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Flow {
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
struct Case {
    name: String,
    /// The adapted config (root.path, process.args and cgroupsPath are set per bundle).
    config: Value,
    flow: Flow,
    /// Recording hooks to add, each with or without an `env` field.
    hooks: Vec<(HookKind, bool)>,
}

impl Case {
    fn new(name: &str, config: Value) -> Case {
        Case {
            name: name.to_string(),
            config,
            flow: Flow::Run,
            hooks: vec![],
        }
    }
}

/// Host paths shared by all cases (bind-mount sources), removed at the end.
struct HostFiles {
    /// Stand-ins for the daemons' private bind-mount sources (resolv.conf, hosts, shm...).
    sources: HostDir,
    /// An rbind source with a tmpfs submount, for the recursive mount attributes.
    rbind: HostDir,
}

/// RLIMIT_* name -> the line name in /proc/self/limits.
fn limit_line_name(typ: &str) -> Option<&'static str> {
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

fn host_has_lsm() -> bool {
    Path::new("/sys/kernel/security/apparmor").exists() || Path::new("/sys/fs/selinux/enforce").exists()
}

/// Adapts a captured config to this test's environment. Each step says why.
fn adapt(mut c: Value, files: &HostFiles) -> Value {
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

fn remove_ptr(c: &mut Value, pointer: &str) -> bool {
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
fn set_ptr(c: &mut Value, pointer: &str, v: Value) {
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

fn push_ptr(c: &mut Value, pointer: &str, v: Value) {
    if !c.pointer(pointer).is_some_and(Value::is_array) {
        set_ptr(c, pointer, json!([]));
    }
    c.pointer_mut(pointer).and_then(Value::as_array_mut).unwrap().push(v);
}

fn fixtures_dir() -> PathBuf {
    workspace_dir().join("tests/differential/configs")
}

/// The captured configs, adapted, sorted by name.
fn fixture_cases(files: &HostFiles) -> Vec<Case> {
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
const OLD_ALLOW_LIST: &[&str] = &[
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

fn old_allow_list() -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{ "names": OLD_ALLOW_LIST, "action": "SCMP_ACT_ALLOW" }]
    })
}

/// The support library's default config (what `runc spec` writes, adapted), as a base.
fn base() -> Value {
    let mut c = default_config("husk-test", "/set-per-bundle");
    c["process"]["args"] = probe_args("wait");
    c
}

fn hand_written(files: &HostFiles) -> Vec<Case> {
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

// ---- seeded mutations -----------------------------------------------------------------------

/// xorshift64*: a tiny deterministic PRNG, so the mutated corpus is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

const SEED: u64 = 0x5eed_d1ff_2026_0001;
const MUTATIONS_PER_FIXTURE: usize = 26;

/// Paths a mutation never drops or flips: what the test itself sets, and their parents.
fn protected(p: &str) -> bool {
    const KEEP: &[&str] = &[
        "/process", "/process/args", "/process/terminal", "/root", "/root/path", "/linux",
        "/linux/cgroupsPath",
    ];
    KEEP.contains(&p) || p.starts_with("/process/args/")
}

fn esc(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

/// Every JSON pointer in `v` up to `depth` segments, skipping the long seccomp name lists.
fn paths(v: &Value, prefix: &str, depth: usize, out: &mut Vec<String>) {
    if depth == 0 || prefix.ends_with("/names") {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{prefix}/{}", esc(k));
                out.push(p.clone());
                paths(x, &p, depth - 1, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let p = format!("{prefix}/{i}");
                out.push(p.clone());
                paths(x, &p, depth - 1, out);
            }
        }
        _ => {}
    }
}

/// A readable form of a pointer for case names: `/linux/seccomp` -> `.linux.seccomp`.
fn dotted(p: &str) -> String {
    p.replace('/', ".")
}

/// Fields a mutation may add (set where absent): ones both runtimes implement.
fn additions(files: &HostFiles) -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("oomScoreAdj", "/process/oomScoreAdj", json!(500)),
        ("umask", "/process/user/umask", json!(63)),
        ("additionalGids", "/process/user/additionalGids", json!([5, 1000])),
        ("hostname", "/hostname", json!("mutant")),
        ("domainname", "/domainname", json!("mutant.example")),
        ("annotation", "/annotations/org.example.mutant", json!("yes")),
        ("sysctl", "/linux/sysctl/kernel.msgmax", json!("8192")),
        ("pids", "/linux/resources/pids/limit", json!(123)),
        ("memory", "/linux/resources/memory/limit", json!(268435456)),
        ("shares", "/linux/resources/cpu/shares", json!(512)),
        ("quota", "/linux/resources/cpu/quota", json!(50000)),
        ("cpus", "/linux/resources/cpu/cpus", json!("0")),
        ("swappiness", "/linux/resources/memory/swappiness", json!(10)),
        ("propagation-private", "/linux/rootfsPropagation", json!("private")),
        ("propagation-rslave", "/linux/rootfsPropagation", json!("rslave")),
        ("readonly-root", "/root/readonly", json!(true)),
        ("nnp", "/process/noNewPrivileges", json!(true)),
        ("cwd", "/process/cwd", json!("/tmp")),
        ("uid", "/process/user/uid", json!(1000)),
        ("env", "/process/env/-", json!("ADDED=1")),
        ("env-dup-path", "/process/env/-", json!("PATH=/bin")),
        ("mount-tmpfs", "/mounts/-", json!({
            "destination": "/mnt", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", "size=1m", "mode=750"] })),
        ("mount-rbind-ro", "/mounts/-", json!({
            "destination": "/mnt", "type": "bind", "source": files.rbind.path_str(),
            "options": ["rbind", "ro", "nosuid"] })),
        ("rlimit-nproc", "/process/rlimits/-", json!({ "type": "RLIMIT_NPROC", "hard": 512, "soft": 256 })),
        ("rlimit-core", "/process/rlimits/-", json!({ "type": "RLIMIT_CORE", "hard": 0, "soft": 0 })),
        ("masked", "/linux/maskedPaths/-", json!("/proc/cpuinfo")),
        ("readonly-path", "/linux/readonlyPaths/-", json!("/proc/interrupts")),
        ("cap-sys-admin", "/process/capabilities/bounding/-", json!("CAP_SYS_ADMIN")),
        ("cgroup-ns", "/linux/namespaces/-", json!({ "type": "cgroup" })),
    ]
}

fn mutate(base: &Case, n: usize, rng: &mut Rng, files: &HostFiles) -> Option<Case> {
    let mut c = base.config.clone();
    let label;
    match rng.below(6) {
        // Drop an optional field (or a required one: then both should refuse).
        0 => {
            let mut ps = vec![];
            paths(&c, "", 4, &mut ps);
            ps.retain(|p| !protected(p));
            let p = rng.pick(&ps).clone();
            remove_ptr(&mut c, &p);
            label = format!("drop{}", dotted(&p));
        }
        // Add a field.
        1 => {
            let adds = additions(files);
            let (what, p, v) = rng.pick(&adds).clone();
            if let Some(parent) = p.strip_suffix("/-") {
                if *what == *"rlimit-nproc" || *what == *"rlimit-core" {
                    let typ = v["type"].clone();
                    if let Some(list) = c.pointer_mut(parent).and_then(Value::as_array_mut) {
                        list.retain(|r| r["type"] != typ);
                    }
                }
                if what == "mount-tmpfs" || what == "mount-rbind-ro" {
                    if let Some(list) = c.pointer_mut(parent).and_then(Value::as_array_mut) {
                        list.retain(|m| m["destination"] != "/mnt");
                    }
                }
                push_ptr(&mut c, parent, v);
            } else {
                set_ptr(&mut c, p, v);
            }
            label = format!("add-{what}");
        }
        // Flip a boolean (never process.terminal).
        2 => {
            let mut ps = vec![];
            paths(&c, "", 6, &mut ps);
            ps.retain(|p| !protected(p) && c.pointer(p).is_some_and(Value::is_boolean));
            if ps.is_empty() {
                return None;
            }
            let p = rng.pick(&ps).clone();
            let b = c.pointer(&p).unwrap().as_bool().unwrap();
            *c.pointer_mut(&p).unwrap() = json!(!b);
            label = format!("flip{}", dotted(&p));
        }
        // Swap two mounts or two env entries.
        3 | 4 => {
            let what = if rng.below(2) == 0 { "/mounts" } else { "/process/env" };
            let len = c.pointer(what).and_then(Value::as_array).map_or(0, Vec::len);
            if len < 2 {
                return None;
            }
            let i = rng.below(len);
            let mut j = rng.below(len - 1);
            if j >= i {
                j += 1;
            }
            c.pointer_mut(what).and_then(Value::as_array_mut).unwrap().swap(i, j);
            label = format!("swap{}-{}-{}", dotted(what), i.min(j), i.max(j));
        }
        // Add an unknown field, at top level or nested in an object.
        _ => {
            let mut ps = vec![String::new()];
            paths(&c, "", 3, &mut ps);
            ps.retain(|p| p.is_empty() || c.pointer(p).is_some_and(Value::is_object));
            let p = rng.pick(&ps).clone();
            let target = if p.is_empty() { &mut c } else { c.pointer_mut(&p).unwrap() };
            target["xHuskUnknown"] = json!({ "nested": [1, "two", { "three": null }] });
            label = format!("unknown{}", if p.is_empty() { ".top".into() } else { dotted(&p) });
        }
    }
    Some(Case {
        name: format!("{}~m{n:02}~{label}", base.name),
        config: c,
        flow: Flow::Run,
        hooks: vec![],
    })
}

fn mutations(bases: &[Case], files: &HostFiles) -> Vec<Case> {
    let mut rng = Rng(SEED);
    let mut out = vec![];
    let mut seen = BTreeSet::new();
    for b in bases {
        let mut n = 0;
        let mut tries = 0;
        while n < MUTATIONS_PER_FIXTURE && tries < MUTATIONS_PER_FIXTURE * 4 {
            tries += 1;
            if let Some(m) = mutate(b, n, &mut rng, files) {
                let label = m.name.split('~').nth(2).unwrap_or("").to_string();
                if seen.insert((b.name.clone(), label)) {
                    out.push(m);
                    n += 1;
                }
            }
        }
    }
    out
}

// ---- running one case under one runtime ---------------------------------------------------

/// What one runtime showed for one case: field -> value, and messages for people.
#[derive(Default, Debug)]
struct Obs {
    fields: BTreeMap<String, String>,
    notes: Vec<String>,
}

impl Obs {
    fn set(&mut self, k: impl Into<String>, v: impl Into<String>) {
        self.fields.insert(k.into(), v.into());
    }
}

/// The recording hook: saves its stdin and its environment into DIR (the rootfs seen from
/// where the hook runs) and appends its kind to DIR/hooks.log.
fn hook_json(kind: HookKind, with_env: bool, dir: &str, fail: bool) -> Value {
    let k = kind.key();
    let script = if fail {
        format!("echo {k}-failed >> {dir}/hooks.log; exit 1")
    } else {
        format!(
            "cat > {dir}/hook-{k}.state; cat /proc/$$/environ > {dir}/hook-{k}.env; echo {k} >> {dir}/hooks.log"
        )
    };
    let mut h = json!({ "path": "/bin/sh", "args": ["sh", "-c", script], "timeout": 10 });
    if with_env {
        h["env"] = json!(["PATH=/usr/sbin:/usr/bin:/sbin:/bin", format!("HOOK_KIND={k}")]);
    }
    h
}

fn prepare(case: &Case, tag: &str) -> Bundle {
    let mut b = Bundle::new(&format!("dif-{tag}"));
    let cg = b.cgroups_path().unwrap();
    let rootfs = b.rootfs().to_string_lossy().into_owned();
    let mut c = case.config.clone();
    set_ptr(&mut c, "/root/path", json!("rootfs"));
    set_ptr(&mut c, "/linux/cgroupsPath", json!(cg));
    if c.pointer("/process/args").is_none() {
        set_ptr(&mut c, "/process/args", probe_args("wait"));
    }
    let fail = case.flow == Flow::FailingStart;
    for (kind, with_env) in &case.hooks {
        let dir = if kind.in_container() { "" } else { rootfs.as_str() };
        let fails = fail && *kind == HookKind::StartContainer;
        push_ptr(&mut c, &format!("/hooks/{}", kind.key()), hook_json(*kind, *with_env, dir, fails));
    }
    if matches!(case.flow, Flow::FailingStart) {
        set_ptr(&mut c, "/process/args", probe_args("nowait"));
    }
    *b.config_mut() = c;
    b.write();
    b
}

/// Splits the probe's output into its sections.
fn sections(out: &str) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut cur = String::from("preamble");
    for l in out.lines() {
        if let Some(s) = l.strip_prefix("== ") {
            cur = s.trim().to_string();
            m.entry(cur.clone()).or_default();
        } else {
            m.entry(cur.clone()).or_default().push(l.to_string());
        }
    }
    m
}

/// Host namespace links, read once by the test process.
fn host_ns() -> &'static BTreeMap<String, String> {
    static NS: std::sync::OnceLock<BTreeMap<String, String>> = std::sync::OnceLock::new();
    NS.get_or_init(|| {
        ["cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time",
         "time_for_children", "user", "uts"]
            .iter()
            .map(|n| (n.to_string(), ns_link("self", n)))
            .collect()
    })
}

/// Turns the probe's output into fields, prefixed with `prefix` (`` or `exec.`).
fn parse_probe(out: &str, config: &Value, cg: &str, prefix: &str, obs: &mut Obs) {
    let s = sections(out);
    let empty = vec![];
    let sec = |n: &str| s.get(n).unwrap_or(&empty);
    obs.set(format!("{prefix}probe"), if s.contains_key("end") { "complete" } else { "incomplete" });
    for l in sec("ns") {
        let (n, link) = l.split_once(' ').unwrap_or((l, ""));
        let v = if link.is_empty() {
            "absent"
        } else if host_ns().get(n).is_some_and(|h| h == link) {
            "host"
        } else {
            "new"
        };
        obs.set(format!("{prefix}ns.{n}"), v);
    }
    // Mounts: config mounts by destination, to know which tmpfs sizes the config chose.
    let cfg_types: BTreeMap<String, String> = config["mounts"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter_map(|m| {
                    Some((
                        m["destination"].as_str()?.trim_end_matches('/').to_string(),
                        m["type"].as_str().unwrap_or("").to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let infos = parse_mountinfo(&sec("mountinfo").join("\n"));
    // The order of the config's own mounts (mutations swap them); the runtime's extra mounts
    // (device binds, masks, cgroup binds) are compared one by one below, not by position.
    let order: Vec<&str> = infos
        .iter()
        .map(|m| m.mount_point.as_str())
        .filter(|p| cfg_types.contains_key(*p))
        .collect();
    obs.set(format!("{prefix}mounts.order"), order.join(" "));
    let mut per_point: BTreeMap<String, [Vec<String>; 5]> = BTreeMap::new();
    for m in &infos {
        let mut sup = m.super_opts.clone();
        // A tmpfs the runtime made on its own (masked directories, the tmpfs under a v1
        // /sys/fs/cgroup, a missing /dev): its size and inode count are the runtime's
        // choice, not the config's. Only a tmpfs the config asked for keeps them.
        if m.fs_type == "tmpfs" && cfg_types.get(&m.mount_point).map(String::as_str) != Some("tmpfs") {
            sup.retain(|o| !o.starts_with("size=") && !o.starts_with("nr_inodes="));
        }
        // Peer group and master ids are run-specific; the propagation kind is not.
        let prop: Vec<String> = m
            .optional
            .iter()
            .map(|o| o.split(':').next().unwrap_or("").to_string())
            .collect();
        let e = per_point.entry(m.mount_point.clone()).or_default();
        e[0].push(m.fs_type.clone());
        e[1].push(m.source.clone());
        e[2].push(m.mount_opts.join(","));
        e[3].push(sup.join(","));
        e[4].push(if prop.is_empty() { "private".to_string() } else { prop.join(",") });
    }
    // One field per mount point and attribute (stacked mounts joined by " | "), so that a
    // listed difference in one attribute does not hide another.
    for (p, attrs) in per_point {
        for (name, vals) in ["fs", "src", "opts", "super", "prop"].iter().zip(attrs) {
            obs.set(format!("{prefix}mount:{p}:{name}"), vals.join(" | "));
        }
    }
    for l in sec("status") {
        if let Some((k, v)) = l.split_once(':') {
            let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
            obs.set(format!("{prefix}status.{k}"), v);
        }
    }
    for l in sec("limits").iter().skip(1) {
        if l.len() < 26 {
            continue;
        }
        let name = l[..25].trim();
        let vals: Vec<&str> = l[25..].split_whitespace().take(2).collect();
        obs.set(format!("{prefix}limit.{name}"), vals.join(" "));
    }
    obs.set(format!("{prefix}env"), format!("{:?}", sec("env")));
    for l in sec("misc") {
        let (k, v) = l.split_once(' ').unwrap_or((l, ""));
        obs.set(format!("{prefix}{k}"), v);
    }
    let cgl: Vec<String> = sec("cgroup")
        .iter()
        .map(|l| {
            let l = l.replace(&format!("{cg}/"), "<cgroupsPath>/");
            if l.ends_with(cg) {
                format!("{}<cgroupsPath>", &l[..l.len() - cg.len()])
            } else {
                l
            }
        })
        .collect();
    obs.set(format!("{prefix}proc.cgroup"), cgl.join(" "));
}

fn read_cgroups(cg: &str, obs: &mut Obs) {
    let rel = cg.trim_start_matches('/');
    for f in CGROUP_FILES {
        let (ctrl, file) = f.split_once('/').unwrap();
        let p = Path::new("/sys/fs/cgroup").join(ctrl).join(rel).join(file);
        let v = match fs::read_to_string(&p) {
            Ok(t) if file == "memory.oom_control" => {
                t.lines().find(|l| l.starts_with("oom_kill_disable")).unwrap_or("").to_string()
            }
            // The kernel keeps device rules in the order they were written; what they allow
            // is the set: one field per rule.
            Ok(t) if file == "devices.list" => {
                for rule in t.lines() {
                    obs.set(format!("cgroup.devices.list[{rule}]"), "allowed");
                }
                continue;
            }
            Ok(t) => t.split_whitespace().collect::<Vec<_>>().join(" "),
            Err(e) => format!("<{}>", e.kind()),
        };
        obs.set(format!("cgroup.{ctrl}/{file}"), v);
    }
}

fn hook_fields(b: &Bundle, id: &str, prefix: &str, obs: &mut Obs) {
    let log = b.read("hooks.log");
    obs.set(format!("{prefix}hooks.ran"), log.split_whitespace().collect::<Vec<_>>().join(" "));
    if !prefix.is_empty() {
        // An intermediate look (after create, after start): which hooks ran so far.
        return;
    }
    for kind in HookKind::ALL {
        let k = kind.key();
        let st = b.read(&format!("hook-{k}.state"));
        if !st.is_empty() || b.rootfs().join(format!("hook-{k}.state")).exists() {
            let v = match serde_json::from_str::<Value>(st.trim()) {
                Ok(mut v) => {
                    // Run-specific: the pid (kept when it is 1, the container's own view),
                    // the bundle dir and the container id.
                    if v["pid"].as_i64().is_some_and(|p| p != 1) {
                        v["pid"] = json!("<pid>");
                    }
                    if v["bundle"] == json!(b.dir_str()) {
                        v["bundle"] = json!("<bundle>");
                    }
                    if v["id"] == json!(id) {
                        v["id"] = json!("<id>");
                    }
                    // One field per key of the state.
                    for (key, val) in v.as_object().into_iter().flatten() {
                        obs.set(format!("{prefix}hook.{k}.stdin.{key}"), val.to_string());
                    }
                    "JSON object".to_string()
                }
                Err(_) => format!("not JSON: {st:?}"),
            };
            obs.set(format!("{prefix}hook.{k}.stdin"), v);
        }
        if let Ok(env) = fs::read(b.rootfs().join(format!("hook-{k}.env"))) {
            let list: Vec<String> = String::from_utf8_lossy(&env)
                .split('\0')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            // Two fields: what the hook gets (sorted), and in which order (husk starts hooks
            // with std's Command, which sorts: a listed, cosmetic difference).
            let mut sorted = list.clone();
            sorted.sort();
            obs.set(format!("{prefix}hook.{k}.env"), format!("{sorted:?}"));
            obs.set(format!("{prefix}hook.{k}.env.order"), format!("{list:?}"));
        }
    }
}

/// The error lines of a command's output, for the report.
fn why(out: &Output) -> String {
    let mut msgs: Vec<String> = out
        .log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["level"] == "error" || v["level"] == "fatal")
        .filter_map(|v| v["msg"].as_str().map(str::to_string))
        .collect();
    if msgs.is_empty() {
        msgs = out.stderr.lines().rev().take(3).map(str::to_string).collect();
    }
    let s = msgs.join(" / ");
    if s.len() > 400 { format!("{}...", &s[..400]) } else { s }
}

fn run_case(case: &Case, runtime: &str, bin: &Path) -> Obs {
    let mut obs = Obs::default();
    let b = prepare(case, &format!("{}-{runtime}", &case.name[..case.name.len().min(20)]));
    let cg = b.cgroups_path().unwrap();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let rt = Runtime::with_bin(&format!("dif-{runtime}"), bin.to_path_buf());
        let id = rt.id("d");
        match &case.flow {
            Flow::FailingStart => {
                let o = rt.create(&b, &id);
                obs.set("create", if o.ok() { "ok" } else { "refused" });
                if !o.ok() {
                    obs.notes.push(format!("{runtime} create: {}", why(&o)));
                }
                hook_fields(&b, &id, "after-create.", &mut obs);
                let o = rt.start(&id);
                obs.set("start", if o.ok() { "ok" } else { "failed" });
                let st = rt.state(&id);
                let status = if st.ok() {
                    st.json()["status"].as_str().unwrap_or("").to_string()
                } else {
                    "no state".into()
                };
                obs.set("state-after-start", status);
                hook_fields(&b, &id, "after-start.", &mut obs);
                let d = rt.delete(&id);
                let d = if d.ok() { "ok".to_string() } else {
                    let f = rt.delete_force(&id);
                    format!("failed, then --force {}", if f.ok() { "ok" } else { "failed" })
                };
                obs.set("delete", d);
                hook_fields(&b, &id, "", &mut obs);
            }
            flow => {
                let mut running = rt.spawn_run(&b, &id, &[]);
                let deadline = Instant::now() + Duration::from_secs(20);
                let mut seen_end = false;
                while Instant::now() < deadline {
                    if running.peek().stdout.contains("\n== end\n") {
                        seen_end = true;
                        break;
                    }
                    if running.exited() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(3));
                }
                if seen_end {
                    read_cgroups(&cg, &mut obs);
                    match flow {
                        Flow::Exec(opts) => {
                            let mut args: Vec<String> = vec!["exec".into()];
                            args.extend(opts.iter().cloned());
                            args.push(id.clone());
                            for a in probe_args("nowait").as_array().unwrap() {
                                args.push(a.as_str().unwrap().to_string());
                            }
                            let a: Vec<&str> = args.iter().map(String::as_str).collect();
                            let o = rt.cmd(&a);
                            obs.set("exec.status", if o.ok() { "ok" } else { "refused" });
                            if !o.ok() {
                                obs.notes.push(format!("{runtime} exec: {}", why(&o)));
                            }
                            parse_probe(&o.stdout, &b.config()["process"], &cg, "exec.", &mut obs);
                        }
                        Flow::ExecProcess(p) => {
                            let f = rt.scratch().join("process.json");
                            fs::write(&f, p.to_string()).unwrap();
                            let fs_ = f.to_string_lossy().into_owned();
                            let o = rt.cmd(&["exec", "--process", &fs_, &id]);
                            obs.set("exec.status", if o.ok() { "ok" } else { "refused" });
                            if !o.ok() {
                                obs.notes.push(format!("{runtime} exec: {}", why(&o)));
                            }
                            parse_probe(&o.stdout, &json!({}), &cg, "exec.", &mut obs);
                        }
                        _ => {}
                    }
                }
                let _ = fs::write(b.rootfs().join(".go"), "");
                let out = running.wait(Duration::from_secs(30));
                let ok = out.ok() && seen_end;
                obs.set("status", if ok { "ok" } else { "refused" });
                if !ok {
                    obs.notes.push(format!("{runtime} run (exit {}): {}", out.code, why(&out)));
                } else {
                    parse_probe(&out.stdout, b.config(), &cg, "", &mut obs);
                }
                hook_fields(&b, &id, "", &mut obs);
            }
        }
        // What the container left on the host after its last command (the drop guard would
        // fail on it; record it as a field instead, then clean up).
        let l = rt.leftovers(&b, &id);
        let items: Vec<String> = l
            .items
            .iter()
            .map(|i| {
                i.replace(&b.dir_str(), "<bundle>")
                    .replace(&rt.root_str(), "<root>")
                    .replace(&cg, "<cgroupsPath>")
            })
            .map(|i| {
                // Pids are run-specific.
                i.split(' ')
                    .map(|w| if w.parse::<u32>().is_ok() { "<n>" } else { w })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        obs.set("leftovers", if items.is_empty() { "none".to_string() } else { items.join("; ") });
        if !l.is_empty() {
            let _ = rt.delete_force(&id);
            clean_up(rt.root(), b.dir(), Some(&cg), None);
        }
    }));
    if let Err(e) = result {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into());
        let short: String = msg.chars().take(600).collect();
        obs.set("harness", format!("panicked: {short}"));
    }
    // Mounts under the bundle (e.g. a runtime that mounted into the host's namespace)
    // would make the bundle's drop panic: it reports them as leftovers above already.
    for m in mounts_under(b.dir()).iter().rev() {
        let _ = std::process::Command::new("umount").arg("-l").arg(m).status();
    }
    obs
}

// ---- the doc of deliberate differences ------------------------------------------------------

fn doc_path() -> PathBuf {
    workspace_dir().join("docs/runc-differences.md")
}

/// The keys of docs/runc-differences.md: the first backticked text of the first cell of
/// every table row.
fn doc_keys() -> Vec<String> {
    let text = fs::read_to_string(doc_path()).expect("docs/runc-differences.md");
    text.lines()
        .filter_map(|l| {
            let cell = l.trim().strip_prefix('|')?.split('|').next()?.trim();
            let k = cell.strip_prefix('`')?;
            Some(k[..k.find('`')?].to_string())
        })
        .collect()
}

/// `*` matches any text (also `/`), `?` one character.
fn glob(pat: &str, s: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let t: Vec<char> = s.chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(sp) = star {
            pi = sp + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[test]
fn glob_matches() {
    assert!(glob("a/*", "a/b/c"));
    assert!(glob("*~m??~drop.linux.seccomp/status", "docker-default~m07~drop.linux.seccomp/status"));
    assert!(glob("x", "x"));
    assert!(!glob("x", "xy"));
    assert!(!glob("a*c", "abd"));
    assert!(glob("*", ""));
}

// ---- the test ---------------------------------------------------------------------------------

struct Diff {
    case: String,
    field: String,
    husk: String,
    runc: String,
    listed_by: Option<String>,
}

#[test]
fn husk_and_runc_agree() {
    let t0 = Instant::now();
    let runc = which("runc").expect("runc not found on PATH: the differential test needs it (make deps)");
    let husk = husk_bin();
    assert!(husk.is_file(), "husk binary {} not found: make build, or set HUSK_BIN", husk.display());
    let keys = doc_keys();
    let files = HostFiles {
        sources: HostDir::new("difsrc"),
        rbind: HostDir::with_tmpfs("difrbind", "sub"),
    };
    files.rbind.file("file", "x\n", 0, 0);

    let fixtures = fixture_cases(&files);
    let mut cases = fixtures.clone();
    cases.extend(hand_written(&files));
    cases.extend(mutations(&fixtures, &files));
    if let Ok(f) = std::env::var("DIFF_FILTER") {
        cases.retain(|c| c.name.contains(&f));
    }
    let threads: usize = std::env::var("DIFF_THREADS").ok().and_then(|s| s.parse().ok()).unwrap_or(4);

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Obs, Obs)>> = Mutex::new(vec![]);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(case) = cases.get(i) else { break };
                let h = run_case(case, "husk", &husk);
                let r = run_case(case, "runc", &runc);
                results.lock().unwrap().push((i, h, r));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.0);

    if std::env::var_os("DIFF_DUMP").is_some() {
        for (i, h, r) in &results {
            eprintln!("=== {}", cases[*i].name);
            for (k, v) in &h.fields {
                let rv = r.fields.get(k).map(String::as_str).unwrap_or("<absent>");
                eprintln!("  {k}: husk={v} runc={rv}");
            }
            for (k, v) in r.fields.iter().filter(|(k, _)| !h.fields.contains_key(*k)) {
                eprintln!("  {k}: husk=<absent> runc={v}");
            }
            for n in h.notes.iter().chain(&r.notes) {
                eprintln!("  note: {n}");
            }
        }
    }
    let mut diffs: Vec<Diff> = vec![];
    let mut agree = 0;
    let mut used_keys = BTreeSet::new();
    for (i, h, r) in &results {
        let case = &cases[*i];
        let mut fields: BTreeSet<&String> = h.fields.keys().collect();
        fields.extend(r.fields.keys());
        // When one side refused, the probe fields of the other mean nothing more than
        // `status` says: compare only the lifecycle fields then.
        let refused = h.fields.get("status") != r.fields.get("status");
        let mut n = 0;
        for f in fields {
            if refused && !["status", "leftovers", "harness"].contains(&f.as_str())
                && !f.starts_with("hook")
            {
                continue;
            }
            let hv = h.fields.get(f).cloned().unwrap_or_else(|| "<absent>".into());
            let rv = r.fields.get(f).cloned().unwrap_or_else(|| "<absent>".into());
            if hv == rv {
                continue;
            }
            n += 1;
            let full = format!("{}/{}", case.name, f);
            let listed_by = keys.iter().find(|k| glob(k, &full)).cloned();
            if let Some(k) = &listed_by {
                used_keys.insert(k.clone());
            }
            let (mut hv, mut rv) = (hv, rv);
            if f == "status" || f == "create" || f == "exec.status" {
                for note in &h.notes {
                    hv.push_str(&format!(" [{note}]"));
                }
                for note in &r.notes {
                    rv.push_str(&format!(" [{note}]"));
                }
            }
            diffs.push(Diff { case: case.name.clone(), field: f.clone(), husk: hv, runc: rv, listed_by });
        }
        if n == 0 {
            agree += 1;
        }
    }

    let listed = diffs.iter().filter(|d| d.listed_by.is_some()).count();
    let unlisted: Vec<&Diff> = diffs.iter().filter(|d| d.listed_by.is_none()).collect();
    for d in diffs.iter().filter(|d| d.listed_by.is_some()) {
        eprintln!("listed difference: {}/{} (doc key `{}`)", d.case, d.field, d.listed_by.as_ref().unwrap());
    }
    for k in keys.iter().filter(|k| !used_keys.contains(*k)) {
        eprintln!("note: doc key `{k}` matched no difference in this run");
    }
    let mut report = String::new();
    for d in &unlisted {
        report.push_str(&format!(
            "\ncase {}\n  field {}\n    husk: {}\n    runc: {}\n",
            d.case, d.field, d.husk, d.runc
        ));
    }
    let summary = format!(
        "differential: {} cases, {} agree, {} listed differences, {} unlisted differences ({:.1}s)",
        results.len(),
        agree,
        listed,
        unlisted.len(),
        t0.elapsed().as_secs_f64()
    );
    if !unlisted.is_empty() {
        eprintln!("{report}");
    }
    println!("{summary}");
    assert!(
        unlisted.is_empty(),
        "{} differences between husk and runc are not listed in docs/runc-differences.md \
         (key: `<case>/<field>`, globs allowed):{report}\n{summary}",
        unlisted.len()
    );
}
