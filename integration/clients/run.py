#!/usr/bin/env python3
"""The client matrix: podman, containerd (ctr) and docker run their containers through husk,
and the same scenarios through runc as the control.

    integration/clients/run.py --husk /path/to/husk [--only REGEX] [--clients podman,docker]

Installs the clients from Debian's packages when missing, starts private daemons (own
root, state dirs and sockets under a temp dir), builds a busybox image locally, runs every
scenario with runc and then with husk, prints the table, and stops and removes everything
at the end, also on failure or signal.

A scenario passes for a runtime when its checks pass; husk must also give what runc gave
(the scenario's observation: output, exit code, state). Exit status: 1 when a scenario
listed in required.txt fails with husk or with runc, or a client cannot be set up; the
other scenarios are reported ("husk fails, runc passes" = known gap) without failing."""

import argparse
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)

import lib  # noqa: E402
from lib import Fail, Skip, run  # noqa: E402

# What the harness installs when missing (the Makefile's `deps` lists them too).
PACKAGES = ("podman", "conmon", "netavark", "containerd", "docker.io", "tini", "iptables", "uidmap")
RUNTIMES = ("runc", "husk")
# Top-level cgroups the clients create (podman, ctr's namespace, docker), removed at the end
# when the harness created them.
CLIENT_CGROUPS = ("libpod_parent", "husk-clients-", "docker")
# Host paths the clients create whatever their flags (dockerd's /etc/docker/key.json and
# /run/docker/plugins, the shims' sockets and ctr's fifos under /run/containerd, podman's
# image blob cache and netns dir): removed at the end when they did not exist before.
HOST_PATHS = ("/etc/docker", "/run/docker", "/run/containerd", "/run/netns", "/run/containers",
              "/var/lib/containers", "/run/libpod")


def installed(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
    return "install ok installed" in r.stdout


def install_missing():
    missing = [p for p in PACKAGES if not installed(p)]
    if not missing:
        return
    print(f"clients: installing {' '.join(missing)}", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + missing
    if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env)
        if subprocess.run(cmd, env=env).returncode != 0:
            sys.exit(f"clients: could not install {missing}")


def make_rootfs_tar(work):
    """A busybox-static rootfs as a tar: the image every client imports."""
    busybox = "/bin/busybox"
    root = os.path.join(work, "rootfs")
    for d in ("bin", "etc", "tmp", "proc", "sys", "dev", "root", "var/tmp", "run"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    shutil.copy(busybox, os.path.join(root, "bin/busybox"))
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True).stdout.split()
    for a in applets:
        if a != "busybox":
            os.symlink("busybox", os.path.join(root, "bin", a))
    with open(os.path.join(root, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n")
    with open(os.path.join(root, "etc/group"), "w") as f:
        f.write("root:x:0:\nnobody:x:65534:\n")
    tar = os.path.join(work, "busybox-rootfs.tar")
    subprocess.run(["tar", "-C", root, "-cf", tar, "."], check=True)
    return tar


def top_cgroups():
    res = set()
    for h in os.listdir(lib.CGROUP_ROOT):
        p = os.path.join(lib.CGROUP_ROOT, h)
        if os.path.isdir(p) and not os.path.islink(p):
            res |= {f"{h}/{d}" for d in os.listdir(p)
                    if d in CLIENT_CGROUPS or d.startswith("husk-clients-")}
    return res


def remove_cgroup_tree(path):
    """Kills what is left in the tree (container processes whose client failed to remove
    them), then removes it, deepest first."""
    for _ in range(3):
        pids = []
        for dirpath, _, files in os.walk(path):
            try:
                with open(os.path.join(dirpath, "cgroup.procs")) as f:
                    pids += [int(p) for p in f.read().split()]
            except OSError:
                pass
        if not pids:
            break
        lib.log(f"cleanup: killing {pids} left in {path}")
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.2)
    for dirpath, dirnames, _ in sorted(os.walk(path), key=lambda t: -len(t[0])):
        try:
            os.rmdir(dirpath)
        except OSError:
            pass


class Outcome:
    def __init__(self, ok, obs=None, err=None, secs=0.0):
        self.ok, self.obs, self.err, self.secs = ok, obs, err, secs


def run_scenario(client, name, fn, rt):
    lib.CURRENT[:] = [name, rt]
    lib.log(f"\n=== {name} [{rt}]")
    t0 = time.monotonic()
    try:
        obs = fn(client, rt)
        return Outcome(True, obs=obs, secs=time.monotonic() - t0)
    except Fail as e:
        return Outcome(False, err=str(e), secs=time.monotonic() - t0)
    except Skip as e:
        return Outcome(None, err=f"skipped: {e}", secs=time.monotonic() - t0)
    except Exception as e:  # a harness bug: reported as a failure with its type
        return Outcome(False, err=f"harness error {type(e).__name__}: {e}",
                       secs=time.monotonic() - t0)


def verdict(name, res, required):
    r, h = res["runc"], res["husk"]
    if r.ok is None:
        return "skipped", False
    if r.ok and h.ok:
        if json.dumps(r.obs, sort_keys=True) != json.dumps(h.obs, sort_keys=True):
            h.ok = False
            h.err = f"differs from runc: runc gave {r.obs!r}, husk gave {h.obs!r}"
        else:
            return "ok", False
    if r.ok and not h.ok:
        return ("FAIL (required)", True) if name in required else ("known gap", False)
    if not r.ok and h.ok:
        return ("runc fails here", name in required)
    return ("both fail", name in required)


def print_table(rows, out=sys.stdout):
    w = max(len(r[0]) for r in rows)
    hdr = f"{'scenario':<{w}}  {'runc':<6}  {'husk':<6}  verdict"
    print(hdr, file=out)
    print("-" * len(hdr), file=out)
    for name, rr, hr, v, _ in rows:
        print(f"{name:<{w}}  {rr:<6}  {hr:<6}  {v}", file=out)


def label(o):
    return "skip" if o.ok is None else ("pass" if o.ok else "FAIL")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--husk", default=os.environ.get("HUSK_BIN", "husk"))
    ap.add_argument("--runc", default=lib.which("runc") or "/usr/sbin/runc")
    ap.add_argument("--clients", default="podman,containerd,docker,rootless")
    ap.add_argument("--only", default="", help="regex: run only the matching scenarios")
    ap.add_argument("--required", default=os.path.join(HERE, "required.txt"))
    ap.add_argument("--json", help="write the results here as JSON")
    ap.add_argument("--markdown", help="write the table here as markdown (for docs/clients.md)")
    ap.add_argument("--log", default="/tmp/husk-clients.log", help="every command and output")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (debugging)")
    args = ap.parse_args()

    if os.geteuid() != 0:
        sys.exit("clients: run as root (real containers, private daemons)")
    husk = shutil.which(args.husk) or args.husk
    husk = os.path.abspath(husk)
    if not os.access(husk, os.X_OK):
        sys.exit(f"clients: husk binary {husk} not found (--husk or HUSK_BIN)")
    bins = {"husk": husk, "runc": os.path.abspath(args.runc)}
    required = set()
    with open(args.required) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                required.add(line)

    # One run at a time per machine: two runs would share the host paths and the iptables
    # chains this run removes at the end, and /run/husk, and compete for the CPU.
    lock = open("/tmp/husk-clients.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("clients: waiting for another run of the client matrix to finish", flush=True)
        fcntl.flock(lock, fcntl.LOCK_EX)

    install_missing()
    import podman, podman_more, containerd, docker, more, rootless  # noqa: E401  (the scenarios)
    classes = {"podman": podman.Podman, "containerd": containerd.Containerd,
               "docker": docker.Docker, "rootless": rootless.Rootless}
    wanted = [c.strip() for c in args.clients.split(",") if c.strip()]
    known = {n for n, _ in lib.REGISTRY}
    unknown = required - known
    if unknown:
        sys.exit(f"clients: required.txt names unknown scenarios: {sorted(unknown)}")

    lib.LOG = open(args.log, "w")
    work = tempfile.mkdtemp(prefix="husk-clients-", dir="/tmp")
    cg_before = top_cgroups()
    host_before = {p for p in HOST_PATHS if os.path.lexists(p)}
    netavark_before = lib.netavark_rules_present()
    # SIGTERM/SIGHUP (a killed `cargo test`, CI's timeout) unwind through the finally below.
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, lambda *_: sys.exit(130))

    t_start = time.monotonic()
    results = {}  # name -> {"runc": Outcome, "husk": Outcome}
    setup_errors = []
    try:
        images = lib.Images(work, make_rootfs_tar(work))
        for cname in wanted:
            scen = [(n, fn) for n, fn in lib.REGISTRY if n.startswith(cname + "/")
                    and re.search(args.only, n)]
            if not scen:
                continue
            t0 = time.monotonic()
            client = classes[cname](work, bins, images)
            try:
                try:
                    client.start()
                except (Fail, OSError, subprocess.SubprocessError) as e:
                    setup_errors.append(f"{cname}: setting up: {e}")
                    for n, _ in scen:
                        err = Outcome(False, err=f"{cname} setup failed (see above)")
                        results[n] = {"runc": err, "husk": err}
                    continue
                for n, fn in scen:
                    results[n] = {rt: run_scenario(client, n, fn, rt) for rt in RUNTIMES}
                    v = results[n]
                    print(f"  {n}: runc {label(v['runc'])} ({v['runc'].secs:.1f}s), "
                          f"husk {label(v['husk'])} ({v['husk'].secs:.1f}s)", flush=True)
            finally:
                client.stop()
            print(f"{cname}: {time.monotonic() - t0:.0f}s", flush=True)
    finally:
        lib.kill_processes_matching([work])
        lib.unmount_all_under(work)
        for cg in top_cgroups() - cg_before:
            remove_cgroup_tree(os.path.join(lib.CGROUP_ROOT, cg))
        for p in HOST_PATHS:
            if p not in host_before and os.path.lexists(p):
                lib.unmount_all_under(p)
                shutil.rmtree(p, ignore_errors=True)
        if not netavark_before and lib.netavark_rules_present():
            lib.remove_netavark_rules()
        if args.keep:
            print(f"clients: work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    total = time.monotonic() - t_start

    rows, failures, details = [], [], []
    for n, res in results.items():
        v, bad = verdict(n, res, required)
        rows.append((n, label(res["runc"]), label(res["husk"]), v, bad))
        if bad:
            failures.append(n)
        for rt in RUNTIMES:
            o = res[rt]
            if o.ok is False and not o.err.endswith("setup failed (see above)"):
                details.append(f"{n} [{rt}]: {o.err}")
            nt = lib.NOTES.get((n, rt))
            if nt:
                details.append(f"{n} [{rt}]: note: {nt}")
    print()
    for e in setup_errors:
        print(f"SETUP FAILED: {e}")
    print_table(rows)
    print()
    if details:
        print("Details:")
        for d in details:
            print(f"  {d}")
        print()
    passing_not_required = [r[0] for r in rows if r[3] == "ok" and r[0] not in required]
    if passing_not_required:
        print("Passing but not in required.txt (add them): " + ", ".join(passing_not_required))
    gaps = [r[0] for r in rows if r[3] == "known gap"]
    summary = (f"clients: {len(rows)} scenarios, {sum(r[3] == 'ok' for r in rows)} ok, "
               f"{len(gaps)} known gaps, {len(failures)} required failing; {total:.0f}s")
    print(summary)
    print(f"clients: command log in {args.log}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": [{"scenario": r[0], "runc": r[1], "husk": r[2], "verdict": r[3]}
                                for r in rows],
                       "details": details, "seconds": round(total)}, f, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("| scenario | runc | husk | verdict |\n|---|---|---|---|\n")
            for r in rows:
                f.write(f"| `{r[0]}` | {r[1]} | {r[2]} | {r[3]} |\n")
    if setup_errors:
        print("clients: FAILED: " + "; ".join(setup_errors))
        return 1
    if failures:
        print("clients: FAILED (required): " + ", ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
