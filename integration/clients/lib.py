"""Shared pieces of the client harness: commands with timeouts, a pty driver, the scenario
registry, cgroup/mount/process look-ups for leftovers, and the result table.

Standard library only (python3 >= 3.11)."""

import fcntl
import json
import os
import pty
import re
import select
import signal
import subprocess
import termios
import time

# Every client command gets at most this long; a hang is a failure, not a stuck suite.
CMD_TIMEOUT = 60


class Fail(Exception):
    """A scenario's check failed; the message says what was expected and what came."""


class Skip(Exception):
    """The scenario cannot run on this host at all (for either runtime)."""


class Result:
    def __init__(self, argv, rc, out, err, secs):
        self.argv, self.rc, self.out, self.err, self.secs = argv, rc, out, err, secs

    def cmdline(self):
        return " ".join(quote(a) for a in self.argv)

    def describe(self):
        err = self.err.strip() or self.out.strip()
        return f"`{short(self.cmdline(), 160)}` exited {self.rc}: {short(err, 600)}"


def quote(a):
    if re.fullmatch(r"[A-Za-z0-9_./:=,@%+-]+", a):
        return a
    return "'" + a.replace("'", "'\\''") + "'"


def short(s, n):
    s = s.replace("\n", " | ")
    return s if len(s) <= n else s[: n - 3] + "..."


LOG = None  # file object: every command and its result, for post-mortems


def log(msg):
    if LOG:
        LOG.write(msg + "\n")
        LOG.flush()


def run(argv, env=None, timeout=CMD_TIMEOUT, stdin=None, input=None):
    """Runs argv, captures stdout/stderr. A timeout kills the process group and gives rc 124."""
    t0 = time.monotonic()
    p = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.PIPE if input is not None else (stdin or subprocess.DEVNULL),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        text=True,
        errors="replace",
    )
    try:
        out, err = p.communicate(input=input, timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        kill_group(p.pid)
        out, err = p.communicate()
        err += f"\n[harness: timed out after {timeout}s]"
        rc = 124
    r = Result(argv, rc, out, err, time.monotonic() - t0)
    log(f"$ {r.cmdline()}\n  rc={rc} {r.secs:.2f}s\n  out={out!r}\n  err={err!r}")
    return r


def kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def ok(r):
    """r's exit code must be 0; returns r."""
    if r.rc != 0:
        raise Fail(r.describe())
    return r


def expect(cond, what):
    if not cond:
        raise Fail(what)


def expect_eq(got, want, what):
    if got != want:
        raise Fail(f"{what}: want {want!r}, got {got!r}")


def expect_rc(r, want):
    if r.rc != want:
        raise Fail(f"want exit {want}: {r.describe()}")
    return r


def retry(fn, secs=10.0, step=0.1):
    """Calls fn until it returns a truthy value or secs pass; returns the last value."""
    deadline = time.monotonic() + secs
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


class Daemon:
    """A client's daemon (containerd, dockerd): started in its own session with its output in
    `self.logfile`, and stopped with SIGTERM, then its whole group killed if it lingers."""

    daemon = None
    logfile = None

    def spawn(self, argv, up, secs, step):
        """Starts `argv` and waits until `up()` is true; Fail with its log's tail if not."""
        log = open(self.logfile, "w")
        self.daemon = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                       start_new_session=True)
        if not retry(up, secs, step):
            raise Fail(f"{argv[0]} did not come up; its log: {self.tail_log()}")

    def tail_log(self, n=15):
        try:
            with open(self.logfile) as f:
                return " | ".join(f.read().splitlines()[-n:])
        except OSError:
            return ""

    def running(self):
        return self.daemon is not None and self.daemon.poll() is None

    def terminate(self, secs):
        self.daemon.terminate()
        try:
            self.daemon.wait(timeout=secs)
        except subprocess.TimeoutExpired:
            kill_group(self.daemon.pid)
            self.daemon.wait()


def drive_pty(argv, env=None, send=b"", wait_for=b"# ", timeout=30):
    """Runs argv on a new pty as its controlling terminal (a real terminal, as a user at a
    shell would), waits until the output shows `wait_for`, types `send`, reads until the
    program exits. Returns Result with the terminal's output in .out."""
    master, slave = pty.openpty()
    # A sane window size: some clients refuse a 0x0 terminal.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, b"\x18\x00\x50\x00\x00\x00\x00\x00")

    def ctty():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    t0 = time.monotonic()
    p = subprocess.Popen(
        argv,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=ctty,
    )
    os.close(slave)
    buf = b""
    sent = False
    deadline = time.monotonic() + timeout
    timed_out = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        if not sent and wait_for in buf:
            os.write(master, send)
            sent = True
        r, _, _ = select.select([master], [], [], min(left, 0.5 if sent else 0.2))
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every slave fd closed
                break
            if not chunk:
                break
            buf += chunk
        elif p.poll() is not None and not r:
            # Program gone; drain what is left.
            try:
                while select.select([master], [], [], 0.1)[0]:
                    chunk = os.read(master, 4096)
                    if not chunk:
                        break
                    buf += chunk
            except OSError:
                pass
            break
        if not sent and time.monotonic() - t0 > timeout / 2:
            # No prompt seen: type anyway, the check below will tell.
            os.write(master, send)
            sent = True
    if timed_out:
        kill_group(p.pid)
    try:
        rc = p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        kill_group(p.pid)
        rc = p.wait()
    os.close(master)
    out = buf.decode(errors="replace").replace("\r", "")
    err = "[harness: timed out]" if timed_out else ""
    r = Result(argv, 124 if timed_out else rc, out, err, time.monotonic() - t0)
    log(f"$ [pty] {r.cmdline()}\n  sent={send!r}\n  rc={r.rc} {r.secs:.2f}s\n  out={out!r}")
    return r


# ---- the host: cgroups, mounts, processes ----------------------------------------------

CGROUP_ROOT = "/sys/fs/cgroup"


def cgroup_file(pid, controller, name):
    """Reads `name` in process pid's cgroup of the v1 `controller` hierarchy (or the v2 one)."""
    rel = None
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                rel = path
                base = f"{CGROUP_ROOT}/{ctrls}"
                if not os.path.isdir(base):
                    base = f"{CGROUP_ROOT}/{controller}"
                break
            if ctrls == "" and rel is None and os.path.exists(f"{CGROUP_ROOT}/cgroup.controllers"):
                rel, base = path, CGROUP_ROOT
    if rel is None:
        raise Fail(f"process {pid} has no {controller} cgroup")
    p = f"{base}{rel}/{name}"
    try:
        with open(p) as f:
            return f.read().strip()
    except OSError as e:
        raise Fail(f"reading {p}: {e}")


def cgroup_dirs_named(substr):
    """Every cgroup directory (any hierarchy, any depth <= 4) whose name contains substr."""
    found = []
    for hier in os.listdir(CGROUP_ROOT):
        top = os.path.join(CGROUP_ROOT, hier)
        if not os.path.isdir(top) or os.path.islink(top):
            continue
        for dirpath, dirnames, _ in os.walk(top):
            if dirpath.count("/") - top.count("/") >= 4:
                dirnames[:] = []
            for d in dirnames:
                if substr in d:
                    found.append(os.path.join(dirpath, d))
    return found


def mounts_matching(substrs):
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if any(s in line for s in substrs):
                out.append(line.split()[4])
    return out


def mounts_under(prefix):
    res = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == prefix or mp.startswith(prefix.rstrip("/") + "/"):
                res.append(mp)
    return res


def processes_matching(substrs):
    """(pid, cmdline) of every process whose command line contains one of substrs."""
    res = []
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if cmd and any(s in cmd for s in substrs):
            res.append((int(d), cmd))
    return res


def unmount_all_under(prefix):
    """Lazily unmounts every mount at or below prefix, deepest first."""
    for mp in sorted(set(mounts_under(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL)


def kill_processes_matching(substrs):
    """SIGKILL to processes this harness started (found by its unique work dir in their
    command line), by pid."""
    for pid, _ in processes_matching(substrs):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def which(name):
    for d in os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(":"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK) and os.path.isfile(p):
            return p
    return None


# ---- the scenario registry -------------------------------------------------------------

REGISTRY = []  # (name, fn): fn(client, runtime_name) -> observation, raises Fail


def scenario(name):
    """Registers fn as scenario `name` ("client/what"). fn(client, rt) runs it with runtime
    rt ("husk" or "runc"), raises Fail when a check fails, and returns an observation: a
    value that must be the same for both runtimes (output, exit code, state)."""

    def deco(fn):
        REGISTRY.append((name, fn))
        return fn

    return deco


NOTES = {}  # (scenario, rt) -> text shown beside the result
CURRENT = [None, None]


def note(text):
    """Attaches a remark (a timing, say) to the running scenario's result; not compared."""
    NOTES[tuple(CURRENT)] = text


class Images:
    """The busybox image: a rootfs tarball (podman import, docker import) and, built from
    it on first use, an OCI archive (`podman save --format oci-archive`, for ctr import)."""

    def __init__(self, work, tar):
        self.work, self.tar, self._oci = work, tar, None

    def oci_archive(self, name="busybox", cmd=None):
        """`podman save --format oci-archive` of localhost/NAME:latest imported from the
        rootfs tarball, with CMD cmd (a list) when given."""
        self._oci = self._oci or {}
        if name not in self._oci:
            d = os.path.join(self.work, "image-build")
            base = ["podman", "--root", f"{d}/root", "--runroot", f"{d}/runroot",
                    "--tmpdir", f"{d}/tmp", "--storage-driver", "vfs"]
            os.makedirs(d, exist_ok=True)
            conf = os.path.join(d, "storage.conf")
            with open(conf, "w") as f:
                f.write(f'[storage]\ndriver = "vfs"\nrunroot = "{d}/runroot"\n'
                        f'graphroot = "{d}/root"\n')
            empty = os.path.join(d, "containers.conf")
            open(empty, "w").close()
            env = dict(os.environ, CONTAINERS_CONF=empty, CONTAINERS_STORAGE_CONF=conf)
            ref = f"localhost/{name}:latest"
            change = ["--change", "CMD " + json.dumps(cmd)] if cmd else []
            ok(run(base + ["import"] + change + [self.tar, ref], env=env))
            out = os.path.join(self.work, f"{name}-oci.tar")
            ok(run(base + ["save", "--format", "oci-archive", "-o", out, ref], env=env))
            self._oci[name] = out
        return self._oci[name]


def check_state_owner(state_json, rt):
    """The container's state.json in the runtime's root was written by runtime rt (so the
    client really ran rt): runc's has init_process_pid, husk's has pidStartTime."""
    try:
        with open(state_json) as f:
            st = json.load(f)
    except (OSError, ValueError) as e:
        raise Fail(f"{rt} did not run this container: reading {state_json}: {e}")
    owner = "runc" if "init_process_pid" in st else "husk" if "pidStartTime" in st else "?"
    if owner != rt:
        raise Fail(f"{state_json} was written by {owner}, not {rt}")


def netavark_rules_present():
    r = subprocess.run(["iptables-save"], capture_output=True, text=True)
    return "NETAVARK" in r.stdout


def remove_netavark_rules():
    """Removes the iptables chains netavark (podman's default network) leaves behind, and
    the rules that jump to them: called only when they were not there before the run."""
    import shlex
    for table in ("filter", "nat"):
        rules = subprocess.run(["iptables", "-t", table, "-S"], capture_output=True,
                               text=True).stdout.splitlines()
        chains = [l.split()[1] for l in rules if l.startswith("-N NETAVARK")]
        for l in rules:
            a = shlex.split(l)
            if a[:1] == ["-A"] and not a[1].startswith("NETAVARK") and "NETAVARK" in l:
                subprocess.run(["iptables", "-t", table, "-D"] + a[1:],
                               stderr=subprocess.DEVNULL)
        for ch in chains:
            subprocess.run(["iptables", "-t", table, "-F", ch], stderr=subprocess.DEVNULL)
        for ch in chains:
            subprocess.run(["iptables", "-t", table, "-X", ch], stderr=subprocess.DEVNULL)
