//! Hooks: all six kinds run in order, where the spec says, with the state on stdin and
//! their own args and env. (Failing and timed-out hooks are in errors.rs.)

use husk_tests::*;

/// Splits "kind status pid" lines.
fn parse(log: &[String]) -> Vec<(String, String, i64)> {
    log.iter()
        .map(|l| {
            let v: Vec<&str> = l.split(' ').collect();
            (
                v[0].to_string(),
                v.get(1).unwrap_or(&"").to_string(),
                v.get(2).and_then(|p| p.parse().ok()).unwrap_or(-1),
            )
        })
        .collect()
}

#[test]
fn all_hooks_run_in_order_with_the_state() {
    let mut b = Bundle::new("hooks-all");
    b.args(&["sleep", "300"]);
    b.set(
        "/annotations",
        serde_json::json!({ "org.husk.test": "hooks" }),
    );
    for kind in HookKind::ALL {
        let h = b.recording_hook(kind);
        b.add_hook(kind, h);
    }
    let rt = Runtime::new("hooks-all");
    let id = rt.id("c");

    rt.create(&b, &id).assert_ok();
    let pid = rt.pid(&id) as i64;
    let log = parse(&b.hook_log());
    let kinds: Vec<&str> = log.iter().map(|l| l.0.as_str()).collect();
    assert_eq!(
        kinds,
        ["prestart", "createRuntime", "createContainer"],
        "after create: {log:?}"
    );
    // runtime.md: hooks run in the runtime namespace see the pid as the runtime sees it,
    // hooks run in the container namespace (createContainer, startContainer) as the
    // container sees it: 1, the init of its own pid namespace.
    let seen_pid = |kind: &str| if kind.ends_with("Container") { 1 } else { pid };
    for (kind, status, hpid) in &log {
        assert_eq!(status, "creating", "{kind} saw status {status}: {log:?}");
        assert_eq!(*hpid, seen_pid(kind), "{kind} saw pid {hpid}, container pid is {pid}");
    }

    rt.start(&id).assert_ok();
    let log = parse(&b.hook_log());
    let kinds: Vec<&str> = log.iter().map(|l| l.0.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart"
        ],
        "after start: {log:?}"
    );
    assert_eq!(
        (log[3].1.as_str(), log[3].2),
        ("created", 1),
        "startContainer: {log:?}"
    );
    assert_eq!(
        (log[4].1.as_str(), log[4].2),
        ("running", pid),
        "poststart: {log:?}"
    );

    rt.kill(&id, Some("KILL")).assert_ok();
    rt.wait_status(&id, "stopped");
    rt.delete(&id).assert_ok();
    let log = parse(&b.hook_log());
    assert_eq!(log.len(), 6, "after delete: {log:?}");
    assert_eq!(log[5].0, "poststop", "{log:?}");
    assert_eq!(log[5].1, "stopped", "{log:?}");

    // The full state each hook received.
    for kind in HookKind::ALL {
        let st = b
            .hook_state(kind)
            .unwrap_or_else(|| panic!("{} got no JSON state", kind.key()));
        assert_eq!(st["id"], id.as_str(), "{}: {st}", kind.key());
        assert_eq!(st["bundle"], b.dir_str().as_str(), "{}: {st}", kind.key());
        assert!(
            st["ociVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("1.")),
            "{}: {st}",
            kind.key()
        );
        assert_eq!(
            st["annotations"]["org.husk.test"],
            "hooks",
            "{}: {st}",
            kind.key()
        );
    }
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn hooks_run_where_the_spec_says() {
    // Runtime-namespace hooks see the host's mount namespace; createContainer and
    // startContainer run in the container's namespaces.
    let mut b = Bundle::new("hooks-ns");
    b.args(&["true"]);
    let host_mnt = ns_link("self", "mnt");
    let host_uts = ns_link("self", "uts");
    let rootfs = b.rootfs().to_string_lossy().into_owned();
    for kind in HookKind::ALL {
        let dir = if kind.in_container() {
            String::new()
        } else {
            rootfs.clone()
        };
        let h = Hook::sh(&format!(
            "echo {k} $(readlink /proc/self/ns/mnt) $(readlink /proc/self/ns/uts) >> {dir}/ns.log",
            k = kind.key()
        ));
        b.add_hook(kind, h);
    }
    let rt = Runtime::new("hooks-ns");
    let id = rt.id("c");
    rt.run_capture(&b, &id).assert_ok();
    let log = b.read("ns.log");
    let lines: Vec<Vec<&str>> = log.lines().map(|l| l.split(' ').collect()).collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l[0]).collect();
    assert_eq!(kinds, HookKind::ALL.map(|k| k.key()), "{log}");
    for l in &lines {
        let in_container = l[0] == "createContainer" || l[0] == "startContainer";
        assert_eq!(
            l[1] != host_mnt,
            in_container,
            "mount namespace of {}: {log}",
            l[0]
        );
        assert_eq!(
            l[2] != host_uts,
            in_container,
            "uts namespace of {}: {log}",
            l[0]
        );
    }
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn several_hooks_of_one_kind_run_in_config_order() {
    let mut b = Bundle::new("hooks-order");
    let log = b.rootfs().join("order.log").to_string_lossy().into_owned();
    for n in 1..=3 {
        b.add_hook(
            HookKind::CreateRuntime,
            Hook::sh(&format!("echo {n} >> {log}")),
        );
    }
    let rt = Runtime::new("hooks-order");
    let id = rt.id("c");
    rt.run_capture(&b, &id).assert_ok();
    assert_eq!(b.read("order.log"), "1\n2\n3\n");
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn hook_args_and_env_are_exact() {
    let mut b = Bundle::new("hooks-args");
    let out = b.rootfs().join("hook.out").to_string_lossy().into_owned();
    let h = Hook {
        path: "/bin/sh".into(),
        args: vec![
            "my-argv0".into(),
            "-c".into(),
            format!(
                "echo \"$(cut -d '' -f1 /proc/$$/cmdline)|$0|$1|$2\" > {out}; env | sort >> {out}"
            ),
            "zero".into(),
            "a b".into(),
            "".into(),
        ],
        env: vec!["ONLY=this".into(), "PATH=/usr/bin:/bin".into()],
        timeout: Some(5),
    };
    b.add_hook(HookKind::Poststart, h);
    let rt = Runtime::new("hooks-args");
    let id = rt.id("c");
    rt.run_capture(&b, &id).assert_ok();
    let text = b.read("hook.out");
    let mut lines = text.lines();
    // argv[0] is args[0]; `sh -c SCRIPT zero "a b" ""` sets $0, $1, $2.
    assert_eq!(lines.next(), Some("my-argv0|zero|a b|"), "{text}");
    let env: Vec<&str> = lines
        .filter(|l| !l.starts_with("PWD=") && !l.starts_with("SHLVL=") && !l.starts_with("_="))
        .collect();
    assert_eq!(env, ["ONLY=this", "PATH=/usr/bin:/bin"], "hook env: {text}");
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn poststop_runs_on_delete_of_a_created_container() {
    let mut b = Bundle::new("hooks-poststop");
    b.args(&["sleep", "300"]);
    let h = b.recording_hook(HookKind::Poststop);
    b.add_hook(HookKind::Poststop, h);
    let rt = Runtime::new("hooks-poststop");
    let id = rt.id("c");
    rt.create(&b, &id).assert_ok();
    assert!(b.hook_log().is_empty());
    rt.delete_force(&id).assert_ok();
    assert_eq!(b.hook_log().len(), 1, "{:?}", b.hook_log());
    assert!(
        b.hook_log()[0].starts_with("poststop stopped"),
        "{:?}",
        b.hook_log()
    );
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn failing_poststop_hook_is_only_a_warning() {
    let mut b = Bundle::new("hooks-poststop-fail");
    b.add_hook(HookKind::Poststop, Hook::sh("exit 1"));
    let h = b.recording_hook(HookKind::Poststop);
    b.add_hook(HookKind::Poststop, h);
    let rt = Runtime::new("hooks-poststop-fail");
    let id = rt.id("c");
    rt.create(&b, &id).assert_ok();
    rt.start(&id).assert_ok();
    rt.wait_status(&id, "stopped");
    rt.delete(&id).assert_ok();
    // The hook after the failing one still ran.
    assert_eq!(b.hook_log().len(), 1, "{:?}", b.hook_log());
    rt.assert_nothing_left(&b, &id);
}

/// A hook without `env` (the key absent) that writes the environment it started with to
/// `<dir>/env-<kind>`, NUL-separated entries turned into lines.
fn env_dump_hook(kind: HookKind, dir: &str, env: Option<&[&str]>) -> serde_json::Value {
    let mut h = serde_json::json!({
        "path": "/bin/sh",
        // The shell opens its own environ (/proc/self: createContainer runs in the container's
        // pid namespace with the host's /proc) and stays alive while tr reads it: a read after
        // the opener exec'd would see nothing.
        "args": ["sh", "-c", format!(
            "exec 3< /proc/self/environ; tr '\\0' '\\n' <&3 > {dir}/env-{}; exit 0", kind.key()
        )],
        "timeout": 10
    });
    if let Some(env) = env {
        h["env"] = serde_json::json!(env);
    }
    h
}

/// Creates, starts and deletes `b`'s container through a shell, with `HOOK_ENV_TEST=<command>`
/// in the runtime's environment; returns each hook kind's environment, in ALL's order.
fn hook_environments(b: &Bundle, rt: &Runtime, id: &str) -> Vec<Vec<String>> {
    // Not through rt.create(), which writes config.json: the shell needs the environment.
    b.write();
    rt.track(b, id);
    for (cmd, args) in [
        ("create", vec!["create", "--bundle", b.dir().to_str().unwrap(), id]),
        ("start", vec!["start", id]),
    ] {
        rt.sh(&format!("HOOK_ENV_TEST={cmd} {}", rt.shell_cmdline(&args)))
            .assert_ok();
    }
    rt.wait_status(id, "stopped");
    rt.sh(&format!("HOOK_ENV_TEST=delete {}", rt.shell_cmdline(&["delete", id])))
        .assert_ok();
    HookKind::ALL
        .iter()
        .map(|k| {
            b.read(&format!("env-{}", k.key()))
                .lines()
                .map(str::to_string)
                .collect()
        })
        .collect()
}

#[test]
fn hooks_without_env_get_what_runc_gives_them() {
    // runc runs a hook without `env` with the environment of the process that runs it (Go's
    // exec inherits): hooks in the runtime's namespace get the runtime's, the in-container
    // ones runc init's, which is the container process's by then (one entry per name), with
    // HOME added before startContainer.
    let mut b = Bundle::new("hooks-noenv");
    b.args(&["true"]).env("MY_VAR=spec");
    b.push("/process/env", serde_json::json!("DUP=1"));
    b.push("/process/env", serde_json::json!("DUP=2"));
    let rootfs = b.rootfs().to_string_lossy().into_owned();
    for kind in HookKind::ALL {
        let dir = if kind.in_container() { "" } else { &rootfs };
        b.push(&format!("/hooks/{}", kind.key()), env_dump_hook(kind, dir, None));
    }
    let rt = Runtime::new("hooks-noenv");
    let id = rt.id("c");
    let envs = hook_environments(&b, &rt, &id);
    let runtime_cmd = |kind: HookKind| match kind {
        HookKind::Prestart | HookKind::CreateRuntime => Some("create"),
        // runc 1.1.5 runs poststart hooks at the end of `create` (a known runc bug, fixed
        // in 1.2), husk in `start` as the spec says.
        HookKind::Poststart if flavor() == Flavor::Runc => Some("create"),
        HookKind::Poststart => Some("start"),
        HookKind::Poststop => Some("delete"),
        _ => None,
    };
    for (kind, env) in HookKind::ALL.iter().zip(&envs) {
        match (kind, runtime_cmd(*kind)) {
            (_, Some(cmd)) => {
                let want = format!("HOOK_ENV_TEST={cmd}");
                assert!(env.contains(&want), "{} env lacks {want}: {env:?}", kind.key());
                assert!(env.iter().any(|e| e.starts_with("PATH=")), "{}: {env:?}", kind.key());
            }
            (_, None) => {
                let mut want = vec![
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm",
                    "MY_VAR=spec",
                    "DUP=2",
                ];
                if *kind == HookKind::StartContainer {
                    want.push("HOME=/root");
                }
                // The entries, not their order (husk's hooks get theirs sorted by name).
                let mut got = env.clone();
                got.sort();
                want.sort();
                assert_eq!(got, want, "{} env", kind.key());
            }
        }
    }
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn hooks_with_an_empty_env_get_an_empty_environment() {
    let mut b = Bundle::new("hooks-emptyenv");
    b.args(&["true"]);
    let rootfs = b.rootfs().to_string_lossy().into_owned();
    for kind in HookKind::ALL {
        let dir = if kind.in_container() { "" } else { &rootfs };
        b.push(&format!("/hooks/{}", kind.key()), env_dump_hook(kind, dir, Some(&[])));
    }
    let rt = Runtime::new("hooks-emptyenv");
    let id = rt.id("c");
    let envs = hook_environments(&b, &rt, &id);
    for (kind, env) in HookKind::ALL.iter().zip(&envs) {
        assert!(env.is_empty(), "{} env: {env:?}", kind.key());
    }
    // Each hook did run.
    for kind in HookKind::ALL {
        assert!(
            b.rootfs().join(format!("env-{}", kind.key())).exists(),
            "{} did not run",
            kind.key()
        );
    }
    rt.assert_nothing_left(&b, &id);
}
