//! `exec`: a new process in a running container, checked from inside: every namespace and
//! the cgroup are the init's, the config's process settings apply unless overridden, exit
//! codes and signals come back, detached exec writes its pid file, preserved fds arrive and
//! nothing else does, and every error is clear and leaves no process behind.

use std::fs;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use husk_tests::*;
use serde_json::json;

/// A running container (`sleep 1000`) made from `b`, detached.
fn start(b: &mut Bundle, rt: &Runtime, id: &str) {
    b.args(&["sleep", "1000"]);
    rt.run_detached(b, id).assert_ok();
}

/// `exec ID ARGS...` with extra flags before the id.
fn exec(rt: &Runtime, flags: &[&str], id: &str, args: &[&str]) -> Output {
    let mut all = vec!["exec"];
    all.extend_from_slice(flags);
    all.push(id);
    all.extend_from_slice(args);
    rt.cmd(&all)
}

/// The pids in the container's cgroup, read on the host.
fn cgroup_pids(b: &Bundle) -> Vec<i32> {
    let cg = b.cgroups_path().expect("cgroupsPath");
    let dir = cgroup_dirs(&cg)
        .into_iter()
        .find(|d| d.join("cgroup.procs").exists())
        .expect("container cgroup");
    let text = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

#[test]
fn exec_enters_every_namespace_of_the_container() {
    let mut b = Bundle::new("exec-ns");
    b.hostname("exec-box").namespace("cgroup", None);
    let rt = Runtime::new("exec-ns");
    let id = rt.id("c");
    start(&mut b, &rt, &id);
    let script = "for n in pid mnt net ipc uts cgroup user; do \
                    echo $n $(readlink /proc/self/ns/$n) $(readlink /proc/1/ns/$n); done; \
                  hostname; \
                  cmp /proc/self/mountinfo /proc/1/mountinfo && echo same-mounts; \
                  cat /proc/self/cgroup | grep -c ':/$'; cat /proc/1/cmdline | tr '\\0' ' '";
    let out = exec(&rt, &[], &id, &["sh", "-c", script]);
    out.assert_ok();
    let lines = out.lines();
    for l in &lines[..7] {
        let f: Vec<&str> = l.split(' ').collect();
        assert!(
            f.len() == 3 && f[1] == f[2] && !f[1].is_empty(),
            "not the init's namespace: {l}\n{}",
            out.stdout
        );
    }
    assert_eq!(lines[7], "exec-box");
    assert_eq!(lines[8], "same-mounts");
    // In the container's cgroup namespace, every hierarchy's path is its root.
    assert!(lines[9].parse::<u32>().unwrap_or(0) >= 1, "{}", out.stdout);
    assert_eq!(lines[10], "sleep 1000");
    // And those are not the host's.
    let init = rt.pid(&id).to_string();
    for n in ["pid", "mnt", "net", "ipc", "uts", "cgroup"] {
        assert_ne!(ns_link("self", n), ns_link(&init, n), "{n}");
    }
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn exec_joins_the_user_namespace_first() {
    let mut b = Bundle::new("exec-userns");
    b.userns(100000, 65536);
    b.set("/process/rlimits", json!([]));
    let rt = Runtime::new("exec-userns");
    let id = rt.id("c");
    start(&mut b, &rt, &id);
    let out = exec(&rt, &[], &id, &["sh", "-c", "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user /proc/1/ns/user 2>&1; touch /tmp/x && stat -c %u /tmp/x"]);
    out.assert_ok();
    let l = out.lines();
    assert_eq!(l[0], "0");
    assert_eq!(
        l[1].split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    assert_eq!(l.last().map(String::as_str), Some("0"));
    // On the host, the file belongs to the mapped uid.
    let meta = fs::metadata(b.rootfs().join("tmp/x")).expect("file made by exec");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 100000);
    // A uid outside the mapping is a clear error, and no process is left.
    let before = cgroup_pids(&b);
    let out = exec(&rt, &["--user", "70000"], &id, &["true"]);
    out.assert_error("setresuid", "uid");
    assert_eq!(cgroup_pids(&b), before);
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn exec_enters_the_time_namespace() {
    const DAY: f64 = 86400.0;
    let mut b = Bundle::new("exec-time");
    b.namespace("time", None);
    b.set(
        "/linux/timeOffsets",
        json!({ "boottime": { "secs": 10 * 86400, "nanosecs": 0 } }),
    );
    let rt = Runtime::new("exec-time");
    let id = rt.id("c");
    start(&mut b, &rt, &id);
    let out = exec(
        &rt,
        &[],
        &id,
        &[
            "sh",
            "-c",
            "cut -d' ' -f1 /proc/uptime; readlink /proc/self/ns/time; readlink /proc/1/ns/time",
        ],
    );
    out.assert_ok();
    let l = out.lines();
    let host_up: f64 = fs::read_to_string("/proc/uptime")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let inside: f64 = l[0].parse().unwrap_or(0.0);
    assert!(
        (10.0 * DAY - 5.0..10.0 * DAY + 60.0).contains(&(inside - host_up)),
        "uptime {inside} vs host {host_up}"
    );
    assert_eq!(l[1], l[2]);
    assert_ne!(l[1], ns_link("self", "time"));
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn exec_sees_the_container_root_with_no_pivot() {
    let mut b = Bundle::new("exec-nopivot");
    fs::write(b.rootfs().join("marker"), "inside\n").unwrap();
    b.args(&["sleep", "1000"]);
    let rt = Runtime::new("exec-nopivot");
    let id = rt.id("c");
    rt.run_with(&b, &id, &["--detach", "--no-pivot"])
        .assert_ok();
    let out = exec(
        &rt,
        &[],
        &id,
        &["sh", "-c", "cat /marker; cd /; cd ..; cat marker"],
    );
    assert_eq!(out.assert_ok().stdout, "inside\ninside\n");
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn exec_gets_the_container_seccomp_filter() {
    let mut b = Bundle::new("exec-seccomp");
    b.set(
        "/linux/seccomp",
        json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }] }),
    );
    let rt = Runtime::new("exec-seccomp");
    let id = rt.id("c");
    start(&mut b, &rt, &id);
    let out = exec(
        &rt,
        &[],
        &id,
        &[
            "sh",
            "-c",
            "grep ^Seccomp: /proc/self/status; mkdir /tmp/d 2>&1 || echo refused",
        ],
    );
    out.assert_ok();
    assert_eq!(
        status_field(&out.stdout, "Seccomp").as_deref(),
        Some("2"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("refused"), "{}", out.stdout);
    assert!(!b.rootfs().join("tmp/d").exists());
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn exec_is_in_the_container_cgroup_and_pid_namespace_detached_with_pid_file() {
    let mut b = Bundle::new("exec-detach");
    let rt = Runtime::new("exec-detach");
    let id = rt.id("c");
    start(&mut b, &rt, &id);
    let pid_file = rt.scratch().join("exec.pid");
    let pf = pid_file.to_string_lossy().into_owned();
    let out = exec(
        &rt,
        &["--detach", "--pid-file", &pf],
        &id,
        &["sleep", "999"],
    );
    out.assert_ok();
    let text = fs::read_to_string(&pid_file).expect("pid file");
    assert!(
        !text.is_empty() && text.bytes().all(|c| c.is_ascii_digit()),
        "pid file holds {text:?}"
    );
    let pid: i32 = text.parse().expect("pid");
    assert!(proc_alive(pid, None), "the exec'd process is not running");
    assert!(
        proc_cmdline(pid).starts_with("sleep 999"),
        "{}",
        proc_cmdline(pid)
    );
    let init = rt.pid(&id);
    assert_eq!(
        ns_link(&pid.to_string(), "pid"),
        ns_link(&init.to_string(), "pid")
    );
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup"),
        fs::read_to_string(format!("/proc/{init}/cgroup")).expect("cgroup")
    );
    assert!(cgroup_pids(&b).contains(&pid));
    // Detached: husk is gone, the process is not its child any more.
    let ppid = status_field(
        &fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default(),
        "PPid",
    );
    assert_ne!(ppid.as_deref(), Some("0"));
    rt.delete_force(&id).assert_ok();
    assert!(
        wait_for(Duration::from_secs(5), || !proc_alive(pid, None)),
        "exec'd process outlived delete"
    );
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn exec_takes_the_config_process_settings() {
    let mut b = Bundle::new("exec-inherit");
    b.env("FROM_CONFIG=yes")
        .rlimit("RLIMIT_NOFILE", 512, 1024)
        .cwd("/etc");
    let rt = Runtime::new("exec-inherit");
    let id = rt.id("c");
    start(&mut b, &rt, &id);
    let out = exec(
        &rt,
        &[],
        &id,
        &["sh", "-c", "echo $FROM_CONFIG; ulimit -n; pwd; grep -E '^(CapBnd|CapEff|NoNewPrivs)' /proc/self/status; id -u"],
    );
    out.assert_ok();
    let l = out.lines();
    assert_eq!(&l[..3], ["yes", "512", "/etc"]);
    let status = out.stdout.clone();
    let default_caps = cap_mask(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    assert_eq!(
        status_field(&status, "CapBnd").as_deref(),
        Some(default_caps.as_str())
    );
    assert_eq!(
        status_field(&status, "CapEff").as_deref(),
        Some(default_caps.as_str())
    );
    assert_eq!(status_field(&status, "NoNewPrivs").as_deref(), Some("1"));
    assert_eq!(l.last().map(String::as_str), Some("0"));
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn exec_flags_override_user_cwd_env_caps_and_no_new_privs() {
    let mut b = Bundle::new("exec-flags");
    b.set("/process/noNewPrivileges", json!(false));
    let rt = Runtime::new("exec-flags");
    let id = rt.id("c");
    start(&mut b, &rt, &id);
    let out = exec(
        &rt,
        &[],
        &id,
        &["sh", "-c", "grep NoNewPrivs /proc/self/status"],
    );
    assert_eq!(
        status_field(&out.assert_ok().stdout, "NoNewPrivs").as_deref(),
        Some("0")
    );
    let out = exec(
        &rt,
        &[
            "--user", "1000:1000", "--additional-gids", "5", "--cwd", "/tmp", "--env", "A=1",
            "--env", "TERM=dumb", "--cap", "CAP_NET_RAW", "--no-new-privs",
        ],
        &id,
        &["sh", "-c", "id -u; id -g; id -G; pwd; echo $A $TERM; echo $HOME; grep -E '^(CapBnd|CapAmb|NoNewPrivs)' /proc/self/status"],
    );
    out.assert_ok();
    let l = out.lines();
    assert_eq!(
        &l[..6],
        ["1000", "1000", "1000 5", "/tmp", "1 dumb", "/home"]
    );
    let caps = cap_mask(&[
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_RAW",
    ]);
    assert_eq!(
        status_field(&out.stdout, "CapBnd").as_deref(),
        Some(caps.as_str())
    );
    assert_eq!(
        status_field(&out.stdout, "NoNewPrivs").as_deref(),
        Some("1")
    );
    // The container's own process is untouched.
    let init = rt.pid(&id);
    let st = fs::read_to_string(format!("/proc/{init}/status")).unwrap_or_default();
    assert_eq!(status_field(&st, "NoNewPrivs").as_deref(), Some("0"));
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn exec_with_a_process_json() {
    let mut b = Bundle::new("exec-process");
    let rt = Runtime::new("exec-process");
    let id = rt.id("c");
    start(&mut b, &rt, &id);
    let process = json!({
        "terminal": false,
        "user": { "uid": 1000, "gid": 1000 },
        "args": ["sh", "-c", "id -u; pwd; echo $ONLY; grep CapEff /proc/self/status; exit 3"],
        "env": ["PATH=/bin", "ONLY=from-json"],
        "cwd": "/home",
        "capabilities": { "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"],
                          "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"] }
    });
    let file = rt.scratch().join("process.json");
    fs::write(&file, process.to_string()).unwrap();
    let out = exec(&rt, &["--process", &file.to_string_lossy()], &id, &[]);
    out.assert_code(3);
    let l = out.lines();
    assert_eq!(&l[..3], ["1000", "/home", "from-json"]);
    assert_eq!(
        status_field(&out.stdout, "CapEff").as_deref(),
        Some(cap_mask(&["CAP_KILL"]).as_str())
    );
    // A malformed process JSON names the field.
    fs::write(&file, r#"{"user":{"uid":"x"},"cwd":"/","args":["true"]}"#).unwrap();
    exec(&rt, &["--process", &file.to_string_lossy()], &id, &[]).assert_error("user.uid", "uid");
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn exec_exit_codes() {
    let mut b = Bundle::new("exec-codes");
    let rt = Runtime::new("exec-codes");
    let id = rt.id("c");
    start(&mut b, &rt, &id);
    exec(&rt, &[], &id, &["true"]).assert_code(0);
    exec(&rt, &[], &id, &["sh", "-c", "exit 42"]).assert_code(42);
    exec(&rt, &[], &id, &["sh", "-c", "kill -TERM $$"]).assert_code(128 + 15);
    exec(&rt, &[], &id, &["sh", "-c", "kill -KILL $$"]).assert_code(128 + 9);
    // stdout and stderr are husk's own.
    let out = exec(&rt, &[], &id, &["sh", "-c", "echo out; echo err >&2"]);
    assert_eq!(out.stdout, "out\n");
    assert!(out.stderr.contains("err"), "{:?}", out.stderr);
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

/// `BIN --root R exec ID ARGS...` started in the background, stdout to a file.
fn spawn_exec(rt: &Runtime, id: &str, args: &[&str], out: &PathBuf) -> std::process::Child {
    Command::new(rt.bin())
        .arg("--root")
        .arg(rt.root())
        .arg("exec")
        .arg(id)
        .args(args)
        .stdin(Stdio::null())
        .stdout(fs::File::create(out).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawning exec")
}

fn wait_code(child: &mut std::process::Child) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    let mut st = None;
    wait_for(Duration::from_secs(20), || {
        st = child.try_wait().ok().flatten();
        st.is_some()
    });
    match st {
        Some(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)),
        None => {
            let _ = child.kill();
            panic!("exec did not exit")
        }
    }
}

#[test]
fn foreground_exec_forwards_signals() {
    let mut b = Bundle::new("exec-signals");
    let rt = Runtime::new("exec-signals");
    let id = rt.id("c");
    start(&mut b, &rt, &id);
    let out = rt.scratch().join("trap.out");
    let mut child = spawn_exec(
        &rt,
        &id,
        &[
            "sh",
            "-c",
            "trap 'echo got-usr1; exit 5' USR1; echo ready; while :; do sleep 0.05; done",
        ],
        &out,
    );
    assert!(wait_for(Duration::from_secs(10), || fs::read_to_string(
        &out
    )
    .unwrap_or_default()
    .contains("ready")));
    assert!(send_signal(child.id() as i32, libc::SIGUSR1));
    assert_eq!(wait_code(&mut child), 5);
    assert_eq!(
        fs::read_to_string(&out).unwrap_or_default(),
        "ready\ngot-usr1\n"
    );

    // A signal the process does not handle kills it: 128+signal.
    let out = rt.scratch().join("term.out");
    let mut child = spawn_exec(&rt, &id, &["sh", "-c", "echo ready; exec sleep 100"], &out);
    assert!(wait_for(Duration::from_secs(10), || fs::read_to_string(
        &out
    )
    .unwrap_or_default()
    .contains("ready")));
    std::thread::sleep(Duration::from_millis(100));
    assert!(send_signal(child.id() as i32, libc::SIGTERM));
    assert_eq!(wait_code(&mut child), 128 + libc::SIGTERM);
    // Only the container's own process is left.
    assert!(
        wait_for(Duration::from_secs(5), || cgroup_pids(&b).len() == 1),
        "{:?}",
        cgroup_pids(&b)
    );
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn exec_into_a_created_container() {
    let mut b = Bundle::new("exec-created");
    b.args(&["sleep", "1000"]);
    let rt = Runtime::new("exec-created");
    let id = rt.id("c");
    rt.create(&b, &id).assert_ok();
    let out = exec(
        &rt,
        &[],
        &id,
        &["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"],
    );
    out.assert_ok();
    assert_eq!(rt.status(&id), "created");
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn preserved_fds_reach_the_process_and_nothing_else_does() {
    let mut b = Bundle::new("exec-fds");
    let rt = Runtime::new("exec-fds");
    let id = rt.id("c");
    start(&mut b, &rt, &id);
    // fd 3: one end of a socketpair the process talks over; fd 4: open in husk, not preserved.
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    let extra = fs::File::open("/etc/hostname").expect("extra fd");
    let (theirs_fd, extra_fd) = (
        std::os::fd::AsRawFd::as_raw_fd(&theirs),
        std::os::fd::AsRawFd::as_raw_fd(&extra),
    );
    let out_path = rt.scratch().join("fds.out");
    let script = "echo ping >&3; read -r reply <&3; echo got-$reply; \
                  ls /proc/self/fd | sort -n | tr '\\n' ' '";
    let mut cmd = Command::new(rt.bin());
    cmd.arg("--root")
        .arg(rt.root())
        .args(["exec", "--preserve-fds", "1", &id, "sh", "-c", script]);
    cmd.stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).unwrap());
    // SAFETY: between fork and exec only async-signal-safe dup2 calls are made.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(theirs_fd, 3) < 0 || libc::dup2(extra_fd, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn exec");
    drop(theirs);
    let mut reader = std::io::BufReader::new(ours.try_clone().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut reader, &mut line).expect("read from the container");
    assert_eq!(line, "ping\n");
    std::io::Write::write_all(&mut &ours, b"pong\n").expect("write to the container");
    assert_eq!(wait_code(&mut child), 0);
    let out = fs::read_to_string(&out_path).unwrap();
    let mut l = out.lines();
    assert_eq!(l.next(), Some("got-pong"));
    // 0, 1, 2, the preserved 3, and the one ls opens to list the directory; never fd 4.
    let fds: Vec<u32> = l
        .next()
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    assert_eq!(&fds[..4], [0, 1, 2, 3], "{out}");
    assert!(fds.len() <= 5, "leaked fds: {fds:?}");
    drop(extra);
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

/// Sub-cgroups made by a test, removed on drop (before the runtime's own clean-up check).
struct SubCgroups(Vec<PathBuf>);

impl Drop for SubCgroups {
    fn drop(&mut self) {
        for s in &self.0 {
            wait_for(Duration::from_secs(5), || {
                fs::remove_dir(s).is_ok() || !s.exists()
            });
        }
    }
}

#[test]
fn exec_in_a_sub_cgroup() {
    let mut b = Bundle::new("exec-subcg");
    let rt = Runtime::new("exec-subcg");
    let id = rt.id("c");
    start(&mut b, &rt, &id);
    let cg = b.cgroups_path().expect("cgroupsPath");
    let subs = SubCgroups(
        cgroup_dirs(&cg)
            .into_iter()
            .map(|d| d.join("sub"))
            .collect(),
    );
    for s in &subs.0 {
        fs::create_dir(s).expect("sub-cgroup");
        // A new v1 cpuset cgroup has no cpus or mems until it is given its parent's.
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(v) = fs::read_to_string(s.parent().unwrap().join(f)) {
                fs::write(s.join(f), v.trim()).expect(f);
            }
        }
    }
    let out = exec(
        &rt,
        &["--cgroup", "sub"],
        &id,
        &["cat", "/proc/self/cgroup"],
    );
    out.assert_ok();
    let want = format!("{}/sub", cg.trim_end_matches('/'));
    for l in out.stdout.lines() {
        assert!(l.ends_with(&want), "{l} is not in {want}:\n{}", out.stdout);
    }
    // A sub-cgroup that does not exist is an error.
    exec(&rt, &["--cgroup", "nope"], &id, &["true"]).assert_error("does not exist", "nope");
    drop(subs);
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn exec_errors_are_clear_and_leave_nothing() {
    let mut b = Bundle::new("exec-errors");
    let rt = Runtime::new("exec-errors");
    let id = rt.id("c");
    // A failed exec exits 255 (as runc), never a code a process could have returned.
    exec(&rt, &[], &id, &["true"])
        .assert_error("does not exist", "does not exist")
        .assert_code(255);
    start(&mut b, &rt, &id);
    let before = cgroup_pids(&b);
    assert_eq!(before.len(), 1);
    exec(&rt, &[], &id, &["no-such-program"])
        .assert_error("executable file not found", "executable file not found");
    exec(&rt, &[], &id, &["/bin/no/such"])
        .assert_error("exec failed: ", "exec failed: ")
        .assert_error("no such file", "no such file")
        .assert_code(255);
    exec(&rt, &["--cwd", "/no/such/dir"], &id, &["true"])
        .assert_error("/no/such/dir", "/no/such/dir");
    exec(&rt, &["--user", "nobody"], &id, &["true"]).assert_error("must be a number", "nobody");
    exec(&rt, &[], &id, &[]).assert_error("no command", "args");
    exec(&rt, &["--tty", "--detach"], &id, &["true"])
        .assert_error("console-socket", "console socket");
    let sock = rt.scratch().join("unused.sock");
    exec(
        &rt,
        &["--detach", "--console-socket", &sock.to_string_lossy()],
        &id,
        &["true"],
    )
    .assert_error("console-socket", "console socket");
    assert_eq!(cgroup_pids(&b), before, "a failed exec left a process");
    // A stopped container.
    rt.kill(&id, Some("KILL")).assert_ok();
    rt.wait_status(&id, "stopped");
    exec(&rt, &[], &id, &["true"]).assert_error("stopped", "stopped");
    rt.delete(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn exec_into_a_paused_container_needs_ignore_paused() {
    let mut b = Bundle::new("exec-paused");
    let rt = Runtime::new("exec-paused");
    let id = rt.id("c");
    start(&mut b, &rt, &id);
    rt.cmd(&["pause", &id]).assert_ok();
    exec(&rt, &[], &id, &["echo", "ok"]).assert_error("paused", "paused");
    assert_eq!(cgroup_pids(&b).len(), 1, "a refused exec left a process");
    // With --ignore-paused the process joins the frozen cgroup and runs once it is thawed.
    let out = rt.scratch().join("paused.out");
    let mut cmd = Command::new(rt.bin());
    cmd.arg("--root")
        .arg(rt.root())
        .args(["exec", "--ignore-paused", &id, "echo", "ok"]);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "exec ran in a frozen container"
    );
    rt.cmd(&["resume", &id]).assert_ok();
    assert_eq!(wait_code(&mut child), 0);
    assert_eq!(fs::read_to_string(&out).unwrap(), "ok\n");
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

/// The environment of an exec'd process, one entry per element, as it was exec'd.
fn exec_environ(out: &Output) -> Vec<String> {
    out.assert_ok()
        .stdout
        .split('\0')
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn exec_env_replaces_a_variable_of_the_config() {
    // runc: one entry per name, where the name first appeared, with the last value given
    // (process.env, then each --env in order); `--env` is ignored with `--process`.
    let mut b = Bundle::new("exec-env");
    b.env("MY_VAR=spec").env("OTHER=x");
    b.push("/process/env", json!("DUP=1"));
    b.push("/process/env", json!("DUP=2"));
    let rt = Runtime::new("exec-env");
    let id = rt.id("c");
    start(&mut b, &rt, &id);
    let path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    let out = exec(
        &rt,
        &["--env", "MY_VAR=cli", "--env", "NEW=1", "--env", "NEW=2"],
        &id,
        &["cat", "/proc/self/environ"],
    );
    assert_eq!(
        exec_environ(&out),
        [path, "TERM=xterm", "MY_VAR=cli", "OTHER=x", "DUP=2", "NEW=2", "HOME=/root"]
    );
    let out = exec(&rt, &["--env", "MY_VAR=cli"], &id, &["sh", "-c", "echo $MY_VAR"]);
    assert_eq!(out.assert_ok().stdout, "cli\n");
    // Without --env, duplicates of process.env are merged too.
    let out = exec(&rt, &[], &id, &["cat", "/proc/self/environ"]);
    assert_eq!(
        exec_environ(&out),
        [path, "TERM=xterm", "MY_VAR=spec", "OTHER=x", "DUP=2", "HOME=/root"]
    );
    // --process: its env, merged the same way; --env does not apply.
    let process = json!({
        "user": { "uid": 0, "gid": 0 },
        "args": ["cat", "/proc/self/environ"],
        "env": ["PATH=/bin", "MY_VAR=json", "DUP=a", "DUP=b"],
        "cwd": "/"
    });
    let file = rt.scratch().join("process.json");
    fs::write(&file, process.to_string()).unwrap();
    let out = exec(
        &rt,
        &["--process", &file.to_string_lossy(), "--env", "MY_VAR=cli"],
        &id,
        &[],
    );
    assert_eq!(
        exec_environ(&out),
        ["PATH=/bin", "MY_VAR=json", "DUP=b", "HOME=/root"]
    );
    // An entry that is not NAME=value is refused.
    exec(&rt, &["--env", "NOEQ"], &id, &["true"]).assert_error("NOEQ", "NOEQ");
    exec(&rt, &["--env", "=x"], &id, &["true"]).assert_error("=x", "=x");
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}
