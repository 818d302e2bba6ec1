//! Facts about the host read from /proc and /sys, and a few host-side helpers.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `readlink /proc/<pid>/ns/<ns>` (`pid` may be "self"), e.g. `net:[4026531840]`.
pub fn ns_link(pid: &str, ns: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Unescapes the octal escapes (`\040`) of /proc/*/mountinfo fields.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of a mountinfo file.
#[derive(Clone, Debug)]
pub struct MountInfo {
    pub mount_point: String,
    /// Per-mount options (field 6), e.g. `ro,nosuid,nodev,relatime`.
    pub mount_opts: Vec<String>,
    pub fs_type: String,
    pub source: String,
    /// Per-superblock options.
    pub super_opts: Vec<String>,
    /// Optional fields such as `shared:1`, `master:2`.
    pub optional: Vec<String>,
}

impl MountInfo {
    pub fn has(&self, opt: &str) -> bool {
        self.mount_opts.iter().any(|o| o == opt) || self.super_opts.iter().any(|o| o == opt)
    }
}

/// Parses the text of a /proc/*/mountinfo file.
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            if pre.len() < 6 || post.len() < 3 {
                return None;
            }
            Some(MountInfo {
                mount_point: unescape(pre[4]),
                mount_opts: pre[5].split(',').map(str::to_string).collect(),
                optional: pre[6..].iter().map(|s| s.to_string()).collect(),
                fs_type: post[0].to_string(),
                source: unescape(post[1]),
                super_opts: post[2].split(',').map(str::to_string).collect(),
            })
        })
        .collect()
}

/// Mount points (in this process's mount namespace) at or below `dir`, in mount order.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().trim_end_matches('/').to_string();
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    parse_mountinfo(&text)
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|mp| mp == &prefix || mp.starts_with(&format!("{prefix}/")))
        .collect()
}

/// The start time (field 22 of /proc/PID/stat) of a live, non-zombie process.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The comm field may contain spaces; it ends at the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest starts at field 3 (state).
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(22 - 3)?.parse().ok()
}

/// Whether `pid` is alive (not a zombie) and, if `start` is given, is still the same process.
pub fn proc_alive(pid: i32, start: Option<u64>) -> bool {
    match proc_start_time(pid) {
        None => false,
        Some(t) => start.is_none_or(|s| s == t),
    }
}

/// The NUL-separated cmdline of a process, joined with spaces.
pub fn proc_cmdline(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .trim_end_matches('\0')
                .replace('\0', " ")
        })
        .unwrap_or_default()
}

/// All pids currently in /proc.
pub fn all_pids() -> Vec<i32> {
    fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Sends `sig` to `pid`. Returns false if it failed (e.g. no such process).
pub fn send_signal(pid: i32, sig: i32) -> bool {
    // SAFETY: kill(2) takes plain integers and has no memory-safety preconditions.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// The hard limit of an rlimit of this process, from /proc/self/limits (`"Max open files"`).
pub fn host_hard_limit(name: &str) -> Option<u64> {
    let text = fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with(name))?;
    let rest = line[name.len()..].split_whitespace().collect::<Vec<_>>();
    rest.get(1)?.parse().ok()
}

/// Polls `cond` every few milliseconds until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut nap = Duration::from_millis(2);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(50));
    }
}

/// The cgroup hierarchies mounted under /sys/fs/cgroup (v1 controllers, `unified`, or the
/// single v2 root), as directories.
pub fn cgroup_mounts() -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<PathBuf> = parse_mountinfo(&text)
        .into_iter()
        .filter(|m| m.fs_type == "cgroup" || m.fs_type == "cgroup2")
        .filter(|m| m.mount_point.starts_with("/sys/fs/cgroup"))
        .map(|m| PathBuf::from(m.mount_point))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Existing cgroup directories for `cgroups_path` (absolute, as in config.json) in any
/// hierarchy.
pub fn cgroup_dirs(cgroups_path: &str) -> Vec<PathBuf> {
    let rel = cgroups_path.trim_start_matches('/');
    if rel.is_empty() {
        return vec![];
    }
    cgroup_mounts()
        .into_iter()
        .map(|m| m.join(rel))
        .filter(|p| p.is_dir())
        .collect()
}

/// A namespace of this host held open by a bind mount on a file, so that a container can
/// join it by `path`. Removed (unmounted) on drop.
pub struct PersistentNs {
    pub path: PathBuf,
    pub kind: String,
}

impl PersistentNs {
    /// Creates a new namespace of `kind` (`net`, `ipc`, `uts`, ...) with
    /// `unshare --<kind>=FILE true`, FILE being a fresh file under /tmp.
    pub fn new(kind: &str) -> PersistentNs {
        Self::with_args(kind, &[])
    }

    /// A new user namespace mapping `size` uids and gids from `host` to 0.
    pub fn user(host: u32, size: u32) -> PersistentNs {
        let map = format!("{host},0,{size}");
        Self::with_args(
            "user",
            &[
                &format!("--map-users={map}"),
                &format!("--map-groups={map}"),
            ],
        )
    }

    fn with_args(kind: &str, args: &[&str]) -> PersistentNs {
        let path = PathBuf::from(format!("/tmp/husk-test-ns-{}", crate::unique(kind)));
        fs::write(&path, "").unwrap();
        let st = std::process::Command::new("unshare")
            .arg(format!("--{kind}={}", path.display()))
            .args(args)
            .arg("true")
            .status()
            .expect("running unshare");
        assert!(st.success(), "unshare --{kind}={} failed", path.display());
        PersistentNs {
            path,
            kind: kind.to_string(),
        }
    }

    pub fn path_str(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    /// `readlink` of the namespace as a process inside it would show it, e.g. `net:[4026532301]`.
    pub fn link(&self) -> String {
        let out = std::process::Command::new("nsenter")
            .arg(format!("--{}={}", self.kind, self.path.display()))
            .args(["readlink", &format!("/proc/self/ns/{}", self.kind)])
            .output()
            .expect("running nsenter");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for PersistentNs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
        let _ = fs::remove_file(&self.path);
    }
}

/// A field of /proc/self/status-like text (`"CapEff"` -> `"00000000a80425fb"`).
pub fn status_field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_string())
}

/// The capability numbers of a few names used in tests.
pub fn cap_number(name: &str) -> u32 {
    match name {
        "CAP_CHOWN" => 0,
        "CAP_DAC_OVERRIDE" => 1,
        "CAP_FOWNER" => 3,
        "CAP_KILL" => 5,
        "CAP_SETGID" => 6,
        "CAP_SETUID" => 7,
        "CAP_NET_BIND_SERVICE" => 10,
        "CAP_NET_RAW" => 13,
        "CAP_SYS_CHROOT" => 18,
        "CAP_SYS_ADMIN" => 21,
        "CAP_MKNOD" => 27,
        "CAP_AUDIT_WRITE" => 29,
        "CAP_SETFCAP" => 31,
        other => panic!("cap_number: add {other}"),
    }
}

/// The hex mask /proc/self/status shows for a set of capability names.
pub fn cap_mask(names: &[&str]) -> String {
    let mask = names.iter().fold(0u64, |m, n| m | (1u64 << cap_number(n)));
    format!("{mask:016x}")
}

/// A directory on the host outside every bundle (a bind-mount source), optionally with a
/// tmpfs mounted on a subdirectory. On drop the tmpfs is unmounted and the tree removed.
pub struct HostDir {
    path: PathBuf,
    submount: Option<PathBuf>,
}

impl HostDir {
    /// `/tmp/husk-test-<tag>-<pid>`, created empty.
    pub fn new(tag: &str) -> HostDir {
        let path = PathBuf::from(format!("/tmp/husk-test-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("creating the host directory");
        HostDir {
            path,
            submount: None,
        }
    }

    /// Like [`HostDir::new`], with a tmpfs mounted on `<dir>/<sub>`.
    pub fn with_tmpfs(tag: &str, sub: &str) -> HostDir {
        let mut d = HostDir::new(tag);
        let target = d.path.join(sub);
        fs::create_dir_all(&target).expect("creating the submount directory");
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "tmpfs"])
            .arg(&target)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mount -t tmpfs tmpfs {}", target.display());
        d.submount = Some(target);
        d
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn path_str(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    /// Creates file `rel` with `content`, owned by `uid:gid`.
    pub fn file(&self, rel: &str, content: &str, uid: u32, gid: u32) -> PathBuf {
        let p = self.path.join(rel);
        fs::write(&p, content).expect("writing a host file");
        std::os::unix::fs::chown(&p, Some(uid), Some(gid)).expect("chown of a host file");
        p
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        if let Some(m) = &self.submount {
            let _ = std::process::Command::new("umount").arg(m).status();
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A user namespace held by a `sleep` process (a user namespace cannot be kept by a bind
/// mount here), mapping `size` uids and gids from `host` to 0. Killed on drop.
pub struct UsernsHolder {
    child: std::process::Child,
}

impl UsernsHolder {
    pub fn new(host: u32, size: u32) -> UsernsHolder {
        let child = std::process::Command::new("unshare")
            .args(["--user", "sleep", "600"])
            .spawn()
            .expect("running unshare --user sleep");
        let holder = UsernsHolder { child };
        let pid = holder.child.id();
        // unshare(2) happens in the child before it execs sleep: wait for it.
        let ours = ns_link("self", "user");
        let deadline = Instant::now() + Duration::from_secs(10);
        while ns_link(&pid.to_string(), "user") == ours
            || ns_link(&pid.to_string(), "user").is_empty()
        {
            assert!(
                Instant::now() < deadline,
                "unshare --user did not create a user namespace"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let map = format!("0 {host} {size}\n");
        for f in ["uid_map", "gid_map"] {
            fs::write(format!("/proc/{pid}/{f}"), &map).expect("writing the holder's id map");
        }
        holder
    }

    /// `/proc/PID/ns/user` of the holder.
    pub fn path_str(&self) -> String {
        format!("/proc/{}/ns/user", self.child.id())
    }
}

impl Drop for UsernsHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
