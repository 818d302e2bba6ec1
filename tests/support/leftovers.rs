//! "Nothing left behind": what a container (or a failed attempt to make one) may leave on
//! the host, looked up from the outside.

use crate::host::{all_pids, cgroup_dirs, mounts_under, proc_alive, proc_cmdline};
use std::fmt;
use std::fs;
use std::path::Path;

/// Things found on the host that should not be there, one line each.
#[derive(Debug, Default)]
pub struct Leftovers {
    pub items: Vec<String>,
}

impl Leftovers {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl fmt::Display for Leftovers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for i in &self.items {
            writeln!(f, "  - {i}")?;
        }
        Ok(())
    }
}

fn arg_mentions(arg: &str, path: &str) -> bool {
    arg == path || arg.ends_with(&format!("={path}")) || arg.contains(&format!("{path}/"))
}

/// Looks for what container `id` of the runtime rooted at `root`, made from the bundle at
/// `bundle_dir` with `cgroups_path`, may have left behind:
/// - its state dir `<root>/<id>`;
/// - a cgroup directory for `cgroups_path` in any hierarchy under /sys/fs/cgroup;
/// - a mount at or below the bundle dir (in the host's mount namespace);
/// - its init process `pid` (with its start time, if known) still alive;
/// - any process whose command line names the state root or the bundle dir (a stuck
///   runtime or hook process), whose executable lies in the bundle (a hook or container
///   process started from the rootfs), or which sits in the container's cgroup.
pub fn leftovers(
    root: &Path,
    id: &str,
    bundle_dir: &Path,
    cgroups_path: Option<&str>,
    pid: Option<(i32, Option<u64>)>,
) -> Leftovers {
    let mut items = Vec::new();
    if !id.is_empty() && !id.contains('/') && id != "." && id != ".." {
        let state = root.join(id);
        if fs::symlink_metadata(&state).is_ok() {
            items.push(format!("state dir {} still exists", state.display()));
        }
    }
    if let Some(cg) = cgroups_path {
        for d in cgroup_dirs(cg) {
            items.push(format!("cgroup dir {} still exists", d.display()));
        }
    }
    for m in mounts_under(bundle_dir) {
        items.push(format!("mount {m} still mounted"));
    }
    if let Some((pid, start)) = pid {
        if pid > 0 && proc_alive(pid, start) {
            items.push(format!(
                "container process {pid} ({}) still alive",
                proc_cmdline(pid)
            ));
        }
    }
    items.extend(stray_processes(root, bundle_dir, cgroups_path));
    Leftovers { items }
}

/// Processes that mention `root` or `bundle_dir`, run an executable from the bundle, or sit
/// in `cgroups_path`.
pub fn stray_processes(root: &Path, bundle_dir: &Path, cgroups_path: Option<&str>) -> Vec<String> {
    let me = std::process::id() as i32;
    let root = root.to_string_lossy().trim_end_matches('/').to_string();
    let bundle = bundle_dir
        .to_string_lossy()
        .trim_end_matches('/')
        .to_string();
    let mut found = Vec::new();
    for pid in all_pids() {
        if pid == me || !proc_alive(pid, None) {
            continue;
        }
        let args: Vec<String> = fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .split('\0')
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let why = if args.iter().any(|a| arg_mentions(a, &root)) {
            Some("names the state root")
        } else if args.iter().any(|a| arg_mentions(a, &bundle)) {
            Some("names the bundle")
        } else if fs::read_link(format!("/proc/{pid}/exe"))
            .map(|e| e.starts_with(&bundle))
            .unwrap_or(false)
        {
            Some("runs an executable from the bundle")
        } else if let Some(cg) = cgroups_path {
            let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
            let cg = cg.trim_end_matches('/');
            text.lines()
                .any(|l| {
                    l.rsplit_once(':')
                        .map(|(_, p)| p == cg || p.starts_with(&format!("{cg}/")))
                        .unwrap_or(false)
                })
                .then_some("is in the container's cgroup")
        } else {
            None
        };
        if let Some(why) = why {
            found.push(format!("process {pid} ({}) {why}", proc_cmdline(pid)));
        }
    }
    found
}

/// Kills what [`leftovers`] found, best effort, so one failing test does not disturb the
/// others: SIGKILL to stray processes, lazy unmounts, rmdir of cgroup dirs.
pub fn clean_up(root: &Path, bundle_dir: &Path, cgroups_path: Option<&str>, pid: Option<i32>) {
    if let Some(p) = pid {
        if p > 0 {
            crate::host::send_signal(p, libc::SIGKILL);
        }
    }
    for line in stray_processes(root, bundle_dir, cgroups_path) {
        if let Some(p) = line
            .strip_prefix("process ")
            .and_then(|r| r.split(' ').next())
            .and_then(|p| p.parse::<i32>().ok())
        {
            crate::host::send_signal(p, libc::SIGKILL);
        }
    }
    for m in mounts_under(bundle_dir).iter().rev() {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(m)
            .status();
    }
    if let Some(cg) = cgroups_path {
        for d in cgroup_dirs(cg) {
            crate::host::wait_for(std::time::Duration::from_secs(2), || {
                fs::remove_dir(&d).is_ok() || !d.exists()
            });
        }
    }
}
