//! The pure cgroup v2 host: boots the VM of integration/vm/ (Debian's 6.1 kernel, a busybox
//! initramfs, qemu TCG) with the runtime under test inside, runs integration/vm/tests.sh there
//! (resources through config.json and `update`, the eBPF device filter, pause/resume, ps,
//! events with stats and OOM, kill --all, delete --force, refusals, init cloned into its cgroup
//! with CLONE_INTO_CGROUP, an AppArmor profile loaded with Debian's apparmor_parser and applied
//! to a container, nothing left behind) and fails loudly if the VM does not boot or any check
//! fails.

use husk_tests::*;
use std::process::Command;

#[test]
fn cgroup_v2_checks_pass_in_the_vm() {
    let run = workspace_dir().join("integration/vm/run.sh");
    let work = std::env::temp_dir().join(format!("husk-vm-{}", unique("v2")));
    let out = Command::new("bash")
        .arg(&run)
        .arg(husk_bin())
        .arg(&work)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", run.display()));
    let console = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&work);
    let lines: Vec<&str> = console
        .lines()
        .filter(|l| l.contains("PASS ") || l.contains("FAIL ") || l.contains("HUSK-VM-"))
        .collect();
    let failed: Vec<&&str> = lines.iter().filter(|l| l.contains("FAIL ")).collect();
    let summary = lines.iter().find(|l| l.contains("HUSK-VM-SUMMARY"));
    assert!(
        console.contains("HUSK-VM-BOOTED"),
        "the cgroup v2 VM did not boot (install qemu-system-x86 and cpio: make deps)\n\
         --- stderr ---\n{stderr}\n--- console ---\n{console}"
    );
    assert!(
        summary.is_some(),
        "the cgroup v2 checks did not finish in the VM\n--- stderr ---\n{stderr}\n--- console ---\n{console}"
    );
    assert!(
        failed.is_empty() && out.status.success(),
        "cgroup v2 checks failed in the VM: {failed:#?}\n{}\n--- console ---\n{console}",
        summary.unwrap_or(&"")
    );
    let passed = lines.iter().filter(|l| l.contains("PASS ")).count();
    assert!(passed >= 55, "only {passed} checks ran:\n{console}");
    eprintln!("{}", summary.unwrap_or(&""));
}
