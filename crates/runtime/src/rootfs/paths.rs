//! Pure path logic for container paths (unit-tested; no syscalls).

use std::path::{Component, Path, PathBuf};

/// A container path made absolute and lexically clean: relative paths are taken relative to
/// `/` (deprecated but allowed by the spec), `.` and empty components go away, and `..` never
/// climbs above `/`. `proc/../sys//x/.` becomes `/sys/x`.
pub(crate) fn clean(p: &Path) -> PathBuf {
    let mut out: Vec<&std::ffi::OsStr> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    let mut path = PathBuf::from("/");
    path.extend(out);
    path
}

/// The container path of `host`, a path under `rootfs` on the host (`/r/proc/sys` with rootfs
/// `/r` is `/proc/sys`); `None` when `host` is not under `rootfs`.
pub(crate) fn inside(host: &Path, rootfs: &Path) -> Option<PathBuf> {
    host.strip_prefix(rootfs)
        .ok()
        .map(|rel| Path::new("/").join(rel))
}

/// Entries under /proc that lxcfs emulates and that may be bind-mounted over (runc's list).
const PROC_ALLOWED: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// Refuse mounts over /proc (except a `proc` filesystem on /proc itself) and anywhere under
/// it (except the lxcfs entries), as runc does: covering things like `/proc/self/attr` or
/// `/proc/sys` would disable protections. `dest` is the real container path of the target,
/// after symlinks were resolved inside the rootfs. Returns the reason on refusal.
pub(crate) fn check_proc_mount(dest: &Path, fstype: &str) -> Result<(), String> {
    let Ok(rel) = dest.strip_prefix("/proc") else {
        return Ok(());
    };
    if rel.as_os_str().is_empty() {
        if fstype == "proc" {
            return Ok(());
        }
        return Err(format!(
            "{} cannot be mounted on /proc: only a proc filesystem can",
            if fstype.is_empty() {
                "this mount"
            } else {
                fstype
            }
        ));
    }
    if PROC_ALLOWED.iter().any(|a| Path::new(a) == dest) {
        return Ok(());
    }
    Err(format!(
        "{} is inside /proc: mounting over it is not allowed",
        dest.display()
    ))
}

/// The file under /proc/sys for a sysctl key: `net.ipv4.ip_forward` is
/// `/proc/sys/net/ipv4/ip_forward`. As with sysctl(8), a key that contains `/` uses `/` as the
/// separator and keeps dots literal (`net/ipv4/conf/eth0.100/forwarding`).
pub(crate) fn sysctl_path(key: &str) -> Result<PathBuf, String> {
    let sep = if key.contains('/') { '/' } else { '.' };
    let parts: Vec<&str> = key.split(sep).collect();
    if key.is_empty()
        || parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(format!("invalid sysctl name {key:?}"));
    }
    let mut p = PathBuf::from("/proc/sys");
    p.extend(parts);
    Ok(p)
}

/// The `mode=` tmpfs data option that keeps an existing directory's permission bits
/// (`mode=0755`), as runc does when mounting a tmpfs over an existing directory.
pub(crate) fn tmpfs_mode_option(st_mode: u32) -> String {
    format!("mode={:04o}", st_mode & 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths() {
        let cases = [
            ("/proc", "/proc"),
            ("proc", "/proc"),
            ("", "/"),
            ("/", "/"),
            ("//a///b/", "/a/b"),
            ("/a/./b/.", "/a/b"),
            ("/a/../b", "/b"),
            ("/../../etc", "/etc"),
            ("../x/..", "/"),
            ("proc/../sys//x/.", "/sys/x"),
        ];
        for (input, want) in cases {
            assert_eq!(clean(Path::new(input)), PathBuf::from(want), "{input:?}");
        }
    }

    #[test]
    fn inside_rootfs() {
        let r = Path::new("/run/b/rootfs");
        assert_eq!(
            inside(Path::new("/run/b/rootfs/proc/sys"), r),
            Some("/proc/sys".into())
        );
        assert_eq!(inside(Path::new("/run/b/rootfs"), r), Some("/".into()));
        assert_eq!(inside(Path::new("/run/b/rootfs2/x"), r), None);
        assert_eq!(inside(Path::new("/etc"), r), None);
    }

    #[test]
    fn proc_mounts() {
        let ok = |d: &str, t: &str| check_proc_mount(Path::new(d), t);
        assert!(ok("/proc", "proc").is_ok());
        assert!(ok("/proc", "tmpfs").is_err());
        assert!(ok("/proc", "").is_err());
        assert!(ok("/proc/sys", "bind").is_err());
        assert!(ok("/proc/self/attr", "tmpfs").is_err());
        assert!(ok("/proc/meminfo", "bind").is_ok());
        assert!(ok("/proc/sys/kernel/ns_last_pid", "bind").is_ok());
        assert!(ok("/proc/net/dev", "bind").is_ok());
        assert!(ok("/proc/net", "bind").is_err());
        assert!(ok("/processes", "bind").is_ok());
        assert!(ok("/data", "bind").is_ok());
        assert!(ok("/", "tmpfs").is_ok());
        let e = ok("/proc/sys", "bind").unwrap_err();
        assert!(e.contains("/proc/sys"), "{e}");
    }

    #[test]
    fn sysctl_paths() {
        assert_eq!(
            sysctl_path("net.ipv4.ip_forward").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            sysctl_path("kernel/shm_rmid_forced").unwrap(),
            PathBuf::from("/proc/sys/kernel/shm_rmid_forced")
        );
        assert_eq!(
            sysctl_path("net/ipv4/conf/eth0.100/forwarding").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/forwarding")
        );
        for bad in [
            "",
            ".",
            "net..x",
            "net.",
            "/net",
            "kernel/",
            "../etc",
            "a/../../etc",
            "a/./b",
        ] {
            assert!(sysctl_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tmpfs_mode() {
        assert_eq!(tmpfs_mode_option(0o40755), "mode=0755");
        assert_eq!(tmpfs_mode_option(0o41777), "mode=1777");
        assert_eq!(tmpfs_mode_option(0o40700), "mode=0700");
    }
}
