//! Id-mapped bind mounts (`idmap`, `ridmap`, `mounts[].uidMappings/gidMappings`), checked
//! from inside the container with `stat` and by writing through the mount; each bad config a
//! clear error with nothing left behind.

use husk_tests::*;
use serde_json::{json, Value};

fn map(container: u32, host: u32, size: u32) -> Value {
    json!([{ "containerID": container, "hostID": host, "size": size }])
}

/// A bind mount of `src` on `dest` with `options` and, if given, its own mappings.
fn add_idmapped(
    b: &mut Bundle,
    src: &str,
    dest: &str,
    options: &[&str],
    maps: Option<(Value, Value)>,
) {
    let mut m = json!({ "destination": dest, "type": "bind", "source": src, "options": options });
    if let Some((u, g)) = maps {
        m["uidMappings"] = u;
        m["gidMappings"] = g;
    }
    b.push("/mounts", m);
}

/// The host directory most tests mount: `f0` owned by 0:0 and `f1000` by 1000:1000.
fn source(tag: &str) -> HostDir {
    let d = HostDir::new(tag);
    d.file("f0", "zero", 0, 0);
    d.file("f1000", "thousand", 1000, 1000);
    d
}

#[test]
fn mount_with_its_own_mapping() {
    let mut b = Bundle::new("idmap-own");
    let src = source("idmap-own");
    add_idmapped(
        &mut b,
        &src.path_str(),
        "/data",
        &["rbind", "idmap"],
        Some((map(0, 1234, 1), map(0, 2345, 1))),
    );
    b.add_bind(&src.path_str(), "/plain", &[]);
    b.sh("stat -c '%n %u %g' /data/f0 /data/f1000 /plain/f0");
    // On-disk 0 shows as 1234:2345; 1000 is outside the mapping (the overflow id).
    assert_eq!(
        run_ok(&b, "idmap-own"),
        "/data/f0 1234 2345\n/data/f1000 65534 65534\n/plain/f0 0 0\n"
    );
}

#[test]
fn idmap_takes_the_container_user_namespace_mapping() {
    let mut b = Bundle::new("idmap-userns");
    let src = source("idmap-userns");
    // Mount points that exist in the rootfs: container root (host 100000) cannot create
    // directories in a rootfs owned by host root.
    b.userns(100000, 65536);
    add_idmapped(&mut b, &src.path_str(), "/mnt", &["rbind", "idmap"], None);
    b.add_bind(&src.path_str(), "/home", &[]);
    b.sh("stat -c '%n %u %g' /mnt/f0 /mnt/f1000 /home/f0; \
          echo new > /mnt/new && echo wrote-data; \
          echo new > /home/new2 2>/dev/null && echo wrote-plain || echo plain-refused");
    assert_eq!(
        run_ok(&b, "idmap-userns"),
        "/mnt/f0 0 0\n/mnt/f1000 1000 1000\n/home/f0 65534 65534\nwrote-data\nplain-refused\n"
    );
    // Container root wrote through the mapping: on disk the file belongs to host root.
    let meta = std::fs::metadata(src.path().join("new")).expect("file written in the container");
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
}

#[test]
fn idmap_takes_a_joined_user_namespace() {
    let userns = UsernsHolder::new(200000, 65536);
    let mut b = Bundle::new("idmap-join");
    let src = source("idmap-join");
    b.namespace("user", Some(&userns.path_str()));
    add_idmapped(&mut b, &src.path_str(), "/mnt", &["rbind", "idmap"], None);
    b.sh("cat /proc/self/uid_map; stat -c '%n %u %g' /mnt/f0 /mnt/f1000");
    let out = run_ok(&b, "idmap-join");
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        ["0 200000 65536", "/mnt/f0 0 0", "/mnt/f1000 1000 1000"],
        "{out}"
    );
}

#[test]
fn ridmap_maps_submounts_and_idmap_does_not() {
    let src = HostDir::with_tmpfs("idmap-rec", "sub");
    src.file("sub/f", "in the tmpfs", 0, 0);
    for (opt, want) in [("ridmap", "1234 2345"), ("idmap", "0 0")] {
        let mut b = Bundle::new("idmap-rec");
        add_idmapped(
            &mut b,
            &src.path_str(),
            "/data",
            &["rbind", opt],
            Some((map(0, 1234, 1), map(0, 2345, 1))),
        );
        b.sh("stat -c '%u %g' /data/sub/f");
        assert_eq!(run_ok(&b, "idmap-rec").trim(), want, "{opt}");
    }
}

#[test]
fn bad_id_mapped_mounts_are_refused() {
    let src = source("idmap-bad");
    let s = src.path_str();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "no mapping, no user namespace",
            json!({"destination": "/d", "type": "bind", "source": s, "options": ["bind", "idmap"]}),
            "has no user namespace",
        ),
        (
            "uidMappings alone",
            json!({"destination": "/d", "type": "bind", "source": s, "options": ["bind", "idmap"],
                   "uidMappings": map(0, 1234, 1)}),
            "uidMappings and gidMappings must be specified together",
        ),
        (
            "not a bind mount",
            json!({"destination": "/d", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"],
                   "uidMappings": map(0, 1234, 1), "gidMappings": map(0, 1234, 1)}),
            "need a bind mount",
        ),
        (
            "empty range",
            json!({"destination": "/d", "type": "bind", "source": s, "options": ["bind", "idmap"],
                   "uidMappings": map(0, 1234, 0), "gidMappings": map(0, 1234, 1)}),
            "uidMappings[0] (0 1234 0): the size must be at least 1",
        ),
        (
            "missing source",
            json!({"destination": "/d", "type": "bind", "source": "/nonexistent-husk-src", "options": ["bind", "idmap"],
                   "uidMappings": map(0, 1234, 1), "gidMappings": map(0, 1234, 1)}),
            "mount source /nonexistent-husk-src does not exist",
        ),
        (
            // sysfs cannot be id-mapped: the kernel says EINVAL when the mapping is set.
            "filesystem without id-mapped mounts",
            json!({"destination": "/d", "type": "bind", "source": "/sys/kernel", "options": ["rbind", "idmap"],
                   "uidMappings": map(0, 1234, 1), "gidMappings": map(0, 1234, 1)}),
            "does the filesystem support id-mapped mounts?",
        ),
    ];
    for (what, mount, msg) in cases {
        let mut b = Bundle::new("idmap-bad");
        b.push("/mounts", mount);
        eprintln!("case: {what}");
        run_fails(&b, "idmap-bad", msg, "");
    }
}
