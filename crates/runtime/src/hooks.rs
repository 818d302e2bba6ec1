//! OCI hooks: the six kinds, the container state on stdin, timeouts.
//!
//! Each hook runs with exactly its configured argv, and its `env` when it has one (an empty
//! list included). A hook without `env` gets what runc's gets (Go's exec with a nil Env
//! inherits): in the runtime's namespace (prestart, createRuntime, poststart, poststop) husk's
//! own environment; in the container's (createContainer, startContainer) the container
//! process's `process.env`, one entry per name, plus HOME for startContainer, which the
//! container's init passes to [`run_with_default_env`]. Its stdin, stdout and
//! stderr are memfds rather than pipes: the state is there in full before the hook starts (a
//! hook that does not read it cannot block us or raise SIGPIPE), and the output can never fill
//! a pipe while we wait. We wait on a pidfd with poll(2), so a timeout needs no thread.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::signal::Signal;
use oci_spec::runtime::Hook;

use crate::sys::security::pidfd_open;

/// The hook kinds, in lifecycle order. Display gives the spec's name (`createRuntime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl std::fmt::Display for HookKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        })
    }
}

/// A failed hook: which kind, its index in the list, its path, and what went wrong.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// `createRuntime hook #0 (/usr/bin/x): exit status 3: <stderr>`
    #[error("{kind} hook #{index} ({}): {status}{}", path.display(), stderr_suffix(stderr))]
    Failed {
        kind: HookKind,
        index: usize,
        path: PathBuf,
        status: String,
        stderr: String,
    },
    /// `poststart hook #1 (/x): timed out after 2s (killed)`
    #[error("{kind} hook #{index} ({}): timed out after {secs}s (killed){}", path.display(), stderr_suffix(stderr))]
    Timeout {
        kind: HookKind,
        index: usize,
        path: PathBuf,
        secs: i64,
        stderr: String,
    },
    /// Setting the hook up or waiting for it failed: `...: spawning: ENOENT`.
    #[error("{kind} hook #{index} ({}): {what}: {reason}", path.display())]
    Run {
        kind: HookKind,
        index: usize,
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("{kind} hook #{index} ({}): invalid timeout {timeout}: it must be greater than zero", path.display())]
    InvalidTimeout {
        kind: HookKind,
        index: usize,
        path: PathBuf,
        timeout: i64,
    },
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

/// How much of a hook's stderr goes into an error message (its end, where errors usually are).
const STDERR_MAX: usize = 1024;
/// How much of a hook's stdout is logged.
const STDOUT_MAX: usize = 16 * 1024;

/// An OS error by its errno name (`ENOENT`), anything else by its message.
fn io_reason(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => format!("{:?}", Errno::from_raw(n)),
        None => e.to_string(),
    }
}

/// The environment of a hook that has no `env`.
#[derive(Debug, Clone, Copy)]
enum DefaultEnv<'a> {
    /// husk's own.
    Inherit,
    /// Exactly this list (one entry per name).
    List(&'a [String]),
}

impl HookKind {
    /// Whether the hook runs in the runtime's namespace (rather than in the container's).
    pub fn in_runtime_namespace(self) -> bool {
        !matches!(self, HookKind::CreateContainer | HookKind::StartContainer)
    }
}

/// Run the hooks of one kind in order, each with `state_json` on stdin. The first failure
/// stops the run and is returned, except for `poststop`: the spec wants every poststop hook
/// run and a failure only logged as a warning, so those are logged here and `Ok` is returned.
/// A hook without `env` inherits husk's environment if it runs in the runtime's namespace,
/// and gets an empty one otherwise: the in-container kinds want [`run_with_default_env`].
pub fn run(kind: HookKind, hooks: &[Hook], state_json: &[u8]) -> Result<(), HookError> {
    let default = if kind.in_runtime_namespace() {
        DefaultEnv::Inherit
    } else {
        DefaultEnv::List(&[])
    };
    run_all(kind, hooks, state_json, default)
}

/// Like [`run`], but a hook without `env` gets `default_env` (merged to one entry per name,
/// the last value winning): for createContainer and startContainer hooks, the container
/// process's environment as it is at that point, as runc gives them.
pub fn run_with_default_env(
    kind: HookKind,
    hooks: &[Hook],
    state_json: &[u8],
    default_env: &[String],
) -> Result<(), HookError> {
    let merged = crate::process::exec_path::merge_env(default_env.iter().cloned());
    run_all(kind, hooks, state_json, DefaultEnv::List(&merged))
}

fn run_all(
    kind: HookKind,
    hooks: &[Hook],
    state_json: &[u8],
    default: DefaultEnv<'_>,
) -> Result<(), HookError> {
    for (index, hook) in hooks.iter().enumerate() {
        match run_one(kind, index, hook, state_json, default) {
            Ok(()) => {}
            Err(e) if kind == HookKind::Poststop => tracing::warn!("{e}"),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A memfd (close-on-exec on our side) as a `File`.
fn memfd(name: &str) -> io::Result<File> {
    let fd: OwnedFd = memfd_create(name, MFdFlags::MFD_CLOEXEC).map_err(io::Error::from)?;
    Ok(File::from(fd))
}

/// Up to `max` bytes of `file`: its start (`tail` false) or its end (`tail` true).
fn read_capture(file: &File, max: usize, tail: bool) -> String {
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let take = len.min(max as u64);
    let start = if tail { len - take } else { 0 };
    let mut buf = vec![0u8; take as usize];
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], start + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    buf.truncate(got);
    let text = String::from_utf8_lossy(&buf);
    let text = text.trim();
    if take < len && tail {
        format!("...{}", text.trim_start_matches('\u{fffd}'))
    } else {
        text.to_owned()
    }
}

/// "exit status 3" or "killed by signal SIGSEGV".
fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    match status.signal() {
        Some(sig) => match Signal::try_from(sig) {
            Ok(s) => format!("killed by signal {s}"),
            Err(_) => format!("killed by signal {sig}"),
        },
        None => status.to_string(),
    }
}

/// Wait for `child` until `deadline`. `Ok(None)` means the deadline passed.
fn wait_until(
    child: &mut Child,
    pidfd: Option<&OwnedFd>,
    deadline: Option<Instant>,
) -> io::Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let remaining = match deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return Ok(None);
                }
                Some(d - now)
            }
            None => None,
        };
        match pidfd {
            Some(fd) => {
                let timeout = match remaining {
                    // Round up so that we never spin on a sub-millisecond remainder.
                    Some(r) => PollTimeout::try_from(r + Duration::from_micros(999))
                        .unwrap_or(PollTimeout::MAX),
                    None => PollTimeout::NONE,
                };
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, timeout) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            None => {
                let step = Duration::from_millis(5);
                std::thread::sleep(remaining.map_or(step, |r| r.min(step)));
            }
        }
    }
}

fn run_one(
    kind: HookKind,
    index: usize,
    hook: &Hook,
    state_json: &[u8],
    default: DefaultEnv<'_>,
) -> Result<(), HookError> {
    let path: &Path = hook.path();
    let run_err = |what: &'static str, e: io::Error| HookError::Run {
        kind,
        index,
        path: path.to_path_buf(),
        what,
        reason: io_reason(&e),
    };
    let timeout = match hook.timeout() {
        Some(t) if t <= 0 => {
            return Err(HookError::InvalidTimeout {
                kind,
                index,
                path: path.to_path_buf(),
                timeout: t,
            })
        }
        other => other,
    };

    let mut cmd = Command::new(path);
    if let Some((argv0, rest)) = hook.args().as_deref().and_then(|a| a.split_first()) {
        cmd.arg0(argv0).args(rest);
    }
    let env = match (hook.env(), default) {
        (Some(env), _) => Some(env.as_slice()),
        (None, DefaultEnv::List(env)) => Some(env),
        (None, DefaultEnv::Inherit) => None,
    };
    if env.is_some() {
        cmd.env_clear();
    }
    for entry in env.into_iter().flatten() {
        match entry.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                cmd.env(k, v);
            }
            _ => {
                tracing::warn!(hook = %path.display(), entry, "skipping hook env entry without NAME=")
            }
        }
    }

    let mut stdin = memfd("husk-hook-state").map_err(|e| run_err("creating the state memfd", e))?;
    stdin
        .write_all(state_json)
        .map_err(|e| run_err("writing the state", e))?;
    // The hook shares this open file description: rewind it so the hook reads from the start.
    stdin
        .seek(SeekFrom::Start(0))
        .map_err(|e| run_err("rewinding the state memfd", e))?;
    let stdout = memfd("husk-hook-stdout").map_err(|e| run_err("creating the stdout memfd", e))?;
    let stderr = memfd("husk-hook-stderr").map_err(|e| run_err("creating the stderr memfd", e))?;
    cmd.stdin(Stdio::from(stdin));
    cmd.stdout(Stdio::from(
        stdout
            .try_clone()
            .map_err(|e| run_err("duplicating the stdout memfd", e))?,
    ));
    cmd.stderr(Stdio::from(
        stderr
            .try_clone()
            .map_err(|e| run_err("duplicating the stderr memfd", e))?,
    ));

    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| run_err("spawning", e))?;
    // Close the parent's copies of the child's stdio held by `cmd`.
    drop(cmd);
    let pidfd = i32::try_from(child.id())
        .ok()
        .and_then(|pid| pidfd_open(pid).ok());
    let deadline = timeout.map(|t| started + Duration::from_secs(t.unsigned_abs()));

    let status = match wait_until(&mut child, pidfd.as_ref(), deadline) {
        Ok(Some(status)) => status,
        Ok(None) => {
            if let Err(e) = child.kill() {
                tracing::warn!(hook = %path.display(), error = %e, "killing timed-out hook");
            }
            if let Err(e) = child.wait() {
                tracing::warn!(hook = %path.display(), error = %e, "reaping timed-out hook");
            }
            return Err(HookError::Timeout {
                kind,
                index,
                path: path.to_path_buf(),
                secs: timeout.unwrap_or_default(),
                stderr: read_capture(&stderr, STDERR_MAX, true),
            });
        }
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(run_err("waiting", e));
        }
    };

    let out = read_capture(&stdout, STDOUT_MAX, false);
    tracing::debug!(hook = %path.display(), %kind, index, elapsed_ms = started.elapsed().as_millis() as u64,
        status = %describe(status), stdout = %out, "hook finished");
    if status.success() {
        return Ok(());
    }
    Err(HookError::Failed {
        kind,
        index,
        path: path.to_path_buf(),
        status: describe(status),
        stderr: read_capture(&stderr, STDERR_MAX, true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh path in the temp dir for one test's output, removed on drop.
    struct TempPath(PathBuf);
    impl TempPath {
        fn new(tag: &str) -> TempPath {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            TempPath(
                std::env::temp_dir()
                    .join(format!("husk-hook-test-{}-{tag}-{n}", std::process::id())),
            )
        }
        fn read(&self) -> String {
            std::fs::read_to_string(&self.0)
                .unwrap_or_else(|e| panic!("reading {}: {e}", self.0.display()))
        }
    }
    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn hook(path: &str, args: &[&str], env: &[String], timeout: Option<i64>) -> Hook {
        let mut h = Hook::default();
        h.set_path(PathBuf::from(path));
        h.set_args(Some(args.iter().map(|s| s.to_string()).collect()));
        h.set_env(Some(env.to_vec()));
        h.set_timeout(timeout);
        h
    }

    fn sh(script: &str, env: &[String], timeout: Option<i64>) -> Hook {
        hook("/bin/sh", &["sh", "-c", script], env, timeout)
    }

    fn err_text(r: Result<(), HookError>) -> String {
        match r {
            Ok(()) => panic!("expected the hook to fail"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn kind_names() {
        let names: Vec<String> = [
            HookKind::Prestart,
            HookKind::CreateRuntime,
            HookKind::CreateContainer,
            HookKind::StartContainer,
            HookKind::Poststart,
            HookKind::Poststop,
        ]
        .iter()
        .map(|k| k.to_string())
        .collect();
        assert_eq!(
            names,
            [
                "prestart",
                "createRuntime",
                "createContainer",
                "startContainer",
                "poststart",
                "poststop"
            ]
        );
    }

    #[test]
    fn hook_receives_state_on_stdin() {
        let out = TempPath::new("state");
        let env = [format!("F={}", out.0.display())];
        let state =
            br#"{"ociVersion":"1.3.0","id":"x","status":"creating","pid":42,"bundle":"/b"}"#;
        let r = run(
            HookKind::CreateRuntime,
            &[sh("cat > \"$F\"", &env, None)],
            state,
        );
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(out.read().as_bytes(), state);
    }

    #[test]
    fn exit_status_and_stderr_in_error() {
        let e = err_text(run(
            HookKind::CreateRuntime,
            &[sh("echo '  oops  ' >&2; exit 3", &[], None)],
            b"{}",
        ));
        assert_eq!(e, "createRuntime hook #0 (/bin/sh): exit status 3: oops");
        let e = err_text(run(
            HookKind::Prestart,
            &[sh("kill -SEGV $$", &[], None)],
            b"{}",
        ));
        assert_eq!(e, "prestart hook #0 (/bin/sh): killed by signal SIGSEGV");
    }

    #[test]
    fn long_stderr_keeps_its_end() {
        let e = err_text(run(
            HookKind::Poststart,
            &[sh("i=0; while [ $i -lt 300 ]; do echo line$i >&2; i=$((i+1)); done; echo LAST >&2; exit 1", &[], None)],
            b"{}",
        ));
        assert!(e.ends_with("LAST"), "{e}");
        assert!(e.contains(": exit status 1: ..."), "{e}");
        assert!(e.len() < STDERR_MAX + 200, "{}", e.len());
    }

    #[test]
    fn timeout_kills_the_hook() {
        let started = Instant::now();
        let e = err_text(run(
            HookKind::Poststart,
            &[sh("true", &[], None), sh("sleep 5", &[], Some(1))],
            b"{}",
        ));
        assert_eq!(
            e,
            "poststart hook #1 (/bin/sh): timed out after 1s (killed)"
        );
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(950) && took < Duration::from_secs(3),
            "{took:?}"
        );
    }

    #[test]
    fn env_is_exactly_as_given() {
        let out = TempPath::new("env");
        let env = [
            format!("F={}", out.0.display()),
            "A=b=c".to_string(),
            "EMPTY=".to_string(),
        ];
        // /proc/$$/environ is what the hook was started with, before the shell adds anything.
        let r = run(
            HookKind::CreateRuntime,
            &[sh("tr '\\0' '\\n' < /proc/$$/environ > \"$F\"", &env, None)],
            b"{}",
        );
        assert!(r.is_ok(), "{r:?}");
        let mut got: Vec<String> = out.read().lines().map(str::to_owned).collect();
        got.sort();
        let mut want = env.to_vec();
        want.sort();
        assert_eq!(got, want);
    }

    /// The environment a hook started with, sorted.
    fn hook_env(kind: HookKind, env: Option<&[String]>, default: Option<&[String]>) -> Vec<String> {
        let out = TempPath::new("env");
        // The output path travels in the args: the env is what is being tested.
        let mut h = hook(
            "/bin/sh",
            &[
                "sh",
                "-c",
                "tr '\\0' '\\n' < /proc/$$/environ > \"$0\"",
                &out.0.to_string_lossy(),
            ],
            &[],
            None,
        );
        h.set_env(env.map(<[String]>::to_vec));
        let r = match default {
            Some(d) => run_with_default_env(kind, &[h], b"{}", d),
            None => run(kind, &[h], b"{}"),
        };
        assert!(r.is_ok(), "{r:?}");
        let mut got: Vec<String> = out.read().lines().map(str::to_owned).collect();
        got.sort();
        got
    }

    #[test]
    fn hook_without_env_in_the_runtime_namespace_inherits_ours() {
        let mut ours: Vec<String> = std::env::vars_os()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect();
        ours.sort();
        for kind in [
            HookKind::Prestart,
            HookKind::CreateRuntime,
            HookKind::Poststart,
            HookKind::Poststop,
        ] {
            assert_eq!(hook_env(kind, None, None), ours, "{kind}");
            // An explicit env, even an empty one, is exactly that.
            assert!(hook_env(kind, Some(&[]), None).is_empty(), "{kind}");
            assert_eq!(hook_env(kind, Some(&["X=1".into()]), None), ["X=1"], "{kind}");
        }
        // In the container's namespace, without a default: nothing.
        assert!(hook_env(HookKind::CreateContainer, None, None).is_empty());
    }

    #[test]
    fn hook_without_env_gets_the_default_merged() {
        let default = ["A=1", "B=2", "A=3"].map(String::from);
        assert_eq!(
            hook_env(HookKind::StartContainer, None, Some(&default)),
            ["A=3", "B=2"]
        );
        assert!(hook_env(HookKind::StartContainer, Some(&[]), Some(&default)).is_empty());
        assert_eq!(
            hook_env(HookKind::StartContainer, Some(&["X=1".into()]), Some(&default)),
            ["X=1"]
        );
    }

    #[test]
    fn argv0_is_args0() {
        let out = TempPath::new("argv");
        let env = [format!("F={}", out.0.display())];
        let h = hook(
            "/bin/sh",
            &[
                "custom-argv0",
                "-c",
                "tr '\\0' ' ' < /proc/$$/cmdline > \"$F\"",
            ],
            &env,
            None,
        );
        let r = run(HookKind::CreateRuntime, &[h], b"{}");
        assert!(r.is_ok(), "{r:?}");
        assert!(out.read().starts_with("custom-argv0 -c "), "{}", out.read());
    }

    #[test]
    fn missing_binary_is_a_spawn_error() {
        let e = err_text(run(
            HookKind::CreateRuntime,
            &[hook("/nonexistent/hook", &[], &[], None)],
            b"{}",
        ));
        assert_eq!(
            e,
            "createRuntime hook #0 (/nonexistent/hook): spawning: ENOENT"
        );
    }

    #[test]
    fn invalid_timeout_is_rejected() {
        let e = err_text(run(
            HookKind::CreateRuntime,
            &[sh("true", &[], Some(0))],
            b"{}",
        ));
        assert!(e.contains("invalid timeout 0"), "{e}");
    }

    #[test]
    fn first_failure_stops_the_run() {
        let out = TempPath::new("stop");
        let env = [format!("F={}", out.0.display())];
        let r = run(
            HookKind::CreateContainer,
            &[sh("exit 1", &[], None), sh("touch \"$F\"", &env, None)],
            b"{}",
        );
        assert!(r.is_err());
        assert!(!out.0.exists());
    }

    #[test]
    fn poststop_failures_do_not_stop_the_rest() {
        let out = TempPath::new("poststop");
        let env = [format!("F={}", out.0.display())];
        let r = run(
            HookKind::Poststop,
            &[sh("exit 1", &[], None), sh("touch \"$F\"", &env, None)],
            b"{}",
        );
        assert!(r.is_ok(), "{r:?}");
        assert!(out.0.exists());
    }

    #[test]
    fn hook_that_ignores_a_large_state_and_leaves_a_child_behind() {
        let state = vec![b'x'; 1 << 20];
        let started = Instant::now();
        // The background sleep keeps the hook's stdout and stderr open after the hook exits.
        let r = run(
            HookKind::Poststart,
            &[sh("sleep 2 & exit 0", &[], Some(10))],
            &state,
        );
        assert!(r.is_ok(), "{r:?}");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
    }
}
