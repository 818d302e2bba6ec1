//! Unit tests: id rules, the state dir life cycle in a temp root, status derivation.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::*;

/// A fresh state root under the temp dir, removed on drop.
struct Root(PathBuf);

impl Root {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "husk-state-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        Root(p)
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sample(id: &str, pid: i32, start: u64, status: Status) -> ContainerState {
    ContainerState {
        oci_version: "1.3.0".into(),
        id: id.into(),
        status,
        pid,
        pid_start_time: start,
        bundle: "/b".into(),
        rootfs: "/b/rootfs".into(),
        created: now_rfc3339(),
        owner: "root".into(),
        annotations: BTreeMap::from([("k".to_string(), "v".to_string())]),
        cgroup: crate::cgroups::Cgroup::from_paths(vec!["/sys/fs/cgroup/x".into()]),
        hooks: None,
        intel_rdt: Default::default(),
        rootfs_mount: None,
    }
}

#[test]
fn id_rules() {
    for ok in [
        "a",
        "abc-123",
        "A_b.c+d",
        "x".repeat(1024).as_str(),
        "..a",
        "a..b",
    ] {
        assert!(validate_id(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        ".",
        "..",
        "a/b",
        "/a",
        "a b",
        "a\0b",
        "ä",
        "a,b",
        "a:b",
        "a\n",
        &"x".repeat(1025),
    ] {
        let e = validate_id(bad).unwrap_err();
        assert!(matches!(e, StateError::InvalidId(..)), "{bad:?}");
        assert!(e.to_string().starts_with("invalid container id"), "{e}");
    }
}

#[test]
fn save_load_round_trip() {
    let root = Root::new();
    let dir = StateDir::create(&root.0, "c1").unwrap();
    assert_eq!(dir.path(), root.0.join("c1"));
    assert_eq!(dir.fifo_path(), root.0.join("c1/exec.fifo"));
    assert!(dir.lock_fd() >= 0);
    // No state.json yet: a create that died early looks like no container.
    assert!(matches!(dir.load(), Err(StateError::NotFound(_))));
    let s = sample("c1", 42, 7, Status::Created);
    dir.save(&s).unwrap();
    let back = dir.load().unwrap();
    assert_eq!(back.id, "c1");
    assert_eq!(back.pid, 42);
    assert_eq!(back.pid_start_time, 7);
    assert_eq!(back.status, Status::Created);
    assert_eq!(back.annotations.get("k").map(String::as_str), Some("v"));
    assert_eq!(back.cgroup, s.cgroup);
    assert!(!root.0.join("c1/state.json.tmp").exists());
    // Overwrite.
    dir.save(&sample("c1", 43, 8, Status::Running)).unwrap();
    assert_eq!(dir.load().unwrap().status, Status::Running);
    // camelCase and lowercase on disk; optional fields default when absent.
    let text = std::fs::read_to_string(root.0.join("c1/state.json")).unwrap();
    assert!(
        text.contains("\"pidStartTime\":8") && text.contains("\"status\":\"running\""),
        "{text}"
    );
    let minimal = r#"{"ociVersion":"1.3.0","id":"c1","status":"stopped","pid":0,"pidStartTime":0,
        "bundle":"/b","rootfs":"/r","created":"x","owner":""}"#;
    std::fs::write(root.0.join("c1/state.json"), minimal).unwrap();
    let m = dir.load().unwrap();
    assert!(m.annotations.is_empty() && m.cgroup.paths().is_empty() && m.hooks.is_none());
    std::fs::write(root.0.join("c1/state.json"), "{").unwrap();
    assert!(matches!(dir.load(), Err(StateError::Corrupt { .. })));
    drop(dir);

    let dir = StateDir::open(&root.0, "c1").unwrap();
    dir.destroy().unwrap();
    assert!(!root.0.join("c1").exists());
    assert!(matches!(
        StateDir::open(&root.0, "c1"),
        Err(StateError::NotFound(_))
    ));
}

#[test]
fn exists_and_not_found() {
    let root = Root::new();
    assert!(matches!(
        StateDir::open(&root.0, "nope"),
        Err(StateError::NotFound(_))
    ));
    let d = StateDir::create(&root.0, "dup").unwrap();
    let e = StateDir::create(&root.0, "dup").unwrap_err();
    assert_eq!(e.to_string(), "container with id dup already exists");
    drop(d);
    let e = StateDir::open(&root.0, "gone").unwrap_err();
    assert_eq!(e.to_string(), "container gone does not exist");
    assert!(matches!(
        StateDir::create(&root.0, "a/b"),
        Err(StateError::InvalidId(..))
    ));
    assert!(matches!(
        StateDir::open(&root.0, ".."),
        Err(StateError::InvalidId(..))
    ));
}

#[test]
fn state_root_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let root = Root::new();
    let _d = StateDir::create(&root.0, "p").unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&root.0), 0o711);
    assert_eq!(mode(&root.0.join("p")), 0o711);
}

#[test]
fn listing() {
    let root = Root::new();
    assert!(list_ids(&root.0).unwrap().is_empty());
    for id in ["b", "a", "c"] {
        StateDir::create(&root.0, id).unwrap();
    }
    std::fs::write(root.0.join("stray-file"), "").unwrap();
    assert_eq!(list_ids(&root.0).unwrap(), ["a", "b", "c"]);
}

#[test]
fn status_derivation() {
    let me = std::process::id() as i32;
    let start = process_start_time(me).unwrap();

    let created = sample("s", me, start, Status::Created);
    assert!(created.process_alive());
    assert_eq!(created.current_status(true), Status::Created);
    assert_eq!(created.current_status(false), Status::Running);
    let creating = sample("s", me, start, Status::Creating);
    assert_eq!(creating.current_status(true), Status::Created);
    let running = sample("s", me, start, Status::Running);
    assert_eq!(running.current_status(true), Status::Running);
    let paused = sample("s", me, start, Status::Paused);
    assert_eq!(paused.current_status(false), Status::Paused);
    let stopped = sample("s", me, start, Status::Stopped);
    assert_eq!(stopped.current_status(true), Status::Stopped);

    // Same pid, another start time: the pid was reused.
    let reused = sample("s", me, start + 1, Status::Running);
    assert!(!reused.process_alive());
    assert_eq!(reused.current_status(true), Status::Stopped);

    // No pid at all.
    assert_eq!(
        sample("s", 0, 0, Status::Created).current_status(true),
        Status::Stopped
    );

    // A child that exited: first a zombie (stopped), then reaped (gone).
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    let cstart = process_start_time(pid);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !process_is_zombie(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(process_is_zombie(pid));
    let z = sample("s", pid, cstart.unwrap_or(0), Status::Running);
    assert!(!z.process_alive());
    assert_eq!(z.current_status(false), Status::Stopped);
    child.wait().unwrap();
    assert_eq!(process_start_time(pid), None);
    assert_eq!(z.current_status(false), Status::Stopped);
}

#[test]
fn hook_state_json() {
    let s = sample("h", 42, 1, Status::Created);
    let v: serde_json::Value = serde_json::from_slice(&s.hook_json(Status::Running)).unwrap();
    assert_eq!(v["ociVersion"], "1.3.0");
    assert_eq!(v["id"], "h");
    assert_eq!(v["status"], "running");
    assert_eq!(v["pid"], 42);
    assert_eq!(v["bundle"], "/b");
    assert_eq!(v["annotations"]["k"], "v");
    assert_eq!(v.as_object().unwrap().len(), 6);
}

#[test]
fn status_strings() {
    for (s, t) in [
        (Status::Creating, "creating"),
        (Status::Created, "created"),
        (Status::Running, "running"),
        (Status::Stopped, "stopped"),
        (Status::Paused, "paused"),
    ] {
        assert_eq!(s.to_string(), t);
        assert_eq!(serde_json::to_value(s).unwrap(), t);
    }
}
