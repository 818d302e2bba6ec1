#!/usr/bin/env python3
"""Regenerates crates/shim/hot-functions.txt: the functions husk runs in its common commands,
which the linker places together at the start of .text (lld --symbol-ordering-file, see
crates/shim/build.rs).

Why: the kernel maps a file-backed page fault's neighbours too (fault-around, 64 KiB), so
code run once anywhere in the 4.5 MB of .text costs a whole window of RSS. Packing the code
that create/start/run/exec/delete execute into one contiguous stretch cut husk's peak RSS
(docs/benchmarks.md).

How: one uprobe per function of an unstripped build (tracefs uprobe_events, which follow
every process, clone and exec of that file), a few real container lifecycles, then the probes
with hits from uprobe_profile, written in address order (mangled names, as the linker sees
them). Needs root and tracefs; the probes are removed at the end.

    HUSK_LINK_MAP=/tmp/husk.map make build
    integration/bench/hot_functions.py target/x86_64-unknown-linux-gnu/release/husk /tmp/husk.map

The names must be those of the build that uses the list: the link map of that very build
(profile settings such as `strip` change the symbol hashes).
"""

import json
import re
import os
import shutil
import subprocess
import sys
import tempfile

TRACING = "/sys/kernel/tracing"
GROUP = "huskhot"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(REPO, "crates/shim/hot-functions.txt")


def sh(*args, **kw):
    return subprocess.run(
        args, check=True, text=True, capture_output=True, timeout=300, **kw
    ).stdout


SECTION = re.compile(
    r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+\s+\S.*:\(\.text\.(?:unlikely\.|hot\.)?((?:_ZN|_R)\S+)\)$"
)


def text_symbols(link_map):
    """(mangled name, vaddr) of every Rust function, from the input sections (one per
    function) of lld's link map. The static glibc's functions are left where the linker puts
    them: probes on some of its vector string functions broke them (a uprobe single-steps the
    probed instruction out of line)."""
    syms = []
    with open(link_map) as f:
        for line in f:
            m = SECTION.match(line)
            if m and int(m.group(2), 16) > 0:
                syms.append((m.group(3), int(m.group(1), 16)))
    return syms


def exec_segment(binary):
    """(vaddr, file offset, size) of the executable LOAD segment."""
    for line in sh("readelf", "-lW", binary).splitlines():
        f = line.split()
        if f and f[0] == "LOAD" and "E" in f[6:-1]:
            return int(f[2], 16), int(f[1], 16), int(f[4], 16)
    sys.exit("no executable LOAD segment")


def write(path, lines):
    """One write(2) per line (the kernel parses one definition per write); no seek, which
    tracefs refuses."""
    fd = os.open(os.path.join(TRACING, path), os.O_WRONLY | os.O_APPEND)
    try:
        for line in lines:
            os.write(fd, line.encode())
    finally:
        os.close(fd)


def add_probes(binary, syms):
    vaddr, offset, size = exec_segment(binary)
    lines, names = [], {}
    for i, (name, addr) in enumerate(syms):
        if vaddr <= addr < vaddr + size:
            lines.append(f"p:{GROUP}/f{i} {binary}:0x{addr - vaddr + offset:x}\n")
            names[f"f{i}"] = name
    write("uprobe_events", lines)
    write(f"events/{GROUP}/enable", ["1"])
    return names


def remove_probes():
    if os.path.exists(os.path.join(TRACING, "events", GROUP)):
        write(f"events/{GROUP}/enable", ["0"])
    with open(os.path.join(TRACING, "uprobe_events")) as f:
        defs = [l.split()[0] for l in f if l.strip()]
    mine = [d.split(":", 1)[1] for d in defs if d.startswith(f"p:{GROUP}/")]
    if mine and len(mine) == len(defs):
        # Only ours: truncating removes them all at once (one by one takes minutes).
        os.close(os.open(os.path.join(TRACING, "uprobe_events"), os.O_WRONLY | os.O_TRUNC))
    else:
        write("uprobe_events", [f"-:{ev}\n" for ev in mine])


def hits():
    out = {}
    with open(os.path.join(TRACING, "uprobe_profile")) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[1].startswith("f"):
                out[parts[1]] = out.get(parts[1], 0) + int(parts[2])
    return out


def busybox_bundle(root):
    rootfs = os.path.join(root, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"))
    for d in ("proc", "sys", "dev", "tmp", "etc"):
        os.makedirs(os.path.join(rootfs, d))
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin/busybox"))
    for a in ("sh", "true", "sleep", "cat"):
        os.symlink("busybox", os.path.join(rootfs, "bin", a))
    return root


def quiet(*args):
    """A husk command whose container may keep stdio open: no pipes to wait on."""
    subprocess.run(args, check=True, timeout=300, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def workload(husk, tmp):
    """The commands whose code is worth packing: run, create/start/state/exec/kill/delete."""
    bundle = busybox_bundle(os.path.join(tmp, "bundle"))
    state = os.path.join(tmp, "state")
    h = [husk, "--root", state]
    sh(*h, "spec", "--bundle", bundle)
    cfg_path = os.path.join(bundle, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["true"]
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    for i in range(3):
        quiet(*h, "run", "--bundle", bundle, f"hot-run-{i}")
    cfg["process"]["args"] = ["sleep", "30"]
    # Hooks too (podman, nerdctl and CNI setups use them).
    cfg["hooks"] = {k: [{"path": "/bin/true"}] for k in ("createRuntime", "poststart", "poststop")}
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    quiet(*h, "create", "--bundle", bundle, "hot-c")
    quiet(*h, "state", "hot-c")
    quiet(*h, "start", "hot-c")
    quiet(*h, "exec", "hot-c", "true")
    quiet(*h, "list")
    quiet(*h, "kill", "hot-c", "KILL")
    quiet(*h, "delete", "--force", "hot-c")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    husk = os.path.abspath(sys.argv[1])
    syms = text_symbols(sys.argv[2])
    if not syms:
        sys.exit(f"no Rust function sections in {sys.argv[2]}: is it lld's -Map of {husk}?")
    mounted = not os.path.exists(os.path.join(TRACING, "uprobe_events"))
    if mounted:
        sh("mount", "-t", "tracefs", "tracefs", TRACING)
    remove_probes()
    tmp = tempfile.mkdtemp(prefix="husk-hot-")
    try:
        names = add_probes(husk, syms)
        workload(husk, tmp)
        counts = hits()
    finally:
        remove_probes()
        shutil.rmtree(tmp, ignore_errors=True)
        if mounted:
            subprocess.run(["umount", TRACING], check=False)
    addr = dict(syms)
    hot = sorted((names[p] for p, n in counts.items() if n > 0 and p in names), key=addr.get)
    with open(OUT, "w") as f:
        f.write("".join(n + "\n" for n in hot))
    print(f"{len(hot)} of {len(names)} functions ran; wrote {OUT}")


if __name__ == "__main__":
    main()
