"""More containerd (ctr) and docker scenarios: namespaces joined by path, privileged,
capabilities, seccomp, CPU knobs, a plain rootfs directory, --no-pivot, many runs with no
leftovers; docker's pause/top/stats/update/restart/kill and volumes."""

import json
import os
import subprocess
import time

from containerd import IMG, LOOP, NS
from lib import (
    Fail, cgroup_dirs_named, cgroup_file, expect, expect_eq, mounts_matching, note, ok,
    processes_matching, retry, scenario,
)


# ---- containerd --------------------------------------------------------------------------

@scenario("containerd/env-cwd-cap-drop")
def _(c, rt):
    r = ok(c.run(rt, "--rm", "--env", "A=b", "--cwd", "/tmp", "--cap-drop", "CAP_NET_RAW",
                 IMG, c.cid(rt, "envcwd"), "sh", "-c",
                 "echo $A; pwd; grep ^CapEff /proc/self/status"))
    expect_eq(r.out.split()[:2], ["b", "/tmp"], "env and cwd")
    return r.out


@scenario("containerd/privileged")
def _(c, rt):
    r = ok(c.run(rt, "--rm", "--privileged", IMG, c.cid(rt, "priv"), "sh", "-c",
                 "grep ^CapEff /proc/self/status; test -e /dev/kmsg && echo host-devs; "
                 "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && echo mount-ok"))
    expect("host-devs" in r.out and "mount-ok" in r.out, f"privileged: {r.out!r}")
    return r.out


@scenario("containerd/seccomp")
def _(c, rt):
    r = ok(c.run(rt, "--rm", "--seccomp", IMG, c.cid(rt, "seccomp"), "grep", "^Seccomp:",
                 "/proc/self/status"))
    expect_eq(r.out.split(), ["Seccomp:", "2"], "seccomp mode")
    return r.out


@scenario("containerd/net-host-and-with-ns")
def _(c, rt):
    owner = c.detached(rt, "nsowner")
    try:
        pid = c.task_pid(owner)
        r = ok(c.run(rt, "--rm", "--with-ns", f"network:/proc/{pid}/ns/net",
                     "--with-ns", f"ipc:/proc/{pid}/ns/ipc", IMG, c.cid(rt, "withns"), "sh",
                     "-c", "readlink /proc/self/ns/net; readlink /proc/self/ns/ipc"))
        want = [os.readlink(f"/proc/{pid}/ns/net"), os.readlink(f"/proc/{pid}/ns/ipc")]
        expect_eq(r.out.split(), want, "joined net and ipc namespaces")
        r = ok(c.run(rt, "--rm", "--net-host", IMG, c.cid(rt, "nethost"), "readlink",
                     "/proc/self/ns/net"))
        expect_eq(r.out.strip(), os.readlink("/proc/self/ns/net"), "host network namespace")
        return "joined"
    finally:
        c.remove(owner)


@scenario("containerd/cpu-knobs")
def _(c, rt):
    cid = c.detached(rt, "cpu", "--cpu-quota", "20000", "--cpu-period", "100000",
                     "--cpu-shares", "256")
    try:
        pid = c.task_pid(cid)
        got = [cgroup_file(pid, "cpu", f) for f in
               ("cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares")]
        expect_eq(got, ["20000", "100000", "256"], "cpu quota, period, shares")
        return got
    finally:
        c.remove(cid)


@scenario("containerd/rootfs-dir")
def _(c, rt):
    # `ctr run --rootfs DIR`: a plain directory, no snapshot, no image config (so no PATH:
    # the program is given by path). Not with --no-pivot: ctr then sends task options that
    # replace the runc options, and the shim runs plain `runc` whatever --runc-binary says.
    root = os.path.join(c.dir, f"plain-rootfs-{rt}")
    if not os.path.isdir(root):
        os.makedirs(root)
        subprocess.run(["tar", "-C", root, "-xf", c.images.tar], check=True)
    r = ok(c.run(rt, "--rm", "--rootfs", root, c.cid(rt, "rootfs"), "/bin/sh", "-c",
                 "echo in-rootfs > /marker; cat /marker"))
    expect_eq(r.out, "in-rootfs\n", "stdout")
    with open(os.path.join(root, "marker")) as f:
        expect_eq(f.read(), "in-rootfs\n", "file written into the rootfs dir")
    return r.out


CTR_RUNS = 20


@scenario("containerd/20-runs-no-leftovers")
def _(c, rt):
    ids = [f"{rt}-seq-{i}" for i in range(CTR_RUNS)]
    t0 = time.monotonic()
    for cid in ids:
        c.remove(cid)
        r = c.run(rt, "--rm", IMG, cid, "true")
        if r.rc != 0:
            raise Fail(f"run {cid}: {r.describe()}")
    secs = time.monotonic() - t0
    root = os.path.join(c.dir, f"runc-root-{rt}", NS)
    left = [f"state {root}/{d}" for d in (os.listdir(root) if os.path.isdir(root) else [])
            if d in ids]
    for cid in ids:
        left += [f"cgroup {d}" for d in cgroup_dirs_named(cid)
                 if os.path.basename(d) == cid]
    left += [f"mount {m}" for m in mounts_matching([f"/{i}/" for i in ids])]
    left += [f"process {p}: {cmd[:100]}" for p, cmd in
             processes_matching([f" {i} " for i in ids] + [f"/{i}/" for i in ids])]
    left += [f"container {i}" for i in c.ctr("containers", "ls", "-q").out.split() if i in ids]
    expect(not left, "left behind: " + "; ".join(left[:10]))
    note(f"{secs / CTR_RUNS:.2f} s/run")
    return f"{CTR_RUNS} runs, nothing left"


# ---- docker ------------------------------------------------------------------------------

@scenario("docker/pause-unpause-top-stats")
def _(c, rt):
    n = c.detached(rt, "pause")
    try:
        ok(c.d("pause", n))
        s1 = ok(c.d("inspect", "--format", "{{.State.Status}}", n)).out.strip()
        ok(c.d("unpause", n))
        s2 = ok(c.d("inspect", "--format", "{{.State.Status}}", n)).out.strip()
        expect_eq([s1, s2], ["paused", "running"], "states")
        top = ok(c.d("top", n))
        expect("sleep" in top.out or "sh -c" in top.out, f"top: {top.out!r}")
        st = ok(c.d("stats", "--no-stream", "--format", "{{json .}}", n))
        s = json.loads(st.out)
        expect(s.get("MemUsage", "0B").split("/")[0].strip() not in ("", "0B"), f"stats: {s}")
        return [s1, s2]
    finally:
        c.d("rm", "-f", n)


@scenario("docker/update-restart-kill")
def _(c, rt):
    n = c.detached(rt, "update", "--memory", "64m",
                   cmd=("sh", "-c", "trap 'exit 7' USR1; echo started; "
                                    "while :; do sleep 0.2; done"))
    try:
        ok(c.d("update", "--memory", "128m", "--memory-swap", "256m", n))
        v = cgroup_file(c.pid(n), "memory", "memory.limit_in_bytes")
        expect_eq(v, str(128 << 20), "memory limit after update")
        pid1 = c.pid(n)
        ok(c.d("restart", "-t", "1", n))
        expect(c.pid(n) != pid1, "same pid after restart")
        time.sleep(0.3)
        ok(c.d("kill", "-s", "USR1", n))
        w = ok(c.d("wait", n))
        expect_eq(w.out.strip(), "7", "exit code after USR1")
        return [v, w.out.strip()]
    finally:
        c.d("rm", "-f", n)


@scenario("docker/volumes-tmpfs-user-caps")
def _(c, rt):
    d = os.path.join(c.dir, f"vol-{rt}")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o777)
    r = ok(c.run(rt, "--rm", "-v", f"{d}:/data", "--tmpfs", "/scratch:size=1m",
                 "--user", "65534:65534", "--cap-drop", "ALL", IMG, "sh", "-c",
                 "id -u; echo w > /data/f && echo vol-ok; grep ' /scratch ' /proc/mounts | "
                 "cut -d' ' -f3; grep ^CapEff /proc/self/status"))
    expect_eq(r.out.split()[:3], ["65534", "vol-ok", "tmpfs"], "user, volume, tmpfs")
    expect("CapEff:\t0000000000000000" in r.out, f"caps: {r.out!r}")
    return r.out


@scenario("docker/privileged-pid-host")
def _(c, rt):
    r = ok(c.run(rt, "--rm", "--privileged", "--pid", "host", IMG, "sh", "-c",
                 "readlink /proc/self/ns/pid; test -e /dev/kmsg && echo host-devs"))
    expect_eq(r.out.split(), [os.readlink("/proc/self/ns/pid"), "host-devs"], "pid ns, devs")
    return "ok"
