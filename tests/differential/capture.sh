#!/bin/sh
# Regenerates the config fixtures of tests/differential.rs: the config.json that real
# generators (podman, docker, containerd's ctr, `runc spec`, `crun spec`) hand to an OCI
# runtime on this host. Run as root from anywhere:
#
#     tests/differential/capture.sh            # writes tests/differential/configs/*.json
#
# How: every client is pointed at a tiny runtime, `capture-runc`, a shell script that copies
# the bundle's config.json (from `create --bundle DIR` or `run --bundle DIR`) into a capture
# directory and then execs runc with the same arguments, so the container really runs.
# The daemons are private (their own root, state, socket and config under a temp dir), as
# in integration/clients/; everything started here is stopped and removed on exit, also on
# failure. The fixtures are committed: the test does not need any of these daemons.
#
# Needs: podman, conmon, containerd + ctr, dockerd (docker.io) + a docker client, runc, crun,
# busybox-static, jq (`make deps`).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
OUT="$HERE/configs"
WORK=$(mktemp -d /tmp/husk-capture.XXXXXX)
CAP="$WORK/captured"
mkdir -p "$CAP" "$OUT"
CONTAINERD_PID=
DOCKERD_PID=

log() { printf 'capture: %s\n' "$*" >&2; }

cleanup() {
    set +e
    if [ -n "${PODMAN_OK:-}" ]; then
        podman_ rm --all --force --time 0 >/dev/null 2>&1
    fi
    if [ -n "$DOCKERD_PID" ]; then
        ids=$(docker_ ps -aq 2>/dev/null)
        [ -n "$ids" ] && docker_ rm -f $ids >/dev/null 2>&1
        kill "$DOCKERD_PID" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.2; done
        kill -9 -- "-$DOCKERD_PID" 2>/dev/null
    fi
    if [ -n "$CONTAINERD_PID" ]; then
        for c in $(ctr_ containers ls -q 2>/dev/null); do
            ctr_ tasks kill -s SIGKILL "$c" >/dev/null 2>&1
            ctr_ tasks delete -f "$c" >/dev/null 2>&1
            ctr_ containers delete "$c" >/dev/null 2>&1
        done
        kill "$CONTAINERD_PID" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$CONTAINERD_PID" 2>/dev/null || break; sleep 0.2; done
        kill -9 -- "-$CONTAINERD_PID" 2>/dev/null
    fi
    # Whatever the clients left mounted under the work dir (overlay, shm, netns files).
    grep -o " $WORK[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null
    done
    # The cgroups the clients made for their containers and for conmon (deepest first).
    for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/unified/; do
        find "$h" -maxdepth 1 -type d -name 'husk-capture-*' 2>/dev/null | while read -r top; do
            find "$top" -depth -type d -exec rmdir {} \; 2>/dev/null
        done
    done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

for b in podman ctr containerd dockerd runc crun jq busybox; do
    command -v "$b" >/dev/null || { log "missing $b (make deps)"; exit 1; }
done
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER=$(command -v docker)
RUNC=$(command -v runc)

# The capturing runtime.
cat >"$WORK/capture-runc" <<EOF
#!/bin/sh
bundle=.
prev=
for a in "\$@"; do
    case "\$prev" in --bundle|-b) bundle=\$a ;; esac
    case "\$a" in --bundle=*) bundle=\${a#--bundle=} ;; esac
    prev=\$a
done
for a in "\$@"; do
    case "\$a" in
    create|run) [ -f "\$bundle/config.json" ] && cp "\$bundle/config.json" "$CAP/\$(date +%s%N).json"; break ;;
    esac
done
exec $RUNC "\$@"
EOF
chmod +x "$WORK/capture-runc"

# Takes the config captured by the last client command and writes it as fixture $1 (pretty,
# keys in the generator's order).
take() {
    f=$(ls "$CAP"/*.json 2>/dev/null | tail -n 1)
    [ -n "$f" ] || { log "no config captured for $1"; exit 1; }
    jq . "$f" >"$OUT/$1.json"
    rm -f "$CAP"/*.json
    log "wrote configs/$1.json"
}

# A busybox-static image rootfs, as integration/clients/run.py makes it.
ROOTFS="$WORK/rootfs"
mkdir -p "$ROOTFS/bin" "$ROOTFS/etc" "$ROOTFS/tmp" "$ROOTFS/proc" "$ROOTFS/sys" \
    "$ROOTFS/dev" "$ROOTFS/root" "$ROOTFS/var/tmp" "$ROOTFS/run"
chmod 1777 "$ROOTFS/tmp"
cp /bin/busybox "$ROOTFS/bin/busybox"
for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -s busybox "$ROOTFS/bin/$a"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' \
    >"$ROOTFS/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$ROOTFS/etc/group"
TAR="$WORK/busybox-rootfs.tar"
tar -C "$ROOTFS" -cf "$TAR" .
IMG=localhost/busybox:latest

# ---- podman -------------------------------------------------------------------------------
P="$WORK/podman"
mkdir -p "$P/root" "$P/runroot" "$P/tmp"
cat >"$P/containers.conf" <<EOF
[containers]
# The host lacks CAP_SYS_RESOURCE: podman's default nofile/nproc cannot be granted.
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime_supports_json = ["capture-runc"]
EOF
printf '[storage]\ndriver = "overlay"\nrunroot = "%s"\ngraphroot = "%s"\n' \
    "$P/runroot" "$P/root" >"$P/storage.conf"
podman_() {
    CONTAINERS_CONF="$P/containers.conf" CONTAINERS_STORAGE_CONF="$P/storage.conf" \
        podman --root "$P/root" --runroot "$P/runroot" --tmpdir "$P/tmp" \
        --storage-driver overlay --cgroup-manager cgroupfs --events-backend file \
        --runtime "$WORK/capture-runc" "$@"
}
podman_ import "$TAR" "$IMG" >/dev/null
PODMAN_OK=1
log "podman: default"
podman_ run --rm --cgroup-parent /husk-capture-podman "$IMG" true && take podman-default
log "podman: --privileged"
podman_ run --rm --cgroup-parent /husk-capture-podman --privileged "$IMG" true && take podman-privileged
log "podman: --uidmap"
podman_ run --rm --cgroup-parent /husk-capture-podman --uidmap 0:100000:65536 --gidmap 0:100000:65536 "$IMG" true &&
    take podman-uidmap
podman_ save --format oci-archive -o "$WORK/busybox-oci.tar" "$IMG" >/dev/null

# ---- containerd (ctr run) -----------------------------------------------------------------
C="$WORK/containerd"
mkdir -p "$C/root" "$C/state"
cat >"$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$C/containerd.sock"
[ttrpc]
  address = "$C/containerd.sock.ttrpc"
EOF
ctr_() { ctr -a "$C/containerd.sock" -n husk-capture-ctr "$@"; }
setsid containerd --config "$C/config.toml" >"$C/containerd.log" 2>&1 &
CONTAINERD_PID=$!
for _ in $(seq 150); do ctr_ version >/dev/null 2>&1 && break; sleep 0.2; done
ctr_ version >/dev/null || { log "containerd did not start: $(tail -5 "$C/containerd.log")"; exit 1; }
ctr_ images import --base-name localhost/busybox "$WORK/busybox-oci.tar" >/dev/null
log "ctr run: default"
ctr_ run --rm --runc-binary "$WORK/capture-runc" "$IMG" husk-capture-ctr true &&
    take containerd-ctr-default

# ---- docker -------------------------------------------------------------------------------
D="$WORK/docker"
mkdir -p "$D/data" "$D/exec"
printf '{"runtimes": {"capture-runc": {"path": "%s"}}, "storage-driver": "overlay2"}\n' \
    "$WORK/capture-runc" >"$D/daemon.json"
docker_() { "$DOCKER" -H "unix://$D/docker.sock" "$@"; }
setsid dockerd --config-file "$D/daemon.json" --data-root "$D/data" --exec-root "$D/exec" \
    --pidfile "$D/docker.pid" -H "unix://$D/docker.sock" --iptables=false --ip6tables=false \
    --bridge=none --cgroup-parent /husk-capture-docker --log-level warn \
    >"$D/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 300); do docker_ version >/dev/null 2>&1 && break; sleep 0.2; done
docker_ version >/dev/null || { log "dockerd did not start: $(tail -5 "$D/dockerd.log")"; exit 1; }
docker_ import "$TAR" "$IMG" >/dev/null
log "docker: default (--network none: the daemon has no bridge)"
docker_ run --rm --runtime capture-runc --network none "$IMG" true && take docker-default

# ---- runc spec / crun spec ----------------------------------------------------------------
S="$WORK/spec"
mkdir -p "$S"
(cd "$S" && runc spec && jq . config.json >"$OUT/runc-spec.json" && rm config.json)
log "wrote configs/runc-spec.json"
(cd "$S" && runc spec --rootless && jq . config.json >"$OUT/runc-spec-rootless.json" && rm config.json)
log "wrote configs/runc-spec-rootless.json"
(cd "$S" && crun spec && jq . config.json >"$OUT/crun-spec.json" && rm config.json)
log "wrote configs/crun-spec.json"
log "done"
