//! The lifecycle state machine (create -> created -> start -> running -> stopped ->
//! delete), `state` fields, the pid through start, pid files, `run` (foreground exit
//! codes, signal forwarding, --keep, --detach), `kill`, `list`, many containers at once.

use husk_tests::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn run_true_exits_zero_and_leaves_nothing() {
    let mut b = Bundle::new("run-true");
    b.args(&["true"]);
    let rt = Runtime::new("run-true");
    let id = rt.id("c");
    rt.run_capture(&b, &id).assert_ok();
    rt.assert_nothing_left(&b, &id);
    assert!(
        rt.root_entries().is_empty(),
        "state root not empty: {:?}",
        rt.root_entries()
    );
}

#[test]
fn state_machine_created_running_stopped_deleted() {
    let mut b = Bundle::new("states");
    b.args(&["sleep", "300"]);
    let rt = Runtime::new("states");
    let id = rt.id("c");

    rt.create(&b, &id).assert_ok();
    let st = rt.state_json(&id);
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["id"], id.as_str(), "{st}");
    assert!(
        st["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{st}"
    );
    assert_eq!(st["bundle"], b.dir_str().as_str(), "{st}");
    assert_eq!(st["rootfs"], b.rootfs().to_string_lossy().as_ref(), "{st}");
    assert!(
        st["created"].as_str().is_some_and(husk_tests::is_rfc3339),
        "created: {st}"
    );
    assert!(st.get("owner").is_some(), "owner missing: {st}");
    let pid = st["pid"].as_i64().expect("pid") as i32;
    assert!(pid > 0, "{st}");
    assert!(
        proc_alive(pid, None),
        "init {pid} of a created container is not alive"
    );
    let start_time = proc_start_time(pid);
    // Before start the user process has not been executed yet.
    assert_ne!(
        proc_cmdline(pid),
        "sleep 300",
        "the user process ran before start"
    );
    // The container is in its own cgroup.
    let cg = b.cgroups_path().unwrap();
    assert!(!cgroup_dirs(&cg).is_empty(), "no cgroup dir for {cg}");
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(own.contains(&cg), "init not in {cg}:\n{own}");

    rt.start(&id).assert_ok();
    let st = rt.state_json(&id);
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(
        st["pid"].as_i64(),
        Some(pid as i64),
        "the pid changed through start: {st}"
    );
    assert!(
        wait_for(WAIT, || proc_cmdline(pid) == "sleep 300"),
        "pid {pid} is not the user process after start: {:?}",
        proc_cmdline(pid)
    );
    assert_eq!(
        proc_start_time(pid),
        start_time,
        "pid {pid} is a different process after start"
    );

    rt.kill(&id, Some("KILL")).assert_ok();
    rt.wait_status(&id, "stopped");
    assert!(
        wait_for(WAIT, || !proc_alive(pid, start_time)),
        "process still alive after kill"
    );
    let st = rt.state_json(&id);
    assert_eq!(st["status"], "stopped", "{st}");

    rt.delete(&id).assert_ok();
    rt.state(&id)
        .assert_fail()
        .assert_msg("does not exist", "does not exist");
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn container_exits_by_itself_then_stopped() {
    let mut b = Bundle::new("exit-self");
    b.args(&["true"]);
    let rt = Runtime::new("exit-self");
    let id = rt.id("c");
    rt.create(&b, &id).assert_ok();
    rt.start(&id).assert_ok();
    rt.wait_status(&id, "stopped");
    rt.delete(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn pid_file_holds_digits_only() {
    let mut b = Bundle::new("pidfile");
    b.args(&["sleep", "300"]);
    let rt = Runtime::new("pidfile");
    let id = rt.id("c");
    let pidfile = rt.scratch().join("sub/dir/c.pid");
    std::fs::create_dir_all(pidfile.parent().unwrap()).unwrap();
    let pf = pidfile.to_string_lossy().into_owned();
    rt.create_with(&b, &id, &["--pid-file", &pf]).assert_ok();
    let text = std::fs::read_to_string(&pidfile).expect("pid file written");
    assert!(
        !text.is_empty() && text.bytes().all(|c| c.is_ascii_digit()),
        "pid file {text:?}"
    );
    assert_eq!(text.parse::<i32>().unwrap(), rt.pid(&id));

    // run --detach writes it too.
    let b2 = b.sibling("pidfile2");
    let id2 = rt.id("d");
    let pf2 = rt.scratch().join("d.pid").to_string_lossy().into_owned();
    rt.run_with(&b2, &id2, &["--detach", "--pid-file", &pf2])
        .assert_ok();
    let text = std::fs::read_to_string(&pf2).expect("pid file written by run -d");
    assert!(
        text.bytes().all(|c| c.is_ascii_digit()),
        "pid file {text:?}"
    );
    assert_eq!(text.parse::<i32>().unwrap(), rt.pid(&id2));
    assert_eq!(rt.status(&id2), "running");

    rt.delete_force(&id).assert_ok();
    rt.delete_force(&id2).assert_ok();
    rt.assert_nothing_left(&b, &id);
    rt.assert_nothing_left(&b2, &id2);
}

#[test]
fn run_returns_the_exit_code() {
    let mut b = Bundle::new("exit3");
    b.sh("echo out; echo err >&2; exit 3");
    let rt = Runtime::new("exit3");
    let id = rt.id("c");
    let out = rt.run_capture(&b, &id);
    out.assert_code(3);
    assert_eq!(out.stdout.trim(), "out");
    assert!(
        out.stderr.contains("err"),
        "container stderr not passed: {:?}",
        out.stderr
    );
    // Without --keep, run deletes the container.
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn run_of_a_killed_container_returns_128_plus_signal() {
    let mut b = Bundle::new("exit137");
    b.args(&["sleep", "300"]);
    let rt = Runtime::new("exit137");
    let id = rt.id("c");
    let run = rt.spawn_run(&b, &id, &[]);
    rt.wait_status(&id, "running");
    rt.kill(&id, Some("KILL")).assert_ok();
    let out = run.wait(WAIT);
    out.assert_code(137);
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn run_forwards_sigterm_to_the_container() {
    let mut b = Bundle::new("sigfwd");
    b.sh("trap 'exit 42' TERM; touch /ready; while :; do sleep 0.1; done");
    let rt = Runtime::new("sigfwd");
    let id = rt.id("c");
    let run = rt.spawn_run(&b, &id, &[]);
    assert!(
        wait_for(WAIT, || b.rootfs().join("ready").exists()),
        "container never got ready: {:?}",
        run.peek()
    );
    assert!(run.signal(libc::SIGTERM));
    let out = run.wait(WAIT);
    out.assert_code(42);
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn run_keep_leaves_a_stopped_container() {
    let mut b = Bundle::new("keep");
    b.sh("exit 7");
    let rt = Runtime::new("keep");
    let id = rt.id("c");
    rt.run_with(&b, &id, &["--keep"]).assert_code(7);
    assert_eq!(rt.status(&id), "stopped");
    rt.delete(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn run_detached_then_kill_and_delete() {
    let mut b = Bundle::new("detach");
    b.args(&["sleep", "300"]);
    let rt = Runtime::new("detach");
    let id = rt.id("c");
    rt.run_detached(&b, &id).assert_ok();
    assert_eq!(rt.status(&id), "running");
    let pid = rt.pid(&id);
    assert!(wait_for(WAIT, || proc_cmdline(pid) == "sleep 300"));
    // sleep is pid 1 of its pid namespace and has no handler: only SIGKILL ends it.
    rt.kill(&id, Some("SIGKILL")).assert_ok();
    rt.wait_status(&id, "stopped");
    rt.delete(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn delete_force_of_a_running_container() {
    let mut b = Bundle::new("force");
    b.args(&["sleep", "300"]);
    let rt = Runtime::new("force");
    let id = rt.id("c");
    rt.run_detached(&b, &id).assert_ok();
    rt.delete_force(&id).assert_ok();
    rt.state(&id).assert_fail();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn delete_force_of_a_created_container() {
    let mut b = Bundle::new("force-created");
    b.args(&["sleep", "300"]);
    let rt = Runtime::new("force-created");
    let id = rt.id("c");
    rt.create(&b, &id).assert_ok();
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn kill_accepts_names_with_and_without_sig_and_numbers() {
    let mut b = Bundle::new("killsig");
    b.sh(
        "trap 'echo USR1 >> /sigs' USR1; trap 'echo HUP >> /sigs' HUP; \
         trap 'echo USR2 >> /sigs' USR2; trap 'echo TERM >> /sigs; exit 0' TERM; \
         touch /ready; while :; do sleep 0.05; done",
    );
    let rt = Runtime::new("killsig");
    let id = rt.id("c");
    rt.run_detached(&b, &id).assert_ok();
    assert!(
        wait_for(WAIT, || b.rootfs().join("ready").exists()),
        "container never got ready"
    );
    let mut expect = Vec::new();
    for (sig, name) in [
        ("USR1", "USR1"),
        ("SIGHUP", "HUP"),
        ("12", "USR2"),
        ("SIGUSR1", "USR1"),
    ] {
        rt.kill(&id, Some(sig)).assert_ok();
        expect.push(name.to_string());
        let ok = wait_for(WAIT, || {
            b.read("sigs")
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
                == expect
        });
        assert!(
            ok,
            "after kill {sig}: /sigs = {:?}, expected {expect:?}",
            b.read("sigs")
        );
    }
    // No signal given: SIGTERM.
    rt.kill(&id, None).assert_ok();
    rt.wait_status(&id, "stopped");
    assert_eq!(b.read("sigs").lines().last(), Some("TERM"));
    rt.delete(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn kill_all_signals_every_process() {
    let mut b = Bundle::new("killall");
    // No pid namespace: --all is what reaches the children then.
    b.remove_namespace("pid");
    b.sh("sleep 300 & sleep 300 & touch /ready; wait");
    let rt = Runtime::new("killall");
    let id = rt.id("c");
    rt.run_detached(&b, &id).assert_ok();
    assert!(wait_for(WAIT, || b.rootfs().join("ready").exists()));
    rt.cmd(&["kill", "--all", &id, "KILL"]).assert_ok();
    rt.wait_status(&id, "stopped");
    rt.delete(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn list_table_quiet_and_json() {
    let mut b = Bundle::new("list");
    b.args(&["sleep", "300"]);
    let b2 = b.sibling("list2");
    let rt = Runtime::new("list");
    let (c1, c2) = (rt.id("one"), rt.id("two"));

    // Empty first.
    assert!(rt.list_json().is_empty());
    rt.cmd(&["list", "-q"]).assert_ok();

    rt.create(&b, &c1).assert_ok();
    rt.run_detached(&b2, &c2).assert_ok();

    let table = rt.cmd(&["list"]);
    table.assert_ok();
    let header = table.stdout.lines().next().unwrap_or("");
    for col in ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"] {
        assert!(header.contains(col), "table header {header:?} lacks {col}");
    }
    assert!(
        table.stdout.contains(&c1) && table.stdout.contains(&c2),
        "{}",
        table.stdout
    );

    let quiet = rt.cmd(&["list", "-q"]);
    quiet.assert_ok();
    let mut ids = quiet.lines();
    ids.sort();
    let mut want = vec![c1.clone(), c2.clone()];
    want.sort();
    assert_eq!(ids, want);

    let list = rt.list_json();
    assert_eq!(list.len(), 2, "{list:?}");
    for (id, status, bundle) in [(&c1, "created", &b), (&c2, "running", &b2)] {
        let e = list
            .iter()
            .find(|e| e["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} not listed"));
        assert_eq!(e["status"], status, "{e}");
        assert_eq!(e["bundle"], bundle.dir_str().as_str(), "{e}");
        assert_eq!(e["pid"].as_i64(), Some(rt.pid(id) as i64), "{e}");
        assert!(
            e["created"].as_str().is_some_and(husk_tests::is_rfc3339),
            "{e}"
        );
    }

    rt.delete_force(&c1).assert_ok();
    rt.delete_force(&c2).assert_ok();
    assert!(rt.list_json().is_empty());
    rt.assert_nothing_left(&b, &c1);
    rt.assert_nothing_left(&b2, &c2);
}

#[test]
fn twenty_containers_at_once() {
    const N: usize = 20;
    let mut base = Bundle::new("many");
    base.args(&["sleep", "300"]);
    let bundles: Vec<Bundle> = (0..N).map(|i| base.sibling(&format!("many{i}"))).collect();
    let rt = Runtime::new("many");
    let ids: Vec<String> = (0..N).map(|i| rt.id(&format!("m{i}"))).collect();
    for (b, id) in bundles.iter().zip(&ids) {
        rt.run_detached(b, id).assert_ok();
    }
    let list = rt.list_json();
    assert_eq!(list.len(), N);
    assert!(list.iter().all(|e| e["status"] == "running"), "{list:?}");
    let mut pids: Vec<i64> = list
        .iter()
        .map(|e| e["pid"].as_i64().unwrap_or(0))
        .collect();
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), N, "pids not distinct: {pids:?}");
    for id in &ids {
        rt.delete_force(id).assert_ok();
    }
    assert!(rt.list_json().is_empty());
    for (b, id) in bundles.iter().zip(&ids) {
        rt.assert_nothing_left(b, id);
    }
    assert!(rt.root_entries().is_empty(), "{:?}", rt.root_entries());
}

#[test]
fn two_runtimes_with_separate_roots_do_not_see_each_other() {
    let mut b = Bundle::new("roots");
    b.args(&["sleep", "300"]);
    let rt1 = Runtime::new("roots1");
    let rt2 = Runtime::new("roots2");
    let id = rt1.id("c");
    rt1.create(&b, &id).assert_ok();
    rt2.state(&id)
        .assert_fail()
        .assert_msg("does not exist", "does not exist");
    assert!(rt2.list_json().is_empty());
    rt1.delete_force(&id).assert_ok();
    rt1.assert_nothing_left(&b, &id);
}

/// The harness itself: the leftover check must see a live container (otherwise every
/// "nothing left behind" assertion would pass vacuously).
#[test]
fn leftover_check_sees_a_live_container() {
    let mut b = Bundle::new("selfcheck");
    b.args(&["sleep", "300"]);
    let rt = Runtime::new("selfcheck");
    let id = rt.id("c");
    rt.create(&b, &id).assert_ok();
    let l = rt.leftovers(&b, &id);
    let text = l.to_string();
    assert!(text.contains("state dir"), "state dir not seen:\n{text}");
    assert!(text.contains("cgroup dir"), "cgroup not seen:\n{text}");
    assert!(text.contains("container process"), "init not seen:\n{text}");
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn concurrent_creates_of_one_id_make_one_container() {
    const N: usize = 8;
    let mut base = Bundle::new("race");
    base.args(&["sleep", "300"]);
    let bundles: Vec<Bundle> = (0..N).map(|i| base.sibling(&format!("race{i}"))).collect();
    let rt = Runtime::new("race");
    let id = rt.id("c");
    let cmds: Vec<Vec<String>> = bundles
        .iter()
        .map(|b| {
            b.write();
            rt.track(b, &id);
            vec!["create".into(), "--bundle".into(), b.dir_str(), id.clone()]
        })
        .collect();
    let outs = rt.cmd_concurrently(&cmds);
    let winners: Vec<usize> = (0..N).filter(|&i| outs[i].ok()).collect();
    assert_eq!(
        winners.len(),
        1,
        "{} creates of one id succeeded: {outs:#?}",
        winners.len()
    );
    for (i, o) in outs.iter().enumerate() {
        if i != winners[0] {
            o.assert_msg("already exists", "exists");
        }
    }
    let winner = &bundles[winners[0]];
    let st = rt.state_json(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["bundle"], winner.dir_str().as_str());
    // The losers left no cgroup.
    for (i, b) in bundles.iter().enumerate() {
        if i != winners[0] {
            assert!(
                cgroup_dirs(&b.cgroups_path().unwrap()).is_empty(),
                "loser {i} left a cgroup"
            );
        }
    }
    // Concurrent force-deletes: each succeeds or finds it already gone.
    let dels: Vec<Vec<String>> = (0..4)
        .map(|_| vec!["delete".into(), "--force".into(), id.clone()])
        .collect();
    for o in rt.cmd_concurrently(&dels) {
        if !o.ok() {
            o.assert_msg("does not exist", "does not exist");
        }
    }
    rt.state(&id).assert_fail();
    for b in &bundles {
        rt.assert_nothing_left(b, &id);
    }
}
