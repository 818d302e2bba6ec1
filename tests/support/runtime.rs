//! A handle on the runtime under test with a private `--root`, and the results of its
//! commands.

use crate::bundle::Bundle;
use crate::host::{proc_start_time, send_signal};
use crate::leftovers::{clean_up, leftovers, Leftovers};
use crate::{flavor, husk_bin, unique, Flavor};
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::fs::{self, File};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long any one runtime command may take before the test fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The result of one runtime command.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code, or 128+signal if the runtime was killed by a signal.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The `--log` file (JSON lines) written during this command; empty without `--log`.
    pub log: String,
    /// The command line, for failure messages.
    pub cmd: String,
}

fn code_of(st: ExitStatus) -> i32 {
    st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))
}

impl Output {
    pub fn ok(&self) -> bool {
        self.code == 0
    }

    fn describe(&self) -> String {
        format!(
            "command: {}\nexit code: {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- log ---\n{}",
            self.cmd, self.code, self.stdout, self.stderr, self.log
        )
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert!(self.ok(), "expected success\n{}", self.describe());
        self
    }

    #[track_caller]
    pub fn assert_fail(&self) -> &Self {
        assert!(!self.ok(), "expected a non-zero exit\n{}", self.describe());
        self
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code\n{}", self.describe());
        self
    }

    /// stderr and the log, where a runtime reports errors (runc writes errors only to the
    /// log file when `--log` is given).
    pub fn messages(&self) -> String {
        format!("{}\n{}", self.stderr, self.log)
    }

    /// The expected substring for the runtime under test: `husk` for husk, `runc` for runc;
    /// for any other runtime either one is accepted.
    fn keys<'a>(husk: &'a str, runc: &'a str) -> Vec<&'a str> {
        match flavor() {
            Flavor::Husk => vec![husk],
            Flavor::Runc => vec![runc],
            Flavor::Crun | Flavor::Other => vec![husk, runc],
        }
    }

    /// Asserts that the error message (stderr or log) contains, case-insensitively, the
    /// substring expected from this runtime. husk's and runc's wording differ, so each
    /// assertion names both; only the one for the runtime under test is checked.
    #[track_caller]
    pub fn assert_msg(&self, husk: &str, runc: &str) -> &Self {
        let text = self.messages().to_lowercase();
        let keys = Self::keys(husk, runc);
        assert!(
            keys.iter().any(|k| text.contains(&k.to_lowercase())),
            "expected the error message to contain {keys:?}\n{}",
            self.describe()
        );
        self
    }

    /// The log's lines parsed as JSON objects; panics on a line that is not one.
    #[track_caller]
    pub fn log_lines(&self) -> Vec<Value> {
        self.log
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str::<Value>(l)
                    .ok()
                    .filter(Value::is_object)
                    .unwrap_or_else(|| {
                        panic!("log line is not a JSON object: {l:?}\n{}", self.describe())
                    })
            })
            .collect()
    }

    /// Asserts that the JSON log holds an error line `{"level":"error","msg":...,"time":...}`
    /// (time in RFC 3339) whose msg contains the substring expected from this runtime.
    #[track_caller]
    pub fn assert_error_logged(&self, husk: &str, runc: &str) -> &Self {
        let keys = Self::keys(husk, runc);
        let lines = self.log_lines();
        let found = lines.iter().any(|l| {
            let msg = l["msg"].as_str().unwrap_or("").to_lowercase();
            l["level"] == "error"
                && l["time"].as_str().is_some_and(is_rfc3339)
                && keys.iter().any(|k| msg.contains(&k.to_lowercase()))
        });
        assert!(
            found,
            "expected a JSON log line {{\"level\":\"error\",\"msg\":\"..{keys:?}..\",\"time\":RFC3339}}\n{}",
            self.describe()
        );
        self
    }

    /// A failed command: non-zero exit, the expected message, and the JSON error log line.
    #[track_caller]
    pub fn assert_error(&self, husk: &str, runc: &str) -> &Self {
        self.assert_fail();
        self.assert_msg(husk, runc);
        self.assert_error_logged(husk, runc)
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{}", self.describe()))
    }

    /// stdout, trimmed, as lines.
    pub fn lines(&self) -> Vec<String> {
        self.stdout.lines().map(|l| l.trim().to_string()).collect()
    }
}

/// `2024-05-01T12:00:00Z`, `2024-05-01T12:00:00.123456789+02:00`.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b'T' || b[10] == b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && (s.ends_with('Z') || s.ends_with('z') || {
            let tail = &s[s.len() - 6..];
            (tail.starts_with('+') || tail.starts_with('-')) && tail.as_bytes()[3] == b':'
        })
}

struct Tracked {
    id: String,
    bundle: PathBuf,
    cgroups: Option<String>,
    pid: Option<(i32, Option<u64>)>,
}

/// The runtime under test with a private state root. Every container it was asked to
/// create or run is force-deleted on drop, and then the drop checks that nothing is left
/// behind (state dirs, cgroups, mounts, processes) and fails the test if something is.
pub struct Runtime {
    bin: PathBuf,
    dir: PathBuf,
    root: PathBuf,
    seq: Cell<u32>,
    tracked: RefCell<Vec<Tracked>>,
    last_shell_log: RefCell<Option<PathBuf>>,
}

impl Runtime {
    /// A runtime handle whose `--root` is a fresh, not yet existing, dir under /tmp.
    pub fn new(name: &str) -> Runtime {
        Runtime::with_bin(name, husk_bin())
    }

    /// Like [`Runtime::new`], for another runtime binary (e.g. `runc`, for the differential
    /// test that runs the same configs under husk and under runc, each with its own root).
    pub fn with_bin(name: &str, bin: PathBuf) -> Runtime {
        let dir = PathBuf::from(format!("/tmp/husk-test-rt-{}", unique(name)));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        assert!(
            bin.is_file(),
            "runtime binary {} not found: build it (make build) or set HUSK_BIN",
            bin.display()
        );
        Runtime {
            bin,
            root: dir.join("root"),
            dir,
            seq: Cell::new(0),
            tracked: RefCell::new(vec![]),
            last_shell_log: RefCell::new(None),
        }
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The `--root` directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn root_str(&self) -> String {
        self.root.to_string_lossy().into_owned()
    }

    /// A scratch directory private to this runtime handle (removed on drop).
    pub fn scratch(&self) -> &Path {
        &self.dir
    }

    /// A unique container id starting with `prefix`.
    pub fn id(&self, prefix: &str) -> String {
        unique(prefix)
    }

    fn next(&self) -> u32 {
        let n = self.seq.get();
        self.seq.set(n + 1);
        n
    }

    /// Builds the command line `BIN --root R [--log L --log-format json] ARGS...`.
    fn command(&self, args: &[&str], log: Option<&Path>) -> (Command, String) {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root").arg(&self.root);
        if let Some(l) = log {
            cmd.arg("--log").arg(l).arg("--log-format").arg("json");
        }
        cmd.args(args);
        cmd.stdin(Stdio::null());
        let text = format!("{:?}", cmd).replace('"', "");
        (cmd, text)
    }

    fn spawn(&self, args: &[&str], with_log: bool) -> Pending {
        let n = self.next();
        let log = with_log.then(|| self.dir.join(format!("cmd-{n}.log.json")));
        let (cmd, text) = self.command(args, log.as_deref());
        self.spawn_command(n, cmd, text, log)
    }

    fn spawn_command(
        &self,
        n: u32,
        mut cmd: Command,
        text: String,
        log: Option<PathBuf>,
    ) -> Pending {
        let out = self.dir.join(format!("cmd-{n}.out"));
        let err = self.dir.join(format!("cmd-{n}.err"));
        cmd.stdout(File::create(&out).unwrap());
        cmd.stderr(File::create(&err).unwrap());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {text}: {e}"));
        Pending {
            child: Some(child),
            out,
            err,
            log,
            cmd: text,
        }
    }

    /// Starts every command line at once (each as [`Runtime::cmd`] would), then waits for
    /// all of them; for tests of concurrent commands on one container.
    pub fn cmd_concurrently(&self, commands: &[Vec<String>]) -> Vec<Output> {
        let pending: Vec<Pending> = commands
            .iter()
            .map(|c| {
                let args: Vec<&str> = c.iter().map(String::as_str).collect();
                self.spawn(&args, true)
            })
            .collect();
        pending
            .into_iter()
            .map(|p| p.wait(COMMAND_TIMEOUT))
            .collect()
    }

    /// Runs `BIN --root R --log L --log-format json ARGS...` and waits for it. The runtime's
    /// stdout and stderr go to files (a container created with them keeps them open; pipes
    /// would block until it exits).
    pub fn cmd(&self, args: &[&str]) -> Output {
        self.spawn(args, true).wait(COMMAND_TIMEOUT)
    }

    /// Like [`Runtime::cmd`] but without `--log`, so errors go to stderr.
    pub fn cmd_plain(&self, args: &[&str]) -> Output {
        self.spawn(args, false).wait(COMMAND_TIMEOUT)
    }

    /// Runs `/bin/sh -c SCRIPT` (stdin null, stdout and stderr to files, like [`Runtime::cmd`])
    /// and waits for it. Build the runtime's part with [`Runtime::shell_cmdline`]; the log of
    /// the last such command line is returned in `log`.
    pub fn sh(&self, script: &str) -> Output {
        let n = self.next();
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(script).stdin(Stdio::null());
        let log = self.last_shell_log.borrow().clone();
        self.spawn_command(n, cmd, format!("sh -c {script:?}"), log)
            .wait(COMMAND_TIMEOUT)
    }

    /// Runs `BIN --root R GLOBAL... ARGS...` (no `--log` added: pass it in `global`).
    pub fn cmd_global(&self, global: &[&str], args: &[&str]) -> Output {
        let mut all: Vec<&str> = global.to_vec();
        all.extend_from_slice(args);
        self.spawn(&all, false).wait(COMMAND_TIMEOUT)
    }

    /// A shell command line that runs the runtime with this handle's `--root` and the JSON
    /// log (for tests that must set up fds or the environment in a shell first).
    pub fn shell_cmdline(&self, args: &[&str]) -> String {
        let n = self.next();
        let log = self.dir.join(format!("sh-{n}.log.json"));
        *self.last_shell_log.borrow_mut() = Some(log.clone());
        let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
        format!(
            "{} --root {} --log {} --log-format json {}",
            shell_quote(&self.bin.to_string_lossy()),
            shell_quote(&self.root_str()),
            shell_quote(&log.to_string_lossy()),
            quoted.join(" ")
        )
    }

    /// Remembers a container id so the drop guard deletes it and checks its leftovers.
    pub fn track(&self, b: &Bundle, id: &str) {
        let mut t = self.tracked.borrow_mut();
        if !t.iter().any(|x| x.id == id && x.bundle == b.dir()) {
            t.push(Tracked {
                id: id.to_string(),
                bundle: b.dir().to_path_buf(),
                cgroups: b.cgroups_path(),
                pid: None,
            });
        }
    }

    /// Records the pid of a container that exists now (from `state`).
    fn record_pid(&self, id: &str) {
        let out = self.cmd(&["state", id]);
        if !out.ok() {
            return;
        }
        let pid = serde_json::from_str::<Value>(&out.stdout)
            .ok()
            .and_then(|v| v["pid"].as_i64())
            .unwrap_or(0) as i32;
        if pid > 0 {
            // The latest container under this id (a failed duplicate create keeps its own
            // bundle's entry, without a pid).
            if let Some(t) = self
                .tracked
                .borrow_mut()
                .iter_mut()
                .rev()
                .find(|t| t.id == id)
            {
                t.pid = Some((pid, proc_start_time(pid)));
            }
        }
    }

    /// `create --bundle B ID`.
    pub fn create(&self, b: &Bundle, id: &str) -> Output {
        self.create_with(b, id, &[])
    }

    /// `create --bundle B EXTRA... ID`.
    pub fn create_with(&self, b: &Bundle, id: &str, extra: &[&str]) -> Output {
        b.write();
        self.track(b, id);
        let dir = b.dir_str();
        let mut args = vec!["create", "--bundle", &dir];
        args.extend_from_slice(extra);
        args.push(id);
        let out = self.cmd(&args);
        if out.ok() {
            self.record_pid(id);
        }
        out
    }

    pub fn start(&self, id: &str) -> Output {
        self.cmd(&["start", id])
    }

    pub fn state(&self, id: &str) -> Output {
        self.cmd(&["state", id])
    }

    /// `state ID` parsed; panics if it fails.
    #[track_caller]
    pub fn state_json(&self, id: &str) -> Value {
        self.state(id).assert_ok().json()
    }

    /// The `status` field of `state ID`.
    #[track_caller]
    pub fn status(&self, id: &str) -> String {
        self.state_json(id)["status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// The `pid` field of `state ID`.
    #[track_caller]
    pub fn pid(&self, id: &str) -> i32 {
        self.state_json(id)["pid"].as_i64().unwrap_or(0) as i32
    }

    /// Waits until `state ID` reports `status` (up to 10 s).
    #[track_caller]
    pub fn wait_status(&self, id: &str, status: &str) {
        let ok = crate::host::wait_for(Duration::from_secs(10), || {
            let o = self.state(id);
            o.ok() && o.json()["status"] == status
        });
        assert!(
            ok,
            "container {id} did not reach status {status}: {:?}",
            self.state(id)
        );
    }

    /// `kill ID [SIG]`.
    pub fn kill(&self, id: &str, sig: Option<&str>) -> Output {
        match sig {
            Some(s) => self.cmd(&["kill", id, s]),
            None => self.cmd(&["kill", id]),
        }
    }

    pub fn delete(&self, id: &str) -> Output {
        self.cmd(&["delete", id])
    }

    pub fn delete_force(&self, id: &str) -> Output {
        self.cmd(&["delete", "--force", id])
    }

    /// `list --format json`, parsed (an empty array if the runtime prints `null`).
    #[track_caller]
    pub fn list_json(&self) -> Vec<Value> {
        let out = self.cmd(&["list", "--format", "json"]);
        out.assert_ok();
        match out.json() {
            Value::Array(a) => a,
            Value::Null => vec![],
            other => panic!("list --format json printed {other}"),
        }
    }

    /// `run --bundle B ID` in the foreground: the container's stdio is the runtime's, so
    /// `stdout`/`stderr` hold what the container printed and `code` its exit status.
    pub fn run_capture(&self, b: &Bundle, id: &str) -> Output {
        self.run_with(b, id, &[])
    }

    /// `run --bundle B EXTRA... ID`.
    pub fn run_with(&self, b: &Bundle, id: &str, extra: &[&str]) -> Output {
        b.write();
        self.track(b, id);
        let dir = b.dir_str();
        let mut args = vec!["run", "--bundle", &dir];
        args.extend_from_slice(extra);
        args.push(id);
        let out = self.cmd(&args);
        if out.ok() && extra.iter().any(|a| *a == "-d" || *a == "--detach") {
            self.record_pid(id);
        }
        out
    }

    /// `run --detach --bundle B ID`.
    pub fn run_detached(&self, b: &Bundle, id: &str) -> Output {
        self.run_with(b, id, &["--detach"])
    }

    /// Starts `run --bundle B EXTRA... ID` in the foreground without waiting for it.
    pub fn spawn_run(&self, b: &Bundle, id: &str, extra: &[&str]) -> Running<'_> {
        b.write();
        self.track(b, id);
        let dir = b.dir_str();
        let mut args = vec!["run", "--bundle", &dir];
        args.extend_from_slice(extra);
        args.push(id);
        Running {
            _rt: self,
            pending: self.spawn(&args, true),
        }
    }

    /// What container `id` made from `b` left behind (see [`crate::leftovers()`]).
    pub fn leftovers(&self, b: &Bundle, id: &str) -> Leftovers {
        let pid = self
            .tracked
            .borrow()
            .iter()
            .find(|t| t.id == id && t.bundle == b.dir())
            .and_then(|t| t.pid);
        leftovers(&self.root, id, b.dir(), b.cgroups_path().as_deref(), pid)
    }

    /// Asserts that container `id` made from `b` left nothing behind: no state dir, no
    /// cgroup dir, no mount under the bundle, no process.
    #[track_caller]
    pub fn assert_nothing_left(&self, b: &Bundle, id: &str) {
        let l = self.leftovers(b, id);
        assert!(l.is_empty(), "container {id:?} left things behind:\n{l}");
    }

    /// Entries of the state root (an absent root counts as empty). Hidden entries (e.g. a
    /// runtime-wide lock file) are ignored.
    pub fn root_entries(&self) -> Vec<String> {
        fs::read_dir(&self.root)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let tracked = std::mem::take(&mut *self.tracked.borrow_mut());
        let mut problems = Vec::new();
        let mut deleted: Vec<&str> = Vec::new();
        for t in &tracked {
            if deleted.contains(&t.id.as_str()) {
                continue;
            }
            deleted.push(&t.id);
            let plain = !t.id.is_empty() && !t.id.contains('/') && t.id != "." && t.id != "..";
            if plain && fs::symlink_metadata(self.root.join(&t.id)).is_ok() {
                let _ = self
                    .spawn(&["delete", "--force", &t.id], false)
                    .wait(COMMAND_TIMEOUT);
            }
        }
        for t in &tracked {
            let l = leftovers(&self.root, &t.id, &t.bundle, t.cgroups.as_deref(), t.pid);
            if !l.is_empty() {
                problems.push(format!("container {:?} (after delete --force):\n{l}", t.id));
                clean_up(
                    &self.root,
                    &t.bundle,
                    t.cgroups.as_deref(),
                    t.pid.map(|p| p.0),
                );
            }
        }
        let entries = self.root_entries();
        if !entries.is_empty() {
            problems.push(format!(
                "state root {} still holds {entries:?}",
                self.root.display()
            ));
        }
        let _ = fs::remove_dir_all(&self.dir);
        if !problems.is_empty() {
            let text = problems.join("\n");
            if std::thread::panicking() {
                eprintln!("also left behind:\n{text}");
            } else {
                panic!("left behind:\n{text}");
            }
        }
    }
}

/// A runtime command running in the background.
struct Pending {
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
    log: Option<PathBuf>,
    cmd: String,
}

impl Pending {
    fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    fn wait(mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        let mut nap = Duration::from_micros(500);
        let status = loop {
            if let Some(st) = self.try_wait() {
                break code_of(st);
            }
            if Instant::now() >= deadline {
                if let Some(c) = self.child.as_mut() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                self.child = None;
                let partial = self.collect(-1);
                panic!("timed out after {timeout:?}\n{}", partial.describe());
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(20));
        };
        self.child = None;
        self.collect(status)
    }

    fn collect(&self, code: i32) -> Output {
        let read = |p: &Path| fs::read_to_string(p).unwrap_or_default();
        Output {
            code,
            stdout: read(&self.out),
            stderr: read(&self.err),
            log: self.log.as_deref().map(read).unwrap_or_default(),
            cmd: self.cmd.clone(),
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A foreground `run` in progress (see [`Runtime::spawn_run`]). Dropping it kills the
/// runtime process if it is still running.
pub struct Running<'a> {
    _rt: &'a Runtime,
    pending: Pending,
}

impl Running<'_> {
    /// The pid of the runtime process (`husk run`).
    pub fn pid(&self) -> i32 {
        self.pending.pid()
    }

    /// Sends `sig` to the runtime process.
    pub fn signal(&self, sig: i32) -> bool {
        send_signal(self.pid(), sig)
    }

    /// Whether the runtime process has exited.
    pub fn exited(&mut self) -> bool {
        self.pending.try_wait().is_some() || self.pending.child.is_none()
    }

    /// Output so far (stdout/stderr files), without waiting.
    pub fn peek(&self) -> Output {
        self.pending.collect(-1)
    }

    /// Waits (up to `timeout`) for the runtime to exit.
    pub fn wait(self, timeout: Duration) -> Output {
        let Running { pending, .. } = self;
        pending.wait(timeout)
    }
}

/// Quotes `s` for /bin/sh.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"/._-=:,+@%".contains(&c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// `run`s `b` to completion with a fresh [`Runtime`] named `name`: it must succeed and leave
/// nothing behind. Returns the container's stdout.
#[track_caller]
pub fn run_ok(b: &Bundle, name: &str) -> String {
    let rt = Runtime::new(name);
    let id = rt.id("c");
    let out = rt.run_capture(b, &id);
    out.assert_ok();
    rt.assert_nothing_left(b, &id);
    out.stdout
}

/// `run` of `b` fails with a message naming `husk` (runc's wording: `runc`, see
/// [`Output::assert_msg`]) and leaves nothing behind.
#[track_caller]
pub fn run_fails(b: &Bundle, name: &str, husk: &str, runc: &str) {
    let rt = Runtime::new(name);
    let id = rt.id("c");
    rt.run_capture(b, &id).assert_error(husk, runc);
    rt.assert_nothing_left(b, &id);
}
