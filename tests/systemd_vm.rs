//! The systemd host: boots the Debian 12 VM of integration/vm-systemd/ (systemd as PID 1, pure
//! cgroup v2, qemu TCG) with the runtime under test as /usr/local/bin/husk and runs the
//! scenarios of integration/vm-systemd/tests/ there (the systemd cgroup driver by hand, podman
//! with its defaults, containerd's CRI with SystemdCgroup, rootless as the login user), each with husk and with runc as
//! the control. The image is built once and cached under /var/tmp (see run.sh).

use husk_tests::*;
use std::process::Command;

/// The scenario files of integration/vm-systemd/tests/ that `make test` runs.
const SCENARIO_FILES: &[&str] = &["by-hand.sh", "podman.sh", "containerd.sh", "rootless.sh"];

#[test]
fn systemd_scenarios_pass_in_the_vm() {
    let dir = workspace_dir().join("integration/vm-systemd");
    let work = std::env::temp_dir().join(format!("husk-vm-systemd-{}", unique("sd")));
    let bin_dir = work.join("bin");
    std::fs::create_dir_all(&bin_dir).expect("mkdir");
    // The runtime under test goes in as `husk`, whatever its name here (HUSK_BIN=runc too).
    std::fs::copy(husk_bin(), bin_dir.join("husk")).expect("copying the runtime");
    let script = work.join("scenarios.sh");
    let packed = Command::new(dir.join("pack.sh"))
        .arg(&script)
        .args(SCENARIO_FILES)
        .status()
        .expect("pack.sh");
    assert!(packed.success(), "pack.sh failed");
    let out = Command::new(dir.join("run.sh"))
        .arg(&script)
        .env("HUSK_VM_BIN_DIR", &bin_dir)
        .env("HUSK_VM_WORK", work.join("vm"))
        .output()
        .expect("run.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&work);
    let passed: u32 = stdout
        .split("systemd VM scenarios: passed=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        out.status.success() && passed >= 10 && stdout.contains(" failed=0"),
        "systemd VM scenarios failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    eprintln!("{stdout}");
}
