//! The `process` object, checked from inside: args, env, cwd, umask, user and groups,
//! the five capability sets, rlimits, noNewPrivileges, oomScoreAdj, preserved fds.

use husk_tests::*;
use serde_json::json;

#[test]
fn args_are_passed_verbatim() {
    let mut b = Bundle::new("args");
    b.args(&["echo", "a  b", "", "$HOME", "'q'"]);
    assert_eq!(run_ok(&b, "args"), "a  b  $HOME 'q'\n");
}

#[test]
fn env_is_exactly_the_configured_one() {
    let mut b = Bundle::new("env");
    b.env("FOO=bar baz").env("EMPTY=").env("HOME=/home");
    b.args(&["env"]);
    let out = run_ok(&b, "env");
    let vars: Vec<&str> = out.lines().collect();
    for want in ["FOO=bar baz", "EMPTY=", "TERM=xterm", "HOME=/home"] {
        assert!(vars.contains(&want), "{want} missing from env:\n{out}");
    }
    assert!(
        vars.iter().any(|v| v.starts_with("PATH=/usr/local/sbin")),
        "{out}"
    );
    // Nothing leaks from the runtime's own environment.
    assert!(
        !vars
            .iter()
            .any(|v| v.starts_with("HUSK_BIN=") || v.starts_with("CARGO")),
        "{out}"
    );
}

/// A name given twice in process.env (configs built by layering, e.g. an image's PATH and a
/// user's) reaches the program once, with the last value, where the name first appeared:
/// what runc's init does, so getenv() and the program's whole environment agree.
#[test]
fn duplicate_env_names_keep_the_last_value() {
    let mut b = Bundle::new("env-dup");
    b.set(
        "/process/env",
        json!(["PATH=/usr/bin:/bin", "A=1", "B=x", "A=2", "PATH=/bin"]),
    );
    b.sh("tr '\\0' '\\n' < /proc/1/environ | grep -v '^HOME='; echo \"A is $A\"");
    assert_eq!(run_ok(&b, "env-dup"), "PATH=/bin\nA=2\nB=x\nA is 2\n");
}

#[test]
fn home_is_set_from_passwd_when_missing() {
    let mut b = Bundle::new("env-home");
    b.user(1000, 1000);
    b.sh("echo $HOME");
    assert_eq!(run_ok(&b, "env-home").trim(), "/home");
}

#[test]
fn cwd_is_set() {
    let mut b = Bundle::new("cwd");
    b.cwd("/etc");
    b.args(&["pwd"]);
    assert_eq!(run_ok(&b, "cwd").trim(), "/etc");
}

#[test]
fn missing_cwd_is_created() {
    let mut b = Bundle::new("cwd-new");
    b.cwd("/work/dir");
    b.args(&["pwd"]);
    assert_eq!(run_ok(&b, "cwd-new").trim(), "/work/dir");
}

#[test]
fn umask_is_set() {
    let mut b = Bundle::new("umask");
    b.set("/process/user/umask", json!(0o027));
    b.sh("umask; touch /tmp/f; stat -c %a /tmp/f");
    let out = run_ok(&b, "umask");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["0027", "640"]);
}

#[test]
fn default_umask_is_0022() {
    let mut b = Bundle::new("umask-default");
    b.sh("umask");
    assert_eq!(run_ok(&b, "umask-default").trim(), "0022");
}

#[test]
fn user_group_and_additional_groups() {
    let mut b = Bundle::new("user");
    b.user(1000, 1001)
        .set("/process/user/additionalGids", json!([5, 65534]));
    b.sh("id -u; id -g; grep -E '^(Uid|Gid|Groups):' /proc/self/status");
    let out = run_ok(&b, "user");
    let norm: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(norm[0], "1000", "{out}");
    assert_eq!(norm[1], "1001", "{out}");
    assert_eq!(norm[2], "Uid: 1000 1000 1000 1000", "{out}");
    assert_eq!(norm[3], "Gid: 1001 1001 1001 1001", "{out}");
    let mut groups: Vec<&str> = norm[4]
        .trim_start_matches("Groups:")
        .split_whitespace()
        .collect();
    groups.sort();
    assert_eq!(groups, ["5", "65534"], "{out}");
}

#[test]
fn root_user_has_no_supplementary_groups_by_default() {
    let mut b = Bundle::new("groups-none");
    b.sh("grep -E '^Groups:' /proc/self/status");
    let out = run_ok(&b, "groups-none");
    assert_eq!(out.trim_start_matches("Groups:").trim(), "", "{out}");
}

fn caps_inside(b: &mut Bundle, name: &str) -> std::collections::HashMap<String, String> {
    b.sh("grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' /proc/self/status");
    run_ok(b, name)
        .lines()
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        })
        .collect()
}

#[test]
fn default_capabilities_of_root() {
    let mut b = Bundle::new("caps-default");
    let caps = caps_inside(&mut b, "caps-default");
    let three = cap_mask(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    assert_eq!(caps["CapBnd"], three, "{caps:?}");
    assert_eq!(caps["CapPrm"], three, "{caps:?}");
    assert_eq!(caps["CapEff"], three, "{caps:?}");
    // runc's default lists ambient capabilities but no inheritable ones; the kernel only
    // raises an ambient capability that is also inheritable, so the ambient set stays empty
    // (and the runtime must not fail on it: every `runc spec` config asks for this).
    assert_eq!(caps["CapInh"], cap_mask(&[]), "{caps:?}");
    assert_eq!(caps["CapAmb"], cap_mask(&[]), "{caps:?}");
}

#[test]
fn five_capability_sets_of_a_non_root_user() {
    // For a non-root user without file capabilities, after execve: the bounding and
    // inheritable sets are kept as configured, permitted = effective = ambient.
    let mut b = Bundle::new("caps-sets");
    b.user(1000, 1000);
    b.capset(
        "bounding",
        &[
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_KILL",
            "CAP_NET_BIND_SERVICE",
            "CAP_NET_RAW",
        ],
    )
    .capset(
        "permitted",
        &[
            "CAP_CHOWN",
            "CAP_KILL",
            "CAP_NET_BIND_SERVICE",
            "CAP_NET_RAW",
        ],
    )
    .capset(
        "effective",
        &["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
    )
    .capset("inheritable", &["CAP_KILL", "CAP_NET_BIND_SERVICE"])
    .capset("ambient", &["CAP_NET_BIND_SERVICE"]);
    let caps = caps_inside(&mut b, "caps-sets");
    assert_eq!(
        caps["CapBnd"],
        cap_mask(&[
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_KILL",
            "CAP_NET_BIND_SERVICE",
            "CAP_NET_RAW"
        ]),
        "{caps:?}"
    );
    assert_eq!(
        caps["CapInh"],
        cap_mask(&["CAP_KILL", "CAP_NET_BIND_SERVICE"]),
        "{caps:?}"
    );
    assert_eq!(
        caps["CapAmb"],
        cap_mask(&["CAP_NET_BIND_SERVICE"]),
        "{caps:?}"
    );
    assert_eq!(
        caps["CapPrm"],
        cap_mask(&["CAP_NET_BIND_SERVICE"]),
        "{caps:?}"
    );
    assert_eq!(
        caps["CapEff"],
        cap_mask(&["CAP_NET_BIND_SERVICE"]),
        "{caps:?}"
    );
}

/// A capability no process can have fails the create, naming the capability and the set
/// (runc: "unable to apply caps: operation not permitted"), and leaves nothing behind.
#[test]
fn inheritable_capability_outside_the_bounding_set_is_refused() {
    let mut b = Bundle::new("caps-inh-outside");
    b.capset("inheritable", &["CAP_KILL", "CAP_MKNOD"]);
    run_fails(
        &b,
        "caps-inh-outside",
        "process.capabilities.inheritable: CAP_MKNOD cannot be applied: it is not in process.capabilities.bounding",
        "unable to apply caps",
    );
}

/// An ambient capability outside the bounding set cannot be raised: skipped, as runc does (a
/// config whose bounding set was trimmed keeps runc's ambient list), with a warning that names
/// it; the others are applied.
#[test]
fn ambient_capability_outside_the_bounding_set_is_skipped() {
    let mut b = Bundle::new("caps-amb-outside");
    b.user(1000, 1000);
    b.capset("inheritable", &["CAP_KILL"]).capset("ambient", &["CAP_KILL", "CAP_MKNOD"]);
    b.sh("grep -E '^CapAmb:' /proc/self/status");
    let rt = Runtime::new("caps-amb-outside");
    let id = rt.id("c");
    let out = rt.run_capture(&b, &id);
    out.assert_ok();
    assert_eq!(out.stdout.trim(), format!("CapAmb:\t{}", cap_mask(&["CAP_KILL"])));
    if flavor() == Flavor::Husk {
        let warned = out.log_lines().iter().any(|l| {
            l["level"].as_str().is_some_and(|lv| lv.starts_with("warn"))
                && l["msg"].as_str().is_some_and(|m| m.contains("skipped"))
                && l.to_string().contains("CAP_MKNOD")
        });
        assert!(warned, "no warning naming CAP_MKNOD:\n{out:?}");
    }
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn root_with_all_sets_equal_and_no_ambient() {
    let mut b = Bundle::new("caps-root");
    let set = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_SETUID",
        "CAP_SETGID",
        "CAP_SYS_ADMIN",
    ];
    b.caps(&set)
        .capset("ambient", &[])
        .capset("inheritable", &[]);
    let caps = caps_inside(&mut b, "caps-root");
    for k in ["CapBnd", "CapPrm", "CapEff"] {
        assert_eq!(caps[k], cap_mask(&set), "{k}: {caps:?}");
    }
    assert_eq!(caps["CapInh"], cap_mask(&[]), "{caps:?}");
    assert_eq!(caps["CapAmb"], cap_mask(&[]), "{caps:?}");
}

#[test]
fn capabilities_are_enforced() {
    // Without CAP_CHOWN, root cannot chown a file it does not own... it owns /tmp/f, so
    // use CAP_DAC_OVERRIDE instead: a 000 file of another user is unreadable without it.
    let mut b = Bundle::new("caps-enforced");
    b.caps(&["CAP_CHOWN", "CAP_FOWNER"]).capset("ambient", &[]);
    b.sh(
        "echo secret > /tmp/f; chown 1000 /tmp/f; chmod 000 /tmp/f; \
          if cat /tmp/f 2>/dev/null; then echo readable; else echo denied; fi",
    );
    assert_eq!(run_ok(&b, "caps-enforced").trim(), "denied");
}

#[test]
fn rlimits_are_applied() {
    let mut b = Bundle::new("rlimits");
    let hard_nofile = host_hard_limit("Max open files").unwrap_or(1024);
    let hard = hard_nofile.min(4096);
    b.rlimit("RLIMIT_NOFILE", 1000, hard)
        .rlimit("RLIMIT_CORE", 4096, 8192)
        .rlimit("RLIMIT_MSGQUEUE", 1000, 2000);
    b.sh("ulimit -n; grep -E '^Max (open files|core file size|msgqueue size)' /proc/self/limits");
    let out = run_ok(&b, "rlimits");
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines[0], "1000", "{out}");
    assert!(
        lines.contains(&format!("Max open files 1000 {hard} files")),
        "{out}"
    );
    assert!(
        lines.contains(&"Max core file size 4096 8192 bytes".to_string()),
        "{out}"
    );
    assert!(
        lines.contains(&"Max msgqueue size 1000 2000 bytes".to_string()),
        "{out}"
    );
}

#[test]
fn no_new_privileges_flag() {
    for (nnp, want) in [(true, "1"), (false, "0")] {
        let mut b = Bundle::new("nnp");
        b.set("/process/noNewPrivileges", json!(nnp));
        b.sh("grep NoNewPrivs /proc/self/status");
        let out = run_ok(&b, "nnp");
        assert_eq!(
            out.split_whitespace().nth(1),
            Some(want),
            "noNewPrivileges {nnp}: {out}"
        );
    }
}

#[test]
fn oom_score_adj_is_set() {
    let mut b = Bundle::new("oom");
    b.set("/process/oomScoreAdj", json!(123));
    b.args(&["cat", "/proc/self/oom_score_adj"]);
    assert_eq!(run_ok(&b, "oom").trim(), "123");
}

#[test]
fn container_stdio_is_the_runtimes() {
    let mut b = Bundle::new("stdio");
    b.sh("echo to-stdout; echo to-stderr >&2");
    let rt = Runtime::new("stdio");
    let id = rt.id("c");
    let out = rt.run_capture(&b, &id);
    out.assert_ok();
    assert!(out.stdout.starts_with("to-stdout\n"), "{:?}", out.stdout);
    assert!(out.stderr.contains("to-stderr"), "{:?}", out.stderr);
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn only_stdio_fds_are_open_in_the_container() {
    let mut b = Bundle::new("fds");
    // ls opens one fd for the directory it lists; anything else above 2 leaked.
    b.sh("ls /proc/self/fd");
    let out = run_ok(&b, "fds");
    let mut fds: Vec<u32> = out
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    fds.sort();
    assert!(
        fds.len() <= 4 && fds.iter().take(3).eq([0, 1, 2].iter()),
        "open fds: {fds:?}"
    );
}

/// Runs `script` (which execs the runtime command line `cmd`) under /bin/sh with fd 3
/// open on a file holding "through fd 3"; returns the container's stdout.
fn run_with_fd3(b: &Bundle, rt: &Runtime, id: &str, prefix: &str, extra: &[&str]) -> String {
    let data = rt.scratch().join("fd3.txt");
    std::fs::write(&data, "through fd 3\n").unwrap();
    b.write();
    rt.track(b, id);
    let dir = b.dir_str();
    let mut args = vec!["run"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--bundle", &dir, id]);
    let script = format!(
        "exec 3<{} && {prefix} exec {}",
        shell_quote(&data.to_string_lossy()),
        rt.shell_cmdline(&args)
    );
    rt.sh(&script).assert_ok().stdout.clone()
}

#[test]
fn preserve_fds_passes_extra_fds_through() {
    let mut b = Bundle::new("preserve-fds");
    // Exactly the one preserved fd: fd 3 passes, the next one is not open.
    b.sh("cat <&3; if [ -e /proc/$$/fd/4 ]; then echo fd4-open; else echo fd4-closed; fi");
    let rt = Runtime::new("preserve-fds");
    let id = rt.id("c");
    let out = run_with_fd3(&b, &rt, &id, "", &["--preserve-fds", "1"]);
    assert_eq!(out, "through fd 3\nfd4-closed\n");
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn extra_fds_are_closed_without_preserve_fds() {
    let mut b = Bundle::new("no-preserve-fds");
    b.sh("cat <&3 2>/dev/null || echo closed");
    let rt = Runtime::new("no-preserve-fds");
    let id = rt.id("c");
    assert_eq!(run_with_fd3(&b, &rt, &id, "", &[]), "closed\n");
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn listen_fds_are_passed_through() {
    let mut b = Bundle::new("listen-fds");
    b.sh("cat <&3; echo LISTEN_FDS=$LISTEN_FDS");
    let rt = Runtime::new("listen-fds");
    let id = rt.id("c");
    let out = run_with_fd3(&b, &rt, &id, "LISTEN_FDS=1 LISTEN_PID=$$", &[]);
    assert_eq!(out, "through fd 3\nLISTEN_FDS=1\n");
    rt.assert_nothing_left(&b, &id);
}
