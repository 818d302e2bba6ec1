//! Namespaces, checked from inside: new ones differ from the host's, joined ones match the
//! joined namespace, absent ones are the host's; user namespace mappings; time offsets;
//! hostname and domainname.

use husk_tests::*;

/// Runs the bundle in the foreground and returns its stdout; fails the test if it fails.
/// `ns=link` lines printed by the container for each namespace in `kinds`.
fn inside_links(b: &mut Bundle, kinds: &[&str], name: &str) -> Vec<(String, String)> {
    let script: String = kinds
        .iter()
        .map(|k| format!("echo {k}=$(readlink /proc/self/ns/{k}); "))
        .collect();
    b.sh(&script);
    run_ok(b, name)
        .lines()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .collect()
}

#[test]
fn new_namespaces_differ_from_the_hosts() {
    let mut b = Bundle::new("ns-new");
    b.namespaces(&["pid", "network", "ipc", "uts", "mount", "cgroup"]);
    let kinds = ["pid", "net", "ipc", "uts", "mnt", "cgroup"];
    let links = inside_links(&mut b, &kinds, "ns-new");
    assert_eq!(links.len(), kinds.len(), "{links:?}");
    for (k, inside) in links {
        assert!(!inside.is_empty(), "no {k} link inside");
        assert_ne!(inside, ns_link("self", &k), "{k} namespace is the host's");
    }
}

#[test]
fn absent_namespaces_are_the_hosts() {
    let mut b = Bundle::new("ns-absent");
    // Only mount and pid: network, ipc, uts, cgroup stay the host's.
    b.namespaces(&["mount", "pid"]);
    b.remove("/hostname"); // setting a hostname needs a uts namespace
    let kinds = ["net", "ipc", "uts", "cgroup", "mnt", "pid"];
    for (k, inside) in inside_links(&mut b, &kinds, "ns-absent") {
        let host = ns_link("self", &k);
        if k == "mnt" || k == "pid" {
            assert_ne!(inside, host, "{k} should be new");
        } else {
            assert_eq!(inside, host, "{k} should be the host's");
        }
    }
}

#[test]
fn pid_namespace_makes_the_process_pid_1() {
    let mut b = Bundle::new("ns-pid1");
    b.sh("echo $$; ps -o pid,args | tail -n +2 | wc -l");
    let out = run_ok(&b, "ns-pid1");
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines.first(), Some(&"1"), "{out}");
    // sh, ps, tail, wc: only the container's own processes are visible.
    let n: usize = lines.get(1).and_then(|l| l.parse().ok()).unwrap_or(999);
    assert!(n <= 5, "container sees {n} processes:\n{out}");
}

#[test]
fn joins_namespaces_given_by_path() {
    let net = PersistentNs::new("net");
    let ipc = PersistentNs::new("ipc");
    let uts = PersistentNs::new("uts");
    let mut b = Bundle::new("ns-join");
    b.namespace("network", Some(&net.path_str()));
    b.namespace("ipc", Some(&ipc.path_str()));
    b.namespace("uts", Some(&uts.path_str()));
    let links = inside_links(&mut b, &["net", "ipc", "uts"], "ns-join");
    let want = [
        ("net", net.link()),
        ("ipc", ipc.link()),
        ("uts", uts.link()),
    ];
    assert_eq!(links.len(), 3, "{links:?}");
    for (k, link) in want {
        let inside = &links.iter().find(|(n, _)| n == k).unwrap().1;
        assert!(!link.is_empty());
        assert_eq!(inside, &link, "{k} namespace is not the joined one");
        assert_ne!(inside, &ns_link("self", k));
    }
    // The hostname was set inside the joined uts namespace.
    let out = std::process::Command::new("nsenter")
        .arg(format!("--uts={}", uts.path_str()))
        .arg("hostname")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "husk-test");
}

#[test]
fn joins_the_network_namespace_of_another_container() {
    let mut b1 = Bundle::new("ns-peer1");
    b1.args(&["sleep", "300"]);
    let mut b2 = Bundle::new("ns-peer2");
    let rt = Runtime::new("ns-peer");
    let (id1, id2) = (rt.id("holder"), rt.id("joiner"));
    rt.run_detached(&b1, &id1).assert_ok();
    let pid = rt.pid(&id1);
    let path = format!("/proc/{pid}/ns/net");
    b2.namespace("network", Some(&path));
    b2.sh("readlink /proc/self/ns/net");
    let out = rt.run_capture(&b2, &id2);
    out.assert_ok();
    assert_eq!(out.stdout.trim(), ns_link(&pid.to_string(), "net"));
    rt.delete_force(&id1).assert_ok();
    rt.assert_nothing_left(&b1, &id1);
    rt.assert_nothing_left(&b2, &id2);
}

#[test]
fn user_namespace_with_mappings() {
    let mut b = Bundle::new("ns-user");
    b.userns(100000, 65536);
    b.sh("id -u; id -g; cat /proc/self/uid_map; cat /proc/self/gid_map; readlink /proc/self/ns/user; \
          grep CapEff /proc/self/status");
    let out = run_ok(&b, "ns-user");
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines.first().map(String::as_str), Some("0"), "{out}");
    assert_eq!(lines.get(1).map(String::as_str), Some("0"), "{out}");
    assert_eq!(
        lines.get(2).map(String::as_str),
        Some("0 100000 65536"),
        "uid_map: {out}"
    );
    assert_eq!(
        lines.get(3).map(String::as_str),
        Some("0 100000 65536"),
        "gid_map: {out}"
    );
    assert_ne!(
        lines.get(4).cloned().unwrap_or_default(),
        ns_link("self", "user")
    );
    let eff = lines.get(5).and_then(|l| l.split(' ').nth(1)).unwrap_or("");
    assert_eq!(
        eff,
        cap_mask(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]),
        "{out}"
    );
}

#[test]
fn user_namespace_process_runs_as_a_mapped_host_uid() {
    let mut b = Bundle::new("ns-user-host");
    b.userns(200000, 65536);
    b.args(&["sleep", "300"]);
    let rt = Runtime::new("ns-user-host");
    let id = rt.id("c");
    rt.run_detached(&b, &id).assert_ok();
    let pid = rt.pid(&id);
    assert!(wait_for(
        std::time::Duration::from_secs(10),
        || proc_cmdline(pid) == "sleep 300"
    ));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status_field(&status, "Uid").unwrap();
    assert_eq!(
        uid.split_whitespace().next(),
        Some("200000"),
        "host view of the uid: {uid}"
    );
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn time_namespace_offsets_shift_the_clocks() {
    time_offsets_shift_the_clocks("ns-time", false);
}

/// The offsets need CAP_SYS_TIME over the time namespace's owner, the new user namespace:
/// written by init as its root (user ns first, then time ns), not refused with EACCES.
#[test]
fn time_namespace_offsets_with_a_user_namespace() {
    time_offsets_shift_the_clocks("ns-time-userns", true);
}

fn time_offsets_shift_the_clocks(name: &str, userns: bool) {
    const DAY: u64 = 86400;
    let mut b = Bundle::new(name);
    b.namespace("time", None);
    if userns {
        b.userns(300000, 65536);
    }
    b.set(
        "/linux/timeOffsets",
        serde_json::json!({ "boottime": { "secs": 10 * DAY, "nanosecs": 0 },
                            "monotonic": { "secs": 20 * DAY, "nanosecs": 0 } }),
    );
    b.sh("cat /proc/uptime; readlink /proc/self/ns/time; readlink /proc/self/ns/user");
    let host_up: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let out = run_ok(&b, name);
    let mut lines = out.lines();
    let inside_up: f64 = lines
        .next()
        .and_then(|l| l.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let shift = inside_up - host_up;
    assert!(
        (10.0 * DAY as f64 - 5.0..10.0 * DAY as f64 + 60.0).contains(&shift),
        "uptime inside {inside_up}, host {host_up}: shift {shift} is not the 10-day boottime offset"
    );
    assert_ne!(lines.next().unwrap_or(""), ns_link("self", "time"));
    let user = lines.next().unwrap_or("");
    assert_eq!(user != ns_link("self", "user"), userns, "user namespace {user}:\n{out}");
}

#[test]
fn cgroup_namespace_hides_the_cgroup_path() {
    let mut b = Bundle::new("ns-cgroup");
    b.namespace("cgroup", None);
    b.sh("cat /proc/self/cgroup");
    let out = run_ok(&b, "ns-cgroup");
    let cg = b.cgroups_path().unwrap();
    assert!(
        !out.contains(&cg),
        "cgroup path visible inside a cgroup namespace:\n{out}"
    );
    for l in out.lines().filter(|l| !l.is_empty()) {
        let path = l.rsplit_once(':').map(|x| x.1).unwrap_or("?");
        assert!(
            path == "/",
            "cgroup line {l:?} is not the namespace root:\n{out}"
        );
    }
}

#[test]
fn without_cgroup_namespace_the_cgroup_path_is_visible() {
    let mut b = Bundle::new("ns-cgroup-host");
    b.remove_namespace("cgroup");
    b.sh("cat /proc/self/cgroup");
    let out = run_ok(&b, "ns-cgroup-host");
    let cg = b.cgroups_path().unwrap();
    assert!(out.contains(&cg), "container not in {cg}:\n{out}");
}

#[test]
fn hostname_is_set() {
    let mut b = Bundle::new("uts-hostname");
    b.hostname("box-1");
    b.sh("hostname; cat /proc/sys/kernel/hostname");
    assert_eq!(run_ok(&b, "uts-hostname"), "box-1\nbox-1\n");
}

#[test]
fn domainname_is_set() {
    let mut b = Bundle::new("uts-domain");
    b.hostname("box-2")
        .set("/domainname", serde_json::json!("example.org"));
    b.sh("hostname; cat /proc/sys/kernel/domainname");
    assert_eq!(run_ok(&b, "uts-domain"), "box-2\nexample.org\n");
}

#[test]
fn namespaced_sysctls_are_applied() {
    let mut b = Bundle::new("sysctl");
    b.set(
        "/linux/sysctl",
        serde_json::json!({ "net.ipv4.ip_forward": "1", "kernel.msgmax": "12345" }),
    );
    b.sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax");
    assert_eq!(run_ok(&b, "sysctl"), "1\n12345\n");
    // The host's values are untouched (the container had its own net and ipc namespaces).
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/msgmax")
            .unwrap()
            .trim(),
        "12345"
    );
}

// --- no mount namespace -------------------------------------------------------------------

/// A config that lists no mount namespace, as runc and crun run it: masked and readonly
/// paths need a private mount namespace, so they are left out.
fn without_mount_ns(name: &str) -> Bundle {
    let mut b = Bundle::new(name);
    b.remove_namespace("mount");
    b.remove("/linux/maskedPaths").remove("/linux/readonlyPaths");
    std::fs::write(b.rootfs().join("marker"), "inside\n").expect("writing the marker");
    b
}

/// The spec: a namespace type that is not listed is inherited from the runtime. The container
/// runs chrooted in its rootfs, its mounts made in the runtime's mount namespace beneath the
/// rootfs; exec finds the same root; delete removes every mount create made (runc leaves them
/// all behind).
#[test]
fn without_a_mount_namespace_the_rootfs_is_chrooted_and_delete_removes_its_mounts() {
    let mut b = without_mount_ns("ns-no-mnt");
    b.args(&["sleep", "300"]);
    let rt = Runtime::new("ns-no-mnt");
    let id = rt.id("c");
    rt.run_detached(&b, &id).assert_ok();
    let out = rt.cmd(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cat /marker; readlink /proc/self/ns/mnt; tr '\\0' ' ' < /proc/1/cmdline; echo; \
         grep -c ' /dev/pts ' /proc/self/mountinfo",
    ]);
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"inside"), "exec's root is not the rootfs:\n{}", out.stdout);
    assert_eq!(lines.get(1).copied(), Some(ns_link("self", "mnt").as_str()), "{}", out.stdout);
    assert_eq!(lines.get(2).map(|l| l.trim()), Some("sleep 300"), "{}", out.stdout);
    assert_eq!(lines.get(3).copied(), Some("1"), "devpts not mounted inside:\n{}", out.stdout);
    // init's root is the rootfs, and its mounts are in this (the runtime's) namespace.
    let pid = rt.pid(&id);
    let root = std::fs::read_link(format!("/proc/{pid}/root")).expect("init's root");
    assert_eq!(root, b.rootfs().canonicalize().expect("rootfs"));
    let mounted = mounts_under(&b.rootfs());
    for sub in ["", "/proc", "/dev", "/dev/pts", "/sys"] {
        let want = format!("{}{sub}", b.rootfs().display());
        assert!(mounted.contains(&want), "{want} is not mounted: {mounted:?}");
    }
    rt.delete_force(&id).assert_ok();
    assert_eq!(mounts_under(&b.rootfs()), Vec::<String>::new(), "mounts left after delete");
    rt.assert_nothing_left(&b, &id);
}

/// `run` in the foreground too, and the host's own mounts are untouched (same mountinfo
/// outside the bundle before and after).
#[test]
fn without_a_mount_namespace_run_sees_its_rootfs_and_leaves_the_host_alone() {
    let mut b = without_mount_ns("ns-no-mnt-run");
    b.sh("cat /marker; ls /proc/1/ns >/dev/null && echo proc");
    // Other tests' bundles (without mount namespaces of their own, running in parallel) come
    // and go: only mounts outside every test bundle count.
    let outside = |text: String| -> Vec<String> {
        text.lines()
            .filter(|l| !l.contains("/tmp/husk-test-"))
            .map(|l| l.split(' ').skip(1).collect::<Vec<_>>().join(" "))
            .collect()
    };
    let before = outside(std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default());
    assert_eq!(run_ok(&b, "ns-no-mnt-run"), "inside\nproc\n");
    let after = outside(std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default());
    assert_eq!(before, after, "the host's mounts changed");
}

/// A create that fails after init mounted things detaches them all.
#[test]
fn without_a_mount_namespace_a_failed_create_leaves_no_mount() {
    let mut b = without_mount_ns("ns-no-mnt-fail");
    // process.cwd under a file: init fails after the mounts, creating it.
    b.cwd("/marker/sub");
    run_fails(&b, "ns-no-mnt-fail", "process.cwd /marker/sub", "");
    assert_eq!(mounts_under(&b.rootfs()), Vec::<String>::new(), "mounts left after a failed create");
}

#[test]
fn without_a_mount_namespace_masked_paths_are_refused() {
    let mut b = without_mount_ns("ns-no-mnt-masked");
    b.set("/linux/maskedPaths", serde_json::json!(["/proc/kcore"]));
    run_fails(
        &b,
        "ns-no-mnt-masked",
        "linux.maskedPaths: unable to restrict sys entries without a private mount namespace",
        "unable to restrict sys entries without a private MNT namespace",
    );
}
