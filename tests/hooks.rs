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
