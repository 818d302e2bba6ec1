//! `/proc/self/mountinfo` and `/proc/self/cgroup` parsing (pure; unit-tested).

use std::path::{Path, PathBuf};

/// One line of mountinfo (the fields husk uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountEntry {
    /// The mount's id (unique while it is mounted).
    pub id: u64,
    /// `major:minor` of the filesystem: mounts of one superblock share it.
    pub dev: String,
    /// The path inside the filesystem that is mounted (`/` unless a bind of a subdirectory).
    pub root: PathBuf,
    pub mount_point: PathBuf,
    /// Optional fields: `shared:N`, `master:N`, `propagate_from:N`, `unbindable`.
    pub optional: Vec<String>,
    pub fstype: String,
    pub super_options: Vec<String>,
}

impl MountEntry {
    pub fn is_shared(&self) -> bool {
        self.optional.iter().any(|o| o.starts_with("shared:"))
    }
}

/// Undo mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
pub(crate) fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = u32::from(b[i + 1] - b'0') * 64
                + u32::from(b[i + 2] - b'0') * 8
                + u32::from(b[i + 3] - b'0');
            if let Ok(c) = u8::try_from(v) {
                out.push(c);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse mountinfo text; malformed lines are skipped.
pub(crate) fn parse(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountEntry> {
    let fields: Vec<&str> = line.split(' ').collect();
    let sep = fields.iter().position(|f| *f == "-")?;
    if sep < 6 || fields.len() < sep + 3 {
        return None;
    }
    Some(MountEntry {
        id: fields[0].parse().ok()?,
        dev: fields[2].to_string(),
        root: PathBuf::from(unescape(fields[3])),
        mount_point: PathBuf::from(unescape(fields[4])),
        optional: fields[6..sep].iter().map(|s| s.to_string()).collect(),
        fstype: fields[sep + 1].to_string(),
        super_options: fields
            .get(sep + 3)
            .map(|s| s.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
    })
}

/// The mount that contains `path` (the entry with the longest mount point that is a prefix of
/// it; the last such entry when several are stacked).
pub(crate) fn containing<'a>(entries: &'a [MountEntry], path: &Path) -> Option<&'a MountEntry> {
    let mut best: Option<&MountEntry> = None;
    for e in entries {
        if path.starts_with(&e.mount_point)
            && best
                .is_none_or(|b| e.mount_point.as_os_str().len() >= b.mount_point.as_os_str().len())
        {
            best = Some(e);
        }
    }
    best
}

/// Super options of a v1 cgroup mount that are flags, not controllers.
const V1_FLAGS: &[&str] = &[
    "rw",
    "ro",
    "xattr",
    "noprefix",
    "clone_children",
    "cpuset_v2_mode",
    "favordynmods",
    "nofavordynmods",
    "all",
    "none",
];

/// The controllers of a v1 cgroup mount (`cpu`, `cpuacct`, `name=systemd`, ...): its super
/// options but the flags and the `key=value` options other than `name=`.
pub(crate) fn v1_controllers(e: &MountEntry) -> Vec<String> {
    e.super_options
        .iter()
        .filter(|o| !V1_FLAGS.contains(&o.as_str()))
        .filter(|o| !o.contains('=') || o.starts_with("name="))
        .cloned()
        .collect()
}

/// One line of `/proc/self/cgroup`: hierarchy controllers and the process's path in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupLine {
    pub controllers: Vec<String>,
    pub path: PathBuf,
}

pub(crate) fn parse_proc_cgroup(text: &str) -> Vec<CgroupLine> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _id = it.next()?;
            let ctrls = it.next()?;
            let path = it.next()?;
            Some(CgroupLine {
                controllers: ctrls
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                path: PathBuf::from(path),
            })
        })
        .collect()
}

/// The process's cgroup2 cgroup: the path of the `0::` line.
pub(crate) fn v2_path(lines: &[CgroupLine]) -> Option<&Path> {
    lines
        .iter()
        .find(|l| l.controllers.is_empty())
        .map(|l| l.path.as_path())
}

/// The process's cgroup in the v1 hierarchy with `controllers`, as a path under the mount whose
/// root is `mount_root`: `/sys/fs/cgroup/memory` + this is the bind source.
pub(crate) fn v1_path_in_mount(
    lines: &[CgroupLine],
    controllers: &[String],
    mount_root: &Path,
) -> Option<PathBuf> {
    let line = lines.iter().find(|l| {
        !l.controllers.is_empty() && l.controllers.iter().all(|c| controllers.contains(c))
    })?;
    let rel = line.path.strip_prefix(mount_root).ok()?;
    Some(Path::new("/").join(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime master:3 - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 22 8:2 /sub /var/lib/a\\040b rw shared:7 master:2 - xfs /dev/sdb rw
garbage line
";

    #[test]
    fn parses_lines() {
        let e = parse(SAMPLE);
        assert_eq!(e.len(), 8);
        assert_eq!(e[0].mount_point, PathBuf::from("/"));
        assert!(e[0].is_shared());
        assert!(!e[1].is_shared());
        assert_eq!(e[1].fstype, "tmpfs");
        assert_eq!(e[3].optional, vec!["master:3"]);
        assert_eq!(e[7].mount_point, PathBuf::from("/var/lib/a b"));
        assert_eq!(e[7].root, PathBuf::from("/sub"));
        assert!(e[7].is_shared());
        assert_eq!(e[7].super_options, vec!["rw"]);
    }

    #[test]
    fn containing_mount() {
        let e = parse(SAMPLE);
        let m = |p: &str| containing(&e, Path::new(p)).map(|m| m.mount_point.clone());
        assert_eq!(m("/run/x/rootfs"), Some("/".into()));
        assert_eq!(
            m("/sys/fs/cgroup/memory/x"),
            Some("/sys/fs/cgroup/memory".into())
        );
        assert_eq!(m("/sys/fs/cgroup/memoryx"), Some("/sys/fs/cgroup".into()));
        assert_eq!(m("/var/lib/a b/c"), Some("/var/lib/a b".into()));
    }

    #[test]
    fn cgroup_controllers_and_paths() {
        let e = parse(SAMPLE);
        assert_eq!(v1_controllers(&e[2]), vec!["cpu"]);
        assert_eq!(v1_controllers(&e[4]), vec!["cpu", "cpuacct"]);
        assert_eq!(v1_controllers(&e[5]), vec!["name=systemd"]);
        let lines = parse_proc_cgroup(
            "9:name=systemd:/user.slice\n4:memory:/a/b\n2:cpu,cpuacct:/c\n0::/u\n",
        );
        assert_eq!(lines.len(), 4);
        assert!(lines[3].controllers.is_empty());
        let v = |c: &[&str], root: &str| {
            let c: Vec<String> = c.iter().map(|s| s.to_string()).collect();
            v1_path_in_mount(&lines, &c, Path::new(root))
        };
        assert_eq!(v(&["memory"], "/"), Some("/a/b".into()));
        assert_eq!(v(&["memory"], "/a"), Some("/b".into()));
        assert_eq!(v(&["cpu", "cpuacct"], "/"), Some("/c".into()));
        assert_eq!(v(&["name=systemd"], "/"), Some("/user.slice".into()));
        assert_eq!(v(&["pids"], "/"), None);
        assert_eq!(v(&["memory"], "/other"), None);
    }

    #[test]
    fn unescapes() {
        assert_eq!(unescape("a\\040b\\011c\\134d"), "a b\tc\\d");
        assert_eq!(unescape("tail\\04"), "tail\\04");
        assert_eq!(unescape("\\999"), "\\999");
    }
}
