//! Finding the cgroup hierarchies: parse `/proc/self/mountinfo` (pure, unit-tested).

use std::path::PathBuf;

/// Which cgroup filesystem a hierarchy is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A cgroup v1 hierarchy with its controllers (`cpu`, `cpuacct`, `name=systemd`, ...).
    V1 { controllers: Vec<String> },
    /// The cgroup v2 (unified) hierarchy.
    V2,
}

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hierarchy {
    pub mount_point: PathBuf,
    pub kind: Kind,
}

impl Hierarchy {
    pub fn has_controller(&self, name: &str) -> bool {
        match &self.kind {
            Kind::V1 { controllers } => controllers.iter().any(|c| c == name),
            Kind::V2 => false,
        }
    }
}

/// The cgroup hierarchies in a mountinfo text, one per distinct hierarchy (mounts of the same
/// superblock, i.e. the same `major:minor`, count once; the first one wins). Malformed lines are
/// skipped. v1 hierarchies come in mountinfo order, followed by the cgroup2 hierarchy, if any.
pub(crate) fn parse(mountinfo: &str) -> Vec<Hierarchy> {
    let mut seen_devs: Vec<String> = Vec::new();
    let mut v1 = Vec::new();
    let mut v2: Option<Hierarchy> = None;
    for e in crate::rootfs::mountinfo::parse(mountinfo) {
        let kind = match e.fstype.as_str() {
            "cgroup" => Kind::V1 {
                controllers: crate::rootfs::mountinfo::v1_controllers(&e),
            },
            "cgroup2" => Kind::V2,
            _ => continue,
        };
        if seen_devs.contains(&e.dev) {
            continue;
        }
        seen_devs.push(e.dev);
        let h = Hierarchy {
            mount_point: e.mount_point,
            kind,
        };
        match h.kind {
            Kind::V2 => {
                if v2.is_none() {
                    v2 = Some(h);
                }
            }
            Kind::V1 { .. } => v1.push(h),
        }
    }
    v1.extend(v2);
    v1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::mountinfo::unescape;

    const HYBRID: &str = "\
22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/cpuset rw,relatime shared:9 - cgroup cgroup rw,cpuset,clone_children
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd,release_agent=/x
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
99 22 0:32 / /mnt/mem\\040copy rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn parses_hybrid_host() {
        let h = parse(HYBRID);
        let mps: Vec<_> = h
            .iter()
            .map(|h| h.mount_point.to_str().unwrap_or(""))
            .collect();
        assert_eq!(
            mps,
            [
                "/sys/fs/cgroup/cpu,cpuacct",
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup/cpuset",
                "/sys/fs/cgroup/systemd",
                "/sys/fs/cgroup/unified"
            ]
        );
        assert_eq!(
            h[0].kind,
            Kind::V1 {
                controllers: vec!["cpu".into(), "cpuacct".into()]
            }
        );
        assert!(h[2].has_controller("cpuset"));
        assert_eq!(
            h[2].kind,
            Kind::V1 {
                controllers: vec!["cpuset".into()]
            }
        );
        assert_eq!(
            h[3].kind,
            Kind::V1 {
                controllers: vec!["name=systemd".into()]
            }
        );
        assert_eq!(h[4].kind, Kind::V2);
    }

    #[test]
    fn parses_pure_v2_and_skips_garbage() {
        let text = "garbage line\n\
                    1 2 3\n\
                    30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n\
                    31 23 0:26 / /other rw - cgroup2 cgroup2 rw\n";
        let h = parse(text);
        assert_eq!(
            h,
            vec![Hierarchy {
                mount_point: "/sys/fs/cgroup".into(),
                kind: Kind::V2
            }]
        );
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape("/a\\040b\\134c"), "/a b\\c");
        assert_eq!(unescape("/a\\04"), "/a\\04");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
