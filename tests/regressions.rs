//! Causes of failures found by running real clients (integration/clients/), each checked
//! here against the runtime alone, so that it stays fixed without the client.

use husk_tests::*;

/// podman (after a failed create: "Removing container ... from runtime after creation
/// failed") and containerd's shim call `delete --force ID` for a container whose create
/// already cleaned up. runc exits 0 silently; husk printed "container ID does not exist" and
/// exited 1, and podman showed that error line before the real one.
#[test]
fn delete_force_of_an_unknown_container_succeeds_silently() {
    let rt = Runtime::new("reg-delforce");
    let id = rt.id("ghost");
    let out = rt.delete_force(&id);
    out.assert_ok();
    assert!(out.stderr.trim().is_empty(), "stderr: {:?}", out.stderr);
    assert!(
        !out.log.contains("error"),
        "an error was logged: {:?}",
        out.log
    );
    // Without --force, an unknown id is still an error.
    rt.delete(&id)
        .assert_error("does not exist", "does not exist");
    assert!(rt.root_entries().is_empty());
}

/// The same through podman's path: a create that fails (the program does not exist),
/// then `delete --force`: exit 0, nothing left.
#[test]
fn delete_force_after_a_failed_create_succeeds() {
    let mut b = Bundle::new("reg-failcreate");
    b.args(&["/nonexistent"]);
    let rt = Runtime::new("reg-failcreate");
    let id = rt.id("c");
    rt.create(&b, &id).assert_fail();
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

/// containerd's shim reads a failed `kill`'s message to tell "already exited" from a real
/// error: it must contain "container not running" (or "no such process", or "does not
/// exist"); see checkKillError in containerd's pkg/process/utils.go. husk said "container
/// ID is not running (it is stopped)", so the CRI's StopPodSandbox of a pod whose container
/// had exited failed with "unknown error after kill" and the pod could not be removed.
#[test]
fn kill_of_a_stopped_container_says_container_not_running() {
    let mut b = Bundle::new("reg-kill-stopped");
    b.args(&["true"]);
    let rt = Runtime::new("reg-kill-stopped");
    let id = rt.id("c");
    rt.run_with(&b, &id, &["--keep"]).assert_ok();
    rt.kill(&id, Some("KILL"))
        .assert_error("container not running", "container not running");
    rt.delete(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

/// `kill --all` of a stopped container signals what is left in its cgroup, as runc allows:
/// without a pid namespace, a background process outlives the container's init.
#[test]
fn kill_all_reaches_leftovers_of_a_stopped_container() {
    let mut b = Bundle::new("reg-killall-stopped");
    b.remove_namespace("pid");
    b.sh("sleep 300 </dev/null >/dev/null 2>&1 & exit 0");
    let rt = Runtime::new("reg-killall-stopped");
    let id = rt.id("c");
    rt.run_detached(&b, &id).assert_ok();
    rt.wait_status(&id, "stopped");
    let procs = |b: &Bundle| -> Vec<String> {
        let cg = b.cgroups_path().expect("cgroupsPath");
        let dir = cgroup_dirs(&cg).into_iter().find(|d| d.join("cgroup.procs").exists());
        dir.map(|d| std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default())
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };
    assert!(!procs(&b).is_empty(), "the background sleep should still be in the cgroup");
    rt.cmd(&["kill", "--all", &id, "KILL"]).assert_ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !procs(&b).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(procs(&b).is_empty(), "kill --all left {:?}", procs(&b));
    rt.delete(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}
