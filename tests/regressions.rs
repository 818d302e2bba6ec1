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
