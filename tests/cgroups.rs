//! Cgroups on the cgroup v1 host: every resource set through config.json and read back from
//! the host's cgroup files and from inside the container, limits that bite (pids, memory,
//! devices), `update`, `pause`/`resume`, `ps`, `events` (stats and OOM), `kill --all`,
//! `delete --force` of a paused container, and refusals that leave nothing behind.
//! (The pure cgroup v2 host is covered by tests/cgroup_v2_vm.rs.)

use husk_tests::*;
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// Whether this host manages resources with cgroup v1 (the tests here assume it).
fn v1_host() -> bool {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let ok = mounts
        .lines()
        .any(|l| l.contains(" /sys/fs/cgroup/memory ") && l.contains(" - cgroup "));
    if !ok {
        eprintln!("skipping: not a cgroup v1 host");
    }
    ok
}

/// `/sys/fs/cgroup/<controller>/<cgroupsPath>/<file>`, trimmed.
fn cg_read(b: &Bundle, controller: &str, file: &str) -> String {
    let p = cg_path(b, controller).join(file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
        .trim()
        .to_string()
}

fn cg_path(b: &Bundle, controller: &str) -> PathBuf {
    let rel = b.cgroups_path().unwrap_or_default();
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(rel.trim_start_matches('/'))
}

fn has_controller(c: &str) -> bool {
    Path::new("/sys/fs/cgroup")
        .join(c)
        .join("cgroup.procs")
        .exists()
}

/// A bundle running `script` with a few resources set.
fn bundle(name: &str, script: &str, resources: Value) -> Bundle {
    let mut b = Bundle::new(name);
    b.sh(script);
    b.set("/linux/resources", resources);
    b
}

/// Reads a file the container writes in its rootfs (visible from the host).
fn rootfs_read(b: &Bundle, path: &str) -> String {
    fs::read_to_string(b.rootfs().join(path.trim_start_matches('/'))).unwrap_or_default()
}

fn wait_for_file(b: &Bundle, path: &str) -> String {
    let ok = wait_for(WAIT, || !rootfs_read(b, path).trim().is_empty());
    assert!(ok, "the container did not write {path}");
    rootfs_read(b, path)
}

#[test]
fn resources_from_config_are_applied_and_seen_inside() {
    if !v1_host() {
        return;
    }
    let mut res = json!({
        "memory": { "limit": 104857600, "reservation": 52428800, "swap": 209715200, "swappiness": 10 },
        "cpu": { "shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0" },
        "pids": { "limit": 42 },
        "blockIO": { "weight": 300, "throttleReadBpsDevice": [ { "major": 7, "minor": 0, "rate": 1048576 } ] }
    });
    if !Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
        res["memory"].as_object_mut().unwrap().remove("swap");
    }
    // A weight needs CFQ (blkio.weight) or BFQ (blkio.bfq.weight); on a kernel built with
    // neither it is refused (checked at the end).
    let has_weight = ["blkio.weight", "blkio.bfq.weight"]
        .iter()
        .any(|f| Path::new("/sys/fs/cgroup/blkio").join(f).exists());
    if !has_weight {
        res["blockIO"].as_object_mut().unwrap().remove("weight");
    }
    let b = bundle(
        "cg-apply",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max \
         /sys/fs/cgroup/cpu/cpu.shares > /tmp/seen; sleep 300",
        res.clone(),
    );
    let rt = Runtime::new("cg-apply");
    let id = rt.id("c");
    rt.run_detached(&b, &id).assert_ok();
    assert_eq!(cg_read(&b, "memory", "memory.limit_in_bytes"), "104857600");
    assert_eq!(
        cg_read(&b, "memory", "memory.soft_limit_in_bytes"),
        "52428800"
    );
    assert_eq!(cg_read(&b, "memory", "memory.swappiness"), "10");
    if res["memory"].get("swap").is_some() {
        assert_eq!(
            cg_read(&b, "memory", "memory.memsw.limit_in_bytes"),
            "209715200"
        );
    }
    assert_eq!(cg_read(&b, "cpu", "cpu.shares"), "512");
    assert_eq!(cg_read(&b, "cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(cg_read(&b, "cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(cg_read(&b, "cpuset", "cpuset.cpus"), "0");
    assert_eq!(cg_read(&b, "pids", "pids.max"), "42");
    if has_weight {
        let weight_file = if cg_path(&b, "blkio").join("blkio.weight").exists() {
            "blkio.weight"
        } else {
            "blkio.bfq.weight"
        };
        assert!(cg_read(&b, "blkio", weight_file).contains("300"));
    }
    assert_eq!(
        cg_read(&b, "blkio", "blkio.throttle.read_bps_device"),
        "7:0 1048576"
    );
    // The container sees its own cgroup at /sys/fs/cgroup.
    let seen = wait_for_file(&b, "/tmp/seen");
    let seen: Vec<&str> = seen.lines().collect();
    assert_eq!(seen, ["104857600", "42", "512"]);
    // The container's processes are in it.
    let pid = rt.pid(&id);
    assert!(cg_read(&b, "memory", "cgroup.procs")
        .lines()
        .any(|l| l == pid.to_string()));
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
    if !has_weight {
        // Without CFQ and BFQ a weight is refused, naming the field and the missing file.
        let b = bundle("cg-weight", "true", json!({ "blockIO": { "weight": 300 } }));
        let id = rt.id("w");
        rt.run_detached(&b, &id)
            .assert_error("blockIO.weight", "blkio.bfq.weight");
        rt.assert_nothing_left(&b, &id);
    }
}

#[test]
fn pids_limit_stops_a_fork_loop() {
    if !v1_host() {
        return;
    }
    let b = bundle(
        "cg-pids",
        "(for i in $(seq 1 40); do sleep 30 & done) 2>/tmp/err; echo done > /tmp/done; \
         exec sleep 300",
        json!({ "pids": { "limit": 10 } }),
    );
    let rt = Runtime::new("cg-pids");
    let id = rt.id("c");
    rt.run_detached(&b, &id).assert_ok();
    wait_for_file(&b, "/tmp/done");
    // Nothing inside can fork any more, so the count is read from the host.
    let count: u32 = cg_read(&b, "pids", "pids.current").parse().unwrap();
    assert!(
        (2..=10).contains(&count),
        "{count} processes under pids.limit 10"
    );
    assert!(
        rootfs_read(&b, "/tmp/err").contains("fork"),
        "{}",
        rootfs_read(&b, "/tmp/err")
    );
    let events = cg_read(&b, "pids", "pids.events");
    assert!(!events.contains("max 0"), "pids.events: {events}");
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn memory_limit_oom_kills_and_events_reports_it() {
    if !v1_host() {
        return;
    }
    // tail keeps its whole input when there is no newline: it grows until the OOM killer.
    let b = bundle(
        "cg-oom",
        "while [ ! -e /tmp/go ]; do sleep 0.05; done; head -c 200000000 /dev/zero | tail; \
         echo $? > /tmp/rc; sleep 300",
        json!({ "memory": { "limit": 20971520, "swap": 20971520 } }),
    );
    let rt = Runtime::new("cg-oom");
    let id = rt.id("c");
    rt.run_detached(&b, &id).assert_ok();
    let out = rt.scratch().join("events.out");
    let mut events = Command::new(rt.bin())
        .args([
            "--root",
            &rt.root_str(),
            "events",
            "--interval",
            "100ms",
            &id,
        ])
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The stream starts with stats; then let the container blow its limit.
    assert!(wait_for(WAIT, || fs::read_to_string(&out)
        .unwrap_or_default()
        .contains("\"stats\"")));
    fs::write(b.rootfs().join("tmp/go"), "").unwrap();
    let rc = wait_for_file(&b, "/tmp/rc");
    assert_ne!(rc.trim(), "0", "tail was not killed");
    let got_oom = wait_for(WAIT, || {
        fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .any(|l| {
                serde_json::from_str::<Value>(l)
                    .is_ok_and(|v| v["type"] == "oom" && v["id"] == id.as_str())
            })
    });
    let _ = events.kill();
    let _ = events.wait();
    assert!(
        got_oom,
        "no oom event:\n{}",
        fs::read_to_string(&out).unwrap_or_default()
    );
    let control = cg_read(&b, "memory", "memory.oom_control");
    let kills: u64 = control
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(kills >= 1, "memory.oom_control: {control}");
    // Every line is a runc-style envelope.
    for l in fs::read_to_string(&out).unwrap().lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        assert!(v["type"] == "stats" || v["type"] == "oom", "{l}");
        if v["type"] == "stats" {
            assert_eq!(v["data"]["memory"]["usage"]["limit"], 20971520, "{l}");
        }
    }
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn devices_are_denied_unless_allowed() {
    if !v1_host() {
        return;
    }
    // /dev/kmsg (c 1:11) is not among the default devices: deny-all keeps it closed.
    let script = "{ echo husk-cgroup-test > /dev/kmsg; } 2>/tmp/err; echo $? > /tmp/rc; \
                  head -c1 /dev/null; echo $? > /tmp/null; sleep 300";
    let kmsg =
        json!({ "path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 420 });
    for (allow, want_ok) in [(false, false), (true, true)] {
        let mut devices = vec![json!({ "allow": false, "access": "rwm" })];
        if allow {
            devices.push(
                json!({ "allow": true, "type": "c", "major": 1, "minor": 11, "access": "w" }),
            );
        }
        let mut b = bundle("cg-dev", script, json!({ "devices": devices }));
        b.push("/linux/devices", kmsg.clone());
        let rt = Runtime::new("cg-dev");
        let id = rt.id("c");
        rt.run_detached(&b, &id).assert_ok();
        let rc = wait_for_file(&b, "/tmp/rc");
        assert_eq!(
            rc.trim() == "0",
            want_ok,
            "allow={allow}: {}",
            rootfs_read(&b, "/tmp/err")
        );
        if !want_ok {
            assert!(
                rootfs_read(&b, "/tmp/err").contains("not permitted"),
                "{}",
                rootfs_read(&b, "/tmp/err")
            );
        }
        // The default devices stay usable.
        assert_eq!(wait_for_file(&b, "/tmp/null").trim(), "0");
        let list = cg_read(&b, "devices", "devices.list");
        assert!(
            list.contains("c 1:3 rwm") && !list.contains("a *:*"),
            "{list}"
        );
        rt.delete_force(&id).assert_ok();
        rt.assert_nothing_left(&b, &id);
    }
}

#[test]
fn update_changes_limits_of_a_running_container() {
    if !v1_host() {
        return;
    }
    let b = bundle(
        "cg-update",
        "sleep 300",
        json!({ "memory": { "limit": 104857600 }, "pids": { "limit": 50 }, "cpu": { "shares": 512 } }),
    );
    let rt = Runtime::new("cg-update");
    let id = rt.id("c");
    rt.run_detached(&b, &id).assert_ok();
    rt.cmd(&[
        "update",
        "--memory",
        "200m",
        "--pids-limit",
        "20",
        "--cpu-share",
        "256",
        "--cpu-quota",
        "30000",
        &id,
    ])
    .assert_ok();
    assert_eq!(cg_read(&b, "memory", "memory.limit_in_bytes"), "209715200");
    assert_eq!(cg_read(&b, "pids", "pids.max"), "20");
    assert_eq!(cg_read(&b, "cpu", "cpu.shares"), "256");
    assert_eq!(cg_read(&b, "cpu", "cpu.cfs_quota_us"), "30000");
    // From a resources file: only what it names changes.
    let file = rt.scratch().join("res.json");
    fs::write(
        &file,
        r#"{"memory":{"limit":157286400},"cpu":{"cpus":"0"}}"#,
    )
    .unwrap();
    rt.cmd(&["update", "-r", &file.to_string_lossy(), &id])
        .assert_ok();
    assert_eq!(cg_read(&b, "memory", "memory.limit_in_bytes"), "157286400");
    assert_eq!(cg_read(&b, "cpuset", "cpuset.cpus"), "0");
    assert_eq!(cg_read(&b, "pids", "pids.max"), "20");
    // A value the kernel refuses is an error naming the field.
    rt.cmd(&["update", "--cpuset-cpus", "4096", &id])
        .assert_error("cpu.cpus", "cpuset.cpus");
    // Refused on a stopped container.
    rt.kill(&id, Some("KILL")).assert_ok();
    rt.wait_status(&id, "stopped");
    rt.cmd(&["update", "--memory", "100m", &id])
        .assert_error("not running", "not running");
    rt.delete(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn pause_freezes_and_resume_thaws() {
    if !v1_host() {
        return;
    }
    let b = bundle(
        "cg-pause",
        "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.02; done",
        json!({}),
    );
    let rt = Runtime::new("cg-pause");
    let id = rt.id("c");
    rt.run_detached(&b, &id).assert_ok();
    wait_for_file(&b, "/tmp/n");
    rt.cmd(&["pause", &id]).assert_ok();
    assert_eq!(rt.status(&id), "paused");
    assert_eq!(cg_read(&b, "freezer", "freezer.state"), "FROZEN");
    let frozen_at = rootfs_read(&b, "/tmp/n");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        rootfs_read(&b, "/tmp/n"),
        frozen_at,
        "a paused container made progress"
    );
    let listed = rt.list_json();
    assert!(
        listed
            .iter()
            .any(|c| c["id"] == id.as_str() && c["status"] == "paused"),
        "{listed:?}"
    );
    rt.cmd(&["pause", &id])
        .assert_error("not running", "not running");
    rt.cmd(&["resume", &id]).assert_ok();
    assert_eq!(rt.status(&id), "running");
    assert!(
        wait_for(WAIT, || rootfs_read(&b, "/tmp/n") != frozen_at),
        "no progress after resume"
    );
    rt.cmd(&["resume", &id])
        .assert_error("not paused", "not paused");
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn delete_force_of_a_paused_container_removes_everything() {
    if !v1_host() {
        return;
    }
    let b = bundle(
        "cg-delpaused",
        "sleep 300 & sleep 300 & wait",
        json!({ "pids": { "limit": 20 } }),
    );
    let rt = Runtime::new("cg-delpaused");
    let id = rt.id("c");
    rt.run_detached(&b, &id).assert_ok();
    rt.cmd(&["pause", &id]).assert_ok();
    rt.delete(&id).assert_error("paused", "paused");
    let started = Instant::now();
    rt.delete_force(&id).assert_ok();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "delete took {:?}",
        started.elapsed()
    );
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn ps_lists_the_container_processes() {
    if !v1_host() {
        return;
    }
    let b = bundle("cg-ps", "sleep 301 & sleep 302 & wait", json!({}));
    let rt = Runtime::new("cg-ps");
    let id = rt.id("c");
    rt.run_detached(&b, &id).assert_ok();
    let init = rt.pid(&id);
    let ok = wait_for(WAIT, || {
        rt.cmd(&["ps", "--format", "json", &id])
            .json()
            .as_array()
            .is_some_and(|a| a.len() == 3)
    });
    assert!(ok, "{:?}", rt.cmd(&["ps", "--format", "json", &id]));
    let pids = rt.cmd(&["ps", "--format", "json", &id]).json();
    assert!(pids.as_array().unwrap().iter().any(|p| p == init), "{pids}");
    let table = rt.cmd(&["ps", &id]);
    table.assert_ok();
    let lines = table.lines();
    assert!(
        lines[0].contains("PID") && lines[0].contains("CMD"),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("sleep 301")), "{lines:?}");
    let custom = rt.cmd(&["ps", &id, "-o", "pid,comm"]);
    custom.assert_ok();
    assert_eq!(
        custom.lines()[0].split_whitespace().collect::<Vec<_>>(),
        ["PID", "COMMAND"]
    );
    assert_eq!(custom.lines().len(), 4);
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn events_stats_has_runc_fields_and_is_fast() {
    if !v1_host() {
        return;
    }
    let b = bundle(
        "cg-stats",
        "sleep 300",
        json!({ "memory": { "limit": 104857600 }, "pids": { "limit": 33 } }),
    );
    let rt = Runtime::new("cg-stats");
    let id = rt.id("c");
    rt.run_detached(&b, &id).assert_ok();
    let started = Instant::now();
    let out = rt.cmd_plain(&["events", "--stats", &id]);
    let took = started.elapsed();
    out.assert_ok();
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    let v = out.json();
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], id.as_str());
    let d = &v["data"];
    for key in [
        "cpu",
        "cpuset",
        "memory",
        "pids",
        "blkio",
        "hugetlb",
        "intel_rdt",
    ] {
        assert!(d.get(key).is_some(), "no {key} in {d}");
    }
    assert!(d["network_interfaces"].is_null());
    assert_eq!(d["pids"]["limit"], 33);
    assert!(d["pids"]["current"].as_u64().unwrap_or(0) >= 1, "{d}");
    assert_eq!(d["memory"]["usage"]["limit"], 104857600);
    assert!(
        d["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "{d}"
    );
    assert!(
        d["memory"]["raw"].get("rss").is_some() || d["memory"]["raw"].get("anon").is_some(),
        "{d}"
    );
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0, "{d}");
    assert!(d["cpu"]["usage"].get("kernel").is_some() && d["cpu"]["usage"].get("user").is_some());
    assert!(
        d["cpuset"]["cpus"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{d}"
    );
    // One read of each file: a few ms, far below a second even on a busy machine.
    assert!(
        took < Duration::from_secs(1),
        "events --stats took {took:?}"
    );
    rt.kill(&id, Some("KILL")).assert_ok();
    rt.wait_status(&id, "stopped");
    rt.cmd(&["events", "--stats", &id])
        .assert_error("not running", "not running");
    rt.delete(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn kill_all_signals_every_process() {
    if !v1_host() {
        return;
    }
    let b = bundle(
        "cg-killall",
        "sleep 300 & sleep 300 & sleep 300 & wait",
        json!({}),
    );
    let rt = Runtime::new("cg-killall");
    let id = rt.id("c");
    rt.run_detached(&b, &id).assert_ok();
    assert!(wait_for(WAIT, || cg_read(&b, "pids", "cgroup.procs")
        .lines()
        .count()
        == 4));
    rt.cmd(&["kill", "--all", &id, "KILL"]).assert_ok();
    assert!(
        wait_for(WAIT, || cg_read(&b, "pids", "cgroup.procs").is_empty()),
        "left: {}",
        cg_read(&b, "pids", "cgroup.procs")
    );
    rt.wait_status(&id, "stopped");
    rt.delete(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn unified_on_v1_is_refused_and_nothing_is_left() {
    if !v1_host() {
        return;
    }
    let b = bundle(
        "cg-unified",
        "true",
        json!({ "unified": { "memory.high": "1000000" } }),
    );
    let rt = Runtime::new("cg-unified");
    let id = rt.id("c");
    rt.create(&b, &id)
        .assert_error("linux.resources.unified", "unified");
    rt.assert_nothing_left(&b, &id);
    assert!(rt.root_entries().is_empty());
}

#[test]
fn a_missing_controller_is_refused_unless_the_value_is_default() {
    if !v1_host() || has_controller("net_cls") {
        return;
    }
    let b = bundle(
        "cg-netcls",
        "true",
        json!({ "network": { "classID": 1048577 } }),
    );
    let rt = Runtime::new("cg-netcls");
    let id = rt.id("c");
    rt.create(&b, &id)
        .assert_error("network.classID", "net_cls");
    rt.assert_nothing_left(&b, &id);
    // The default value needs no controller.
    let b = bundle(
        "cg-netcls0",
        "true",
        json!({ "network": { "classID": 0 }, "memory": { "limit": -1 } }),
    );
    let id = rt.id("c");
    rt.run_capture(&b, &id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn invalid_values_fail_create_cleanly() {
    if !v1_host() {
        return;
    }
    let rt = Runtime::new("cg-invalid");
    for (res, husk, runc) in [
        (
            json!({ "memory": { "swappiness": 101 } }),
            "memory.swappiness",
            "swappiness",
        ),
        (
            json!({ "devices": [ { "allow": true, "type": "x", "access": "r" } ] }),
            "devices[0]",
            "invalid",
        ),
        (
            json!({ "cpu": { "cpus": "4096" } }),
            "cpu.cpus",
            "cpuset.cpus",
        ),
        (
            json!({ "memory": { "limit": 104857600, "swap": 52428800 } }),
            "memory.swap",
            "memsw",
        ),
    ] {
        let b = bundle("cg-invalid", "true", res.clone());
        let id = rt.id("c");
        rt.create(&b, &id).assert_error(husk, runc);
        rt.assert_nothing_left(&b, &id);
    }
}
