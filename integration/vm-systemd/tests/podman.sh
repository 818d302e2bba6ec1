# podman 4.3 as root with its defaults (no --cgroup-manager: containers.conf says systemd), the
# runtime given by path (`podman --runtime $RTBIN`): conmon runs it with --systemd-cgroup and
# cgroupsPath machine.slice:libpod:ID, so each container is the scope libpod-ID.scope in
# machine.slice. Run, detached + exec + stop + rm, the limits (inside the container and on the
# unit), stats, top, and 20 `run --rm` that leave no unit behind.
#
# run_echo and detached_exec_stop_rm keep podman's default network too (netavark's bridge);
# the others use --network none: under TCG the bridge costs ~2.5 s a container, and the
# network is not what they test.

PM_IMG=localhost/busybox:latest
# A main process that stops at once on SIGTERM (pid 1 ignores signals it has no handler for).
PM_LOOP='trap "exit 0" TERM; sleep 300 & wait'

# Every podman command gets at most 2 minutes: a hang is a failure, not a stuck VM.
pm() { timeout 120 podman --runtime "$RTBIN" "$@"; }

# lib.sh's busybox image, asked of podman once per boot (each question costs a podman start).
pm_image() {
  [ -e /run/husk-test-podman-image ] && return 0
  busybox_image || { fail "importing the busybox image"; return 1; }
  touch /run/husk-test-podman-image
}

# A detached container NAME (sleep 300 unless told) with options OPTS...: pm_detached NAME
# [OPTS...] [-- CMD...]. Sets PM_ID (the full id), PM_PID (its init's pid on the host) and
# PM_OCIRT (the runtime podman says it ran).
pm_detached() {
  local n=$1 opts=() cmd=(sleep 300)
  shift
  while [ $# -gt 0 ]; do
    if [ "$1" = -- ]; then shift; cmd=("$@"); break; fi
    opts+=("$1"); shift
  done
  PM_ID= PM_PID= PM_OCIRT=
  pm_image || return 1
  check "podman run -d ${opts[*]}" pm run -d --name "$n" "${opts[@]}" "$PM_IMG" "${cmd[@]}" || return 1
  read -r PM_ID PM_PID PM_OCIRT < <(pm inspect --format '{{.Id}} {{.State.Pid}} {{.OCIRuntime}}' "$n")
  [ -n "$PM_ID" ] && [ "${PM_PID:-0}" -gt 0 ] || { fail "inspect $n: id '$PM_ID', pid '$PM_PID'"; return 1; }
}

# Cgroup files of container NAME, read from inside it in one exec, space-separated (with its
# cgroup namespace, /sys/fs/cgroup is its own cgroup).
pm_cg() {
  local n=$1
  shift
  pm exec "$n" sh -c 'cd /sys/fs/cgroup && cat "$@"' sh "$@" 2>&1 | paste -sd' '
}
# Properties of unit libpod-ID.scope, one value a line, in the order given.
pm_props() {
  local id=$1 args=()
  shift
  for p in "$@"; do args+=(-p "$p"); done
  local out
  out=$(systemctl show "${args[@]}" "libpod-$id.scope")
  for p in "$@"; do echo "$out" | sed -n "s/^$p=//p"; done | paste -sd' '
}

# Removes container NAME, then fails if a unit or cgroup of container id ID is left.
pm_gone() {
  pm rm -f -t 0 "$1" >/dev/null 2>&1
  [ -n "$2" ] && leftovers "libpod-(conmon-)?$2"
}

scenario_run_echo() {
  expect_eq "podman info: cgroup manager, version" \
    "$(podman info --format '{{.Host.CgroupManager}} {{.Host.CgroupsVersion}}')" "systemd v2"
  pm_image || return 1
  local out
  out=$(pm run --rm "$PM_IMG" echo hello 2>&1)
  expect_eq "podman run --rm echo hello (exit $?)" "$out" hello
  out=$(pm run --rm --network none "$PM_IMG" sh -c 'exit 7' 2>&1)
  expect_eq "exit status of podman run (output: $out)" $? 7
}

scenario_detached_exec_stop_rm() {
  local n=$RT-pm-detached
  pm_detached $n -- sh -c "$PM_LOOP" || { pm_gone $n "$PM_ID"; return 1; }
  local id=$PM_ID
  # The runtime podman ran is ours: its path, and the state it wrote in its root.
  expect_eq "inspect .OCIRuntime" "$PM_OCIRT" "$RTBIN"
  local owner
  owner=$(jq -r 'if has("pidStartTime") then "husk" elif has("init_process_pid") then "runc" else "?" end' \
    "/run/$RT/$id/state.json" 2>&1)
  expect_eq "/run/$RT/$id/state.json written by" "$owner" "$RT"
  # The container is the scope, in machine.slice; inside, its cgroup namespace's root.
  expect_eq "host /proc/PID/cgroup" "$(cat /proc/$PM_PID/cgroup)" "0::/machine.slice/libpod-$id.scope"
  # podman's default pids limit (containers.conf pids_limit = 2048).
  expect_eq "unit ActiveState Slice Delegate TasksMax" "$(pm_props $id ActiveState Slice Delegate TasksMax)" \
    "active machine.slice yes 2048"
  expect_eq "/proc/self/cgroup and pids.max inside" \
    "$(pm exec $n cat /proc/self/cgroup /sys/fs/cgroup/pids.max 2>&1 | paste -sd' ')" "0::/ 2048"
  # exec: output and exit status.
  local out
  out=$(pm exec $n echo hi 2>&1)
  expect_eq "exec echo hi (exit $?)" "$out" hi
  out=$(pm exec $n sh -c 'exit 4' 2>&1)
  expect_eq "exec exit 4 (output: $out)" $? 4
  # stop: SIGTERM, the trap exits 0, the unit goes with the last process.
  check "podman stop" pm stop -t 10 $n
  expect_eq "state after stop" "$(pm inspect --format '{{.State.Status}} {{.State.ExitCode}}' $n)" "exited 0"
  local i=0
  while [ "$(pm_props $id ActiveState)" = active ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  expect_eq "unit ActiveState after stop" "$(pm_props $id ActiveState)" inactive
  check "podman rm" pm rm $n
  [ -e "/run/$RT/$id" ] && fail "the runtime's state /run/$RT/$id is left after rm"
  pm_gone $n $id
}

scenario_memory() {
  local n=$RT-pm-memory
  pm_detached $n --network none --memory 256m || { pm_gone $n "$PM_ID"; return 1; }
  # podman's default swap for --memory alone: as much again (memory+swap = 2x).
  expect_eq "memory.max memory.swap.max inside" "$(pm_cg $n memory.max memory.swap.max)" "268435456 268435456"
  expect_eq "unit MemoryMax" "$(pm_props $PM_ID MemoryMax)" 268435456
  pm_gone $n $PM_ID
}

scenario_cpus() {
  local n=$RT-pm-cpus
  pm_detached $n --network none --cpus 0.5 || { pm_gone $n "$PM_ID"; return 1; }
  expect_eq "cpu.max inside" "$(pm_cg $n cpu.max)" "50000 100000"
  expect_eq "unit CPUQuotaPerSecUSec" "$(pm_props $PM_ID CPUQuotaPerSecUSec)" 500ms
  pm_gone $n $PM_ID
}

scenario_pids_limit() {
  local n=$RT-pm-pids
  pm_detached $n --network none --pids-limit 99 || { pm_gone $n "$PM_ID"; return 1; }
  expect_eq "pids.max inside" "$(pm_cg $n pids.max)" 99
  expect_eq "unit TasksMax" "$(pm_props $PM_ID TasksMax)" 99
  pm_gone $n $PM_ID
}

scenario_stats() {
  local n=$RT-pm-stats
  pm_detached $n --network none --memory 128m || { pm_gone $n "$PM_ID"; return 1; }
  local out
  out=$(pm stats --no-stream --format '{{.MemUsage}}|{{.PIDs}}' $n 2>&1)
  # e.g. "1.2MB / 134.2MB|1": a non-zero usage, the limit, the one process.
  echo "$out" | grep -Eq '^[0-9.]*[1-9][0-9.]*[kMG]?B / 134\.2MB\|1$' || fail "podman stats: '$out'"
  pm_gone $n $PM_ID
}

scenario_top() {
  local n=$RT-pm-top
  pm_detached $n --network none -- sh -c "$PM_LOOP" || { pm_gone $n "$PM_ID"; return 1; }
  local out
  out=$(pm top $n pid args 2>&1)
  # Pids of the container's pid namespace: sh is 1, its sleep another.
  echo "$out" | awk '$1 == 1 && /sh -c/ {a = 1} $1 > 1 && /sleep 300/ {b = 1} END {exit !(a && b)}' \
    || fail "podman top: $(echo "$out" | tr '\n' '|')"
  pm_gone $n $PM_ID
}

# 20 `podman run --rm`, four at a time (the VM has two cpus; under TCG one run takes ~2.5 s).
scenario_run_rm_20_times() {
  pm_image || return 1
  local before states w
  before=$(pm ps -a -q | wc -l)
  states=$(ls /run/$RT 2>/dev/null | wc -l)
  for w in 1 2 3 4; do
    (
      for i in 1 2 3 4 5; do
        out=$(pm run --rm --network none "$PM_IMG" echo "run $w.$i" 2>&1)
        [ $? = 0 ] && [ "$out" = "run $w.$i" ] || echo "run $w.$i: $(echo "$out" | tr '\n' '|')" >>"failed.$w"
      done
    ) &
  done
  wait
  cat failed.* 2>/dev/null | sed 's/^/    /'
  expect_eq "failed runs of 20" "$(cat failed.* 2>/dev/null | wc -l)" 0
  expect_eq "containers after 20 run --rm" "$(pm ps -a -q | wc -l)" "$before"
  expect_eq "entries of /run/$RT after 20 run --rm" "$(ls /run/$RT 2>/dev/null | wc -l)" "$states"
  leftovers 'libpod-'
}
