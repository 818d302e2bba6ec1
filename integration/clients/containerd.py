"""containerd 1.6 through ctr: containerd-shim-runc-v2 drives husk (`--runc-binary`) as it
drives runc. A private daemon: its own root, state, socket and config; the runtimes' state
under `--runc-root` in the work dir."""

import os
import subprocess
import time

from lib import (
    Daemon, Fail, cgroup_file, check_state_owner, drive_pty, expect, expect_eq, expect_rc, kill_group, ok, retry, run,
    scenario,
)

IMG = "localhost/busybox:latest"
# ctr's namespace, also the parent cgroup of its containers: unique per run, so that two runs
# on one machine do not share cgroups.
NS = f"husk-clients-{os.getpid()}"
LOOP = "trap 'exit 0' TERM; echo started; while :; do sleep 0.2; done"

CONFIG = """\
version = 2
root = "{root}"
state = "{state}"
disabled_plugins = [
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"

# The CRI plugin (what the kubelet talks to). A Kubernetes RuntimeClass whose handler is
# "husk" selects runtimes.husk below.
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:latest"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  # The host lacks CAP_SYS_RESOURCE: the sandbox's oom_score_adj -998 cannot be set.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{dir}/cni/bin"
    conf_dir = "{dir}/cni/conf"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        Root = "{dir}/cri-root-runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.husk]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.husk.options]
        BinaryName = "{husk}"
        Root = "{dir}/cri-root-husk"
"""


class Containerd(Daemon):
    name = "containerd"

    def __init__(self, work, bins, images):
        self.dir = os.path.join(work, "containerd")
        self.bins = bins
        self.images = images
        self.root = os.path.join(self.dir, "root")
        self.state = os.path.join(self.dir, "state")
        self.sock = os.path.join(self.dir, "containerd.sock")
        self.config = os.path.join(self.dir, "config.toml")
        self.logfile = os.path.join(self.dir, "containerd.log")
        os.makedirs(self.root, exist_ok=True)
        os.makedirs(self.state, exist_ok=True)
        with open(self.config, "w") as f:
            f.write(CONFIG.format(root=self.root, state=self.state, sock=self.sock,
                                  dir=self.dir, **bins))

    def start(self):
        self.spawn(["containerd", "--config", self.config, "--log-level", "info"],
                   lambda: os.path.exists(self.sock) and self.ctr("version").rc == 0, 30, 0.1)
        ok(self.ctr("images", "import", "--base-name", "localhost/busybox",
                    self.images.oci_archive(), timeout=120))

    def stop(self):
        if not self.running():
            return
        for ns in (NS, "k8s.io"):
            ctr = ["ctr", "-a", self.sock, "-n", ns]
            for cid in run(ctr + ["containers", "ls", "-q"]).out.split():
                run(ctr + ["tasks", "kill", "-s", "SIGKILL", cid])
                run(ctr + ["tasks", "delete", "-f", cid])
                run(ctr + ["containers", "delete", cid])
        self.terminate(15)

    def ctr(self, *args, **kw):
        return run(["ctr", "-a", self.sock, "-n", NS] + list(args), **kw)

    def run_argv(self, rt, *opts):
        return ["ctr", "-a", self.sock, "-n", NS, "run", "--runc-binary", self.bins[rt],
                "--runc-root", os.path.join(self.dir, f"runc-root-{rt}")] + list(opts)

    def run(self, rt, *opts, **kw):
        return run(self.run_argv(rt, *opts), **kw)

    def cid(self, rt, what):
        cid = f"{rt}-{what}"
        self.remove(cid)
        return cid

    def remove(self, cid):
        if self.ctr("containers", "info", cid).rc == 0:
            self.ctr("tasks", "kill", "-s", "SIGKILL", cid)
            retry(lambda: self.task_status(cid) in ("STOPPED", None), 5)
            self.ctr("tasks", "delete", "-f", cid)
            self.ctr("containers", "delete", cid)

    def task_status(self, cid):
        """(STATUS) of the task in `ctr task ls`, or None."""
        for line in self.ctr("tasks", "ls").out.splitlines()[1:]:
            f = line.split()
            if f and f[0] == cid:
                return f[2] if len(f) > 2 else None
        return None

    def task_pid(self, cid):
        for line in self.ctr("tasks", "ls").out.splitlines()[1:]:
            f = line.split()
            if f and f[0] == cid:
                return int(f[1])
        raise Fail(f"no task {cid} in ctr task ls")

    def detached(self, rt, what, *opts, cmd=("sh", "-c", LOOP)):
        cid = self.cid(rt, what)
        ok(self.run(rt, "-d", *opts, IMG, cid, *cmd))
        if not retry(lambda: self.task_status(cid) == "RUNNING", 10):
            raise Fail(f"task {cid} not RUNNING: {self.ctr('tasks', 'ls').out!r}")
        check_state_owner(os.path.join(self.dir, f"runc-root-{rt}", NS, cid, "state.json"), rt)
        return cid

    def wait_stopped(self, cid, secs=15):
        if not retry(lambda: self.task_status(cid) == "STOPPED", secs):
            raise Fail(f"task {cid} did not stop: {self.ctr('tasks', 'ls').out!r}")


@scenario("containerd/run-rm-echo")
def _(c, rt):
    r = ok(c.run(rt, "--rm", IMG, c.cid(rt, "echo"), "echo", "hello"))
    expect_eq(r.out, "hello\n", "stdout")
    return r.out


@scenario("containerd/exit-code")
def _(c, rt):
    r = expect_rc(c.run(rt, "--rm", IMG, c.cid(rt, "exit"), "sh", "-c", "exit 3"), 3)
    return r.rc


@scenario("containerd/exit-killed")
def _(c, rt):
    cid = c.cid(rt, "killed")
    p = subprocess.Popen(c.run_argv(rt, "--rm", IMG, cid, "sh", "-c", LOOP),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        expect(retry(lambda: c.task_status(cid) == "RUNNING", 20), "the task never ran")
        ok(c.ctr("tasks", "kill", "-s", "SIGKILL", cid))
        out, err = p.communicate(timeout=30)
    finally:
        kill_group(p.pid)
    expect_eq(p.returncode, 137, f"exit status of ctr run (stderr: {err.strip()})")
    return p.returncode


@scenario("containerd/detached-exec-kill-delete")
def _(c, rt):
    cid = c.detached(rt, "detached")
    try:
        r = ok(c.ctr("tasks", "exec", "--exec-id", "e1", cid, "echo", "hi"))
        expect_eq(r.out, "hi\n", "exec stdout")
        expect_rc(c.ctr("tasks", "exec", "--exec-id", "e2", cid, "sh", "-c", "exit 4"), 4)
        ok(c.ctr("tasks", "kill", "-s", "SIGTERM", cid))
        c.wait_stopped(cid)
        d = c.ctr("tasks", "delete", cid)
        expect_rc(d, 0)
        ok(c.ctr("containers", "delete", cid))
        expect(c.ctr("containers", "info", cid).rc != 0, "container still listed")
        return "ok"
    finally:
        c.remove(cid)


@scenario("containerd/task-start-detached")
def _(c, rt):
    # A new task for an existing container (its record keeps the runtime's BinaryName).
    cid = c.detached(rt, "taskstart")
    try:
        ok(c.ctr("tasks", "kill", "-s", "SIGTERM", cid))
        c.wait_stopped(cid)
        ok(c.ctr("tasks", "delete", cid))
        ok(c.ctr("tasks", "start", "-d", cid))
        expect(retry(lambda: c.task_status(cid) == "RUNNING", 10),
               f"task not RUNNING after task start: {c.ctr('tasks', 'ls').out!r}")
        check_state_owner(os.path.join(c.dir, f"runc-root-{rt}", NS, cid, "state.json"), rt)
        r = ok(c.ctr("tasks", "exec", "--exec-id", "s1", cid, "echo", "again"))
        expect_eq(r.out, "again\n", "exec in the new task")
        return "restarted"
    finally:
        c.remove(cid)


@scenario("containerd/exec-user-cwd")
def _(c, rt):
    cid = c.detached(rt, "execuser")
    try:
        r = ok(c.ctr("tasks", "exec", "--exec-id", "u1", "--user", "65534", "--cwd", "/tmp",
                     cid, "sh", "-c", "id -u; pwd"))
        expect_eq(r.out.split(), ["65534", "/tmp"], "id -u; pwd")
        return r.out
    finally:
        c.remove(cid)


@scenario("containerd/exec-tty")
def _(c, rt):
    cid = c.detached(rt, "exectty")
    try:
        r = drive_pty(["ctr", "-a", c.sock, "-n", NS, "tasks", "exec", "-t", "--exec-id", "t1",
                       cid, "sh"], send=b"echo $((6*7)); tty; exit 5\r")
        expect_rc(r, 5)
        expect("42" in r.out and "/dev/pts/" in r.out, f"terminal output: {r.out!r}")
        return r.rc
    finally:
        c.remove(cid)


@scenario("containerd/run-tty")
def _(c, rt):
    cid = c.cid(rt, "runtty")
    r = drive_pty(c.run_argv(rt, "--rm", "-t", IMG, cid, "sh"),
                  send=b"echo $((6*7)); tty; exit 5\r")
    c.remove(cid)
    expect_rc(r, 5)
    expect("42" in r.out and "/dev/pts/0" in r.out, f"terminal output: {r.out!r}")
    return r.rc


@scenario("containerd/kill-signal")
def _(c, rt):
    cid = c.detached(rt, "kill", cmd=("sh", "-c", "trap 'exit 7' USR1; "
                                                  "while :; do sleep 0.2; done"))
    try:
        time.sleep(0.2)  # let the shell install its trap
        ok(c.ctr("tasks", "kill", "-s", "SIGUSR1", cid))
        c.wait_stopped(cid)
        d = ok(c.ctr("tasks", "delete", cid))
        expect("non-zero exit code 7" in d.err, f"exit status 7 from `ctr task delete`: "
                                                 f"{d.describe()}")
        return 7
    finally:
        c.remove(cid)


@scenario("containerd/task-ps")
def _(c, rt):
    cid = c.detached(rt, "ps")
    try:
        pid = c.task_pid(cid)
        r = ok(c.ctr("tasks", "ps", cid))
        pids = [l.split()[0] for l in r.out.splitlines()[1:] if l.split()]
        expect(str(pid) in pids, f"init pid {pid} not in task ps: {r.out!r}")
        return "init listed"
    finally:
        c.remove(cid)


@scenario("containerd/pause-resume")
def _(c, rt):
    cid = c.detached(rt, "pause")
    try:
        ok(c.ctr("tasks", "pause", cid))
        s1 = c.task_status(cid)
        expect_eq(s1, "PAUSED", "status after pause")
        ok(c.ctr("tasks", "resume", cid))
        s2 = c.task_status(cid)
        expect_eq(s2, "RUNNING", "status after resume")
        ok(c.ctr("tasks", "exec", "--exec-id", "p1", cid, "true"))
        return [s1, s2]
    finally:
        c.remove(cid)


@scenario("containerd/metrics")
def _(c, rt):
    cid = c.detached(rt, "metrics", "--memory-limit", "67108864")
    try:
        r = ok(c.ctr("tasks", "metrics", cid))
        expect("memory.limit_in_bytes" in r.out or "memory.max" in r.out,
               f"metrics: {r.out!r}")
        limit = [l.split()[-1] for l in r.out.splitlines() if "memory.limit_in_bytes" in l]
        expect_eq(limit, ["67108864"], "memory.limit_in_bytes in metrics")
        return limit
    finally:
        c.remove(cid)


@scenario("containerd/memory-limit")
def _(c, rt):
    cid = c.detached(rt, "memory", "--memory-limit", "67108864")
    try:
        v = cgroup_file(c.task_pid(cid), "memory", "memory.limit_in_bytes")
        expect_eq(v, "67108864", "memory.limit_in_bytes")
        return v
    finally:
        c.remove(cid)


@scenario("containerd/mount-bind")
def _(c, rt):
    d = os.path.join(c.dir, f"vol-{rt}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "in"), "w") as f:
        f.write("from-host\n")
    r = ok(c.run(rt, "--rm", "--mount", f"type=bind,src={d},dst=/data,options=rbind:ro", IMG,
                 c.cid(rt, "mountro"), "sh", "-c", "cat /data/in; touch /data/x 2>&1; echo rc=$?"))
    expect("from-host" in r.out and "Read-only" in r.out and "rc=1" in r.out, f"ro: {r.out!r}")
    ok(c.run(rt, "--rm", "--mount", f"type=bind,src={d},dst=/data,options=rbind:rw", IMG,
             c.cid(rt, "mountrw"), "sh", "-c", "echo from-ctr > /data/out"))
    with open(os.path.join(d, "out")) as f:
        expect_eq(f.read(), "from-ctr\n", "file written through the rw mount")
    return r.out


@scenario("containerd/read-only")
def _(c, rt):
    r = ok(c.run(rt, "--rm", "--read-only", IMG, c.cid(rt, "ro"), "sh", "-c",
                 "touch /x 2>&1; echo rc=$?"))
    expect("Read-only file system" in r.out and "rc=1" in r.out, f"touch /x: {r.out!r}")
    return r.out


# ---- CRI: a RuntimeClass handler -> runtimes.<handler> with BinaryName ----------------------

def cri_images(c):
    if not getattr(c, "cri_ready", False):
        for name, cmd in (("busybox", None), ("pause", ["/bin/sleep", "2147483647"])):
            ok(run(["ctr", "-a", c.sock, "-n", "k8s.io", "images", "import", "--base-name",
                    f"localhost/{name}", c.images.oci_archive(name, cmd)], timeout=120))
        c.cri_ready = True


def cri_errors(c):
    with open(c.logfile) as f:
        errs = [l for l in f.read().splitlines() if "level=error" in l]
    return " | ".join(errs[-1:])


@scenario("containerd/cri-runtime-handler")
def _(c, rt):
    # What the kubelet does for a pod whose RuntimeClass has `handler: husk` (or runc):
    # the CRI plugin runs the pod's sandbox and container with runtimes.<handler>, i.e.
    # containerd-shim-runc-v2 with options.BinaryName from config.toml.
    from cri import Cri, GrpcError
    cri_images(c)
    cri = Cri(c.sock)
    logdir = os.path.join(c.dir, f"cri-logs-{rt}")
    os.makedirs(logdir, exist_ok=True)
    pod = None
    try:
        pod = cri.run_pod(f"{rt}-pod", f"uid-{rt}", logdir, rt, f"/{NS}/cri-{rt}")
        check_state_owner(os.path.join(c.dir, f"cri-root-{rt}", "k8s.io", pod, "state.json"),
                          rt)
        cid = cri.create_container(pod, "main", IMG,
                                   ["sh", "-c", "echo from-cri; hostname >/dev/null; exit 3"],
                                   "main.log")
        cri.start_container(cid)
        states = retry(lambda: cri.container_state(cid)[0] == 2 and cri.container_state(cid),
                       20)
        expect(states, f"container never exited: {cri.container_state(cid)}")
        expect_eq(states[1], 3, "exit code reported by CRI")
        with open(os.path.join(logdir, "main.log")) as f:
            lines = [l.split(" ", 3) for l in f.read().splitlines()]
        expect_eq([(l[1], l[3]) for l in lines if len(l) == 4], [("stdout", "from-cri")],
                  "container log (CRI format)")
        return "exit 3, log ok"
    except GrpcError as e:
        raise Fail(f"{e}; containerd: {cri_errors(c)}")
    finally:
        if pod:
            try:
                cri.stop_pod(pod)
                cri.remove_pod(pod)
            except GrpcError as e:
                raise Fail(f"removing the pod: {e}; containerd: {cri_errors(c)}")
