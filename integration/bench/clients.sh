#!/bin/bash
# End-to-end client latency: `podman run --rm IMG true` and `ctr run --rm IMG ID true` with
# husk, runc and crun side by side, in ONE hyperfine run per client,
# on a locally built busybox image. Every runtime runs inside the same `v1-only` wrapper
# (crun refuses this host's hybrid cgroup layout, see ../shared/HOST.md): podman is started
# inside it, and so is the private containerd (its shims, hence the runtimes, inherit it).
#
# Not run by `make test`. Prints hyperfine's markdown tables and the medians' ratios.
#
# Environment:
#   HUSK_BIN    husk binary (default: the newest <repo>/target/[<triple>/]release/husk, or $CARGO_TARGET_DIR's)
#   SHARED_DIR  dir holding v1-only (default: <repo>/../shared)
#   RUNS        hyperfine runs per command (default 30), WARMUP (default 3)
#   RUNTIMES    default "husk runc crun"
#   CLIENTS     default "podman ctr"
#   OUT         also append the tables to this file (default: none)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
runs=${RUNS:-30}
warmup=${WARMUP:-3}
runtimes=${RUNTIMES:-husk runc crun}
clients=${CLIENTS:-podman ctr}
out=${OUT:-}
img=localhost/busybox:latest

preflight bench-clients hyperfine podman conmon containerd ctr busybox jq

resolve_runtimes

work=$(mktemp -d /tmp/husk-bench-clients.XXXXXX)
chmod 755 "$work"
cd_pid=
# Host paths the clients create whatever their flags (ctr's fifos and the shims' sockets,
# podman's blob cache): removed at the end when they did not exist before.
host_paths="/run/containerd /run/containers /run/libpod /var/lib/containers"
created=
for p in $host_paths; do [ -e "$p" ] || created="$created $p"; done
cleanup() {
    set +e
    if [ -n "$cd_pid" ]; then
        for id in $(ctr -a "$work/cd.sock" -n bench containers ls -q 2>/dev/null); do
            ctr -a "$work/cd.sock" -n bench tasks delete -f "$id" >/dev/null 2>&1
            ctr -a "$work/cd.sock" -n bench containers delete "$id" >/dev/null 2>&1
        done
        kill "$cd_pid" 2>/dev/null; wait "$cd_pid" 2>/dev/null
    fi
    # Shims and conmons of this run only: their command lines name the work dir.
    for p in $(pgrep -f -- "$work" || true); do kill -9 "$p" 2>/dev/null; done
    grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
    for h in /sys/fs/cgroup/*/; do rmdir "$h"bench/* "$h"bench "$h"libpod_parent/* "$h"libpod_parent 2>/dev/null; done
    rm -rf "$work"
    for p in $created; do rm -rf "$p"; done
}
trap cleanup EXIT

# The image: a busybox-static rootfs as a tarball.
root=$work/rootfs
mkdir -p "$root"/{bin,etc,tmp,proc,sys,dev,root,run}
cp /bin/busybox "$root/bin/"
for a in $(busybox --list); do [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
tar -C "$root" -cf "$work/rootfs.tar" .

# podman: private store and config; every runtime registered by path.
mkdir -p "$work/podman"
{
    echo '[containers]'
    echo 'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]'
    echo 'netns = "none"'
    echo '[engine]'
    echo 'cgroup_manager = "cgroupfs"'
    echo 'events_logger = "file"'
    echo 'runtime_supports_json = ["husk", "runc", "crun"]'
    echo '[engine.runtimes]'
    for r in "${names[@]}"; do echo "$r = [\"${bin[$r]}\"]"; done
} > "$work/podman/containers.conf"
printf '[storage]\ndriver = "overlay"\nrunroot = "%s"\ngraphroot = "%s"\n' \
    "$work/podman/runroot" "$work/podman/root" > "$work/podman/storage.conf"
export CONTAINERS_CONF=$work/podman/containers.conf
export CONTAINERS_STORAGE_CONF=$work/podman/storage.conf
P="podman --root $work/podman/root --runroot $work/podman/runroot --tmpdir $work/podman/tmp"
P="$P --storage-driver overlay --cgroup-manager cgroupfs --events-backend file"
$P import "$work/rootfs.tar" "$img" >/dev/null
$P save --format oci-archive -o "$work/oci.tar" "$img" >/dev/null 2>&1

report() { # title, markdown file
    echo; echo "### $1"; echo; cat "$2"
    if [ -n "$out" ]; then { echo; echo "### $1"; echo; cat "$2"; } >> "$out"; fi
}

ratios() { # json file: medians and ratio to husk
    jq -r '.results as $r | ($r[] | select(.command | test("husk")) | .median) as $h
        | $r[] | "\(.command): median \(.median * 1000 | floor) ms, \((.median / $h * 100 | floor) / 100)x husk"' "$1"
}

if [[ " $clients " == *" podman "* ]]; then
    cmds=()
    for r in "${names[@]}"; do cmds+=(-n "podman $r" "$P --runtime $r run --rm $img true"); done
    "$v1only" hyperfine --warmup "$warmup" --runs "$runs" --time-unit millisecond \
        --export-markdown "$work/podman.md" --export-json "$work/podman.json" "${cmds[@]}"
    report "podman run --rm $img true" "$work/podman.md"
    ratios "$work/podman.json"
fi

if [[ " $clients " == *" ctr "* ]]; then
    mkdir -p "$work/cd"
    cat > "$work/cd/config.toml" <<EOF
version = 2
root = "$work/cd/root"
state = "$work/cd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt"]
[grpc]
  address = "$work/cd.sock"
EOF
    "$v1only" containerd --config "$work/cd/config.toml" --log-level warn \
        >"$work/cd/log" 2>&1 &
    cd_pid=$!
    for _ in $(seq 100); do ctr -a "$work/cd.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
    C="ctr -a $work/cd.sock -n bench"
    $C images import --base-name localhost/busybox "$work/oci.tar" >/dev/null
    cmds=()
    for r in "${names[@]}"; do
        cmds+=(-n "ctr $r" "$C run --rm --runc-binary ${bin[$r]} --runc-root $work/cd/rt-$r $img b-$r true")
    done
    hyperfine --warmup "$warmup" --runs "$runs" --time-unit millisecond \
        --export-markdown "$work/ctr.md" --export-json "$work/ctr.json" "${cmds[@]}"
    report "ctr run --rm $img ID true" "$work/ctr.md"
    ratios "$work/ctr.json"
fi
