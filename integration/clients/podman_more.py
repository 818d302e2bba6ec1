"""More podman scenarios: namespaces shared between containers and pods (joined by path),
privileged containers, sysctls, rlimits, users, cgroup knobs, healthchecks."""

import os

from lib import Fail, cgroup_file, expect, expect_eq, expect_rc, ok, retry, scenario
from podman import IMG, LOOP, in_container


@scenario("podman/run-user-workdir-env")
def _(c, rt):
    r = ok(in_container(c, rt, "--user", "1000:1000", "--workdir", "/tmp", "--env", "A=b c",
                        IMG, "sh", "-c", 'id -u; id -g; pwd; echo "$A"; echo "$HOME"'))
    expect_eq(r.out.splitlines()[:4], ["1000", "1000", "/tmp", "b c"], "id/pwd/env")
    return r.out


@scenario("podman/entrypoint")
def _(c, rt):
    r = ok(in_container(c, rt, "--entrypoint", "/bin/echo", IMG, "from", "entrypoint"))
    expect_eq(r.out, "from entrypoint\n", "stdout")
    return r.out


@scenario("podman/privileged")
def _(c, rt):
    r = ok(in_container(c, rt, "--privileged", IMG, "sh", "-c",
                        "grep ^CapEff /proc/self/status; grep ^Seccomp: /proc/self/status; "
                        "test -e /dev/kmsg && echo host-devs; "
                        "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && echo mount-ok"))
    expect("host-devs" in r.out and "mount-ok" in r.out, f"privileged: {r.out!r}")
    expect("Seccomp:\t0" in r.out, f"no seccomp when privileged: {r.out!r}")
    return r.out


@scenario("podman/no-new-privileges")
def _(c, rt):
    r = ok(in_container(c, rt, "--security-opt", "no-new-privileges", IMG,
                        "grep", "^NoNewPrivs", "/proc/self/status"))
    expect_eq(r.out.split(), ["NoNewPrivs:", "1"], "NoNewPrivs")
    return r.out


@scenario("podman/sysctl")
def _(c, rt):
    r = ok(in_container(c, rt, "--sysctl", "net.ipv4.ip_forward=1", "--sysctl",
                        "kernel.msgmax=4096", IMG, "sh", "-c",
                        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax"))
    expect_eq(r.out.split(), ["1", "4096"], "sysctls")
    return r.out


@scenario("podman/ulimit")
def _(c, rt):
    r = ok(in_container(c, rt, "--ulimit", "nofile=512:768", "--ulimit", "core=0:0",
                        "--ulimit", "nproc=1024:1024", IMG,
                        "sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c"))
    expect_eq(r.out.split(), ["512", "768", "0"], "rlimits")
    return r.out


@scenario("podman/shm-size")
def _(c, rt):
    r = ok(in_container(c, rt, "--shm-size", "2m", IMG, "sh", "-c",
                        "grep ' /dev/shm ' /proc/mounts | cut -d' ' -f4"))
    expect("size=2048k" in r.out, f"/dev/shm: {r.out!r}")
    return r.out


@scenario("podman/oom-score-adj")
def _(c, rt):
    r = ok(in_container(c, rt, "--oom-score-adj", "321", IMG, "cat", "/proc/self/oom_score_adj"))
    expect_eq(r.out.strip(), "321", "oom_score_adj")
    return r.out


@scenario("podman/pid-ipc-host")
def _(c, rt):
    r = ok(in_container(c, rt, "--pid", "host", "--ipc", "host", IMG, "sh", "-c",
                        "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc"))
    want = [os.readlink("/proc/self/ns/pid"), os.readlink("/proc/self/ns/ipc")]
    expect_eq(r.out.split(), want, "pid and ipc namespaces (the host's)")
    return "host"


@scenario("podman/join-container-namespaces")
def _(c, rt):
    # --network/--pid/--ipc container:X: the runtime joins X's namespaces by path.
    n = c.detached(rt, "nsowner", "--hostname", "owner")
    try:
        pid = c.pid(rt, n)
        want = [os.readlink(f"/proc/{pid}/ns/{ns}") for ns in ("net", "ipc", "pid")]
        r = ok(in_container(c, rt, "--network", f"container:{n}", "--ipc", f"container:{n}",
                            "--pid", f"container:{n}", IMG, "sh", "-c",
                            "for n in net ipc pid; do readlink /proc/self/ns/$n; done"))
        expect_eq(r.out.split()[:3], want, "joined namespaces")
        return "joined"
    finally:
        c.remove(rt, n)


@scenario("podman/pod")
def _(c, rt):
    # A pod: an infra container (catatonit-less: our image's sleep) and a member sharing its
    # network, ipc and uts namespaces.
    pod = f"{rt}-pod"
    c.p(rt, "pod", "rm", "-f", pod)
    try:
        ok(c.p(rt, "pod", "create", "--name", pod, "--infra-image", IMG,
               "--infra-command", "sleep 100000", "--hostname", "podhost"))
        ok(c.p(rt, "run", "-d", "--pod", pod, "--name", f"{pod}-a", IMG, "sh", "-c", LOOP))
        r = ok(c.p(rt, "run", "--rm", "--pod", pod, IMG, "hostname"))
        expect_eq(r.out.strip(), "podhost", "hostname in the pod")
        st = ok(c.p(rt, "pod", "inspect", "--format", "{{.State}}", pod)).out.strip()
        expect_eq(st, "Running", "pod state")
        ok(c.p(rt, "pod", "stop", "-t", "2", pod))
        return st
    finally:
        c.p(rt, "pod", "rm", "-f", pod)


@scenario("podman/cgroup-knobs")
def _(c, rt):
    n = c.detached(rt, "cgknobs", "--cpu-shares", "512", "--cpuset-cpus", "0",
                   "--memory", "96m", "--memory-swap", "192m", "--memory-reservation", "32m",
                   "--blkio-weight", "300")
    try:
        pid = c.pid(rt, n)
        got = {
            "cpu.shares": cgroup_file(pid, "cpu", "cpu.shares"),
            "cpuset.cpus": cgroup_file(pid, "cpuset", "cpuset.cpus"),
            "memory.limit_in_bytes": cgroup_file(pid, "memory", "memory.limit_in_bytes"),
            "memory.memsw.limit_in_bytes": _maybe(pid, "memory", "memory.memsw.limit_in_bytes"),
            "memory.soft_limit_in_bytes": cgroup_file(pid, "memory",
                                                      "memory.soft_limit_in_bytes"),
        }
        expect_eq(got["cpu.shares"], "512", "cpu.shares")
        expect_eq(got["cpuset.cpus"], "0", "cpuset.cpus")
        expect_eq(got["memory.limit_in_bytes"], str(96 << 20), "memory.limit_in_bytes")
        expect_eq(got["memory.soft_limit_in_bytes"], str(32 << 20), "soft limit")
        return got
    finally:
        c.remove(rt, n)


def _maybe(pid, ctl, name):
    try:
        return cgroup_file(pid, ctl, name)
    except Fail:
        return None


@scenario("podman/exec-detach-and-attach")
def _(c, rt):
    n = c.fixture(rt)
    ok(c.p(rt, "exec", "-d", n, "sh", "-c", "echo detached > /tmp/d"))
    r = retry(lambda: c.p(rt, "exec", n, "cat", "/tmp/d").out == "detached\n", 5)
    expect(r, "exec -d did not run")
    return "ok"


@scenario("podman/healthcheck")
def _(c, rt):
    n = c.detached(rt, "health", "--health-cmd", "test -e /tmp/healthy",
                   "--health-interval", "0")
    try:
        r1 = c.p(rt, "healthcheck", "run", n)
        ok(c.p(rt, "exec", n, "touch", "/tmp/healthy"))
        r2 = c.p(rt, "healthcheck", "run", n)
        expect_eq([r1.rc, r2.rc], [1, 0], "healthcheck exit codes (unhealthy, healthy)")
        return [r1.rc, r2.rc]
    finally:
        c.remove(rt, n)


@scenario("podman/tty-without-stdin")
def _(c, rt):
    r = ok(in_container(c, rt, "-t", IMG, "sh", "-c", "tty; stty size"))
    lines = r.out.replace("\r", "").split("\n")
    expect(lines[0].startswith("/dev/pts/"), f"tty: {r.out!r}")
    return lines[0]


@scenario("podman/stop-signal-timeout")
def _(c, rt):
    # A main process that ignores SIGTERM: stop falls back to SIGKILL after the timeout.
    n = c.detached(rt, "stopsig", cmd=("sh", "-c", "trap '' TERM; echo started; "
                                                    "while :; do sleep 0.2; done"))
    try:
        c.wait_logs(rt, n, "started")
        r = ok(c.p(rt, "stop", "-t", "1", n))
        st = ok(c.p(rt, "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", n))
        expect_eq(st.out.strip(), "exited 137", "state after stop")
        return st.out.strip()
    finally:
        c.remove(rt, n)


@scenario("podman/mount-propagation")
def _(c, rt):
    d = os.path.join(c.dir, f"prop-{rt}")
    os.makedirs(d, exist_ok=True)
    r = ok(in_container(c, rt, "--privileged", "--mount",
                        f"type=bind,src={d},dst=/shared,bind-propagation=rshared", IMG, "sh",
                        "-c", "grep ' /shared ' /proc/self/mountinfo | grep -o 'shared:[0-9]*' "
                              "| head -1 | cut -d: -f1"))
    expect_eq(r.out.strip(), "shared", "propagation of /shared")
    return r.out


@scenario("podman/annotation-and-label")
def _(c, rt):
    n = c.detached(rt, "annot", "--annotation", "org.example.k=v", "--label", "l=1")
    try:
        r = ok(c.p(rt, "inspect", "--format", '{{index .Config.Annotations "org.example.k"}}', n))
        expect_eq(r.out.strip(), "v", "annotation")
        return r.out.strip()
    finally:
        c.remove(rt, n)


@scenario("podman/kill-all-processes-on-rm")
def _(c, rt):
    # Children of the main process die with the container (pid namespace teardown).
    n = c.detached(rt, "killall", cmd=("sh", "-c", "sleep 1000 & sleep 1001 & echo started; "
                                                    "wait"))
    try:
        c.wait_logs(rt, n, "started")
        pid = c.pid(rt, n)
        kids = ok(c.p(rt, "top", n, "pid")).out.split()[1:]
        expect(len(kids) >= 3, f"processes: {kids}")
        host_pids = _descendants(pid)
        ok(c.p(rt, "rm", "-f", "-t", "0", n))
        alive = [p for p in host_pids if os.path.exists(f"/proc/{p}")
                 and not _is_zombie(p)]
        expect(not alive, f"processes alive after rm -f: {alive}")
        return "none left"
    finally:
        c.remove(rt, n)


def _descendants(pid):
    out = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            for k in f.read().split():
                out += _descendants(int(k))
    except OSError:
        pass
    return out


def _is_zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
