//! `linux.seccomp` in real containers: actions, errno, argument checks, flags, podman's
//! default profile, SCMP_ACT_NOTIFY with a listener, and bad profiles.
//!
//! Syscalls are made from inside the container by a probe: this very test binary, copied into
//! the rootfs with its shared libraries and run as `/probe --exact probe` with the syscalls to
//! make in `HUSK_PROBE`; it prints one `PROBE <nr> ret=<r> errno=<e>` line per call.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

use husk_tests::*;
use serde_json::{json, Value};

/// The probe itself: does nothing unless HUSK_PROBE is set (i.e. inside a test container).
/// HUSK_PROBE is `;`-separated calls, each `nr[,arg...]` (x86_64) or `i386:nr` (no arguments).
#[test]
fn probe() {
    let Ok(spec) = std::env::var("HUSK_PROBE") else {
        return;
    };
    for call in spec.split(';').filter(|c| !c.is_empty()) {
        let (i386, call) = match call.strip_prefix("i386:") {
            Some(c) => (true, c),
            None => (false, call),
        };
        let v: Vec<u64> = call.split(',').map(|x| x.parse().unwrap_or(0)).collect();
        let a = |i: usize| v.get(i).copied().unwrap_or(0);
        let (ret, errno) = if i386 {
            int80(a(0))
        } else {
            // SAFETY: test probe; the syscalls it is asked for take integer arguments.
            let r =
                unsafe { libc::syscall(a(0) as libc::c_long, a(1), a(2), a(3), a(4), a(5), a(6)) };
            let e = if r < 0 {
                std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
            } else {
                0
            };
            (r as i64, e)
        };
        println!("PROBE {call} ret={ret} errno={errno}");
    }
}

/// A 32-bit (i386 ABI) syscall without arguments through `int 0x80`.
fn int80(nr: u64) -> (i64, i32) {
    let mut eax = nr as u32;
    // SAFETY: int 0x80 for a syscall without arguments (getpid); only eax changes.
    unsafe {
        std::arch::asm!("int 0x80", inout("eax") eax, options(nostack));
    }
    let r = eax as i32;
    if r < 0 && r > -4096 {
        (-1, -r)
    } else {
        (i64::from(r), 0)
    }
}

/// Copy this test binary and its shared libraries into the bundle's rootfs as /probe.
fn install_probe(b: &Bundle) {
    let exe = std::env::current_exe().expect("current_exe");
    let root = b.rootfs();
    std::fs::copy(&exe, root.join("probe")).expect("copying the probe");
    let out = std::process::Command::new("ldd")
        .arg(&exe)
        .output()
        .expect("ldd");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let path = line
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(Path::new);
        let Some(lib) = path else { continue };
        let dest = root.join(lib.strip_prefix("/").unwrap_or(lib));
        std::fs::create_dir_all(dest.parent().unwrap_or(&root)).expect("lib dir");
        std::fs::copy(lib, &dest).unwrap_or_else(|e| panic!("copying {}: {e}", lib.display()));
    }
}

/// Configure `b` to run the probe making `calls`.
fn probe_calls(b: &mut Bundle, calls: &[String]) {
    install_probe(b);
    b.args(&[
        "/probe",
        "--exact",
        "probe",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ]);
    b.env(&format!("HUSK_PROBE={}", calls.join(";")));
}

/// The (ret, errno) of each probe line.
fn results(stdout: &str) -> Vec<(i64, i32)> {
    stdout
        .lines()
        .filter(|l| l.starts_with("PROBE "))
        .map(|l| {
            let field = |k: &str| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix(k))
                    .and_then(|v| v.parse::<i64>().ok())
                    .unwrap_or(i64::MIN)
            };
            (field("ret="), field("errno=") as i32)
        })
        .collect()
}

fn call(nr: libc::c_long, args: &[u64]) -> String {
    let mut s = nr.to_string();
    for a in args {
        s.push_str(&format!(",{a}"));
    }
    s
}

fn run_probe(name: &str, seccomp: Value, calls: &[String]) -> Vec<(i64, i32)> {
    let mut b = Bundle::new(name);
    b.set("/linux/seccomp", seccomp);
    run_probe_in(&mut b, name, calls)
}

/// Runs the probe making `calls` in `b` (configured by the caller); the (ret, errno) of each.
fn run_probe_in(b: &mut Bundle, name: &str, calls: &[String]) -> Vec<(i64, i32)> {
    probe_calls(b, calls);
    let rt = Runtime::new(name);
    let id = rt.id("c");
    let out = rt.run_capture(b, &id);
    out.assert_ok();
    rt.assert_nothing_left(b, &id);
    let r = results(&out.stdout);
    assert_eq!(
        r.len(),
        calls.len(),
        "probe output:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    r
}

const ALLOW_ALL_BUT: &str = "SCMP_ACT_ALLOW";

#[test]
fn errno_action_and_default_errno() {
    let r = run_probe(
        "sc-errno",
        json!({"defaultAction": ALLOW_ALL_BUT, "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["getpgrp"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["no_such_syscall_at_all"], "action": "SCMP_ACT_ERRNO"}
        ]}),
        &[
            call(libc::SYS_getppid, &[]),
            call(libc::SYS_getpgrp, &[]),
            call(libc::SYS_getpid, &[]),
        ],
    );
    assert_eq!(r[0], (-1, libc::EACCES));
    assert_eq!(r[1], (-1, libc::EPERM), "errnoRet defaults to EPERM");
    assert_eq!(r[2], (1, 0), "getpid is pid 1");
}

#[test]
fn argument_operators() {
    // getpriority(which, who) with an invalid `which` fails with EINVAL when it runs; a
    // matching rule answers EDOM instead. (Rules with the default action are dropped, as in
    // runc, so the rules here must differ from the default.)
    // (operator, value, valueTwo, [(argument, whether the rule matches)])
    type Case<'a> = (&'a str, u64, u64, &'a [(u64, bool)]);
    let ops: &[Case] = &[
        ("SCMP_CMP_EQ", 5, 0, &[(5, true), (6, false)]),
        ("SCMP_CMP_NE", 5, 0, &[(5, false), (6, true)]),
        ("SCMP_CMP_LT", 5, 0, &[(4, true), (5, false)]),
        ("SCMP_CMP_LE", 5, 0, &[(5, true), (6, false)]),
        (
            "SCMP_CMP_GT",
            5,
            0,
            &[(6, true), (5, false), (1 << 40, true)],
        ),
        ("SCMP_CMP_GE", 5, 0, &[(5, true), (4, false)]),
        (
            "SCMP_CMP_MASKED_EQ",
            0xf0,
            0x30,
            &[(0x35, true), (0x45, false)],
        ),
    ];
    let (mut syscalls, mut calls, mut want) = (vec![], vec![], vec![]);
    for (i, (op, v, v2, cases)) in ops.iter().enumerate() {
        let which = 100 + i as u64;
        syscalls.push(
            json!({"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EDOM,
            "args": [{"index": 0, "value": which, "op": "SCMP_CMP_EQ"},
                     {"index": 1, "value": v, "valueTwo": v2, "op": op}]}),
        );
        for (arg, matches) in cases.iter() {
            calls.push(call(libc::SYS_getpriority, &[which, *arg]));
            want.push(if *matches { libc::EDOM } else { libc::EINVAL });
        }
    }
    let got = run_probe(
        "sc-ops",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": syscalls}),
        &calls,
    );
    for ((c, (_, e)), w) in calls.iter().zip(got).zip(want) {
        assert_eq!(e, w, "getpriority {c}");
    }
}

#[test]
fn kill_and_trap_actions() {
    // busybox uname is single-threaded: killing the thread ends the process too.
    for (action, name) in [
        ("SCMP_ACT_KILL_PROCESS", "sc-killp"),
        ("SCMP_ACT_KILL", "sc-kill"),
        ("SCMP_ACT_KILL_THREAD", "sc-killt"),
        ("SCMP_ACT_TRAP", "sc-trap"),
    ] {
        let mut b = Bundle::new(name);
        b.set(
            "/linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": action}]}),
        );
        b.args(&["uname", "-s"]);
        let rt = Runtime::new(name);
        let id = rt.id("c");
        let out = rt.run_capture(&b, &id);
        // Killed (SIGSYS: 128 + 31) before it could print anything.
        assert_eq!(out.code, 159, "{action}: {} {}", out.stdout, out.stderr);
        assert!(!out.stdout.contains("Linux"), "{action}: {}", out.stdout);
        rt.assert_nothing_left(&b, &id);
    }
}

#[test]
fn flags_and_log_action_are_accepted() {
    let r = run_probe(
        "sc-flags",
        json!({"defaultAction": "SCMP_ACT_ALLOW",
               "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
               "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_LOG"},
                            {"names": ["getpgrp"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}),
        &[call(libc::SYS_getppid, &[]), call(libc::SYS_getpgrp, &[])],
    );
    assert_eq!(
        r[0],
        (0, 0),
        "SCMP_ACT_LOG allows (ppid 0 in a new pid namespace)"
    );
    assert_eq!(r[1], (-1, libc::EPERM));
}

/// Whether this kernel runs i386 syscalls from 64-bit processes (IA32 emulation).
fn has_ia32() -> bool {
    let exe = std::env::current_exe().expect("current_exe");
    let out = std::process::Command::new(exe)
        .args(["--exact", "probe", "--nocapture", "--test-threads=1", "-q"])
        .env("HUSK_PROBE", "i386:20")
        .output();
    out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("errno=0"))
}

#[test]
fn x86_syscalls_are_filtered_too() {
    if !has_ia32() {
        eprintln!("skipped: this kernel has no IA32 emulation");
        return;
    }
    // getpid is 39 on x86_64 and 20 on i386: denying it by name covers both.
    let profile = |arches: Value| {
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": arches,
               "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]})
    };
    let calls = [call(libc::SYS_getpid, &[]), "i386:20".to_string()];
    let r = run_probe(
        "sc-x86",
        profile(json!([
            "SCMP_ARCH_X86_64",
            "SCMP_ARCH_X86",
            "SCMP_ARCH_X32"
        ])),
        &calls,
    );
    assert_eq!(r, [(-1, libc::EPERM), (-1, libc::EPERM)]);
    // Without SCMP_ARCH_X86 the 32-bit call is from an architecture the filter does not
    // know: the process is killed, as with libseccomp's default.
    let mut b = Bundle::new("sc-x86-kill");
    b.set("/linux/seccomp", profile(json!(["SCMP_ARCH_X86_64"])));
    probe_calls(&mut b, &["i386:20".to_string()]);
    let rt = Runtime::new("sc-x86-kill");
    let id = rt.id("c");
    let out = rt.run_capture(&b, &id);
    assert!(
        !out.ok() && results(&out.stdout).is_empty(),
        "{}",
        out.stdout
    );
}

/// podman's default profile (Debian's containers-common), in the OCI form podman writes into
/// config.json for a container with podman's default capabilities on x86_64.
fn podman_profile() -> Value {
    let path = "/usr/share/containers/seccomp.json";
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("{path}: {e} (apt-get install golang-github-containers-common)")
    });
    let d: Value = serde_json::from_str(&text).expect("seccomp.json");
    let caps: Vec<String> = [
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    ]
    .iter()
    .map(|c| format!("CAP_{c}"))
    .collect();
    let has_cap = |c: &Value| c.as_str().is_some_and(|c| caps.iter().any(|x| x == c));
    let list = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
    let mut arches = vec![];
    for m in list(d.get("archMap")) {
        if m["architecture"] == "SCMP_ARCH_X86_64" {
            arches.push(m["architecture"].clone());
            arches.extend(list(m.get("subArchitectures")));
        }
    }
    let mut syscalls = vec![];
    for s in list(d.get("syscalls")) {
        let inc = &s["includes"];
        let exc = &s["excludes"];
        let inc_arches = list(inc.get("arches"));
        if !inc_arches.is_empty() && !inc_arches.iter().any(|a| a == "amd64") {
            continue;
        }
        if list(exc.get("arches")).iter().any(|a| a == "amd64") {
            continue;
        }
        if !list(inc.get("caps")).iter().all(has_cap) {
            continue;
        }
        if list(exc.get("caps")).iter().any(has_cap) {
            continue;
        }
        let mut r = json!({"names": s["names"], "action": s["action"]});
        if let Some(e) = s.get("errnoRet").filter(|e| !e.is_null()) {
            r["errnoRet"] = e.clone();
        }
        if let Some(a) = s
            .get("args")
            .filter(|a| a.as_array().is_some_and(|a| !a.is_empty()))
        {
            r["args"] = a.clone();
        }
        syscalls.push(r);
    }
    json!({"defaultAction": d["defaultAction"], "defaultErrnoRet": d["defaultErrnoRet"],
           "architectures": arches, "syscalls": syscalls})
}

#[test]
fn podman_default_profile_blocks_and_allows() {
    let swapoff = call(libc::SYS_swapoff, &[0]);
    let calls = [
        // Blocked with EPERM by name.
        swapoff,
        call(libc::SYS_kexec_load, &[]),
        call(libc::SYS_userfaultfd, &[]),
        // Not in the profile: the default, ENOSYS.
        call(libc::SYS_add_key, &[]),
        // socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT): EINVAL without CAP_AUDIT_WRITE.
        call(libc::SYS_socket, &[16, 3, 9]),
        // Allowed.
        call(libc::SYS_getpid, &[]),
        call(libc::SYS_socket, &[1, 1, 0]),
        call(libc::SYS_personality, &[0xffff_ffff]),
        // personality(PER_BSD) is not among the allowed values.
        call(libc::SYS_personality, &[6]),
    ];
    let r = run_probe("sc-podman", podman_profile(), &calls);
    assert_eq!(r[0], (-1, libc::EPERM), "swapoff");
    assert_eq!(r[1], (-1, libc::EPERM), "kexec_load");
    assert_eq!(r[2], (-1, libc::EPERM), "userfaultfd");
    assert_eq!(r[3], (-1, libc::ENOSYS), "add_key");
    assert_eq!(r[4], (-1, libc::EINVAL), "netlink audit socket");
    assert_eq!(r[5], (1, 0), "getpid");
    assert!(r[6].0 >= 0, "unix socket: {:?}", r[6]);
    assert!(r[7].0 >= 0, "personality query: {:?}", r[7]);
    assert_eq!(r[8], (-1, libc::ENOSYS), "personality(PER_BSD)");
}

#[test]
fn podman_default_profile_runs_a_shell() {
    let mut b = Bundle::new("sc-podman-sh");
    b.set("/linux/seccomp", podman_profile());
    b.sh("mkdir /tmp/d && touch /tmp/d/f && ls /tmp/d && cat /proc/self/status | grep '^Seccomp:'");
    let rt = Runtime::new("sc-podman-sh");
    let id = rt.id("c");
    let out = rt.run_capture(&b, &id);
    out.assert_ok();
    assert!(
        out.stdout.contains('f') && out.stdout.contains("Seccomp:\t2"),
        "{}",
        out.stdout
    );
    rt.assert_nothing_left(&b, &id);
}

// --- allow-lists written for older kernels ----------------------------------------------

/// An allow-list in the style of older Docker profiles: podman's allowed syscalls without
/// close_range, everything else EPERM (not podman's ENOSYS default). It still names syscalls
/// newer than close_range (faccessat2, ...), so the -ENOSYS stub for syscalls newer than the
/// profile does not cover close_range either: it gets EPERM, as in the profiles of the bug.
fn allow_list_without_close_range() -> Value {
    let mut p = podman_profile();
    p["defaultAction"] = json!("SCMP_ACT_ERRNO");
    if let Some(o) = p.as_object_mut() {
        o.remove("defaultErrnoRet");
    }
    let mut newer = false;
    for rule in p["syscalls"].as_array_mut().into_iter().flatten() {
        if rule["action"] != "SCMP_ACT_ALLOW" {
            continue;
        }
        if let Some(names) = rule["names"].as_array_mut() {
            names.retain(|n| n != "close_range");
            newer |= names.iter().any(|n| n == "faccessat2");
        }
    }
    assert!(newer, "podman's profile no longer allows faccessat2: pick another newer syscall");
    p
}

/// The container starts under the allow-list, with and without no_new_privs (without it, the
/// filter goes in before the identity switch is complete), as root and in a user namespace;
/// inside, close_range is refused with EPERM (the profile is in force) and the capabilities are
/// exactly the configured ones (the CAP_SYS_ADMIN held for installing the filter is gone).
fn allow_list_runs(name: &str, no_new_privs: bool, userns: bool) {
    let mut b = Bundle::new(name);
    b.set("/linux/seccomp", allow_list_without_close_range());
    b.set("/process/noNewPrivileges", json!(no_new_privs));
    if userns {
        b.userns(300000, 65536);
    }
    let calls = [call(libc::SYS_close_range, &[1000, 1000, 0]), call(libc::SYS_getppid, &[])];
    let r = run_probe_in(&mut b, name, &calls);
    assert_eq!(r[0], (-1, libc::EPERM), "close_range inside the container");
    assert_eq!(r[1], (0, 0), "getppid inside the container");
}

#[test]
fn allow_list_without_close_range_and_without_no_new_privs() {
    allow_list_runs("sc-allow-nonnp", false, false);
}

#[test]
fn allow_list_without_close_range_with_no_new_privs() {
    allow_list_runs("sc-allow-nnp", true, false);
}

#[test]
fn allow_list_without_close_range_in_a_user_namespace() {
    allow_list_runs("sc-allow-userns-nonnp", false, true);
    allow_list_runs("sc-allow-userns-nnp", true, true);
}

#[test]
fn allow_list_without_no_new_privs_leaves_exactly_the_configured_capabilities() {
    let mut b = Bundle::new("sc-allow-caps");
    b.set("/linux/seccomp", allow_list_without_close_range());
    b.set("/process/noNewPrivileges", json!(false));
    b.sh("grep -E '^Cap(Prm|Eff|Bnd):' /proc/self/status; grep '^Seccomp:' /proc/self/status");
    let out = run_ok(&b, "sc-allow-caps");
    let three = cap_mask(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    for k in ["CapPrm", "CapEff", "CapBnd"] {
        assert!(out.contains(&format!("{k}:\t{three}")), "{k} is not {three}:\n{out}");
    }
    assert!(out.contains("Seccomp:\t2"), "{out}");
}

// --- SCMP_ACT_NOTIFY ---------------------------------------------------------------------

/// struct seccomp_notif / seccomp_notif_resp and their ioctls (linux/seccomp.h).
#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}
#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}
const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;

/// Receive one message and the fd that came with it.
fn recv_with_fd(sock: RawFd) -> (Vec<u8>, Option<OwnedFd>) {
    let mut buf = vec![0u8; 65536];
    let mut cmsg = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr fields point at live buffers of the given sizes.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cmsg);
    // SAFETY: as above.
    let n = unsafe { libc::recvmsg(sock, &mut msg, 0) };
    assert!(n > 0, "recvmsg: {}", std::io::Error::last_os_error());
    buf.truncate(n as usize);
    // SAFETY: walking the control messages the kernel wrote into `cmsg`.
    let fd = unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_type != libc::SCM_RIGHTS {
            None
        } else {
            Some(OwnedFd::from_raw_fd(*(libc::CMSG_DATA(c) as *const RawFd)))
        }
    };
    (buf, fd)
}

#[test]
fn notify_hands_the_listener_to_the_agent() {
    let mut b = Bundle::new("sc-notify");
    let rt = Runtime::new("sc-notify");
    let sock_path = rt.scratch().join("agent.sock");
    let listener = UnixListener::bind(&sock_path).expect("bind agent socket");
    b.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock_path, "listenerMetadata": "hello-agent",
               "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    probe_calls(
        &mut b,
        &[call(libc::SYS_getppid, &[]), call(libc::SYS_getpgrp, &[])],
    );
    // The agent: take the state and the listener, answer getppid with 4242.
    let agent = std::thread::spawn(move || {
        let (conn, _) = listener.accept().expect("accept");
        let (state, fd) = recv_with_fd(conn.as_raw_fd());
        let state: Value = serde_json::from_slice(&state).expect("state JSON");
        let fd = fd.expect("seccompFd");
        let mut req = Notif::default();
        // SAFETY: NOTIF_RECV writes one struct seccomp_notif into `req`.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV, &mut req as *mut Notif) };
        assert_eq!(rc, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
        let resp = NotifResp {
            id: req.id,
            val: 4242,
            error: 0,
            flags: 0,
        };
        // SAFETY: NOTIF_SEND reads one struct seccomp_notif_resp.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND, &resp as *const NotifResp) };
        assert_eq!(rc, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
        (state, req.nr)
    });
    let id = rt.id("c");
    let out = rt.run_capture(&b, &id);
    let (state, nr) = agent.join().expect("agent");
    out.assert_ok();
    assert_eq!(nr as i64, libc::SYS_getppid);
    assert_eq!(results(&out.stdout), [(4242, 0), (1, 0)], "{}", out.stdout);
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["metadata"], "hello-agent");
    assert_eq!(state["state"]["id"], id.as_str());
    assert_eq!(state["state"]["status"], "creating");
    assert!(state["pid"].as_i64().is_some_and(|p| p > 0), "{state}");
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn notify_fails_create_when_the_agent_is_missing() {
    let mut b = Bundle::new("sc-notify-missing");
    let rt = Runtime::new("sc-notify-missing");
    let sock = rt.scratch().join("nobody-listens.sock");
    b.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock,
               "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    let id = rt.id("c");
    let out = rt.create(&b, &id);
    out.assert_fail();
    out.assert_msg("listenerpath", "seccomp");
    rt.assert_nothing_left(&b, &id);
}

// --- bad input -------------------------------------------------------------------------

fn assert_refused(name: &str, seccomp: Value, husk: &str) {
    let mut b = Bundle::new(name);
    b.set("/linux/seccomp", seccomp);
    let rt = Runtime::new(name);
    let id = rt.id("c");
    let out = rt.create(&b, &id);
    out.assert_fail();
    if flavor() == Flavor::Husk {
        out.assert_msg(husk, "");
    }
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn bad_profiles_are_refused_with_the_field_named() {
    assert_refused(
        "sc-bad-action",
        json!({"defaultAction": "SCMP_ACT_BOGUS"}),
        "linux.seccomp.defaultAction",
    );
    assert_refused(
        "sc-bad-op",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
               "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_BOGUS"}]}]}),
        "linux.seccomp.syscalls[0].args[0].op",
    );
    assert_refused(
        "sc-bad-errno",
        json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]}),
        "syscalls[0]: errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE",
    );
    assert_refused(
        "sc-bad-listener",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}),
        "listenerpath /run/agent.sock is set but no syscall uses scmp_act_notify",
    );
    assert_refused(
        "sc-bad-notify-default",
        json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/run/agent.sock"}),
        "scmp_act_notify cannot be the default action",
    );
    assert_refused(
        "sc-bad-index",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
               "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
        "args[0].index 6 is out of range",
    );
}

#[test]
fn features_lists_seccomp() {
    let rt = Runtime::new("sc-features");
    let out = rt.cmd_plain(&["features"]);
    out.assert_ok();
    let f = out.json();
    let sc = &f["linux"]["seccomp"];
    assert_eq!(sc["enabled"], true);
    for a in ["SCMP_ACT_NOTIFY", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_LOG"] {
        assert!(
            sc["actions"]
                .as_array()
                .is_some_and(|v| v.iter().any(|x| x == a)),
            "{a}"
        );
    }
    assert!(sc["operators"]
        .as_array()
        .is_some_and(|v| v.iter().any(|x| x == "SCMP_CMP_MASKED_EQ")));
    assert!(sc["archs"]
        .as_array()
        .is_some_and(|v| v.iter().any(|x| x == "SCMP_ARCH_X86_64")));
}
