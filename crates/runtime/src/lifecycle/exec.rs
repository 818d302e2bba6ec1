//! `exec`: run one more process inside a running (or created) container.
//!
//! `husk exec` is one process. It reads the state, opens a pidfd of the container's init and
//! `/proc/<init>/root`, finds which namespaces differ from its own, and releases the state
//! lock. It then joins the init's pid and time namespaces *for its children* (setns on those
//! two only changes where children are born; an unprivileged husk joins the container's user
//! namespace with them, which it needs for the pid namespace) and forks once: the child (process/exec_init.rs)
//! is born inside them, joins the cgroup and the other namespaces and execs. Errors travel back
//! over the sync channel; a clean close of the channel means the exec happened. In the
//! foreground husk forwards signals and returns the process's status; detached, it writes the
//! pid file and returns.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, Process, Spec};

use super::create::write_pid_file;
use super::Runtime;
use crate::cgroups::Cgroup;
use crate::error::{Error, Result};
use crate::process::console::{self, TtyProxy};
use crate::process::exec_init::{self, ExecArgs};
use crate::process::exec_path;
use crate::process::foreground::Foreground;
use crate::process::sync::{Channel, Msg};
use crate::process::ProcessError;
use crate::state::{ContainerState, StateDir, Status};
use crate::sys::process::{fork_process, Forked};
use crate::{security, spec};

/// Options of `exec` (runc's flags).
#[derive(Debug, Clone, Default)]
pub struct ExecOpts {
    /// `--process FILE`: the whole process, as a config.json `process` object; the flags
    /// below that shape the process are then ignored (as in runc).
    pub process: Option<PathBuf>,
    /// The command and its arguments (replaces the config's args).
    pub args: Vec<String>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// `--tty`: allocate a terminal (the config's `terminal` is not inherited).
    pub tty: bool,
    pub cwd: Option<PathBuf>,
    /// Layered over the config's env: a name given here replaces the config's entry (as in
    /// runc, where the last value of a name wins). Ignored with `--process`, as in runc.
    pub env: Vec<String>,
    /// `UID[:GID]`, numbers.
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    /// Added to the bounding, effective, permitted and ambient sets.
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub process_label: Option<String>,
    pub apparmor: Option<String>,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    /// `--cgroup [CONTROLLER[,CONTROLLER]:]PATH`: an existing sub-cgroup to run in.
    pub cgroup: Vec<String>,
}

fn other(msg: impl Into<String>) -> Error {
    Error::Other(msg.into())
}

impl Runtime {
    /// `husk exec`: the process's exit code (128+signal) in the foreground, 0 once it runs
    /// when detached.
    pub fn exec(&self, id: &str, opts: &ExecOpts) -> Result<i32> {
        let dir = StateDir::open(&self.root, id)?;
        let st = dir.load()?;
        match st.current_status(dir.fifo_path().exists()) {
            Status::Stopped => {
                return Err(other(format!(
                    "cannot exec in container {id}: it is stopped"
                )))
            }
            Status::Paused if !opts.ignore_paused => {
                return Err(other(format!(
                    "cannot exec in container {id}: it is paused (use --ignore-paused to override)"
                )))
            }
            _ => {}
        }
        let spec = spec::load(&st.bundle)?;
        let process = exec_process(&spec, opts)?;
        // The process's LSM labels must be applicable; the container's seccomp filter applies
        // to it too (as runc does).
        let mut probe = spec.clone();
        probe.set_process(Some(process.clone()));
        let seccomp = security::prepare(&probe).map_err(ProcessError::from)?;
        let terminal = process.terminal().unwrap_or(false);
        console::check_terminal(terminal, opts.console_socket.is_some(), opts.detach)
            .map_err(other)?;
        let target = Target::open(&st)?;
        let cgroup_procs = cgroup_procs(&st.cgroup, &opts.cgroup, &read_mountinfo()?)?;
        // Hold the lock no longer: a long foreground exec must not block kill or delete.
        drop(dir);

        let fg = if opts.detach {
            None
        } else {
            Some(Foreground::new()?)
        };
        let (ours, theirs) = match (terminal, &opts.console_socket) {
            (false, _) => (None, None),
            (true, Some(path)) => (None, Some(console::connect_socket(path)?)),
            (true, None) => {
                let (a, b) = console::socketpair()?;
                (Some(a), Some(b))
            }
        };
        // process.oomScoreAdj is inherited by the child from us, set while we are dumpable: a
        // non-dumpable process's /proc/self files belong to the host's root, which an
        // unprivileged caller may not write even to raise its own value.
        if let Some(adj) = process.oom_score_adj() {
            crate::security::set_oom_score_adj(adj).map_err(ProcessError::from)?;
        }
        nix::sys::prctl::set_dumpable(false)
            .map_err(ProcessError::sys("prctl(PR_SET_DUMPABLE)"))?;
        if !target.for_children.is_empty() {
            nix::sched::setns(target.pidfd.as_fd(), target.for_children).map_err(|e| {
                ProcessError::Namespace {
                    what: format!(
                        "joining the {} namespaces of container {id}'s init",
                        ns_names(target.for_children)
                    ),
                    source: e,
                }
            })?;
        }
        let (chan, child_chan) = Channel::pair()?;
        let child = match fork_process() {
            Ok(Forked::Child) => exec_init::run(ExecArgs {
                id,
                process: &process,
                seccomp: seccomp.as_ref(),
                pidfd: target.pidfd.as_fd(),
                join: target.join,
                root: target.root.as_fd(),
                cgroup_procs: &cgroup_procs,
                rootless: self.rootless,
                console: theirs.as_ref().map(|f| f.as_fd()),
                preserve_fds: opts.preserve_fds,
                chan: &child_chan,
                close_fds: [Some(chan.raw_fd()), ours.as_ref().map(|f| f.as_raw_fd())]
                    .into_iter()
                    .flatten()
                    .collect(),
            }),
            Ok(Forked::Parent(pid)) => pid,
            Err(e) => {
                let hint = if e == nix::Error::ENOMEM {
                    " (has the container's init exited?)"
                } else {
                    ""
                };
                return Err(other(format!("forking into container {id}: {e}{hint}")));
            }
        };
        drop(child_chan);
        drop(theirs);
        let reaped = |e: Error| {
            let _ = kill(child, Signal::SIGKILL);
            let _ = waitpid(child, None);
            e
        };
        loop {
            match chan.recv_with_fd() {
                Ok((None, _)) => break, // the channel closed on exec
                Ok((Some(Msg::SeccompListener), Some(listener))) => {
                    let mut st = st.clone();
                    st.pid = child.as_raw();
                    let json = st.hook_json(Status::Running);
                    security::forward_seccomp_listener(seccomp.as_ref(), st.pid, &json, listener)
                        .map_err(|e| reaped(ProcessError::from(e).into()))?;
                }
                Ok((Some(Msg::Error(e)), _)) => return Err(reaped(ProcessError::Init(e).into())),
                Ok((Some(m), _)) => {
                    return Err(reaped(
                        ProcessError::Protocol(format!(
                            "unexpected {} from the exec'd process",
                            m.name()
                        ))
                        .into(),
                    ))
                }
                Err(e) => return Err(reaped(e.into())),
            }
        }
        if let Some(pf) = &opts.pid_file {
            write_pid_file(pf, child.as_raw()).map_err(reaped)?;
        }
        let Some(fg) = fg else { return Ok(0) };
        let mut tty = match ours {
            Some(sock) => Some(
                console::recv_master(sock.as_fd())
                    .and_then(TtyProxy::new)
                    .map_err(|e| reaped(e.into()))?,
            ),
            None => None,
        };
        Ok(fg.wait(child, tty.as_mut())?)
    }
}

/// The container's init as exec needs it.
struct Target {
    pidfd: OwnedFd,
    root: OwnedFd,
    /// Joined by the forked child.
    join: CloneFlags,
    /// Joined by `husk exec` itself before the fork (they only apply to children).
    for_children: CloneFlags,
}

impl Target {
    fn open(st: &ContainerState) -> Result<Target> {
        let pid = st.pid;
        let gone = || {
            other(format!(
                "cannot exec in container {}: its init ({pid}) has exited",
                st.id
            ))
        };
        let pidfd = crate::sys::security::pidfd_open(pid).map_err(|_| gone())?;
        let root = File::options()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(format!("/proc/{pid}/root"))
            .map(OwnedFd::from)
            .map_err(|_| gone())?;
        let mut join = CloneFlags::empty();
        let mut for_children = CloneFlags::empty();
        for (name, flag) in NAMESPACES {
            let Ok(theirs) = std::fs::metadata(format!("/proc/{pid}/ns/{name}")) else {
                continue;
            };
            let Ok(ours) = std::fs::metadata(format!("/proc/self/ns/{name}")) else {
                continue;
            };
            if (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()) {
                continue;
            }
            if name == "pid" || name == "time" {
                for_children |= flag;
            } else {
                join |= flag;
            }
        }
        // An unprivileged husk may enter the container's pid namespace only with the
        // capabilities of its owner, the container's user namespace: it joins that too (one
        // setns enters the user namespace first). Root stays in its own user namespace, so
        // that the child still joins the cgroup as the host's root.
        let user = CloneFlags::CLONE_NEWUSER;
        if !for_children.is_empty() && join.contains(user) && !nix::unistd::geteuid().is_root() {
            join -= user;
            for_children |= user;
        }
        // Everything above was read from the right process only if it still runs.
        if !st.process_alive() {
            return Err(gone());
        }
        Ok(Target {
            pidfd,
            root,
            join,
            for_children,
        })
    }
}

const NAMESPACES: [(&str, CloneFlags); 8] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("mnt", CloneFlags::CLONE_NEWNS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("time", CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)),
];

/// `user/pid/time`: the names of the namespaces in `flags`.
fn ns_names(flags: CloneFlags) -> String {
    NAMESPACES
        .iter()
        .filter(|(_, f)| flags.contains(*f))
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join("/")
}

/// The process to exec: `--process FILE`, or the bundle's config.json process with the
/// command line's overrides (runc's rules). Its env has one entry per name (see
/// [`exec_path::merge_env`]).
fn exec_process(spec: &Spec, opts: &ExecOpts) -> Result<Process> {
    let p = match &opts.process {
        Some(path) => {
            let mut p = read_process_file(path)?;
            if let Some(env) = p.env().clone() {
                p.set_env(Some(exec_path::merge_env(env)));
            }
            p
        }
        None => {
            let base = spec
                .process()
                .clone()
                .ok_or_else(|| other("config.json has no process"))?;
            apply_flags(base, opts)?
        }
    };
    validate(&p)?;
    Ok(p)
}

fn read_process_file(path: &Path) -> Result<Process> {
    let data = std::fs::read(path)
        .map_err(|e| other(format!("reading --process {}: {e}", path.display())))?;
    let mut value: serde_json::Value = serde_json::from_slice(&data)
        .map_err(|e| other(format!("--process {}: {e}", path.display())))?;
    crate::extras::sched::normalize_flag_names(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        other(format!(
            "--process {}: {field}: {}",
            path.display(),
            e.inner()
        ))
    })
}

/// Layers the command line over the config's process, as runc does.
fn apply_flags(mut p: Process, o: &ExecOpts) -> Result<Process> {
    p.set_args(Some(o.args.clone()));
    if let Some(cwd) = &o.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(a) = &o.apparmor {
        p.set_apparmor_profile(Some(a.clone()));
    }
    if let Some(l) = &o.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    if !o.caps.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_else(empty_caps);
        for name in &o.caps {
            let cap: Capability =
                serde_json::from_value(serde_json::Value::String(name.clone()))
                    .map_err(|_| other(format!("--cap {name}: unknown capability")))?;
            let add = |set: &Option<Capabilities>| {
                let mut s = set.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
            caps.set_ambient(add(caps.ambient()));
        }
        p.set_capabilities(Some(caps));
    }
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(o.env.iter().cloned());
    p.set_env(Some(exec_path::merge_env(env)));
    p.set_terminal(Some(o.tty));
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(u) = &o.user {
        let (uid, gid) = parse_user(u)?;
        p.user_mut().set_uid(uid);
        if let Some(g) = gid {
            p.user_mut().set_gid(g);
        }
    }
    if !o.additional_gids.is_empty() {
        let mut gids = p.user().additional_gids().clone().unwrap_or_default();
        gids.extend(o.additional_gids.iter().copied());
        p.user_mut().set_additional_gids(Some(gids));
    }
    Ok(p)
}

fn empty_caps() -> LinuxCapabilities {
    let mut c = LinuxCapabilities::default();
    for set in [
        LinuxCapabilities::set_bounding,
        LinuxCapabilities::set_effective,
        LinuxCapabilities::set_inheritable,
        LinuxCapabilities::set_permitted,
        LinuxCapabilities::set_ambient,
    ] {
        set(&mut c, None);
    }
    c
}

/// `UID[:GID]`, both numbers (runc does not look names up for exec).
fn parse_user(s: &str) -> Result<(u32, Option<u32>)> {
    let num = |v: &str, what: &str| {
        v.parse::<u32>().map_err(|_| {
            other(format!(
                "--user {s:?}: the {what} must be a number (UID[:GID])"
            ))
        })
    };
    match s.split_once(':') {
        Some((u, g)) => Ok((num(u, "uid")?, Some(num(g, "gid")?))),
        None => Ok((num(s, "uid")?, None)),
    }
}

fn validate(p: &Process) -> Result<()> {
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(other(
            "exec: no command given (pass one after the container id, or --process)",
        ));
    }
    if !p.cwd().is_absolute() {
        return Err(other(format!(
            "process.cwd {:?} is not an absolute path",
            p.cwd()
        )));
    }
    if let Some(caps) = p.capabilities() {
        security::validate_capabilities(caps).map_err(ProcessError::from)?;
    }
    for kv in p.env().iter().flatten() {
        match kv.split_once('=') {
            None => {
                return Err(other(format!(
                    "process.env entry {kv:?} is not NAME=value"
                )))
            }
            Some(("", _)) => {
                return Err(other(format!(
                    "process.env entry {kv:?} has an empty name"
                )))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// `cgroup.procs` in every hierarchy of the container's cgroup, or of the sub-cgroups asked
/// with `--cgroup` (which must exist).
fn cgroup_procs(cg: &Cgroup, subs: &[String], mountinfo: &str) -> Result<Vec<PathBuf>> {
    let wanted = parse_sub_cgroups(subs)?;
    let hierarchies = crate::cgroups::mountinfo::parse(mountinfo);
    let unified = ["unified".to_string()];
    let mut out = Vec::new();
    for leaf in cg.paths() {
        // The hierarchy's controllers; cgroup2's answer to `unified:PATH`.
        let controllers = hierarchies
            .iter()
            .filter(|h| leaf.starts_with(&h.mount_point))
            .max_by_key(|h| h.mount_point.as_os_str().len())
            .map(|h| match &h.kind {
                crate::cgroups::mountinfo::Kind::V1 { controllers } => controllers.as_slice(),
                crate::cgroups::mountinfo::Kind::V2 => unified.as_slice(),
            })
            .unwrap_or(&[]);
        let sub = wanted
            .get("")
            .or_else(|| controllers.iter().find_map(|c| wanted.get(c.as_str())));
        let dir = match sub {
            Some(s) => {
                let d = leaf.join(s);
                if !d.is_dir() {
                    return Err(other(format!(
                        "--cgroup: sub-cgroup {} does not exist",
                        d.display()
                    )));
                }
                d
            }
            None => leaf.clone(),
        };
        out.push(dir.join("cgroup.procs"));
    }
    Ok(out)
}

/// runc's `--cgroup` forms: `PATH` (alone: every hierarchy) or `CTRL[,CTRL]:PATH`.
fn parse_sub_cgroups(args: &[String]) -> Result<HashMap<String, PathBuf>> {
    let mut out = HashMap::new();
    for a in args {
        let (ctrls, path) = match a.split_once(':') {
            Some((c, p)) => (c.split(',').map(str::to_string).collect::<Vec<_>>(), p),
            None if args.len() == 1 => (vec![String::new()], a.as_str()),
            None => {
                return Err(other(format!(
                    "--cgroup {a:?}: a CONTROLLER: prefix is needed with several --cgroup"
                )))
            }
        };
        let p = Path::new(path.trim_start_matches('/'));
        if path.is_empty() || p.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(other(format!(
                "--cgroup {a:?}: the path must stay inside the container's cgroup"
            )));
        }
        for c in ctrls {
            out.insert(c, p.to_path_buf());
        }
    }
    Ok(out)
}

fn read_mountinfo() -> Result<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| other(format!("reading /proc/self/mountinfo: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Process {
        serde_json::from_str(
            r#"{"user":{"uid":0,"gid":0},"args":["true"],"env":["PATH=/bin","A=1"],"cwd":"/",
                "terminal":true,"capabilities":{"bounding":["CAP_KILL"],"effective":["CAP_KILL"]}}"#,
        )
        .expect("process")
    }

    #[test]
    fn flags_layer_over_the_config_process() {
        let o = ExecOpts {
            args: vec!["sh".into(), "-c".into(), "id".into()],
            cwd: Some("/tmp".into()),
            env: vec!["B=2".into(), "A=3".into()],
            user: Some("1000:1001".into()),
            additional_gids: vec![5, 6],
            caps: vec!["CAP_NET_ADMIN".into(), "sys_time".into()],
            no_new_privs: true,
            ..ExecOpts::default()
        };
        let p = apply_flags(base(), &o).expect("apply");
        assert_eq!(p.args().as_deref(), Some(&o.args[..]));
        assert_eq!(p.cwd(), Path::new("/tmp"));
        // --env A=3 replaces the config's A=1 in place (runc's rule: one entry per name).
        assert_eq!(
            p.env().clone().unwrap_or_default(),
            ["PATH=/bin", "A=3", "B=2"]
        );
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 1001));
        assert_eq!(
            p.user().additional_gids().clone().unwrap_or_default(),
            [5, 6]
        );
        assert_eq!(
            p.terminal(),
            Some(false),
            "the config's terminal is not inherited"
        );
        assert_eq!(p.no_new_privileges(), Some(true));
        let caps = p.capabilities().clone().expect("caps");
        let b = caps.bounding().clone().unwrap_or_default();
        assert!(
            b.contains(&Capability::NetAdmin)
                && b.contains(&Capability::SysTime)
                && b.contains(&Capability::Kill)
        );
        assert!(caps
            .ambient()
            .clone()
            .unwrap_or_default()
            .contains(&Capability::NetAdmin));
        assert!(caps.inheritable().is_none());
        validate(&p).expect("valid");
    }

    #[test]
    fn user_forms() {
        assert_eq!(parse_user("5").ok(), Some((5, None)));
        assert_eq!(parse_user("5:7").ok(), Some((5, Some(7))));
        for bad in ["", "root", "5:", ":5", "-1", "1:x"] {
            let e = parse_user(bad).expect_err(bad).to_string();
            assert!(e.contains("must be a number"), "{bad}: {e}");
        }
        let o = ExecOpts {
            caps: vec!["CAP_NOPE".into()],
            args: vec!["x".into()],
            ..ExecOpts::default()
        };
        assert!(apply_flags(base(), &o).is_err());
    }

    #[test]
    fn validation() {
        let o = ExecOpts::default();
        let p = apply_flags(base(), &o).expect("apply");
        assert!(validate(&p).unwrap_err().to_string().contains("no command"));
        let o = ExecOpts {
            args: vec!["x".into()],
            cwd: Some("rel".into()),
            ..ExecOpts::default()
        };
        let p = apply_flags(base(), &o).expect("apply");
        assert!(validate(&p)
            .unwrap_err()
            .to_string()
            .contains("not an absolute path"));
    }

    const MOUNTINFO: &str = "\
30 1 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
";

    #[test]
    fn cgroup_mounts_and_controllers() {
        use crate::cgroups::mountinfo::{parse, Kind};
        let m = parse(MOUNTINFO);
        assert_eq!(m.len(), 4);
        // cgroup2 comes last.
        assert_eq!(m[3].mount_point, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(m[3].kind, Kind::V2);
        let ctrls = |i: usize| match &m[i].kind {
            Kind::V1 { controllers } => controllers.clone(),
            Kind::V2 => vec!["unified".to_string()],
        };
        assert_eq!(ctrls(0), ["name=systemd"]);
        assert_eq!(ctrls(1), ["cpu", "cpuacct"]);
    }

    #[test]
    fn sub_cgroups() {
        let leafs = vec![
            PathBuf::from("/sys/fs/cgroup/memory/c"),
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/c"),
        ];
        let cg = Cgroup::from_paths(leafs);
        let plain = cgroup_procs(&cg, &[], MOUNTINFO).expect("procs");
        assert_eq!(plain[0], Path::new("/sys/fs/cgroup/memory/c/cgroup.procs"));
        // A missing sub-cgroup is an error naming it.
        let e = cgroup_procs(&cg, &["memory:sub".into()], MOUNTINFO)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/sys/fs/cgroup/memory/c/sub does not exist"),
            "{e}"
        );
        assert!(parse_sub_cgroups(&["a".into(), "b".into()]).is_err());
        assert!(parse_sub_cgroups(&["../x".into()]).is_err());
        assert!(parse_sub_cgroups(&["memory:".into()]).is_err());
        let m = parse_sub_cgroups(&["cpu,memory:/x/y".into(), "pids:z".into()]).expect("parse");
        assert_eq!(m["cpu"], Path::new("x/y"));
        assert_eq!(m["memory"], Path::new("x/y"));
        assert_eq!(m["pids"], Path::new("z"));
    }
}
