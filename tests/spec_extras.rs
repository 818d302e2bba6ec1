//! The runtime-spec 1.3 extras, checked from inside the container: process.scheduler,
//! process.ioPriority, process.execCPUAffinity (exec), linux.personality,
//! linux.memoryPolicy, linux.intelRdt (errors only: no resctrl here), recursive mount attributes;
//! each bad value a clear error naming the field, with nothing left behind.

use std::fs;
use std::process::Command;

use husk_tests::*;
use serde_json::{json, Value};

/// Field `n` (1-based, as in proc(5)) of a /proc/<pid>/stat line.
fn stat_field(line: &str, n: usize) -> i64 {
    let rest = &line[line.rfind(')').expect("stat line") + 1..];
    rest.split_whitespace()
        .nth(n - 3)
        .expect("field")
        .parse()
        .expect("number")
}

#[test]
fn scheduler_batch_with_nice() {
    let mut b = Bundle::new("sched-batch");
    b.set(
        "/process/scheduler",
        json!({"policy": "SCHED_BATCH", "nice": 7}),
    );
    b.args(&["cat", "/proc/self/stat"]);
    let out = run_ok(&b, "sched-batch");
    // 41: policy (3 = SCHED_BATCH), 19: nice.
    assert_eq!(
        (stat_field(&out, 41), stat_field(&out, 19)),
        (3, 7),
        "{out}"
    );
}

#[test]
fn scheduler_fifo_reset_on_fork_and_io_priority() {
    let mut b = Bundle::new("sched-fifo");
    // The spec's flag name (oci-spec spells it differently).
    b.set(
        "/process/scheduler",
        json!({"policy": "SCHED_FIFO", "priority": 10, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}),
    );
    b.set(
        "/process/ioPriority",
        json!({"class": "IOPRIO_CLASS_IDLE", "priority": 7}),
    );
    // With RT group scheduling (cgroup v1) the cgroup needs a realtime budget.
    if std::path::Path::new("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists() {
        b.set(
            "/linux/resources/cpu",
            json!({"realtimeRuntime": 10000, "realtimePeriod": 1000000}),
        );
    }
    // pid 1 is the shell the init exec'd; the second cat is its child (reset on fork).
    b.sh("cat /proc/1/stat; cat /proc/self/stat; ionice -p 1; true");
    let out = run_ok(&b, "sched-fifo");
    let lines: Vec<&str> = out.lines().collect();
    // 41: policy (1 = SCHED_FIFO), 40: rt_priority.
    assert_eq!(
        (stat_field(lines[0], 41), stat_field(lines[0], 40)),
        (1, 10),
        "{out}"
    );
    assert_eq!(
        stat_field(lines[1], 41),
        0,
        "SCHED_FLAG_RESET_ON_FORK not applied: {out}"
    );
    assert_eq!(lines[2].trim(), "idle", "{out}");

    let mut b = Bundle::new("ioprio-be");
    b.set(
        "/process/ioPriority",
        json!({"class": "IOPRIO_CLASS_BE", "priority": 3}),
    );
    b.args(&["ionice", "-p", "1"]);
    assert_eq!(run_ok(&b, "ioprio-be").trim(), "best-effort: prio 3");
}

#[test]
fn bad_scheduler_and_io_priority_values_are_refused() {
    let cases: &[(&str, Value, &str)] = &[
        (
            "/process/scheduler",
            json!({"policy": "SCHED_OTHER", "nice": 20}),
            "process.scheduler.nice 20",
        ),
        (
            "/process/scheduler",
            json!({"policy": "SCHED_OTHER", "priority": 5}),
            "process.scheduler.priority",
        ),
        (
            "/process/scheduler",
            json!({"policy": "SCHED_RR", "priority": 100}),
            "process.scheduler.priority 100",
        ),
        (
            "/process/scheduler",
            json!({"policy": "SCHED_BATCH", "runtime": 10}),
            "SCHED_DEADLINE",
        ),
        (
            "/process/scheduler",
            json!({"policy": "SCHED_NOPE"}),
            "process.scheduler.policy",
        ),
        (
            "/process/ioPriority",
            json!({"class": "IOPRIO_CLASS_BE", "priority": 8}),
            "process.ioPriority.priority 8",
        ),
        (
            "/process/ioPriority",
            json!({"class": "IOPRIO_CLASS_X", "priority": 1}),
            "process.ioPriority.class",
        ),
    ];
    for (ptr, v, msg) in cases {
        let mut b = Bundle::new("sched-bad");
        b.set(ptr, v.clone());
        run_fails(&b, "sched-bad", msg, "");
    }
}

#[test]
fn exec_cpu_affinity_initial_and_final() {
    let cpus = fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    if cpus.trim() == "0" {
        eprintln!("skipped: one CPU");
        return;
    }
    let mut b = Bundle::new("exec-affinity");
    // Not applicable to the container's init: it keeps the inherited affinity.
    b.set(
        "/process/execCPUAffinity",
        json!({"initial": "0", "final": "1"}),
    );
    b.args(&["sleep", "1000"]);
    let rt = Runtime::new("exec-affinity");
    let id = rt.id("c");
    rt.run_detached(&b, &id).assert_ok();
    let grep = ["grep", "Cpus_allowed_list", "/proc/self/status"];
    let init = rt.cmd(&["exec", &id, "grep", "Cpus_allowed_list", "/proc/1/status"]);
    init.assert_ok();
    assert!(
        !init.stdout.trim().ends_with("\t1"),
        "init got execCPUAffinity: {}",
        init.stdout
    );
    for (aff, want) in [
        (json!({"initial": "0", "final": "1"}), "1"),
        (json!({"final": "0"}), "0"),
    ] {
        let process = json!({
            "user": {"uid": 0, "gid": 0}, "cwd": "/", "args": grep,
            "env": ["PATH=/bin:/usr/bin"], "execCPUAffinity": aff,
        });
        let file = rt.scratch().join("process.json");
        fs::write(&file, process.to_string()).unwrap();
        let out = rt.cmd(&["exec", "--process", &file.to_string_lossy(), &id]);
        out.assert_ok();
        assert_eq!(
            out.stdout.split_whitespace().last(),
            Some(want),
            "{aff}: {}",
            out.stdout
        );
    }
    // A bad list names the field; the container is unaffected.
    let process = json!({"user": {"uid": 0, "gid": 0}, "cwd": "/", "args": grep,
        "execCPUAffinity": {"final": "0-9999"}});
    let file = rt.scratch().join("process.json");
    fs::write(&file, process.to_string()).unwrap();
    rt.cmd(&["exec", "--process", &file.to_string_lossy(), &id])
        .assert_error("execCPUAffinity.final", "");
    assert_eq!(rt.status(&id), "running");
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn exec_process_file_with_a_scheduler_using_the_spec_flag_names() {
    let mut b = Bundle::new("exec-sched");
    b.args(&["sleep", "1000"]);
    let rt = Runtime::new("exec-sched");
    let id = rt.id("c");
    rt.run_detached(&b, &id).assert_ok();
    // SCHED_FLAG_RESET_ON_FORK is the spec's name (oci-spec spells it differently).
    let process = json!({
        "user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["cat", "/proc/self/stat"],
        "scheduler": {"policy": "SCHED_BATCH", "nice": 4, "flags": ["SCHED_FLAG_RESET_ON_FORK"]},
    });
    let file = rt.scratch().join("process.json");
    fs::write(&file, process.to_string()).unwrap();
    let out = rt.cmd(&["exec", "--process", &file.to_string_lossy(), &id]);
    out.assert_ok();
    // 41: policy (3 = SCHED_BATCH), 19: nice.
    let line = out.stdout.trim();
    assert_eq!(
        (stat_field(line, 41), stat_field(line, 19)),
        (3, 4),
        "{line}"
    );
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn personality_linux32() {
    let mut b = Bundle::new("pers32");
    b.set("/linux/personality", json!({"domain": "LINUX32"}));
    b.args(&["uname", "-m"]);
    assert_eq!(run_ok(&b, "pers32").trim(), "i686");

    let mut b = Bundle::new("pers64");
    b.set("/linux/personality", json!({"domain": "LINUX"}));
    b.args(&["uname", "-m"]);
    assert_eq!(run_ok(&b, "pers64").trim(), std::env::consts::ARCH);

    let mut b = Bundle::new("pers-bad");
    b.set(
        "/linux/personality",
        json!({"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}),
    );
    run_fails(&b, "pers-bad", "linux.personality.flags", "");
    let mut b = Bundle::new("pers-bad");
    b.set("/linux/personality", json!({"domain": "LINUX64"}));
    run_fails(&b, "pers-bad", "linux.personality.domain", "");
}

#[test]
fn memory_policy() {
    let mut b = Bundle::new("mpol-bind");
    b.set(
        "/linux/memoryPolicy",
        json!({"mode": "MPOL_BIND", "nodes": "0"}),
    );
    b.sh("grep -c ' bind:0' /proc/1/numa_maps");
    let n: u32 = run_ok(&b, "mpol-bind").trim().parse().unwrap();
    assert!(n > 0);

    let mut b = Bundle::new("mpol-pref");
    b.set(
        "/linux/memoryPolicy",
        json!({"mode": "MPOL_PREFERRED", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}),
    );
    b.sh("grep -c ' prefer=static:0' /proc/1/numa_maps");
    let n: u32 = run_ok(&b, "mpol-pref").trim().parse().unwrap();
    assert!(n > 0);

    // A node the host does not have.
    let mut b = Bundle::new("mpol-node5");
    b.set(
        "/linux/memoryPolicy",
        json!({"mode": "MPOL_BIND", "nodes": "5"}),
    );
    run_fails(
        &b,
        "mpol-node5",
        "linux.memoryPolicy MPOL_BIND nodes \"5\"",
        "",
    );
    for (v, msg) in [
        (
            json!({"mode": "MPOL_DEFAULT", "nodes": "0"}),
            "takes no nodes",
        ),
        (
            json!({"mode": "MPOL_INTERLEAVE"}),
            "needs at least one node",
        ),
        (
            json!({"mode": "MPOL_BIND", "nodes": "0,,1"}),
            "linux.memoryPolicy: nodes",
        ),
        (json!({"mode": "MPOL_NOPE"}), "linux.memoryPolicy.mode"),
    ] {
        let mut b = Bundle::new("mpol-bad");
        b.set("/linux/memoryPolicy", v);
        run_fails(&b, "mpol-bad", msg, "");
    }
}

/// This host has no resctrl (no RDT in the CPU), so only the errors can be checked here;
/// the resctrl side is unit-tested against an imitation (extras::rdt).
#[test]
fn intel_rdt_without_resctrl_and_bad_values_are_refused() {
    for (rdt, msg) in [
        (
            json!({"closID": "guaranteed_group"}),
            "linux.intelRdt: no resctrl filesystem is mounted",
        ),
        (json!({"closID": "../x"}), "linux.intelRdt.closID"),
        (
            json!({"memBwSchema": "L3:0=ff"}),
            "linux.intelRdt.memBwSchema",
        ),
    ] {
        let mut b = Bundle::new("rdt");
        b.set("/linux/intelRdt", rdt);
        run_fails(&b, "rdt", msg, "");
    }
}

#[test]
fn recursive_read_only_bind_mount() {
    let mut b = Bundle::new("rro");
    // A host directory with a tmpfs mounted inside it (outside the bundle, which must end
    // up with nothing mounted under it).
    let dir = HostDir::with_tmpfs("rro-src", "sub");
    let src = dir.path_str();
    b.add_bind(&src, "/mnt", &["rbind", "rro"]);
    b.sh("touch /mnt/x 2>/dev/null && echo top-rw || echo top-ro; \
          touch /mnt/sub/x 2>/dev/null && echo sub-rw || echo sub-ro");
    assert_eq!(run_ok(&b, "rro"), "top-ro\nsub-ro\n");
    // Plain `ro` leaves the submount writable (the difference rro makes).
    b.remove_mount("/mnt");
    b.add_bind(&src, "/mnt", &["rbind", "ro"]);
    assert_eq!(run_ok(&b, "rro"), "top-ro\nsub-rw\n");
}

/// A veth pair made on the host for one test; whatever is left is deleted on drop.
struct Veth(String);

impl Veth {
    fn new(tag: &str) -> Veth {
        let name = format!("hk{tag}{}", std::process::id() % 100000);
        let peer = format!("{name}p");
        let ok = Command::new("ip")
            .args(["link", "add", &name, "type", "veth", "peer", "name", &peer])
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip link add {name}");
        Veth(name)
    }
    fn on_host(&self) -> bool {
        std::path::Path::new("/sys/class/net")
            .join(&self.0)
            .exists()
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        if self.on_host() {
            let _ = Command::new("ip").args(["link", "del", &self.0]).status();
        }
    }
}

#[test]
fn net_device_is_moved_renamed_with_its_addresses_and_up() {
    let v = Veth::new("a");
    let ip = |args: &[&str]| assert!(Command::new("ip").args(args).status().unwrap().success());
    ip(&["addr", "add", "10.231.7.1/24", "dev", &v.0]);
    ip(&["-6", "addr", "add", "fd00:e7::1/64", "dev", &v.0]);
    let mut b = Bundle::new("netdev");
    b.set(
        "/linux/netDevices",
        json!({ v.0.clone(): {"name": "ctr0"} }),
    );
    b.sh("cat /sys/class/net/ctr0/flags; ip addr show ctr0");
    let out = run_ok(&b, "netdev");
    let flags =
        i64::from_str_radix(out.lines().next().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "ctr0 is not up: {out}");
    assert!(out.contains("inet 10.231.7.1/24"), "{out}");
    assert!(out.contains("inet6 fd00:e7::1/64"), "{out}");
    // A veth dies with the container's network namespace (not moved back: the spec).
    assert!(!v.on_host());
}

#[test]
fn net_device_name_template_and_default_name() {
    let v = Veth::new("t");
    let w = Veth::new("k");
    let mut b = Bundle::new("netdev-tpl");
    b.set(
        "/linux/netDevices",
        json!({ v.0.clone(): {"name": "net%d"}, w.0.clone(): {} }),
    );
    b.sh(&format!(
        "ls /sys/class/net | sort; cat /sys/class/net/{}/operstate >/dev/null",
        w.0
    ));
    let out = run_ok(&b, "netdev-tpl");
    let names: Vec<&str> = out.lines().collect();
    assert!(names.contains(&"net0"), "{out}");
    assert!(names.contains(&w.0.as_str()), "{out}");
}

#[test]
fn bad_net_devices_are_refused() {
    let v = Veth::new("b");
    // No device of that name on the host.
    let mut b = Bundle::new("netdev-bad");
    b.set("/linux/netDevices", json!({"hk-nosuch0": {}}));
    run_fails(
        &b,
        "netdev-bad",
        "the host has no network device \"hk-nosuch0\"",
        "",
    );
    // An invalid name inside.
    let mut b = Bundle::new("netdev-bad");
    b.set("/linux/netDevices", json!({ v.0.clone(): {"name": "a/b"} }));
    run_fails(&b, "netdev-bad", "is not a valid interface name", "");
    // The host's network namespace.
    let mut b = Bundle::new("netdev-bad");
    b.remove_namespace("network");
    b.set("/linux/netDevices", json!({ v.0.clone(): {} }));
    run_fails(&b, "netdev-bad", "linux.netDevices", "");
    // A name already taken inside (lo): the kernel's EEXIST, nothing left behind.
    let mut b = Bundle::new("netdev-bad");
    b.set("/linux/netDevices", json!({ v.0.clone(): {"name": "lo"} }));
    run_fails(&b, "netdev-bad", "a device named \"lo\" already exists", "");
    assert!(
        v.on_host(),
        "the device must stay on the host when the move fails"
    );
}
