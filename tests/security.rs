//! Confinement other than seccomp: LSM labels (refused where the host lacks the LSM),
//! noNewPrivileges, fd hygiene, and procfs writes through the runtime's private procfs.

use husk_tests::*;
use serde_json::json;

fn refused(name: &str, pointer: &str, value: serde_json::Value, husk: &str) {
    let mut b = Bundle::new(name);
    b.set(pointer, value);
    let rt = Runtime::new(name);
    let id = rt.id("c");
    let out = rt.create(&b, &id);
    out.assert_fail();
    if flavor() == Flavor::Husk {
        out.assert_msg(husk, "");
    }
    rt.assert_nothing_left(&b, &id);
}

fn lsm_active(name: &str) -> bool {
    std::fs::read_to_string("/sys/kernel/security/lsm")
        .is_ok_and(|s| s.split(',').any(|l| l.trim() == name))
}

#[test]
fn apparmor_profile_without_apparmor_is_an_error() {
    if lsm_active("apparmor") {
        eprintln!("skipped: AppArmor is enabled here (see integration/vm for the AppArmor test)");
        return;
    }
    refused(
        "sec-apparmor",
        "/process/apparmorProfile",
        json!("husk-test"),
        "apparmor is not enabled",
    );
}

#[test]
fn selinux_labels_without_selinux_are_an_error() {
    if lsm_active("selinux") {
        eprintln!("skipped: SELinux is enabled here");
        return;
    }
    refused(
        "sec-selinux",
        "/process/selinuxLabel",
        json!("system_u:system_r:container_t:s0"),
        "process.selinuxLabel",
    );
    refused(
        "sec-mountlabel",
        "/linux/mountLabel",
        json!("system_u:object_r:container_file_t:s0"),
        "linux.mountLabel",
    );
}

#[test]
fn no_new_privileges_is_set() {
    let mut b = Bundle::new("sec-nnp");
    b.set("/process/noNewPrivileges", json!(true));
    b.sh("grep -E '^NoNewPrivs' /proc/self/status");
    let rt = Runtime::new("sec-nnp");
    let id = rt.id("c");
    let out = rt.run_capture(&b, &id);
    out.assert_ok();
    assert_eq!(
        status_field(&out.stdout, "NoNewPrivs").as_deref(),
        Some("1"),
        "{}",
        out.stdout
    );
}

#[test]
fn only_stdio_reaches_the_container() {
    let mut b = Bundle::new("sec-fds");
    b.sh("ls /proc/self/fd");
    let rt = Runtime::new("sec-fds");
    let id = rt.id("c");
    let out = rt.run_capture(&b, &id);
    out.assert_ok();
    let fds: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "{}", out.stdout);
}

#[test]
fn procfs_writes_still_work() {
    // sysctl and oom_score_adj go through the private procfs.
    let mut b = Bundle::new("sec-procfs");
    b.set("/linux/sysctl", json!({"net.ipv4.ip_forward": "1"}));
    b.set("/process/oomScoreAdj", json!(123));
    b.sh("cat /proc/sys/net/ipv4/ip_forward /proc/self/oom_score_adj");
    let rt = Runtime::new("sec-procfs");
    let id = rt.id("c");
    let out = rt.run_capture(&b, &id);
    out.assert_ok();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["1", "123"],
        "{}",
        out.stdout
    );
    rt.assert_nothing_left(&b, &id);
}
