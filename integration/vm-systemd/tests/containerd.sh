# containerd 1.6's CRI plugin with the runc shim (io.containerd.runc.v2), options BinaryName
# = $RTBIN and SystemdCgroup = true, driven by the project's CRI client (cri.py) as the
# kubelet's systemd driver drives it: a pod whose cgroup_parent is a kubepods slice, a
# container with memory and cpu limits, exec, stop, remove. Each scenario runs its own
# containerd (own root, state, socket) and takes everything down again, even when a check
# fails: pods, shims, runtime state, mounts, the kubepods slices it made, the daemon.

CD_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The image of the sandbox and of the container: busybox whose CMD waits forever.
CD_IMG=localhost/husk-test-cri:latest
CD_LOOP='trap "exit 0" TERM; sleep 300 & wait'

# The CRI calls cri.py has not (ExecSync, StopContainer, RemoveContainer, List*, a container
# with linux resources) encoded with its helpers. Usage: cd_cri COMMAND ARGS...
CD_TOOL=$(cat <<'PY'
import ast, sys
from cri import Cri, GrpcError, RUNTIME, call, pb, pb_decode

sock, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
c = Cri(sock)


def rpc(method, *fields):
    return pb_decode(call(sock, RUNTIME + method, pb(*fields)))


try:
    if cmd == "runp":  # NAME UID LOG_DIR HANDLER CGROUP_PARENT SAVE_CONFIG_TO
        name, uid, log_dir, handler, parent, conf = args
        pod = c.run_pod(name, uid, log_dir, handler, parent)
        with open(conf, "w") as f:
            f.write(repr(c.pod_config))
        print(pod)
    elif cmd == "create":  # POD POD_CONFIG NAME IMAGE MEMORY CPU_PERIOD CPU_QUOTA CPU_SHARES LOG CMD...
        pod, conf, name, image, mem, period, quota, shares, log = args[:9]
        with open(conf) as f:
            pod_config = ast.literal_eval(f.read())
        # LinuxContainerResources: cpu_period 1, cpu_quota 2, cpu_shares 3, memory_limit_in_bytes 4.
        res = ((1, int(period)), (2, int(quota)), (3, int(shares)), (4, int(mem)))
        cfg = ((1, ((1, name), (2, 0))), (2, ((1, image),)), (3, args[9:]), (11, log),
               (15, ((1, res),)))
        print(rpc("CreateContainer", (1, pod), (2, cfg), (3, pod_config))[1][0].decode())
    elif cmd == "start":
        c.start_container(args[0])
    elif cmd == "state":
        print(*c.container_state(args[0]))
    elif cmd == "exec":  # CID CMD...: its stdout and stderr, its exit status
        r = rpc("ExecSync", (1, args[0]), (2, args[1:]), (3, 30))
        sys.stdout.write(b"".join(r.get(1, [])).decode(errors="replace"))
        sys.stderr.write(b"".join(r.get(2, [])).decode(errors="replace"))
        sys.exit(r.get(3, [0])[0])
    elif cmd == "stop":  # CID TIMEOUT
        rpc("StopContainer", (1, args[0]), (2, int(args[1])))
    elif cmd == "rm":
        rpc("RemoveContainer", (1, args[0]))
    elif cmd == "stopp":
        c.stop_pod(args[0])
    elif cmd == "rmp":
        c.remove_pod(args[0])
    elif cmd in ("pods", "ctrs"):  # the ids of every pod sandbox / container
        r = rpc("ListPodSandbox" if cmd == "pods" else "ListContainers")
        for item in r.get(1, []):
            print(pb_decode(item)[1][0].decode())
    else:
        sys.exit(f"cd_cri: unknown command {cmd}")
except GrpcError as e:
    sys.exit(f"CRI: {e}")
PY
)
cd_cri() { PYTHONPATH=$CD_HERE timeout 90 python3 -c "$CD_TOOL" "$CD_SOCK" "$@"; }

# The last error containerd logged (a failed CRI call's reason).
cd_errors() { grep 'level=error' "$CD_DIR/containerd.log" 2>/dev/null | tail -n 1 | cut -c1-400; }

# The image, as an OCI archive for `ctr images import`: the busybox rootfs of lib.sh's
# make_bundle as its one layer, CMD sleep. Made once per boot (kept in /run, a tmpfs).
CD_ARCHIVE=/run/husk-test-cri-image.tar
cd_image() {
  if [ ! -s "$CD_ARCHIVE" ]; then
    local b=$CD_DIR/image o layer config manifest
    o=$b/oci
    mkdir -p "$o/blobs/sha256"
    make_bundle "$b/bundle" >/dev/null || return 1
    # cd_blob FILE: stores FILE under its digest, prints "digest size".
    cd_blob() {
      local d
      d=$(sha256sum "$1" | cut -d' ' -f1)
      mv "$1" "$o/blobs/sha256/$d"
      echo "sha256:$d $(stat -c %s "$o/blobs/sha256/$d")"
    }
    tar -C "$b/bundle/rootfs" --numeric-owner -cf "$b/layer.tar" . || return 1
    layer=($(cd_blob "$b/layer.tar"))
    jq -n --arg diff "${layer[0]}" '{architecture: "amd64", os: "linux",
        config: {Cmd: ["/bin/sleep", "2147483647"]}, rootfs: {type: "layers", diff_ids: [$diff]}}' >"$b/config"
    config=($(cd_blob "$b/config"))
    jq -n --arg cd "${config[0]}" --argjson cs "${config[1]}" --arg ld "${layer[0]}" --argjson ls "${layer[1]}" \
      '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
        layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $ld, size: $ls}]}' >"$b/manifest"
    manifest=($(cd_blob "$b/manifest"))
    jq -n --arg d "${manifest[0]}" --argjson s "${manifest[1]}" \
      '{schemaVersion: 2, manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: $d, size: $s, annotations: {"org.opencontainers.image.ref.name": "latest"}}]}' >"$o/index.json"
    echo '{"imageLayoutVersion": "1.0.0"}' >"$o/oci-layout"
    tar -C "$o" -cf "$CD_ARCHIVE.new" . && mv "$CD_ARCHIVE.new" "$CD_ARCHIVE"
    local rc=$?
    rm -rf "$b"
    [ $rc = 0 ] || return 1
  fi
  timeout 120 ctr -a "$CD_SOCK" -n k8s.io images import --base-name "${CD_IMG%:*}" "$CD_ARCHIVE" >/dev/null
}

# A private containerd in $PWD/ctrd whose CRI runtime handler "husk" is the runc shim with
# BinaryName $RTBIN and SystemdCgroup; sets CD_DIR, CD_SOCK, CD_PID.
cd_start() {
  CD_DIR=$PWD/ctrd
  CD_SOCK=$CD_DIR/containerd.sock
  CD_PID=
  # The kubepods slices are the test's to remove unless they were there before.
  CD_OWN_KUBEPODS=1
  systemctl is-active -q kubepods.slice && CD_OWN_KUBEPODS=0
  mkdir -p "$CD_DIR"/{root,state,cni/bin,cni/conf,logs}
  cat >"$CD_DIR/config.toml" <<EOF
version = 2
root = "$CD_DIR/root"
state = "$CD_DIR/state"
disabled_plugins = [
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "$CD_SOCK"

[ttrpc]
  address = "$CD_SOCK.ttrpc"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$CD_IMG"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CD_DIR/cni/bin"
    conf_dir = "$CD_DIR/cni/conf"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "husk"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.husk]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.husk.options]
        BinaryName = "$RTBIN"
        Root = "$CD_DIR/rt-root"
        SystemdCgroup = true
EOF
  containerd --config "$CD_DIR/config.toml" --log-level info >"$CD_DIR/containerd.log" 2>&1 </dev/null &
  CD_PID=$!
  local i=0
  until [ -S "$CD_SOCK" ] && ctr -a "$CD_SOCK" version >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 300 ] || ! kill -0 $CD_PID 2>/dev/null; then
      fail "containerd did not come up: $(tail -n 5 "$CD_DIR/containerd.log" | tr '\n' '|')"
      return 1
    fi
    sleep 0.1
  done
  cd_image || { fail "importing the image into containerd"; return 1; }
}

# Takes down whatever is left: pods and containers through CRI, the daemon, its shims, the
# runtime's containers, mounts, the kubepods slices, the directory.
cd_cleanup() {
  [ -n "$CD_DIR" ] || return 0
  local id pid
  if [ -n "$CD_PID" ] && kill -0 "$CD_PID" 2>/dev/null; then
    for id in $(cd_cri ctrs 2>/dev/null); do
      cd_cri stop "$id" 0 >/dev/null 2>&1
      cd_cri rm "$id" >/dev/null 2>&1
    done
    for id in $(cd_cri pods 2>/dev/null); do
      cd_cri stopp "$id" >/dev/null 2>&1
      cd_cri rmp "$id" >/dev/null 2>&1
    done
    kill -TERM "$CD_PID" 2>/dev/null
    local i=0
    while kill -0 "$CD_PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$CD_PID" 2>/dev/null
    wait "$CD_PID" 2>/dev/null
  fi
  # The shims outlive the daemon: those of this one (its socket is in their command line).
  for pid in $(pgrep -f -- "-address $CD_SOCK"); do kill -KILL "$pid" 2>/dev/null; done
  for id in $(ls "$CD_DIR/rt-root/k8s.io" 2>/dev/null); do
    timeout 30 "$RTBIN" --systemd-cgroup --root "$CD_DIR/rt-root/k8s.io" delete -f "$id" >/dev/null 2>&1
  done
  awk -v d="$CD_DIR/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r \
    | while read -r m; do umount -l "$m" 2>/dev/null; done
  [ "$CD_OWN_KUBEPODS" = 1 ] && systemctl stop kubepods.slice 2>/dev/null
  rm -rf "$CD_DIR"
  CD_DIR=
}

# Waits (up to 5 s) until no unit or cgroup matches $1, then fails if one still does.
cd_settled() {
  local i=0
  while [ $i -lt 50 ]; do
    systemctl list-units --all --plain --no-legend | awk '{print $1}' | grep -Eq "$1" \
      || find /sys/fs/cgroup -type d | grep -Eq "$1" || break
    sleep 0.1
    i=$((i + 1))
  done
  leftovers "$1"
}

# Who wrote the runtime's state of container $1: husk (pidStartTime) or runc (init_process_pid).
cd_owner() {
  jq -r 'if has("pidStartTime") then "husk" elif has("init_process_pid") then "runc" else "?" end' \
    "$CD_DIR/rt-root/k8s.io/$1/state.json" 2>&1
}

# Cgroup files of the container, read from inside it in one ExecSync, space-separated (its
# own cgroup, whether or not it has a cgroup namespace).
cd_cg() {
  local cid=$1
  shift
  cd_cri exec "$cid" sh -c 'p=$(sed -n "s/^0:://p" /proc/self/cgroup); cd "/sys/fs/cgroup${p%/}" && cat "$@"' \
    sh "$@" 2>&1 | paste -sd' '
}

# Properties of unit cri-containerd-ID.scope, space-separated, in the order given.
cd_props() {
  local id=$1 args=() p out
  shift
  for p in "$@"; do args+=(-p "$p"); done
  out=$(systemctl show "${args[@]}" "cri-containerd-$id.scope")
  for p in "$@"; do echo "$out" | sed -n "s/^$p=//p"; done | paste -sd' '
}

cd_pod_flow() {
  # A pod uid as the kubelet has it; its slice name has the dashes as underscores.
  local uid parent pod cid out
  uid=$(printf '%08x-7e57-4a11-9c00-%012x' $$ "$(date +%s)")
  parent="kubepods-besteffort-pod${uid//-/_}.slice"
  pod=$(cd_cri runp "$RT-pod" "$uid" "$CD_DIR/logs" husk "$parent" "$CD_DIR/pod.conf" 2>&1) \
    || { fail "RunPodSandbox: $pod; containerd: $(cd_errors)"; return 1; }
  expect_eq "sandbox state written by" "$(cd_owner "$pod")" "$RT"
  expect_eq "sandbox unit ActiveState Slice" "$(cd_props "$pod" ActiveState Slice)" "active $parent"

  cid=$(cd_cri create "$pod" "$CD_DIR/pod.conf" main "$CD_IMG" 134217728 100000 50000 512 main.log \
    sh -c "$CD_LOOP" 2>&1) || { fail "CreateContainer: $cid; containerd: $(cd_errors)"; return 1; }
  out=$(cd_cri start "$cid" 2>&1) || { fail "StartContainer: $out; containerd: $(cd_errors)"; return 1; }
  expect_eq "ContainerStatus after start" "$(cd_cri state "$cid")" "1 0"
  expect_eq "container state written by" "$(cd_owner "$cid")" "$RT"

  # exec: output and exit status.
  out=$(cd_cri exec "$cid" sh -c 'echo hi; exit 3' 2>&1)
  expect_eq "ExecSync exit status (output: $out)" $? 3
  expect_eq "ExecSync output" "$out" hi

  # The limits, inside and on the unit; the container's cgroup is the scope in the pod's slice.
  expect_eq "memory.max cpu.max cpu.weight inside" "$(cd_cg "$cid" memory.max cpu.max cpu.weight)" \
    "134217728 50000 100000 20"
  expect_eq "unit MemoryMax CPUQuotaPerSecUSec CPUWeight Slice Delegate" \
    "$(cd_props "$cid" MemoryMax CPUQuotaPerSecUSec CPUWeight Slice Delegate)" "134217728 500ms 20 $parent yes"
  local pid
  pid=$("$RTBIN" --root "$CD_DIR/rt-root/k8s.io" state "$cid" 2>/dev/null | jq -r .pid)
  expect_eq "host /proc/PID/cgroup of the container" "$(cat /proc/${pid:-0}/cgroup 2>&1)" \
    "0::/kubepods.slice/kubepods-besteffort.slice/$parent/cri-containerd-$cid.scope"

  # stop: SIGTERM, the trap exits 0; the unit goes with the last process.
  out=$(cd_cri stop "$cid" 10 2>&1) || fail "StopContainer: $out; containerd: $(cd_errors)"
  expect_eq "ContainerStatus after stop" "$(cd_cri state "$cid")" "2 0"
  local i=0
  while [ "$(cd_props "$cid" ActiveState)" = active ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  expect_eq "unit ActiveState after stop" "$(cd_props "$cid" ActiveState)" inactive
  out=$(cd_cri rm "$cid" 2>&1) || fail "RemoveContainer: $out; containerd: $(cd_errors)"
  [ -e "$CD_DIR/rt-root/k8s.io/$cid" ] && fail "the runtime's state of $cid is left after RemoveContainer"

  out=$(cd_cri stopp "$pod" 2>&1) || fail "StopPodSandbox: $out; containerd: $(cd_errors)"
  out=$(cd_cri rmp "$pod" 2>&1) || fail "RemovePodSandbox: $out; containerd: $(cd_errors)"
  expect_eq "pods after RemovePodSandbox" "$(cd_cri pods 2>&1)" ""
  [ -e "$CD_DIR/rt-root/k8s.io/$pod" ] && fail "the runtime's state of the sandbox is left"
  cd_settled 'cri-containerd-'
  local procs
  procs=$(find /sys/fs/cgroup/kubepods.slice -name cgroup.procs -exec cat {} + 2>/dev/null)
  [ -z "$procs" ] || fail "processes left in kubepods.slice: $(echo $procs)"
}

scenario_cri_pod_limits_exec_stop_remove() {
  CD_DIR=
  cd_start && cd_pod_flow
  cd_cleanup
}
