"""Rootless: an ordinary user runs the runtime by hand and through rootless podman (4.3,
`--cgroup-manager cgroupfs --network none`, as this host needs: HOST.md); runc is the control.

The harness creates the user (`husk-rootless`, with the subordinate ids useradd gives it, or
a free range it adds), its XDG_RUNTIME_DIR (/run/user/UID, 0700) and a home with the
binaries under test, a busybox bundle and podman's storage; every command runs as that user
through runuser with a clean environment. At the end the user's processes are killed, its
mounts undone, and the user, its home, its subordinate ids and its runtime dir removed.
After each scenario the runtime's state root in XDG_RUNTIME_DIR must hold no container and
no process of the scenario may be left."""

import json
import os
import pwd
import shutil
import subprocess
import time

from lib import (
    Fail, drive_pty, expect, expect_eq, expect_rc, kill_group, note, ok, retry, run, scenario,
    unmount_all_under,
)

USER = "husk-rootless"
IMG = "localhost/busybox:latest"
LOOP = "trap 'exit 0' TERM; echo started; while :; do sleep 0.2; done"
# What the runtime's own root is called in XDG_RUNTIME_DIR.
STATE = {"husk": "husk", "runc": "runc"}

CONTAINERS_CONF = """\
[containers]
netns = "none"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime_supports_json = ["husk", "runc"]

[engine.runtimes]
husk = ["{husk}"]
runc = ["{runc}"]
"""


def subid_ranges(path, name, uid):
    out = []
    try:
        with open(path) as f:
            for line in f:
                p = line.strip().split(":")
                if len(p) == 3 and p[0] in (name, str(uid)):
                    out.append((int(p[1]), int(p[2])))
    except OSError:
        pass
    return out


def drop_subid_lines(path, name, uid):
    try:
        with open(path) as f:
            lines = f.readlines()
    except OSError:
        return
    keep = [l for l in lines if l.split(":", 1)[0] not in (name, str(uid))]
    if keep != lines:
        with open(path, "w") as f:
            f.writelines(keep)


class Rootless:
    name = "rootless"

    def __init__(self, work, bins, images):
        self.work, self.host_bins, self.images = work, bins, images
        self.uid = None

    # ---- the user ----------------------------------------------------------------------

    def start(self):
        self.remove_user()  # a previous run killed half-way
        ok(run(["useradd", "--create-home", "--shell", "/bin/sh", USER]))
        pw = pwd.getpwnam(USER)
        self.uid, self.gid, self.home = pw.pw_uid, pw.pw_gid, pw.pw_dir
        for f in ("/etc/subuid", "/etc/subgid"):
            if not subid_ranges(f, USER, self.uid):
                with open(f, "a") as fh:
                    fh.write(f"{USER}:{self.free_range()}:65536\n")
        self.subuid = subid_ranges("/etc/subuid", USER, self.uid)[0]
        self.subgid = subid_ranges("/etc/subgid", USER, self.gid)[0]
        self.xdg = f"/run/user/{self.uid}"
        os.makedirs(self.xdg, exist_ok=True)
        os.chown(self.xdg, self.uid, self.gid)
        os.chmod(self.xdg, 0o700)
        # The binaries under test, where the user can run them whatever the build dir's mode.
        bindir = os.path.join(self.home, "bin")
        os.makedirs(bindir, exist_ok=True)
        self.bins = {}
        for rt, src in self.host_bins.items():
            dst = os.path.join(bindir, rt)
            shutil.copy2(src, dst)
            os.chmod(dst, 0o755)
            self.bins[rt] = dst
        conf = os.path.join(self.home, ".config", "containers")
        os.makedirs(conf, exist_ok=True)
        with open(os.path.join(conf, "containers.conf"), "w") as f:
            f.write(CONTAINERS_CONF.format(**self.bins))
        shutil.copy(self.images.tar, os.path.join(self.home, "busybox.tar"))
        # A bundle made by the user itself with the runtime's spec --rootless.
        self.rootfs = os.path.join(self.home, "rootfs")
        os.makedirs(self.rootfs)
        ok(run(["tar", "-C", self.rootfs, "-xf", self.images.tar]))
        ok(run(["chown", "-R", f"{self.uid}:{self.gid}", self.home]))
        ok(self.as_user(["podman", "import", os.path.join(self.home, "busybox.tar"), IMG],
                        timeout=120))

    def free_range(self):
        used = []
        for f in ("/etc/subuid", "/etc/subgid"):
            try:
                with open(f) as fh:
                    for line in fh:
                        p = line.strip().split(":")
                        if len(p) == 3:
                            used.append((int(p[1]), int(p[2])))
            except OSError:
                pass
        start = 700000
        while any(s < start + 65536 and start < s + c for s, c in used):
            start += 65536
        return start

    def stop(self):
        if self.uid is not None:
            self.as_user(["podman", "rm", "--all", "--force", "--time", "0"], timeout=120)
        self.remove_user()

    def remove_user(self):
        try:
            pw = pwd.getpwnam(USER)
        except KeyError:
            return
        run(["pkill", "-KILL", "-u", str(pw.pw_uid)])
        retry(lambda: run(["pgrep", "-u", str(pw.pw_uid)]).rc == 1, 10)
        unmount_all_under(pw.pw_dir)
        xdg = f"/run/user/{pw.pw_uid}"
        unmount_all_under(xdg)
        shutil.rmtree(xdg, ignore_errors=True)
        run(["userdel", "--remove", USER])
        shutil.rmtree(pw.pw_dir, ignore_errors=True)
        for f in ("/etc/subuid", "/etc/subgid"):
            drop_subid_lines(f, USER, pw.pw_uid)

    def env(self, extra=None):
        e = {"HOME": self.home, "USER": USER, "LOGNAME": USER,
             "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
             "XDG_RUNTIME_DIR": self.xdg}
        e.update(extra or {})
        return e

    def argv(self, argv, env=None):
        """argv as the user, in its home, with nothing of root's environment."""
        pairs = [f"{k}={v}" for k, v in self.env(env).items()]
        return ["runuser", "-u", USER, "--", "env", "-i", *pairs,
                "sh", "-c", 'cd "$HOME" && exec "$@"', "sh", *argv]

    def as_user(self, argv, env=None, **kw):
        return run(self.argv(argv, env), **kw)

    # ---- the runtime by hand -----------------------------------------------------------

    def rt(self, rt, *args, **kw):
        return self.as_user([self.bins[rt], *args], **kw)

    def rt_detached(self, rt, *args):
        """A command that leaves a container running (create, run --detach): the container
        keeps the stdio it inherits, so it gets /dev/null and a file for stderr instead of
        the harness's pipes, and the file comes back as stderr."""
        err = os.path.join(self.home, ".husk-harness-stderr")
        script = ('"$@" </dev/null >/dev/null 2>"$HOME/.husk-harness-stderr"; rc=$?; '
                  'cat "$HOME/.husk-harness-stderr" >&2; exit $rc')
        r = self.as_user(["sh", "-c", script, "sh", self.bins[rt], *args])
        try:
            os.unlink(err)
        except OSError:
            pass
        return r

    def bundle(self, rt, what, edit=None, args=("true",)):
        """A bundle owned by the user: `RT spec --rootless`, process.args, terminal off, then
        edit(config) if given. Returns its directory."""
        d = os.path.join(self.home, "bundles", f"{rt}-{what}")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        ok(run(["chown", "-R", f"{self.uid}:{self.gid}", os.path.dirname(d)]))
        ok(self.rt(rt, "spec", "--rootless", "--bundle", d))
        path = os.path.join(d, "config.json")
        with open(path) as f:
            cfg = json.load(f)
        cfg["root"]["path"] = self.rootfs  # one rootfs for all (runc refuses a symlink)
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = list(args)
        if edit:
            edit(cfg)
        with open(path, "w") as f:
            json.dump(cfg, f)
        return d

    def state_dir(self, rt):
        return os.path.join(self.xdg, STATE[rt])

    def leftovers(self, rt):
        """Containers left in the runtime's state root, and processes of the user other than
        podman's pause process and conmon's of running fixtures (none here)."""
        left = []
        d = self.state_dir(rt)
        if os.path.isdir(d):
            left += [f"state {d}/{n}" for n in os.listdir(d)]
        # Rootless podman keeps one process that holds its user namespace.
        try:
            with open(os.path.join(self.xdg, "libpod", "tmp", "pause.pid")) as f:
                pause = f.read().strip()
        except OSError:
            pause = None
        r = run(["ps", "-o", "pid=,args=", "-u", str(self.uid)])
        for line in r.out.splitlines():
            pid, _, args = line.strip().partition(" ")
            if pid == pause or args.endswith("<defunct>"):
                continue  # a zombie is its parent's to reap, not a process left running
            left.append(f"process {pid} {args}")
        return left

    def check_clean(self, rt):
        retry(lambda: not self.leftovers(rt), 5)
        left = self.leftovers(rt)
        if left:
            raise Fail("left behind: " + "; ".join(left))

    def p(self, rt, *args, **kw):
        return self.as_user(["podman", "--runtime", self.bins[rt], *args], **kw)


# ---- by hand -------------------------------------------------------------------------------

def by_hand(c, rt, fn):
    try:
        return fn()
    finally:
        c.check_clean(rt)


@scenario("rootless/by-hand-run")
def _(c, rt):
    def go():
        d = c.bundle(rt, "run", args=("sh", "-c", "id; cat /proc/self/uid_map; echo $((3+4))"))
        r = ok(c.rt(rt, "run", "--bundle", d, f"{rt}-run"))
        lines = r.out.split("\n")
        expect(lines[0].startswith("uid=0(root) gid=0(root)") or lines[0].startswith("uid=0 gid=0"),
               f"id inside: {lines[0]!r}")
        expect_eq(lines[1].split(), ["0", str(c.uid), "1"], "uid_map inside")
        expect(os.path.isdir(c.state_dir(rt)), f"no state root {c.state_dir(rt)}")
        return [lines[1].split(), lines[2]]
    return by_hand(c, rt, go)


@scenario("rootless/by-hand-lifecycle")
def _(c, rt):
    def go():
        name = f"{rt}-life"
        d = c.bundle(rt, "life", args=("sh", "-c", LOOP))
        try:
            ok(c.rt_detached(rt, "create", "--bundle", d, name))
            st = json.loads(ok(c.rt(rt, "state", name)).out)
            expect_eq(st["status"], "created", "status after create")
            expect(os.path.exists(os.path.join(c.state_dir(rt), name)),
                   f"state not under {c.state_dir(rt)}")
            ok(c.rt(rt, "start", name))
            st = json.loads(ok(c.rt(rt, "state", name)).out)
            expect_eq(st["status"], "running", "status after start")
            # The init runs as the user on the host.
            with open(f"/proc/{st['pid']}/status") as f:
                uid = [l.split()[1] for l in f if l.startswith("Uid:")][0]
            expect_eq(uid, str(c.uid), "host uid of the container's init")
            listed = ok(c.rt(rt, "list", "-q")).out.split()
            expect(name in listed, f"list -q: {listed}")
            ok(c.rt(rt, "kill", name, "TERM"))
            expect(retry(lambda: json.loads(c.rt(rt, "state", name).out or "{}")
                         .get("status") == "stopped", 10), "never stopped after kill TERM")
            ok(c.rt(rt, "delete", name))
            expect_rc(c.rt(rt, "state", name), 1)
            return st["status"]
        finally:
            c.rt(rt, "delete", "--force", name)
    return by_hand(c, rt, go)


@scenario("rootless/by-hand-exec")
def _(c, rt):
    def go():
        name = f"{rt}-exec"
        d = c.bundle(rt, "exec", args=("sh", "-c", LOOP))
        try:
            ok(c.rt_detached(rt, "run", "--detach", "--bundle", d, name))
            r = ok(c.rt(rt, "exec", name, "sh", "-c", "id -u; echo $$; exit 0"))
            lines = r.out.split()
            expect_eq(lines[0], "0", "uid of the exec'd process")
            r = expect_rc(c.rt(rt, "exec", name, "sh", "-c", "exit 5"), 5)
            return [lines[0], r.rc]
        finally:
            c.rt(rt, "delete", "--force", name)
    return by_hand(c, rt, go)


@scenario("rootless/by-hand-subordinate-ids")
def _(c, rt):
    # Several ranges: the user's own id as 0 and its subordinate ids from 1, through
    # newuidmap/newgidmap.
    def edit(cfg):
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": c.uid, "size": 1},
                                       {"containerID": 1, "hostID": c.subuid[0], "size": 1000}]
        cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": c.gid, "size": 1},
                                       {"containerID": 1, "hostID": c.subgid[0], "size": 1000}]

    def go():
        d = c.bundle(rt, "subids", edit, args=("sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map"))
        r = ok(c.rt(rt, "run", "--bundle", d, f"{rt}-subids"))
        rows = [l.split() for l in r.out.splitlines()]
        want = [["0", str(c.uid), "1"], ["1", str(c.subuid[0]), "1000"],
                ["0", str(c.gid), "1"], ["1", str(c.subgid[0]), "1000"]]
        expect_eq(rows, want, "uid_map and gid_map inside")
        return len(rows)
    return by_hand(c, rt, go)


def refused(c, rt, what, edit, args=("true",), want_husk=None):
    """create of the edited config must fail and leave nothing; husk's message must contain
    want_husk."""
    def go():
        name = f"{rt}-{what}"
        d = c.bundle(rt, what, edit, args=args)
        try:
            r = c.rt(rt, "run", "--bundle", d, name)
            expect(r.rc != 0, f"the runtime accepted it: {r.describe()}")
            if rt == "husk" and want_husk:
                expect(want_husk in r.err, f"husk's error should say {want_husk!r}: {r.err.strip()}")
            note(r.err.strip().splitlines()[-1][:200] if r.err.strip() else "")
            return "refused"
        finally:
            c.rt(rt, "delete", "--force", name)
    return by_hand(c, rt, go)


@scenario("rootless/refuse-mapping-outside-subids")
def _(c, rt):
    def edit(cfg):
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": c.uid, "size": 1},
                                       {"containerID": 1, "hostID": 0, "size": 1}]
    return refused(c, rt, "map-root", edit, want_husk="linux.uidMappings[1]: host ids 0-0 are "
                   "not subordinate ids of user husk-rootless")


@scenario("rootless/refuse-unreadable-bind-source")
def _(c, rt):
    # A directory only root may enter: the user cannot bind it, with or without a runtime.
    secret = os.path.join(c.work, "rootless-secret")
    os.makedirs(os.path.join(secret, "inner"), exist_ok=True)
    os.chmod(secret, 0o700)

    def edit(cfg):
        cfg["mounts"].append({"destination": "/mnt", "type": "bind",
                              "source": os.path.join(secret, "inner"), "options": ["rbind"]})
    return refused(c, rt, "secret", edit, want_husk="Permission denied")


@scenario("rootless/unreadable-file-stays-unreadable")
def _(c, rt):
    # /etc/shadow bound in (the bind itself is allowed): root in the container is not root on
    # the host, so it still cannot read it.
    def edit(cfg):
        cfg["mounts"].append({"destination": "/shadow", "type": "bind", "source": "/etc/shadow",
                              "options": ["bind", "ro"]})

    def go():
        d = c.bundle(rt, "shadow", edit, args=("sh", "-c", "cat /shadow >/dev/null; echo rc=$?"))
        r = ok(c.rt(rt, "run", "--bundle", d, f"{rt}-shadow"))
        expect_eq(r.out.strip(), "rc=1", "reading the host's /etc/shadow inside")
        return r.out.strip()
    return by_hand(c, rt, go)


@scenario("rootless/refuse-cgroup-limit-on-v1")
def _(c, rt):
    # cgroup v1 is never delegated to a user: a memory limit cannot be had, and says so.
    def edit(cfg):
        cfg["linux"]["resources"] = {"memory": {"limit": 64 << 20}}
    return refused(c, rt, "limit", edit, want_husk="rootless: linux.resources asks for memory")


@scenario("rootless/refuse-rlimit-above-hard")
def _(c, rt):
    def edit(cfg):
        cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 1 << 30, "soft": 1 << 30}]
    return refused(c, rt, "rlimit", edit, want_husk="RLIMIT_NOFILE")


@scenario("rootless/by-hand-oom-score-adj-raised")
def _(c, rt):
    # Raising oom_score_adj needs no privilege: the value is seen inside.
    def go():
        with open("/proc/self/oom_score_adj") as f:
            mine = int(f.read())
        want = min(mine + 300, 1000)
        d = c.bundle(rt, "oom-up", lambda cfg: cfg["process"].update(oomScoreAdj=want),
                     args=("cat", "/proc/self/oom_score_adj"))
        r = ok(c.rt(rt, "run", "--bundle", d, f"{rt}-oom-up"))
        expect_eq(r.out.strip(), str(want), "oom_score_adj inside")
        return "raised"
    return by_hand(c, rt, go)


@scenario("rootless/refuse-oom-score-adj-lowered")
def _(c, rt):
    # Lowering it below the caller's needs CAP_SYS_RESOURCE on the host.
    with open("/proc/self/oom_score_adj") as f:
        below = max(int(f.read()) - 300, -1000)

    def edit(cfg):
        cfg["process"]["oomScoreAdj"] = below
    return refused(c, rt, "oom-down", edit,
                   want_husk=f"writing {below} to /proc/self/oom_score_adj")


@scenario("rootless/refuse-no-runtime-dir")
def _(c, rt):
    # husk says what is missing; runc falls back to /run/runc and fails there.
    def go():
        d = c.bundle(rt, "noxdg")
        r = c.as_user([c.bins[rt], "run", "--bundle", d, f"{rt}-noxdg"],
                      env={"XDG_RUNTIME_DIR": ""})
        expect(r.rc != 0, f"ran without XDG_RUNTIME_DIR: {r.describe()}")
        if rt == "husk":
            expect("XDG_RUNTIME_DIR is not set" in r.err, f"husk's error: {r.err.strip()}")
        return "refused"
    return by_hand(c, rt, go)


# ---- rootless podman -----------------------------------------------------------------------

def podman(c, rt, fn):
    try:
        return fn()
    finally:
        c.check_clean(rt)


@scenario("rootless/podman-run-echo-exit-codes")
def _(c, rt):
    def go():
        r = ok(c.p(rt, "run", "--rm", IMG, "echo", "hello"))
        expect_eq(r.out, "hello\n", "stdout")
        r3 = expect_rc(c.p(rt, "run", "--rm", IMG, "sh", "-c", "exit 3"), 3)
        r127 = expect_rc(c.p(rt, "run", "--rm", IMG, "/nonexistent"), 127)
        r = ok(c.p(rt, "run", "--rm", IMG, "id", "-u"))
        expect_eq(r.out, "0\n", "uid inside")
        return [r3.rc, r127.rc]
    return podman(c, rt, go)


@scenario("rootless/podman-detached-exec-logs-stop-rm")
def _(c, rt):
    def go():
        n = f"{rt}-det"
        c.p(rt, "rm", "-f", "-t", "0", n)
        try:
            ok(c.p(rt, "run", "-d", "--name", n, IMG, "sh", "-c", LOOP))
            used = ok(c.p(rt, "inspect", "--format", "{{.OCIRuntime}}", n)).out.strip()
            expect(used in (rt, c.bins[rt]), f"podman inspect .OCIRuntime: {used}")
            cid = ok(c.p(rt, "inspect", "--format", "{{.Id}}", n)).out.strip()
            expect(os.path.exists(os.path.join(c.state_dir(rt), cid, "state.json")),
                   f"no state.json in {c.state_dir(rt)}/{cid}")
            expect(retry(lambda: "started" in c.p(rt, "logs", n).out, 10), "no log line")
            r = ok(c.p(rt, "exec", n, "sh", "-c", "echo in-$((2*21))"))
            expect_eq(r.out, "in-42\n", "exec output")
            expect_rc(c.p(rt, "exec", n, "sh", "-c", "exit 7"), 7)
            ok(c.p(rt, "stop", "-t", "10", n))
            expect_eq(ok(c.p(rt, "inspect", "--format", "{{.State.Status}}", n)).out.strip(),
                      "exited", "status after stop")
            ok(c.p(rt, "rm", n))
            return r.out
        finally:
            c.p(rt, "rm", "-f", "-t", "0", n)
    return podman(c, rt, go)


@scenario("rootless/podman-it-pty")
def _(c, rt):
    def go():
        argv = c.argv(["podman", "--runtime", c.bins[rt], "run", "--rm", "-it", IMG, "sh"])
        r = drive_pty(argv, send=b"tty; echo pty-$((6*7)); exit 4\r")
        expect("/dev/pts/0" in r.out, f"tty inside: {r.out!r}")
        expect("pty-42" in r.out, f"output: {r.out!r}")
        expect_eq(r.rc, 4, "exit status through the pty")
        return r.rc
    return podman(c, rt, go)


@scenario("rootless/podman-bind-mounts-ro-rw")
def _(c, rt):
    def go():
        d = os.path.join(c.home, f"vol-{rt}")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        with open(os.path.join(d, "in"), "w") as f:
            f.write("from-host\n")
        ok(run(["chown", "-R", f"{c.uid}:{c.gid}", d]))
        r = ok(c.p(rt, "run", "--rm", "-v", f"{d}:/ro:ro", "-v", f"{d}:/rw", IMG, "sh", "-c",
                   "cat /ro/in; touch /ro/x 2>/dev/null && echo ro-writable; "
                   "echo written > /rw/out; grep -E ' /(ro|rw) ' /proc/mounts | cut -d' ' -f2,4 | cut -d, -f1"))
        with open(os.path.join(d, "out")) as f:
            expect_eq(f.read(), "written\n", "file written through the rw mount")
        st = os.stat(os.path.join(d, "out"))
        expect_eq(st.st_uid, c.uid, "host owner of the file written as root inside")
        lines = r.out.split("\n")
        expect_eq(lines[0], "from-host", "reading the ro mount")
        expect("ro-writable" not in r.out, "the ro mount was writable")
        expect(sorted(l for l in lines[1:] if l) == ["/ro ro", "/rw rw"],
               f"mount flags inside: {lines[1:]}")
        shutil.rmtree(d, ignore_errors=True)
        # podman orders the two volumes as it likes (a Go map): compare them sorted
        return "\n".join(lines[:1] + sorted(l for l in lines[1:] if l)) + "\n"
    return podman(c, rt, go)


@scenario("rootless/podman-read-only")
def _(c, rt):
    def go():
        r = ok(c.p(rt, "run", "--rm", "--read-only", IMG, "sh", "-c",
                   "touch /x 2>/dev/null && echo writable || echo read-only; touch /tmp/y && echo tmp-ok"))
        expect_eq(r.out, "read-only\ntmp-ok\n", "root filesystem")
        return r.out
    return podman(c, rt, go)


@scenario("rootless/podman-userns-keep-id")
def _(c, rt):
    def go():
        r = ok(c.p(rt, "run", "--rm", "--userns=keep-id", IMG, "sh", "-c", "id -u; id -g"))
        expect_eq(r.out.split(), [str(c.uid), str(c.gid)], "ids inside with keep-id")
        return r.out
    return podman(c, rt, go)


@scenario("rootless/podman-uidmap")
def _(c, rt):
    # podman's --uidmap is relative to its own user namespace (0 = the user, 1.. = its
    # subordinate ids): container root is the first subordinate id on the host.
    def go():
        d = os.path.join(c.home, f"uidmap-{rt}")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        os.chmod(d, 0o777)
        try:
            r = ok(c.p(rt, "run", "--rm", "--uidmap", "0:1:1000", "--gidmap", "0:1:1000",
                       "-v", f"{d}:/rw", IMG, "sh", "-c", "cat /proc/self/uid_map; touch /rw/f"))
            expect_eq(r.out.split(), ["0", "1", "1000"], "uid_map inside")
            st = os.stat(os.path.join(d, "f"))
            expect_eq((st.st_uid, st.st_gid), (c.subuid[0], c.subgid[0]),
                      "host owner of a file made by container root")
            return r.out
        finally:
            shutil.rmtree(d, ignore_errors=True)
    return podman(c, rt, go)


@scenario("rootless/podman-run-rm-20-times")
def _(c, rt):
    def go():
        t0 = time.monotonic()
        for i in range(20):
            r = ok(c.p(rt, "run", "--rm", IMG, "echo", str(i)))
            expect_eq(r.out, f"{i}\n", f"run {i}")
            left = c.leftovers(rt)
            if left:
                raise Fail(f"after run {i}: left behind: {'; '.join(left)}")
        note(f"20 runs in {time.monotonic() - t0:.1f}s")
        return 20
    return podman(c, rt, go)
