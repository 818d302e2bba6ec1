"""podman 4.3 through conmon, with husk registered in containers.conf; runc is the control.

Everything podman keeps lives under the harness's work dir (--root, --runroot, --tmpdir,
its own containers.conf and storage.conf). The runtimes keep their state in their default
roots (/run/husk, /run/runc), as they do for a real user: the leftover check looks there."""

import json
import os
import subprocess
import time

from lib import (
    Fail, Skip, cgroup_dirs_named, check_state_owner, cgroup_file, drive_pty, expect, expect_eq, expect_rc,
    kill_group, mounts_matching, note, ok, processes_matching, retry, run, scenario, unmount_all_under,
)

IMG = "localhost/busybox:latest"
# A main process that reports it started, stops on SIGTERM within 0.2 s, and otherwise waits.
LOOP = "trap 'exit 0' TERM; echo started; while :; do sleep 0.2; done"

CONTAINERS_CONF = """\
[containers]
# The host lacks CAP_SYS_RESOURCE: podman's defaults (nofile 1048576) cannot be granted.
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
# No network unless a scenario asks for one (the default bridge is its own scenario).
netns = "none"
init_path = "{init}"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime_supports_json = ["husk", "runc", "crun"]

[engine.runtimes]
husk = ["{husk}"]
runc = ["{runc}"]
"""

STORAGE_CONF = """\
[storage]
driver = "overlay"
runroot = "{runroot}"
graphroot = "{root}"
"""


class Podman:
    name = "podman"

    def __init__(self, work, bins, images):
        self.dir = os.path.join(work, "podman")
        self.bins = bins
        self.images = images
        self.fixtures = {}
        self.root = os.path.join(self.dir, "root")
        self.runroot = os.path.join(self.dir, "runroot")
        self.tmp = os.path.join(self.dir, "tmp")
        for d in (self.root, self.runroot, self.tmp):
            os.makedirs(d, exist_ok=True)
        conf = os.path.join(self.dir, "containers.conf")
        init = "/usr/bin/tini-static" if os.path.exists("/usr/bin/tini-static") else ""
        with open(conf, "w") as f:
            f.write(CONTAINERS_CONF.format(init=init, **bins))
        storage = os.path.join(self.dir, "storage.conf")
        with open(storage, "w") as f:
            f.write(STORAGE_CONF.format(root=self.root, runroot=self.runroot))
        self.env = dict(os.environ, CONTAINERS_CONF=conf, CONTAINERS_STORAGE_CONF=storage)
        self.base = [
            "podman", "--root", self.root, "--runroot", self.runroot, "--tmpdir", self.tmp,
            "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs",
            "--events-backend", "file",
        ]

    def start(self):
        ok(run(self.base + ["import", self.images.tar, IMG], env=self.env, timeout=120))

    def stop(self):
        run(self.base + ["rm", "--all", "--force", "--time", "0"], env=self.env, timeout=120)
        unmount_all_under(self.dir)

    def p(self, rt, *args, **kw):
        return run(self.base + ["--runtime", rt] + list(args), env=self.env, **kw)

    def argv(self, rt, *args):
        return self.base + ["--runtime", rt] + list(args)

    def name_for(self, rt, what):
        return f"{rt}-{what}"

    def detached(self, rt, what, *opts, cmd=("sh", "-c", LOOP)):
        """Starts a detached container; returns its name after its first line of output."""
        n = self.name_for(rt, what)
        self.p(rt, "rm", "-f", "-t", "0", n)
        ok(self.p(rt, "run", "-d", "--name", n, *opts, IMG, *cmd))
        r = ok(self.p(rt, "inspect", "--format", "{{.Id}} {{.OCIRuntime}}", n))
        cid, used = r.out.split()
        expect_eq(used, rt, "podman inspect .OCIRuntime")
        check_state_owner(f"/run/{rt}/{cid}/state.json", rt)
        return n

    def remove(self, rt, n):
        self.p(rt, "rm", "-f", "-t", "0", n)

    def fixture(self, rt):
        """One long-running container per runtime, shared by the exec scenarios."""
        if rt not in self.fixtures:
            try:
                self.fixtures[rt] = (self.detached(rt, "fixture"), None)
            except Fail as e:
                self.fixtures[rt] = (None, f"starting the shared container: {e}")
        n, err = self.fixtures[rt]
        if err:
            raise Fail(err)
        return n

    def pid(self, rt, n):
        r = ok(self.p(rt, "inspect", "--format", "{{.State.Pid}}", n))
        return int(r.out.strip())

    def status(self, rt, n):
        return ok(self.p(rt, "inspect", "--format", "{{.State.Status}}", n)).out.strip()

    def wait_logs(self, rt, n, text, secs=10):
        r = retry(lambda: text in self.p(rt, "logs", n).out, secs)
        if not r:
            raise Fail(f"logs of {n} never showed {text!r}: {self.p(rt, 'logs', n).describe()}")


def in_container(c, rt, *args):
    """`podman run --rm [opts] IMG cmd`; returns the Result (exit code not checked)."""
    return c.p(rt, "run", "--rm", *args)


# ---- run --rm ------------------------------------------------------------------------------

@scenario("podman/run-echo")
def _(c, rt):
    r = ok(in_container(c, rt, IMG, "echo", "hello"))
    expect_eq(r.out, "hello\n", "stdout")
    return r.out


@scenario("podman/run-runtime-path")
def _(c, rt):
    # --runtime with a path instead of a name registered in containers.conf.
    r = ok(run(c.base + ["--runtime", c.bins[rt], "run", "--rm", IMG, "echo", "by-path"],
               env=c.env))
    expect_eq(r.out, "by-path\n", "stdout")
    return r.out


@scenario("podman/exit-code")
def _(c, rt):
    r = expect_rc(in_container(c, rt, IMG, "sh", "-c", "echo out; exit 3"), 3)
    expect_eq(r.out, "out\n", "stdout")
    return r.rc


@scenario("podman/exit-killed")
def _(c, rt):
    # `podman run --rm` in the foreground whose container is killed by SIGKILL: 137.
    n = c.name_for(rt, "killed")
    p = subprocess.Popen(c.argv(rt, "run", "--rm", "--name", n, IMG, "sh", "-c", LOOP),
                         env=c.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True, text=True)
    try:
        expect(retry(lambda: c.p(rt, "inspect", "--format", "{{.State.Status}}", n).out.strip()
                     == "running", 20), "the container never ran")
        ok(c.p(rt, "kill", "-s", "KILL", n))
        out, err = p.communicate(timeout=30)
    finally:
        kill_group(p.pid)
    expect_eq(p.returncode, 137, f"exit status of podman run (stderr: {err.strip()})")
    return p.returncode


@scenario("podman/run-nonexistent-cmd")
def _(c, rt):
    # The runtime's error comes back through its JSON log (runtime_supports_json): podman
    # prints it as one clean error line, exit 127.
    r = expect_rc(in_container(c, rt, IMG, "/nonexistent"), 127)
    lines = [l for l in r.err.splitlines() if l.strip()]
    expect(len(lines) == 1 and lines[0].startswith("Error: "),
           f"stderr should be one 'Error:' line, got: {r.err.strip()!r}")
    expect("/nonexistent" in lines[0], f"error does not name the program: {lines[0]!r}")
    expect("{" not in lines[0] and "level=" not in lines[0],
           f"the runtime's JSON log leaked into the message: {lines[0]!r}")
    return r.rc


@scenario("podman/json-log")
def _(c, rt):
    # Every line husk writes to podman's --log file is a JSON object podman can parse.
    n = c.detached(rt, "jsonlog")
    try:
        cid = ok(c.p(rt, "inspect", "--format", "{{.Id}}", n)).out.strip()
        ok(c.p(rt, "stop", "-t", "5", n))
        path = os.path.join(c.runroot, "overlay-containers", cid, "userdata", "oci-log")
        lines = []
        if os.path.exists(path):
            with open(path) as f:
                lines = [l for l in f.read().splitlines() if l.strip()]
        for l in lines:
            try:
                o = json.loads(l)
            except ValueError as e:
                raise Fail(f"{path}: not JSON ({e}): {l!r}")
            expect(isinstance(o, dict) and "msg" in o and "level" in o,
                   f"{path}: a log line without level/msg: {l!r}")
            expect(o["level"] not in ("error", "fatal", "panic"), f"{path}: error logged: {l!r}")
        return "ok"
    finally:
        c.remove(rt, n)


# ---- detached: ps, logs, exec, stop, rm ----------------------------------------------------

@scenario("podman/detached-ps-logs-stop-rm")
def _(c, rt):
    n = c.detached(rt, "detached")
    try:
        c.wait_logs(rt, n, "started")
        r = ok(c.p(rt, "ps", "--filter", f"name=^{n}$", "--format", "{{.Names}} {{.Status}}"))
        expect(r.out.startswith(f"{n} Up"), f"podman ps: {r.out!r}")
        expect_eq(ok(c.p(rt, "logs", n)).out, "started\n", "logs")
        ok(c.p(rt, "stop", "-t", "5", n))
        st = ok(c.p(rt, "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", n))
        expect_eq(st.out.strip(), "exited 0", "state after stop")
        ok(c.p(rt, "rm", n))
        expect(c.p(rt, "inspect", n).rc != 0, "container still there after rm")
        return st.out.strip()
    finally:
        c.remove(rt, n)


@scenario("podman/exec")
def _(c, rt):
    n = c.fixture(rt)
    r = ok(c.p(rt, "exec", n, "echo", "hi"))
    expect_eq(r.out, "hi\n", "stdout")
    r = expect_rc(c.p(rt, "exec", n, "sh", "-c", "exit 4"), 4)
    return "hi/4"


@scenario("podman/exec-tty")
def _(c, rt):
    n = c.fixture(rt)
    r = ok(c.p(rt, "exec", "-t", n, "tty"))
    expect(r.out.strip().startswith("/dev/pts/"), f"tty in exec -t: {r.out!r}")
    return "pts"


@scenario("podman/exec-it-pty")
def _(c, rt):
    n = c.fixture(rt)
    r = drive_pty(c.argv(rt, "exec", "-it", n, "sh"), env=c.env,
                  send=b"echo $((6*7)); tty; exit 5\r")
    expect_rc(r, 5)
    expect("42" in r.out and "/dev/pts/" in r.out, f"terminal output: {r.out!r}")
    return r.rc


@scenario("podman/exec-user")
def _(c, rt):
    n = c.fixture(rt)
    r = ok(c.p(rt, "exec", "-u", "nobody", n, "id"))
    expect(r.out.startswith("uid=65534(nobody) gid=65534(nobody)"), f"id: {r.out!r}")
    r2 = ok(c.p(rt, "exec", "-u", "1000:1000", n, "id", "-u"))
    expect_eq(r2.out.strip(), "1000", "id -u")
    return r.out


@scenario("podman/exec-workdir")
def _(c, rt):
    r = ok(c.p(rt, "exec", "-w", "/tmp", c.fixture(rt), "pwd"))
    expect_eq(r.out.strip(), "/tmp", "pwd")
    return r.out


@scenario("podman/exec-env")
def _(c, rt):
    r = ok(c.p(rt, "exec", "-e", "FOO=bar", c.fixture(rt), "sh", "-c", "echo $FOO"))
    expect_eq(r.out.strip(), "bar", "$FOO")
    return r.out


@scenario("podman/run-it-pty")
def _(c, rt):
    # -it: conmon passes --console-socket, the runtime sends the pty master back.
    r = drive_pty(c.argv(rt, "run", "-it", "--rm", IMG, "sh"), env=c.env,
                  send=b"echo $((6*7)); tty; exit 5\r")
    expect_rc(r, 5)
    expect("42" in r.out and "/dev/pts/0" in r.out, f"terminal output: {r.out!r}")
    return r.rc


# ---- the container's setup ------------------------------------------------------------------

@scenario("podman/read-only")
def _(c, rt):
    r = ok(in_container(c, rt, "--read-only", IMG, "sh", "-c",
                        "touch /x 2>&1; echo rc=$?; touch /tmp/y && echo tmp-ok"))
    expect("Read-only file system" in r.out and "rc=1" in r.out, f"touch /x: {r.out!r}")
    expect("tmp-ok" in r.out, f"/tmp should stay writable: {r.out!r}")
    return r.out


@scenario("podman/tmpfs")
def _(c, rt):
    r = ok(in_container(c, rt, "--tmpfs", "/scratch:rw,size=1m,mode=1777", IMG, "sh", "-c",
                        "grep ' /scratch ' /proc/mounts; touch /scratch/f && echo w-ok"))
    line = r.out.splitlines()[0] if r.out else ""
    f = line.split()
    expect(len(f) >= 4 and f[2] == "tmpfs" and "size=1024k" in f[3], f"mount: {line!r}")
    expect("w-ok" in r.out, f"write: {r.out!r}")
    return f[3]


@scenario("podman/volume-ro-rw")
def _(c, rt):
    d = os.path.join(c.dir, f"vol-{rt}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "in"), "w") as f:
        f.write("from-host\n")
    r = ok(in_container(c, rt, "-v", f"{d}:/data:ro", IMG, "sh", "-c",
                        "cat /data/in; touch /data/x 2>&1; echo rc=$?"))
    expect("from-host" in r.out and "Read-only" in r.out and "rc=1" in r.out, f"ro: {r.out!r}")
    ok(in_container(c, rt, "-v", f"{d}:/data", IMG, "sh", "-c", "echo from-ctr > /data/out"))
    with open(os.path.join(d, "out")) as f:
        expect_eq(f.read(), "from-ctr\n", "file written through the rw volume")
    return r.out


@scenario("podman/cap-drop-add")
def _(c, rt):
    r = ok(in_container(c, rt, "--cap-drop", "all", "--cap-add", "NET_RAW,CHOWN", IMG,
                        "grep", "^Cap", "/proc/self/status"))
    caps = dict(l.split(":\t") for l in r.out.splitlines())
    expect_eq(caps.get("CapEff"), "0000000000002001", "CapEff")
    expect_eq(caps.get("CapBnd"), "0000000000002001", "CapBnd")
    return r.out


@scenario("podman/caps-default")
def _(c, rt):
    return ok(in_container(c, rt, IMG, "grep", "^Cap", "/proc/self/status")).out


@scenario("podman/seccomp-unconfined")
def _(c, rt):
    r = ok(in_container(c, rt, "--security-opt", "seccomp=unconfined", IMG,
                        "grep", "^Seccomp:", "/proc/self/status"))
    expect_eq(r.out.split(), ["Seccomp:", "0"], "seccomp mode")
    return r.out


@scenario("podman/seccomp-default")
def _(c, rt):
    r = ok(in_container(c, rt, IMG, "grep", "^Seccomp", "/proc/self/status"))
    f = dict(l.split(":\t") for l in r.out.splitlines())
    expect_eq(f.get("Seccomp"), "2", "seccomp mode (2 = filter)")
    return r.out


@scenario("podman/device")
def _(c, rt):
    r = ok(in_container(c, rt, "--device", "/dev/zero:/dev/myzero", IMG, "sh", "-c",
                        "ls -l /dev/myzero | cut -c1; head -c 3 /dev/myzero | od -An -tx1"))
    expect_eq(r.out.split(), ["c", "00", "00", "00"], "device node and its content")
    return r.out


@scenario("podman/userns-uidmap")
def _(c, rt):
    r = ok(in_container(c, rt, "--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536", IMG,
                        "sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u"))
    expect_eq(r.out.split(), ["0", "100000", "65536"] * 2 + ["0"], "uid/gid maps")
    return r.out


@scenario("podman/hostname")
def _(c, rt):
    r = ok(in_container(c, rt, "--hostname", "box", IMG, "hostname"))
    expect_eq(r.out.strip(), "box", "hostname")
    return r.out


@scenario("podman/network-none")
def _(c, rt):
    r = ok(in_container(c, rt, "--network", "none", IMG, "ls", "/sys/class/net"))
    expect_eq(r.out.split(), ["lo"], "interfaces")
    return r.out


@scenario("podman/network-default")
def _(c, rt):
    # podman's default network for root (netavark bridge podman0, 10.88.0.0/16).
    r = ok(in_container(c, rt, "--network", "bridge", IMG, "sh", "-c",
                        "ip -o -4 addr show eth0; ip route"))
    expect("10.88." in r.out and "default via" in r.out, f"eth0: {r.out!r}")
    return "10.88/default-route"


@scenario("podman/init")
def _(c, rt):
    r = ok(in_container(c, rt, "--init", IMG, "sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline"))
    expect(r.out.startswith("/run/podman-init -- sh"), f"pid 1: {r.out!r}")
    return r.out


# ---- resources --------------------------------------------------------------------------

def with_limits(c, rt, what, opts, checks):
    n = c.detached(rt, what, *opts)
    try:
        pid = c.pid(rt, n)
        got = {f"{ctl}/{name}": cgroup_file(pid, ctl, name) for ctl, name, _ in checks}
        want = {f"{ctl}/{name}": v for ctl, name, v in checks}
        expect_eq(got, want, "cgroup values")
        return got
    finally:
        c.remove(rt, n)


@scenario("podman/memory")
def _(c, rt):
    return with_limits(c, rt, "memory", ["--memory", "64m"],
                       [("memory", "memory.limit_in_bytes", "67108864")])


@scenario("podman/cpus")
def _(c, rt):
    return with_limits(c, rt, "cpus", ["--cpus", "0.5"],
                       [("cpu", "cpu.cfs_quota_us", "50000"),
                        ("cpu", "cpu.cfs_period_us", "100000")])


@scenario("podman/pids-limit")
def _(c, rt):
    return with_limits(c, rt, "pids", ["--pids-limit", "20"], [("pids", "pids.max", "20")])


@scenario("podman/update")
def _(c, rt):
    n = c.detached(rt, "update", "--memory", "64m")
    try:
        ok(c.p(rt, "update", "--memory", "128m", n))
        v = cgroup_file(c.pid(rt, n), "memory", "memory.limit_in_bytes")
        expect_eq(v, "134217728", "memory.limit_in_bytes after update")
        return v
    finally:
        c.remove(rt, n)


@scenario("podman/stats")
def _(c, rt):
    n = c.fixture(rt)
    r = ok(c.p(rt, "stats", "--no-stream", "--format", "json", n))
    try:
        s = json.loads(r.out)
    except ValueError as e:
        raise Fail(f"stats output is not JSON ({e}): {r.out!r}")
    expect(isinstance(s, list) and len(s) == 1 and s[0].get("name") == n, f"stats: {r.out!r}")
    expect(s[0].get("mem_usage", "").split("/")[0].strip() not in ("", "0B"), f"stats: {s[0]}")
    return sorted(s[0].keys())


# ---- process control -------------------------------------------------------------------------

@scenario("podman/pause-unpause")
def _(c, rt):
    n = c.detached(rt, "pause")
    try:
        ok(c.p(rt, "pause", n))
        s1 = c.status(rt, n)
        expect_eq(s1, "paused", "status after pause")
        ok(c.p(rt, "unpause", n))
        s2 = c.status(rt, n)
        expect_eq(s2, "running", "status after unpause")
        ok(c.p(rt, "exec", n, "true"))
        return [s1, s2]
    finally:
        c.remove(rt, n)


@scenario("podman/top")
def _(c, rt):
    r = ok(c.p(rt, "top", c.fixture(rt), "pid", "args"))
    expect("while :" in r.out or "sh -c" in r.out, f"top: {r.out!r}")
    return "sh"


@scenario("podman/kill-signal")
def _(c, rt):
    n = c.detached(rt, "kill", cmd=("sh", "-c", "trap 'echo got-usr1; exit 7' USR1; "
                                               "echo started; while :; do sleep 0.2; done"))
    try:
        c.wait_logs(rt, n, "started")
        ok(c.p(rt, "kill", "-s", "USR1", n))
        w = ok(c.p(rt, "wait", n))
        expect_eq(w.out.strip(), "7", "exit code after USR1")
        c.wait_logs(rt, n, "got-usr1")
        return w.out.strip()
    finally:
        c.remove(rt, n)


@scenario("podman/inspect-states")
def _(c, rt):
    n = c.name_for(rt, "states")
    c.remove(rt, n)
    try:
        ok(c.p(rt, "create", "--name", n, IMG, "sh", "-c", LOOP))
        seen = [c.status(rt, n)]
        ok(c.p(rt, "start", n))
        seen.append(c.status(rt, n))
        c.wait_logs(rt, n, "started")
        ok(c.p(rt, "kill", "-s", "TERM", n))
        ok(c.p(rt, "wait", n))
        r = ok(c.p(rt, "inspect", "--format", "{{.State.Status}}:{{.State.ExitCode}}", n))
        seen.append(r.out.strip())
        expect_eq(seen, ["created", "running", "exited:0"], "states")
        return seen
    finally:
        c.remove(rt, n)


@scenario("podman/restart")
def _(c, rt):
    n = c.detached(rt, "restart")
    try:
        c.wait_logs(rt, n, "started")
        pid1 = c.pid(rt, n)
        ok(c.p(rt, "restart", "-t", "5", n))
        expect_eq(c.status(rt, n), "running", "status after restart")
        pid2 = c.pid(rt, n)
        expect(pid1 != pid2, "same pid after restart")
        expect(retry(lambda: c.p(rt, "logs", n).out == "started\nstarted\n"),
               f"logs after restart: {c.p(rt, 'logs', n).out!r}")
        return "restarted"
    finally:
        c.remove(rt, n)


# ---- many runs, nothing left --------------------------------------------------------------

SEQ_RUNS = 50


@scenario("podman/50-runs-no-leftovers")
def _(c, rt):
    state_root = f"/run/{rt}"
    before = set(os.listdir(state_root)) if os.path.isdir(state_root) else set()
    ids = []
    t0 = time.monotonic()
    for i in range(SEQ_RUNS):
        cidfile = os.path.join(c.dir, f"seq-{rt}-{i}.cid")
        r = run(c.base + ["--runtime", rt, "run", "--rm", "--cidfile", cidfile, IMG, "true"],
                env=c.env)
        if os.path.exists(cidfile):
            with open(cidfile) as f:
                ids.append(f.read().strip())
            os.unlink(cidfile)
        if r.rc != 0:
            raise Fail(f"run {i + 1} of {SEQ_RUNS}: {r.describe()}")
    secs = time.monotonic() - t0
    left = []
    after = set(os.listdir(state_root)) if os.path.isdir(state_root) else set()
    left += [f"state dir {state_root}/{d}" for d in sorted(after - before) if d in ids]
    for cid in ids:
        left += [f"cgroup {d}" for d in cgroup_dirs_named(cid)]
    left += [f"mount {m}" for m in mounts_matching(ids)]
    left += [f"process {p}: {cmd[:100]}" for p, cmd in processes_matching(ids)]
    expect(not left, f"left behind after {SEQ_RUNS} runs: " + "; ".join(left[:10]))
    note(f"{secs / SEQ_RUNS:.2f} s/run")
    return f"{SEQ_RUNS} runs, nothing left"
