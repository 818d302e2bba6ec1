"""docker (docker.io 20.10): a private dockerd with its own data root, exec root, socket
and daemon.json, husk registered under `runtimes`; `docker run --runtime husk` vs the
built-in runc. dockerd starts its own containerd under the exec root. Bridge networking
and iptables are off (the scenarios use --network none)."""

import json
import os
import subprocess

from lib import (
    Daemon, cgroup_file, check_state_owner, drive_pty, expect, expect_eq, expect_rc,
    kill_group, ok, retry, run, scenario,
)

IMG = "localhost/busybox:latest"
LOOP = "trap 'exit 0' TERM; echo started; while :; do sleep 0.2; done"


class Docker(Daemon):
    name = "docker"

    def __init__(self, work, bins, images):
        self.dir = os.path.join(work, "docker")
        self.bins = bins
        self.images = images
        self.data = os.path.join(self.dir, "data")
        self.exec_root = os.path.join(self.dir, "exec")
        self.sock = os.path.join(self.dir, "docker.sock")
        self.logfile = os.path.join(self.dir, "dockerd.log")
        os.makedirs(self.data, exist_ok=True)
        os.makedirs(self.exec_root, exist_ok=True)
        self.config = os.path.join(self.dir, "daemon.json")
        with open(self.config, "w") as f:
            json.dump({"runtimes": {"husk": {"path": bins["husk"]}},
                       "storage-driver": "overlay2"}, f, indent=2)
        # The docker.io client matches its daemon; a newer one on PATH talks to it too.
        self.client = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"

    def start(self):
        self.spawn(["dockerd", "--config-file", self.config, "--data-root", self.data,
                    "--exec-root", self.exec_root, "--pidfile", os.path.join(self.dir, "docker.pid"),
                    "-H", f"unix://{self.sock}", "--iptables=false", "--ip6tables=false",
                    "--bridge=none", "--log-level", "warn"],
                   lambda: os.path.exists(self.sock) and self.d("version").rc == 0, 60, 0.2)
        ok(run([self.client, "-H", f"unix://{self.sock}", "import", self.images.tar, IMG],
               timeout=120))

    def stop(self):
        if not self.running():
            return
        ids = self.d("ps", "-aq").out.split()
        if ids:
            self.d("rm", "-f", *ids, timeout=120)
        self.terminate(30)

    def d(self, *args, **kw):
        return run([self.client, "-H", f"unix://{self.sock}"] + list(args), **kw)

    def argv(self, rt, *args):
        """`docker run --runtime rt --network none ...args`"""
        return [self.client, "-H", f"unix://{self.sock}", "run", "--runtime", rt,
                "--network", "none"] + list(args)

    def run(self, rt, *args, **kw):
        return run(self.argv(rt, *args), **kw)

    def name_for(self, rt, what):
        n = f"{rt}-{what}"
        self.d("rm", "-f", n)
        return n

    def detached(self, rt, what, *opts, cmd=("sh", "-c", LOOP)):
        n = self.name_for(rt, what)
        cid = ok(self.run(rt, "-d", "--name", n, *opts, IMG, *cmd)).out.strip()
        used = ok(self.d("inspect", "--format", "{{.HostConfig.Runtime}}", n)).out.strip()
        expect_eq(used, rt, "docker inspect .HostConfig.Runtime")
        # dockerd gives every runc-shim runtime the root <exec-root>/runtime-runc.
        check_state_owner(os.path.join(self.exec_root, "runtime-runc", "moby", cid,
                                       "state.json"), rt)
        return n

    def pid(self, n):
        return int(ok(self.d("inspect", "--format", "{{.State.Pid}}", n)).out.strip())


@scenario("docker/run-rm-echo")
def _(c, rt):
    r = ok(c.run(rt, "--rm", IMG, "echo", "hello"))
    expect_eq(r.out, "hello\n", "stdout")
    return r.out


@scenario("docker/exit-code")
def _(c, rt):
    return expect_rc(c.run(rt, "--rm", IMG, "sh", "-c", "exit 3"), 3).rc


@scenario("docker/exit-killed")
def _(c, rt):
    n = c.name_for(rt, "killed")
    p = subprocess.Popen(c.argv(rt, "--rm", "--name", n, IMG, "sh", "-c", LOOP),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        expect(retry(lambda: c.d("inspect", "--format", "{{.State.Status}}", n).out.strip()
                     == "running", 20), "the container never ran")
        ok(c.d("kill", "-s", "KILL", n))
        out, err = p.communicate(timeout=30)
    finally:
        kill_group(p.pid)
    expect_eq(p.returncode, 137, f"exit status of docker run (stderr: {err.strip()})")
    return p.returncode


@scenario("docker/detached-exec-logs-stop")
def _(c, rt):
    n = c.detached(rt, "detached")
    try:
        expect(retry(lambda: c.d("logs", n).out == "started\n"),
               f"logs: {c.d('logs', n).describe()}")
        r = ok(c.d("exec", n, "echo", "hi"))
        expect_eq(r.out, "hi\n", "exec stdout")
        r = ok(c.d("exec", "-u", "nobody", "-w", "/tmp", "-e", "FOO=bar", n, "sh", "-c",
                   "id -u; pwd; echo $FOO"))
        expect_eq(r.out.split(), ["65534", "/tmp", "bar"], "exec -u -w -e")
        expect_rc(c.d("exec", n, "sh", "-c", "exit 4"), 4)
        ok(c.d("stop", "-t", "5", n))
        st = ok(c.d("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", n))
        expect_eq(st.out.strip(), "exited 0", "state after stop")
        ok(c.d("rm", n))
        return st.out.strip()
    finally:
        c.d("rm", "-f", n)


@scenario("docker/run-it-pty")
def _(c, rt):
    r = drive_pty(c.argv(rt, "-it", "--rm", IMG, "sh"), send=b"echo $((6*7)); tty; exit 5\r")
    expect_rc(r, 5)
    expect("42" in r.out and "/dev/pts/0" in r.out, f"terminal output: {r.out!r}")
    return r.rc


@scenario("docker/exec-it-pty")
def _(c, rt):
    n = c.detached(rt, "execit")
    try:
        r = drive_pty([c.client, "-H", f"unix://{c.sock}", "exec", "-it", n, "sh"],
                      send=b"echo $((6*7)); tty; exit 5\r")
        expect_rc(r, 5)
        expect("42" in r.out and "/dev/pts/" in r.out, f"terminal output: {r.out!r}")
        return r.rc
    finally:
        c.d("rm", "-f", n)


def limits(c, rt, what, opts, ctl, name, want):
    n = c.detached(rt, what, *opts)
    try:
        v = cgroup_file(c.pid(n), ctl, name)
        expect_eq(v, want, f"{ctl}/{name}")
        return v
    finally:
        c.d("rm", "-f", n)


@scenario("docker/memory")
def _(c, rt):
    return limits(c, rt, "memory", ["--memory", "64m"], "memory", "memory.limit_in_bytes",
                  "67108864")


@scenario("docker/pids-limit")
def _(c, rt):
    return limits(c, rt, "pids", ["--pids-limit", "20"], "pids", "pids.max", "20")


@scenario("docker/read-only")
def _(c, rt):
    r = ok(c.run(rt, "--rm", "--read-only", IMG, "sh", "-c", "touch /x 2>&1; echo rc=$?"))
    expect("Read-only file system" in r.out and "rc=1" in r.out, f"touch /x: {r.out!r}")
    return r.out


@scenario("docker/default-seccomp-caps")
def _(c, rt):
    # docker's defaults: its seccomp profile and its capability set.
    r = ok(c.run(rt, "--rm", IMG, "grep", "-E", "^(Cap|Seccomp|NoNewPrivs)", "/proc/self/status"))
    f = dict(l.split(":\t") for l in r.out.splitlines())
    expect_eq(f.get("Seccomp"), "2", "seccomp mode")
    return r.out
