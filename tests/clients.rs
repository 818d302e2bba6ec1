//! Real clients: podman (through conmon), containerd (ctr, containerd-shim-runc-v2) and
//! docker (dockerd 20.10) run their containers through the runtime under test, and the
//! same scenarios through runc as the control: integration/clients/run.py (python3, stdlib
//! only). It installs the clients when missing, starts private daemons, prints the table
//! (scenario x runtime) and exits non-zero when a scenario of
//! integration/clients/required.txt fails; that exit fails this test.
//!
//! The script's stdout (progress, then the table) goes straight to the test's stdout, past
//! cargo's capture. Every client command and its output: /tmp/husk-clients.log.

use husk_tests::*;
use std::process::Command;

#[test]
fn podman_containerd_and_docker_run_through_the_runtime() {
    let script = workspace_dir().join("integration/clients/run.py");
    if flavor() != Flavor::Husk {
        // The harness compares husk with runc and checks that husk wrote the state.
        eprintln!(
            "client matrix skipped: {} is not husk",
            husk_bin().display()
        );
        return;
    }
    // stdout and stderr are inherited: the table reaches the terminal and CI's log
    // directly (cargo's capture only takes print! output), also when the test passes.
    let status = Command::new("python3")
        .arg(&script)
        .arg("--husk")
        .arg(husk_bin())
        .status()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(
        status.success(),
        "the client matrix failed ({status}): a required scenario fails, or a client could \
         not be set up; see the table above and /tmp/husk-clients.log"
    );
}
