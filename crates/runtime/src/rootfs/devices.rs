//! /dev: the default devices, `linux.devices`, `/dev/ptmx` and the `/dev/fd`-style symlinks.
//!
//! Device nodes are made with mknod, or, in a user namespace (where mknod is not allowed),
//! by bind-mounting the host's node onto an empty file, as runc does.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::mount::MsFlags;
use nix::sys::stat::{fstatat, makedev, mknodat, Mode, SFlag};
use nix::unistd::{symlinkat, unlinkat, UnlinkatFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount};

use super::mounts::mount_on;
use super::resolve::{fd_path, Root};
use super::{paths, sys, RootfsError};

/// A device to create, from `linux.devices` or the defaults.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Dev {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// One of the defaults the runtime must supply (not from the config).
    pub default: bool,
}

impl Dev {
    fn describe(&self) -> String {
        let t = match self.kind {
            SFlag::S_IFBLK => "b",
            SFlag::S_IFIFO => "p",
            _ => "c",
        };
        if self.kind == SFlag::S_IFIFO {
            format!("{} (p)", self.path.display())
        } else {
            format!(
                "{} ({t} {}:{})",
                self.path.display(),
                self.major,
                self.minor
            )
        }
    }
}

/// The devices every container gets (runtime-spec "Default Devices"; /dev/ptmx is a symlink).
const DEFAULTS: &[(&str, u64, u64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// runc skips /dev setup entirely when the config bind-mounts /dev from the host.
pub(crate) fn needs_dev_setup(mounts: &[Mount]) -> bool {
    !mounts.iter().any(|m| {
        let bind = m.typ().as_deref() == Some("bind")
            || m.options()
                .as_ref()
                .is_some_and(|o| o.iter().any(|o| o == "bind" || o == "rbind"));
        bind && paths::clean(m.destination()) == Path::new("/dev")
    })
}

/// The devices to create: the config's, then each default the config does not list.
pub(crate) fn device_list(spec_devices: &[LinuxDevice]) -> Result<Vec<Dev>, RootfsError> {
    let mut out = Vec::new();
    for d in spec_devices {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(RootfsError::Invalid(format!(
                    "linux.devices: {}: type \"a\" is not a device type",
                    d.path().display()
                )))
            }
        };
        let num = |v: i64, what: &str| {
            u64::try_from(v).map_err(|_| {
                RootfsError::Invalid(format!(
                    "linux.devices: {}: negative {what} {v}",
                    d.path().display()
                ))
            })
        };
        out.push(Dev {
            path: paths::clean(d.path()),
            kind,
            major: num(d.major(), "major")?,
            minor: num(d.minor(), "minor")?,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
            default: false,
        });
    }
    for (path, major, minor) in DEFAULTS {
        if !out.iter().any(|d| d.path == Path::new(path)) {
            out.push(Dev {
                path: PathBuf::from(path),
                kind: SFlag::S_IFCHR,
                major: *major,
                minor: *minor,
                mode: 0o666,
                uid: 0,
                gid: 0,
                default: true,
            });
        }
    }
    Ok(out)
}

/// Create the devices, `/dev/ptmx -> pts/ptmx` and the standard symlinks.
pub(crate) fn setup(
    root: &Root,
    spec_devices: &[LinuxDevice],
    in_userns: bool,
) -> Result<(), RootfsError> {
    for d in device_list(spec_devices)? {
        if d.path == Path::new("/dev/ptmx") {
            continue; // always the symlink below, as in runc
        }
        create(root, &d, in_userns)?;
    }
    let dev = root.mkdir_all(Path::new("/dev"))?;
    match unlinkat(dev.as_fd(), "ptmx", UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(sys(root.ctx("removing", Path::new("/dev/ptmx")))(e)),
    }
    symlinkat("pts/ptmx", dev.as_fd(), "ptmx")
        .map_err(sys(root.ctx("creating symlink", Path::new("/dev/ptmx"))))?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    // Only where the kernel has /proc/kcore (CONFIG_PROC_KCORE).
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => {
                return Err(sys(
                    root.ctx("creating symlink", &Path::new("/dev").join(name))
                )(e))
            }
        }
    }
    Ok(())
}

fn create(root: &Root, d: &Dev, in_userns: bool) -> Result<(), RootfsError> {
    let (Some(parent), Some(name)) = (d.path.parent(), d.path.file_name()) else {
        return Err(RootfsError::Invalid(format!(
            "linux.devices: cannot create a device at {}",
            d.path.display()
        )));
    };
    let dir = root.mkdir_all(parent)?;
    // FIFOs need no privilege: mknod works in a user namespace too.
    if in_userns && d.kind != SFlag::S_IFIFO {
        return bind_host_node(root, &dir, name, d);
    }
    let rdev = makedev(d.major, d.minor);
    tracing::debug!(device = %d.describe(), "mknod");
    match mknodat(
        dir.as_fd(),
        name,
        d.kind,
        Mode::from_bits_truncate(d.mode),
        rdev,
    ) {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            let st = fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(sys(root.ctx("stat of", &d.path)))?;
            let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
            let same = kind == d.kind && (d.kind == SFlag::S_IFIFO || st.st_rdev == rdev);
            if !same {
                if d.default && kind != SFlag::S_IFDIR && kind != SFlag::S_IFLNK {
                    return bind_host_node(root, &dir, name, d);
                }
                return Err(RootfsError::Invalid(format!(
                    "device {}: a different file already exists at {}",
                    d.describe(),
                    root.at(&d.path)
                )));
            }
        }
        // Not allowed to mknod (e.g. inside someone else's user namespace): bind instead.
        Err(Errno::EPERM) if d.kind != SFlag::S_IFIFO => {
            return bind_host_node(root, &dir, name, d)
        }
        Err(e) => {
            return Err(sys(format!(
                "creating device {} at {}",
                d.describe(),
                root.at(&d.path)
            ))(e))
        }
    }
    // mknod's mode went through the umask, and the owner is ours: set both explicitly.
    let node = openat(
        dir.as_fd(),
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys(root.ctx("opening device", &d.path)))?;
    let p = fd_path(&node);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(d.mode)).map_err(super::io(
        format!("chmod {:o} of device {}", d.mode, root.at(&d.path)),
    ))?;
    std::os::unix::fs::chown(&p, Some(d.uid), Some(d.gid)).map_err(super::io(format!(
        "chown {}:{} of device {}",
        d.uid,
        d.gid,
        root.at(&d.path)
    )))?;
    Ok(())
}

/// Where the host has the node for `d`: the same path, udev's /dev/{char,block}/M:m, or any
/// node with that number directly in /dev.
fn host_node(d: &Dev) -> Option<PathBuf> {
    let rdev = makedev(d.major, d.minor);
    let same = |st: nix::sys::stat::FileStat| {
        SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == d.kind && st.st_rdev == rdev
    };
    let matches = |p: &Path| nix::sys::stat::stat(p).is_ok_and(same);
    let class = if d.kind == SFlag::S_IFBLK {
        "block"
    } else {
        "char"
    };
    let by_num = PathBuf::from(format!("/dev/{class}/{}:{}", d.major, d.minor));
    if let Some(p) = [d.path.clone(), by_num].into_iter().find(|p| matches(p)) {
        return Some(p);
    }
    std::fs::read_dir("/dev")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| nix::sys::stat::lstat(p).is_ok_and(same)) // real nodes, not /dev/stdin
}

fn bind_host_node(
    root: &Root,
    dir: &OwnedFd,
    name: &std::ffi::OsStr,
    d: &Dev,
) -> Result<(), RootfsError> {
    let Some(host) = host_node(d) else {
        return Err(RootfsError::Invalid(format!(
            "device {}: cannot mknod here and the host has no such node to bind-mount",
            d.describe()
        )));
    };
    tracing::debug!(device = %d.describe(), host = %host.display(), "bind-mounting device");
    let flags =
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match openat(dir.as_fd(), name, flags, Mode::from_bits_truncate(0o644)) {
        Ok(_) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(sys(root.ctx("creating device file", &d.path))(e)),
    }
    let target = openat(
        dir.as_fd(),
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys(root.ctx("opening device file", &d.path)))?;
    let st = nix::sys::stat::fstat(&target).map_err(sys(root.ctx("stat of", &d.path)))?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if kind == SFlag::S_IFDIR || kind == SFlag::S_IFLNK {
        return Err(RootfsError::Invalid(format!(
            "device {}: a directory or symlink already exists at {}",
            d.describe(),
            root.at(&d.path)
        )));
    }
    let src = nix::fcntl::open(&host, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(sys(format!("opening host device {}", host.display())))?;
    mount_on(
        Some(fd_path(&src).as_str()),
        &target,
        None,
        MsFlags::MS_BIND,
        None,
    )
    .map_err(sys(format!(
        "bind-mounting device {} on {}",
        host.display(),
        root.at(&d.path)
    )))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceBuilder;

    #[test]
    fn defaults_fill_in() {
        let l = device_list(&[]).unwrap();
        assert_eq!(l.len(), 6);
        assert!(l
            .iter()
            .all(|d| d.default && d.mode == 0o666 && d.kind == SFlag::S_IFCHR));
        let null = l.iter().find(|d| d.path == Path::new("/dev/null")).unwrap();
        assert_eq!((null.major, null.minor), (1, 3));
        let tty = l.iter().find(|d| d.path == Path::new("/dev/tty")).unwrap();
        assert_eq!((tty.major, tty.minor), (5, 0));
    }

    #[test]
    fn config_devices_win() {
        let fuse = LinuxDeviceBuilder::default()
            .path("/dev/fuse")
            .typ(LinuxDeviceType::C)
            .major(10)
            .minor(229)
            .file_mode(438u32)
            .uid(1u32)
            .gid(2u32)
            .build()
            .unwrap();
        let null = LinuxDeviceBuilder::default()
            .path("dev/../dev/null")
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .file_mode(0o600u32)
            .build()
            .unwrap();
        let fifo = LinuxDeviceBuilder::default()
            .path("/run/p")
            .typ(LinuxDeviceType::P)
            .build()
            .unwrap();
        let l = device_list(&[fuse, null, fifo]).unwrap();
        assert_eq!(l.len(), 8);
        assert_eq!(l[0].path, PathBuf::from("/dev/fuse"));
        assert_eq!(
            (l[0].mode, l[0].uid, l[0].gid, l[0].default),
            (0o666, 1, 2, false)
        );
        assert_eq!(l[1].path, PathBuf::from("/dev/null"));
        assert_eq!(l[1].mode, 0o600);
        assert_eq!(l[2].kind, SFlag::S_IFIFO);
        assert_eq!(
            l.iter()
                .filter(|d| d.path == Path::new("/dev/null"))
                .count(),
            1
        );
    }

    #[test]
    fn bad_devices() {
        let all = LinuxDeviceBuilder::default()
            .path("/dev/x")
            .typ(LinuxDeviceType::A)
            .build()
            .unwrap();
        assert!(device_list(&[all]).is_err());
        let neg = LinuxDeviceBuilder::default()
            .path("/dev/x")
            .typ(LinuxDeviceType::C)
            .major(-1)
            .build()
            .unwrap();
        assert!(device_list(&[neg]).is_err());
    }

    #[test]
    fn dev_setup_skipped_only_for_dev_binds() {
        let m = |dest: &str, typ: Option<&str>, opts: &[&str]| {
            let mut b = oci_spec::runtime::MountBuilder::default()
                .destination(dest)
                .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            if let Some(t) = typ {
                b = b.typ(t);
            }
            b.build().unwrap()
        };
        assert!(needs_dev_setup(&[]));
        assert!(needs_dev_setup(&[m("/dev", Some("tmpfs"), &["nosuid"])]));
        assert!(!needs_dev_setup(&[m("/dev", None, &["rbind"])]));
        assert!(!needs_dev_setup(&[m("/dev/", Some("bind"), &[])]));
        assert!(needs_dev_setup(&[m("/dev/shm", None, &["bind"])]));
    }
}
