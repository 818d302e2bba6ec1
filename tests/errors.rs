//! Bad input. Each case: a non-zero exit, a message naming the problem (the expected
//! substring differs between husk and runc, see `Output::assert_msg`), an error line in the
//! JSON log, and nothing left behind (state dir, cgroup, mount, process).

use husk_tests::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// `create` and `run` of `b` both fail with the expected message and leave nothing behind.
#[track_caller]
fn assert_create_fails(b: &Bundle, name: &str, husk: &str, runc: &str) {
    let rt = Runtime::new(name);
    let id = rt.id("c");
    rt.create(b, &id).assert_error(husk, runc);
    rt.assert_nothing_left(b, &id);
    assert!(
        rt.root_entries().is_empty(),
        "state root holds {:?}",
        rt.root_entries()
    );
    rt.state(&id).assert_fail();

    let id = rt.id("r");
    rt.run_capture(b, &id).assert_error(husk, runc);
    rt.assert_nothing_left(b, &id);
    assert!(
        rt.root_entries().is_empty(),
        "state root holds {:?}",
        rt.root_entries()
    );
}

#[test]
fn malformed_json() {
    let mut b = Bundle::new("err-json");
    b.write_raw("{\"ociVersion\": \"1.0.2\", \"process\": {");
    assert_create_fails(&b, "err-json", "config.json", "unexpected EOF");
}

#[test]
fn schema_violation_names_the_field() {
    let mut b = Bundle::new("err-schema");
    b.set("/linux/namespaces", json!([{ "type": "bogus" }]));
    assert_create_fails(&b, "err-schema", "bogus", "bogus");
}

#[test]
fn wrong_type_for_a_field() {
    let mut b = Bundle::new("err-type");
    b.set("/process/args", json!("sh -c true"));
    assert_create_fails(&b, "err-type", "args", "cannot unmarshal string");
}

#[test]
fn unsupported_oci_version() {
    let mut b = Bundle::new("err-version");
    b.set("/ociVersion", json!("2.0.0"));
    assert_create_fails(&b, "err-version", "2.0.0", "2.0.0");
}

#[test]
fn missing_config_json() {
    let b = Bundle::new("err-noconfig");
    let rt = Runtime::new("err-noconfig");
    let id = rt.id("c");
    rt.track(&b, &id);
    std::fs::remove_file(b.dir().join("config.json")).unwrap();
    // Not through rt.create(): that would write config.json again.
    rt.cmd(&["create", "--bundle", &b.dir_str(), &id])
        .assert_error("config.json", "config.json");
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn missing_rootfs() {
    let mut b = Bundle::new("err-norootfs");
    b.set("/root/path", json!("no-such-rootfs"));
    assert_create_fails(&b, "err-norootfs", "no-such-rootfs", "no-such-rootfs");
}

#[test]
fn bind_mount_source_does_not_exist() {
    let mut b = Bundle::new("err-bindsrc");
    let src = format!("/tmp/husk-test-no-such-source-{}", unique("s"));
    b.add_bind(&src, "/data", &["ro"]);
    assert_create_fails(&b, "err-bindsrc", &src, "no such file or directory");
}

#[test]
fn unknown_mount_option() {
    let mut b = Bundle::new("err-mntopt");
    b.add_mount("/t", "tmpfs", "tmpfs", &["nosuid", "foo"]);
    assert_create_fails(&b, "err-mntopt", "foo", "invalid argument");
}

#[test]
fn unknown_mount_type() {
    let mut b = Bundle::new("err-mnttype");
    b.add_mount("/t", "nosuchfs", "none", &[]);
    assert_create_fails(&b, "err-mnttype", "nosuchfs", "no such device");
}

#[test]
fn invalid_container_ids() {
    let b = Bundle::new("err-ids");
    let rt = Runtime::new("err-ids");
    for id in ["a/b", "..", ".", "../escape", "a b"] {
        rt.create(&b, id)
            .assert_error("invalid container id", "invalid container id");
        assert!(
            rt.root_entries().is_empty(),
            "id {id:?}: state root holds {:?}",
            rt.root_entries()
        );
    }
    rt.create(&b, "")
        .assert_error("container id", "container id cannot be empty");
    assert!(
        rt.root_entries().is_empty(),
        "state root holds {:?}",
        rt.root_entries()
    );
    // Nothing was created next to the state root either.
    assert!(!rt.root().parent().unwrap().join("escape").exists());
    assert_eq!(
        cgroup_dirs(&b.cgroups_path().unwrap()),
        Vec::<std::path::PathBuf>::new()
    );
    assert!(stray_processes(rt.root(), b.dir(), b.cgroups_path().as_deref()).is_empty());
}

#[test]
fn duplicate_container_id() {
    let mut b = Bundle::new("err-dup");
    b.args(&["sleep", "300"]);
    let b2 = b.sibling("err-dup2");
    let rt = Runtime::new("err-dup");
    let id = rt.id("c");
    rt.create(&b, &id).assert_ok();
    let pid = rt.pid(&id);
    rt.create(&b2, &id)
        .assert_error("already exists", "already exists");
    // The first container is untouched, the second left nothing.
    assert_eq!(rt.status(&id), "created");
    assert_eq!(rt.pid(&id), pid);
    assert_eq!(rt.state_json(&id)["bundle"], b.dir_str().as_str());
    assert!(cgroup_dirs(&b2.cgroups_path().unwrap()).is_empty());
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn start_of_a_running_container() {
    let mut b = Bundle::new("err-start-running");
    b.args(&["sleep", "300"]);
    let rt = Runtime::new("err-start-running");
    let id = rt.id("c");
    rt.run_detached(&b, &id).assert_ok();
    let pid = rt.pid(&id);
    rt.start(&id)
        .assert_error("running", "cannot start an already running container");
    assert_eq!(rt.status(&id), "running");
    assert_eq!(rt.pid(&id), pid);
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn start_of_a_stopped_container() {
    let mut b = Bundle::new("err-start-stopped");
    b.args(&["true"]);
    let rt = Runtime::new("err-start-stopped");
    let id = rt.id("c");
    rt.run_with(&b, &id, &["--keep"]).assert_ok();
    rt.start(&id)
        .assert_error("stopped", "cannot start a container that has stopped");
    rt.delete(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn kill_of_a_stopped_container() {
    let mut b = Bundle::new("err-kill-stopped");
    b.args(&["true"]);
    let rt = Runtime::new("err-kill-stopped");
    let id = rt.id("c");
    rt.run_with(&b, &id, &["--keep"]).assert_ok();
    rt.kill(&id, Some("KILL"))
        .assert_error("not running", "container not running");
    rt.delete(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn kill_with_an_unknown_signal() {
    let mut b = Bundle::new("err-kill-sig");
    b.args(&["sleep", "300"]);
    let rt = Runtime::new("err-kill-sig");
    let id = rt.id("c");
    rt.run_detached(&b, &id).assert_ok();
    rt.kill(&id, Some("SIGBOGUS"))
        .assert_error("SIGBOGUS", "unknown signal");
    assert_eq!(rt.status(&id), "running");
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn delete_of_a_running_container_without_force() {
    let mut b = Bundle::new("err-delete-running");
    b.args(&["sleep", "300"]);
    let rt = Runtime::new("err-delete-running");
    let id = rt.id("c");
    rt.run_detached(&b, &id).assert_ok();
    rt.delete(&id)
        .assert_error("running", "cannot delete container");
    assert_eq!(rt.status(&id), "running");
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn commands_on_an_unknown_id() {
    let rt = Runtime::new("err-unknown");
    let id = rt.id("ghost");
    rt.state(&id)
        .assert_error("does not exist", "does not exist");
    rt.start(&id)
        .assert_error("does not exist", "does not exist");
    rt.kill(&id, Some("KILL"))
        .assert_error("does not exist", "does not exist");
    rt.delete(&id)
        .assert_error("does not exist", "does not exist");
    assert!(rt.root_entries().is_empty());
}

#[test]
fn error_goes_to_stderr_without_log() {
    let rt = Runtime::new("err-stderr");
    let out = rt.cmd_plain(&["state", "no-such-container"]);
    out.assert_fail();
    assert!(out.stderr.contains("does not exist"), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
}

#[test]
fn failing_create_runtime_hook() {
    let mut b = Bundle::new("err-hook-fail");
    b.args(&["sleep", "300"]);
    b.add_hook(
        HookKind::CreateRuntime,
        Hook::sh("echo hook-said-no >&2; exit 1"),
    );
    let h = b.recording_hook(HookKind::Poststop);
    b.add_hook(HookKind::Poststop, h);
    assert_create_fails(&b, "err-hook-fail", "createRuntime", "error running hook");
    // The spec: a failing createRuntime hook stops the container and continues at
    // delete, so the poststop hooks run (once for create, once for run).
    let log = b.hook_log();
    assert_eq!(log.len(), 2, "poststop hooks: {log:?}");
}

#[test]
fn failing_prestart_hook() {
    let mut b = Bundle::new("err-prestart");
    b.add_hook(HookKind::Prestart, Hook::sh("exit 3"));
    assert_create_fails(&b, "err-prestart", "prestart", "error running hook");
}

#[test]
fn failing_create_container_hook() {
    let mut b = Bundle::new("err-hook-cc");
    b.add_hook(HookKind::CreateContainer, Hook::sh("exit 1"));
    assert_create_fails(&b, "err-hook-cc", "createContainer", "error running hook");
}

#[test]
fn failing_start_container_hook_fails_start() {
    let mut b = Bundle::new("err-hook-sc");
    b.args(&["sh", "-c", "touch /user-process-ran"]);
    b.add_hook(HookKind::StartContainer, Hook::sh("exit 1"));
    let rt = Runtime::new("err-hook-sc");
    let id = rt.id("c");
    rt.create(&b, &id).assert_ok();
    rt.start(&id)
        .assert_error("startContainer", "error running hook");
    assert!(
        !b.rootfs().join("user-process-ran").exists(),
        "the user process ran"
    );
    // The container was stopped.
    rt.wait_status(&id, "stopped");
    rt.delete(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn timed_out_hook_is_killed() {
    let mut b = Bundle::new("err-hook-timeout");
    // The hook runs the rootfs's busybox, so a surviving hook process is easy to spot
    // (its executable lies in the bundle).
    let busybox = b
        .rootfs()
        .join("bin/busybox")
        .to_string_lossy()
        .into_owned();
    b.add_hook(
        HookKind::CreateRuntime,
        Hook {
            path: busybox,
            args: vec!["sleep".into(), "60".into()],
            env: vec![],
            timeout: Some(1),
        },
    );
    let rt = Runtime::new("err-hook-timeout");
    let id = rt.id("c");
    let t0 = Instant::now();
    rt.create(&b, &id)
        .assert_error("timed out", "ran past specified timeout");
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "create took {:?}",
        t0.elapsed()
    );
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn args0_not_in_rootfs_fails_at_create() {
    let mut b = Bundle::new("err-noexec");
    b.args(&["no-such-binary", "arg"]);
    assert_create_fails(&b, "err-noexec", "no-such-binary", "no-such-binary");
}

#[test]
fn args0_absolute_path_not_in_rootfs() {
    let mut b = Bundle::new("err-noexec-abs");
    b.args(&["/usr/local/bin/nothing-here"]);
    assert_create_fails(
        &b,
        "err-noexec-abs",
        "/usr/local/bin/nothing-here",
        "nothing-here",
    );
}

#[test]
fn empty_args() {
    let mut b = Bundle::new("err-noargs");
    b.set("/process/args", json!([]));
    assert_create_fails(&b, "err-noargs", "args", "args must not be empty");
}

#[test]
fn namespace_path_that_is_not_a_namespace() {
    let mut b = Bundle::new("err-nspath");
    b.namespace("network", Some("/etc/hostname"));
    assert_create_fails(&b, "err-nspath", "/etc/hostname", "/etc/hostname");
}

#[test]
fn namespace_path_of_the_wrong_type() {
    // A uts namespace given as the network namespace.
    let uts = PersistentNs::new("uts");
    let mut b = Bundle::new("err-nstype");
    b.namespace("network", Some(&uts.path_str()));
    assert_create_fails(&b, "err-nstype", &uts.path_str(), "invalid argument");
}

#[test]
fn namespace_path_that_does_not_exist() {
    let mut b = Bundle::new("err-nsmissing");
    b.namespace("network", Some("/run/netns/husk-test-does-not-exist"));
    assert_create_fails(
        &b,
        "err-nsmissing",
        "husk-test-does-not-exist",
        "husk-test-does-not-exist",
    );
}

#[test]
fn rlimit_above_the_hosts_hard_limit() {
    let mut b = Bundle::new("err-rlimit");
    b.rlimit("RLIMIT_NOFILE", 1048576, 1048576);
    assert_create_fails(&b, "err-rlimit", "RLIMIT_NOFILE", "operation not permitted");
}

#[test]
fn unknown_rlimit_type() {
    let mut b = Bundle::new("err-rlimit-type");
    b.rlimit("RLIMIT_BOGUS", 1, 1);
    assert_create_fails(&b, "err-rlimit-type", "RLIMIT_BOGUS", "RLIMIT_BOGUS");
}

#[test]
fn unknown_capability_is_reported() {
    // runc and crun accept unknown capabilities with a warning (configs may name
    // capabilities newer than the kernel); refusing them is also fine. Either way the
    // name must be reported.
    let mut b = Bundle::new("err-cap");
    b.capset("bounding", &["CAP_KILL", "CAP_BOGUS"]);
    let rt = Runtime::new("err-cap");
    let id = rt.id("c");
    let out = rt.run_capture(&b, &id);
    if out.ok() {
        let warned = out.log_lines().iter().any(|l| {
            l["level"].as_str().is_some_and(|lv| lv.starts_with("warn"))
                && l["msg"].as_str().is_some_and(|m| m.contains("CAP_BOGUS"))
        });
        assert!(
            warned,
            "CAP_BOGUS accepted without a warning in the log\n{out:?}"
        );
    } else {
        out.assert_error("CAP_BOGUS", "CAP_BOGUS");
    }
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn terminal_without_console_socket() {
    let mut b = Bundle::new("err-terminal");
    b.set("/process/terminal", json!(true));
    let rt = Runtime::new("err-terminal");
    let id = rt.id("c");
    rt.create(&b, &id)
        .assert_error("console-socket", "console socket");
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn user_namespace_without_mappings() {
    let mut b = Bundle::new("err-userns");
    b.namespace("user", None);
    assert_create_fails(&b, "err-userns", "uidMappings", "uid");
}

#[test]
fn relative_mount_destination_outside_rootfs() {
    // A destination that climbs out must be refused or resolved inside the rootfs.
    let mut b = Bundle::new("err-dotdot");
    let outside = format!("/tmp/husk-test-dotdot-{}", unique("o"));
    let rel = format!("/../../../../../..{outside}");
    b.add_mount(&rel, "tmpfs", "tmpfs", &["size=1m"]);
    let rt = Runtime::new("err-dotdot");
    let id = rt.id("c");
    let _ = rt.run_capture(&b, &id);
    let escaped = std::path::Path::new(&outside).exists();
    let _ = std::fs::remove_dir_all(&outside);
    assert!(!escaped, "the runtime created {outside} on the host");
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn sysctl_outside_the_containers_namespaces_is_refused() {
    // vm.swappiness is not namespaced: writing it would change the host. The value is the
    // host's current one, so that a runtime that wrongly applies it changes nothing.
    let current = std::fs::read_to_string("/proc/sys/vm/swappiness")
        .unwrap()
        .trim()
        .to_string();
    let mut b = Bundle::new("err-sysctl");
    b.set("/linux/sysctl", json!({ "vm.swappiness": current }));
    assert_create_fails(&b, "err-sysctl", "vm.swappiness", "vm.swappiness");
}

#[test]
fn network_sysctl_without_a_network_namespace_is_refused() {
    let current = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
        .unwrap()
        .trim()
        .to_string();
    let mut b = Bundle::new("err-sysctl-net");
    b.remove_namespace("network");
    b.set("/linux/sysctl", json!({ "net.ipv4.ip_forward": current }));
    assert_create_fails(
        &b,
        "err-sysctl-net",
        "net.ipv4.ip_forward",
        "net.ipv4.ip_forward",
    );
}

/// A createRuntime hook that SIGKILLs the container init (the pid of the state on stdin).
fn init_killing_hook() -> Hook {
    Hook::sh("pid=$(sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p'); kill -9 $pid")
}

#[test]
fn init_killed_during_create_is_reported_as_such() {
    let mut b = Bundle::new("err-init-killed");
    b.args(&["sleep", "300"]);
    b.add_hook(HookKind::CreateRuntime, init_killing_hook());
    assert_create_fails(
        &b,
        "err-init-killed",
        "container init was killed by SIGKILL during create",
        // "read init-p: connection reset by peer" or "write init-p: broken pipe".
        "init-p: ",
    );
    // Not a channel error, and no OOM kill to speak of.
    let rt = Runtime::new("err-init-killed");
    let id = rt.id("c");
    let out = rt.create(&b, &id);
    out.assert_fail();
    if flavor() == Flavor::Husk {
        let text = out.messages();
        assert!(!text.contains("sync channel") && !text.contains("OOM"), "{text}");
    }
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn init_killed_after_forking_into_its_pid_namespace() {
    // With a time namespace husk's init forks into the new pid namespace: the process that
    // dies is not husk's child under `create` (no status to read) but is under `run` (a
    // subreaper). Either way: no channel error, and nothing left. (runc 1.1.5 has no time
    // namespaces.)
    if flavor() != Flavor::Husk {
        return;
    }
    let mut b = Bundle::new("err-init-killed-fork");
    b.args(&["sleep", "300"]).namespace("time", None);
    b.add_hook(HookKind::CreateRuntime, init_killing_hook());
    assert_create_fails(&b, "err-init-killed-fork", "during create", "");
    let rt = Runtime::new("err-init-killed-fork");
    let id = rt.id("r");
    rt.run_capture(&b, &id)
        .assert_error("container init was killed by SIGKILL during create", "");
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn init_killed_by_its_memory_limit_during_create() {
    // 64 KiB is far too little for init to get to the user process. runc sets the limit
    // after init joined the cgroup, and refuses one below its usage.
    let mut b = Bundle::new("err-init-oom");
    b.set("/linux/resources/memory/limit", json!(65536));
    assert_create_fails(
        &b,
        "err-init-oom",
        "container init was killed by SIGKILL during create (the memory cgroup recorded an \
         OOM kill: linux.resources.memory.limit 65536 is too small)",
        "unable to set memory limit",
    );
}

/// `--systemd-cgroup` where no systemd runs (this host has none): a clear error before init
/// runs, and nothing left behind.
#[test]
fn systemd_cgroup_without_systemd() {
    assert!(
        !std::path::Path::new("/run/dbus/system_bus_socket").exists(),
        "this test needs a host without a system bus (HOST.md: no systemd here)"
    );
    let mut b = Bundle::new("err-nosd");
    b.set("/linux/cgroupsPath", json!("system.slice:husk:err-nosd"));
    b.write();
    let rt = Runtime::new("err-nosd");
    let id = rt.id("c");
    let out = rt.cmd_global(&["--systemd-cgroup"], &["create", "--bundle", &b.dir_str(), &id]);
    out.assert_fail();
    out.assert_msg("cannot reach systemd on the system bus", "systemd not running");
    out.assert_msg("/run/dbus/system_bus_socket", "cannot use systemd");
    rt.assert_nothing_left(&b, &id);
    assert!(
        rt.root_entries().is_empty(),
        "state root holds {:?}",
        rt.root_entries()
    );
}
