//! Terminals: `process.terminal` with `--console-socket` (a test server receives the pty master
//! with SCM_RIGHTS, as conmon and containerd-shim do, types commands and reads the answers),
//! for `create` and for `exec`; and `run -t` / `exec -t` in the foreground through a real pty
//! (python3's pty support): raw mode while running, restored after, window size and SIGWINCH.

use std::fs;
use std::io::{IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use husk_tests::*;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::{json, Value};

/// A console socket server: a listening unix socket at a path.
struct ConsoleServer {
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleServer {
    fn new(dir: &Path) -> ConsoleServer {
        let path = dir.join("console.sock");
        let listener = UnixListener::bind(&path).expect("binding the console socket");
        listener.set_nonblocking(true).unwrap();
        ConsoleServer { path, listener }
    }

    fn path(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    /// Accepts one connection and receives the message's data and its SCM_RIGHTS fd.
    fn receive(&self) -> (String, OwnedFd) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let conn = loop {
            match self.listener.accept() {
                Ok((c, _)) => break c,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("no connection on the console socket: {e}"),
            }
        };
        conn.set_nonblocking(false).unwrap();
        let mut buf = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .expect("recvmsg on the console socket");
        let mut fd = None;
        for c in msg.cmsgs().expect("control messages") {
            if let ControlMessageOwned::ScmRights(fds) = c {
                assert_eq!(fds.len(), 1, "exactly one fd is sent");
                // SAFETY: the kernel installed this fd for us just now; nothing else owns it.
                fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
            }
        }
        let n = msg.bytes;
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        (text, fd.expect("no SCM_RIGHTS fd in the console message"))
    }
}

/// The pty master: type into it, read from it.
struct Master(OwnedFd);

impl Master {
    fn send(&self, text: &str) {
        (&fs::File::from(self.0.try_clone().unwrap()))
            .write_all(text.as_bytes())
            .expect("writing to the pty");
    }

    /// Reads until `marker` appears (or panics after 20 s); returns everything read.
    fn read_until(&self, marker: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut out = Vec::new();
        while !String::from_utf8_lossy(&out).contains(marker) {
            assert!(
                Instant::now() < deadline,
                "{marker:?} never came; got {:?}",
                String::from_utf8_lossy(&out)
            );
            let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, PollTimeout::from(200u16)).unwrap_or(0) == 0 {
                continue;
            }
            let mut buf = [0u8; 4096];
            match nix::unistd::read(&self.0, &mut buf) {
                Ok(0) | Err(_) => panic!(
                    "pty closed before {marker:?}; got {:?}",
                    String::from_utf8_lossy(&out)
                ),
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&out).replace('\r', "")
    }
}

/// The value printed after `key=` on its own line.
fn field(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {out:?}"))
        .to_string()
}

/// What the container prints about its terminal: tty name, size, whether the tty is its
/// controlling terminal, and the device numbers of stdio and /dev/console.
const REPORT: &str = "echo tty=$(tty); echo size=$(stty size); \
     echo ttynr=$(cut -d' ' -f7 /proc/$$/stat); \
     (echo x > /dev/tty) 2>/dev/null && echo ctty=yes || echo ctty=no; \
     echo stdio=$(readlink /proc/$$/fd/0)$(readlink /proc/$$/fd/1)$(readlink /proc/$$/fd/2); \
     echo dev=$(stat -c %t:%T $(tty)); echo console=$(stat -c %t:%T /dev/console 2>/dev/null); \
     echo READY";

fn check_report(out: &str) {
    let tty = field(out, "tty");
    assert!(tty.starts_with("/dev/pts/"), "tty={tty}\n{out}");
    assert_eq!(field(out, "stdio"), tty.repeat(3));
    assert_ne!(field(out, "ttynr"), "0", "no controlling terminal\n{out}");
    assert_eq!(field(out, "ctty"), "yes");
}

#[test]
fn console_socket_with_create_gets_the_master() {
    let mut b = Bundle::new("console-create");
    b.set("/process/terminal", json!(true));
    b.set(
        "/process/consoleSize",
        json!({ "height": 30, "width": 100 }),
    );
    b.sh(&format!("{REPORT}; read -r line; echo got-$line; exit 7"));
    let rt = Runtime::new("console-create");
    let id = rt.id("c");
    let server = ConsoleServer::new(rt.scratch());
    rt.create_with(&b, &id, &["--console-socket", &server.path()])
        .assert_ok();
    let (msg, master) = server.receive();
    if flavor() == Flavor::Husk {
        let v: Value = serde_json::from_str(&msg).expect("the request is JSON");
        assert_eq!(v, json!({ "type": "terminal", "container": id }));
    }
    let master = Master(master);
    rt.start(&id).assert_ok();
    let out = master.read_until("READY");
    check_report(&out);
    assert_eq!(field(&out, "size"), "30 100");
    // /dev/console is the container's pty.
    assert_eq!(field(&out, "console"), field(&out, "dev"));
    master.send("hello\n");
    assert!(master.read_until("got-hello").contains("got-hello"));
    rt.wait_status(&id, "stopped");
    rt.delete(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn console_socket_with_exec_gets_the_master() {
    let mut b = Bundle::new("console-exec");
    b.args(&["sleep", "1000"]);
    let rt = Runtime::new("console-exec");
    let id = rt.id("c");
    rt.run_detached(&b, &id).assert_ok();
    let server = ConsoleServer::new(rt.scratch());
    let process = json!({
        "terminal": true,
        "consoleSize": { "height": 20, "width": 60 },
        "user": { "uid": 1000, "gid": 1000 },
        "args": ["sh", "-c", format!("echo uid=$(id -u); echo owner=$(stat -c %u $(tty)); {REPORT}; read -r x; echo got-$x")],
        "env": ["PATH=/bin"],
        "cwd": "/"
    });
    let pfile = rt.scratch().join("process.json");
    fs::write(&pfile, process.to_string()).unwrap();
    let pid_file = rt.scratch().join("exec.pid");
    rt.cmd(&[
        "exec",
        "--detach",
        "--console-socket",
        &server.path(),
        "--pid-file",
        &pid_file.to_string_lossy(),
        "--process",
        &pfile.to_string_lossy(),
        &id,
    ])
    .assert_ok();
    let (_, master) = server.receive();
    let master = Master(master);
    let out = master.read_until("READY");
    check_report(&out);
    assert_eq!(field(&out, "size"), "20 60");
    // The terminal belongs to the process's user, so it can reopen it.
    assert_eq!(field(&out, "uid"), "1000");
    assert_eq!(field(&out, "owner"), "1000");
    let pid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .parse()
        .expect("pid file");
    master.send("bye\n");
    master.read_until("got-bye");
    assert!(wait_for(Duration::from_secs(5), || !proc_alive(pid, None)));
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn console_socket_errors() {
    let mut b = Bundle::new("console-errors");
    b.set("/process/terminal", json!(true));
    let rt = Runtime::new("console-errors");
    let id = rt.id("c");
    let nowhere = rt.scratch().join("no-such.sock");
    rt.create_with(&b, &id, &["--console-socket", &nowhere.to_string_lossy()])
        .assert_error("console socket", "no-such.sock");
    rt.assert_nothing_left(&b, &id);
    // A console socket without a terminal is refused, as runc does.
    b.set("/process/terminal", json!(false));
    let server = ConsoleServer::new(rt.scratch());
    rt.create_with(&b, &id, &["--console-socket", &server.path()])
        .assert_error("console-socket", "console socket");
    rt.assert_nothing_left(&b, &id);
}

/// Drives COMMAND... on a new pty (40x132) from python3: the pty is its controlling terminal
/// and stdio. `steps` are (text to wait for, action): an action is text to type, optionally
/// after `resize:ROWSxCOLS;` (the pty is resized first). Returns what the terminal showed, the exit code, whether the terminal
/// was in raw mode while the command ran, and whether its settings were restored after.
const DRIVER: &str = r#"
import fcntl, json, os, select, struct, sys, termios, time
steps = json.loads(sys.argv[1]); argv = sys.argv[2:]
m, s = os.openpty()
fcntl.ioctl(m, termios.TIOCSWINSZ, struct.pack('HHHH', 40, 132, 0, 0))
orig = termios.tcgetattr(s)
pid = os.fork()
if pid == 0:
    os.setsid(); fcntl.ioctl(s, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2): os.dup2(s, fd)
    os.close(m); os.close(s)
    os.execvp(argv[0], argv)
out = b''; raw = None; code = None; deadline = time.time() + 30
while time.time() < deadline:
    r, _, _ = select.select([m], [], [], 0.05)
    if r:
        try: out += os.read(m, 65536)
        except OSError: pass
    if steps and steps[0][0].encode() in out:
        want, act = steps.pop(0)
        if raw is None: raw = not (termios.tcgetattr(s)[3] & termios.ICANON)
        if act.startswith('resize:'):
            size, _, act = act[7:].partition(';')
            rows, cols = map(int, size.split('x'))
            fcntl.ioctl(m, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
            time.sleep(0.3)
        if act: os.write(m, act.encode())
    if code is None:
        p, st = os.waitpid(pid, os.WNOHANG)
        if p:
            code = os.waitstatus_to_exitcode(st)
            end = time.time() + 0.5
            while time.time() < end:
                r, _, _ = select.select([m], [], [], 0.05)
                if r:
                    try: out += os.read(m, 65536)
                    except OSError: break
            break
if code is None: os.kill(pid, 9); os.waitpid(pid, 0)
print(json.dumps({"out": out.decode(errors='replace'), "code": code, "raw": raw,
                  "restored": termios.tcgetattr(s) == orig}))
"#;

struct Driven {
    out: String,
    code: Option<i64>,
    raw: Option<bool>,
    restored: bool,
}

fn drive(steps: &[(&str, &str)], argv: &[String]) -> Driven {
    let steps: Vec<Value> = steps.iter().map(|(w, a)| json!([w, a])).collect();
    let res = Command::new("python3")
        .arg("-c")
        .arg(DRIVER)
        .arg(Value::Array(steps).to_string())
        .args(argv)
        .output()
        .expect("python3 (needed to drive a real pty)");
    assert!(
        res.status.success(),
        "driver failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    let v: Value = serde_json::from_slice(&res.stdout).expect("driver output");
    Driven {
        out: v["out"].as_str().unwrap_or("").replace('\r', ""),
        code: v["code"].as_i64(),
        raw: v["raw"].as_bool(),
        restored: v["restored"].as_bool().unwrap_or(false),
    }
}

fn husk_argv(rt: &Runtime, args: &[&str]) -> Vec<String> {
    let mut v = vec![
        rt.bin().to_string_lossy().into_owned(),
        "--root".into(),
        rt.root_str(),
    ];
    v.extend(args.iter().map(|a| a.to_string()));
    v
}

#[test]
fn run_t_proxies_a_real_terminal() {
    let mut b = Bundle::new("run-tty");
    b.set("/process/terminal", json!(true));
    b.sh(&format!("{REPORT}; read -r line; echo got-$line; exit 3"));
    let rt = Runtime::new("run-tty");
    let id = rt.id("c");
    b.write();
    rt.track(&b, &id);
    let d = drive(
        &[("READY", "typed\n")],
        &husk_argv(&rt, &["run", "--bundle", &b.dir_str(), &id]),
    );
    check_report(&d.out);
    // The container's pty has husk's terminal's size.
    assert_eq!(field(&d.out, "size"), "40 132");
    // Typed input reached the process (and its pty echoed it).
    assert!(
        d.out.contains("typed\n") && d.out.contains("got-typed"),
        "{}",
        d.out
    );
    assert_eq!(d.code, Some(3), "{}", d.out);
    assert_eq!(d.raw, Some(true), "husk's terminal was not in raw mode");
    assert!(d.restored, "husk did not restore its terminal");
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn exec_t_proxies_a_real_terminal_and_follows_its_size() {
    let mut b = Bundle::new("exec-tty");
    b.args(&["sleep", "1000"]);
    let rt = Runtime::new("exec-tty");
    let id = rt.id("c");
    rt.run_detached(&b, &id).assert_ok();
    let script = format!("{REPORT}; read -r x; echo resized=$(stty size); kill -INT $$");
    let d = drive(
        &[("READY", "resize:50x150;go\n")],
        &husk_argv(&rt, &["exec", "-t", &id, "sh", "-c", &script]),
    );
    check_report(&d.out);
    assert_eq!(field(&d.out, "size"), "40 132");
    // SIGWINCH made husk resize the container's pty.
    assert_eq!(field(&d.out, "resized"), "50 150", "{}", d.out);
    assert_eq!(d.code, Some(128 + 2), "{}", d.out);
    assert!(d.restored, "husk did not restore its terminal");
    rt.delete_force(&id).assert_ok();
    rt.assert_nothing_left(&b, &id);
}
