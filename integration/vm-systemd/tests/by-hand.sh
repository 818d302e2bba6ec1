# The systemd cgroup driver driven by hand (`$RT --systemd-cgroup`), as an operator would:
# limits seen from inside the container and on the scope unit, update, pause/resume, ps,
# events, delete, and the errors (a unit that exists, a bad path, a failed job).

sd() { "$RT" --systemd-cgroup "$@"; }

# A detached container running sleep in unit $RT-$1.scope, with config filter $2 applied.
start_detached() {
  make_bundle b >/dev/null || return 1
  config b ".process.args = [\"sleep\", \"300\"] | .linux.cgroupsPath = \"system.slice:$RT:$1\" | $2"
  # run -d: the container's stdio must not be our pipe, or we would wait for it to end.
  sd run -d --bundle b "$1" </dev/null >run.log 2>&1 || fail "run -d $1: $(cat run.log)"
  [ "$FAILED" = 0 ]
}

in_ctr() { sd exec "$1" cat "/sys/fs/cgroup/$2" 2>&1; }
prop() { systemctl show -P "$2" "$1"; }

scenario_limits() {
  local id=bh-limits unit="$RT-bh-limits.scope"
  local disk dev
  disk=$(cat /sys/block/vda/dev)
  start_detached $id '.linux.resources = {
      "memory": {"limit": 268435456, "reservation": 67108864, "swap": 402653184},
      "cpu": {"shares": 512, "quota": 25000, "period": 50000, "cpus": "1", "mems": "0"},
      "pids": {"limit": 77},
      "blockIO": {"throttleReadBpsDevice": [{"major": '"${disk%:*}"', "minor": '"${disk#*:}"', "rate": 1048576}]},
      "unified": {"memory.high": "201326592"}}' || return 1
  # From inside the container.
  expect_eq "memory.max" "$(in_ctr $id memory.max)" 268435456
  expect_eq "memory.low" "$(in_ctr $id memory.low)" 67108864
  expect_eq "memory.high" "$(in_ctr $id memory.high)" 201326592
  expect_eq "memory.swap.max" "$(in_ctr $id memory.swap.max)" 134217728
  expect_eq "cpu.weight" "$(in_ctr $id cpu.weight)" 20
  expect_eq "cpu.max" "$(in_ctr $id cpu.max)" "25000 50000"
  expect_eq "cpuset.cpus" "$(in_ctr $id cpuset.cpus)" 1
  expect_eq "pids.max" "$(in_ctr $id pids.max)" 77
  expect_eq "io.max" "$(in_ctr $id io.max)" "$disk rbps=1048576 wbps=max riops=max wiops=max"
  # On the unit.
  expect_eq "MemoryMax" "$(prop $unit MemoryMax)" 268435456
  expect_eq "MemoryLow" "$(prop $unit MemoryLow)" 67108864
  expect_eq "MemoryHigh" "$(prop $unit MemoryHigh)" 201326592
  expect_eq "MemorySwapMax" "$(prop $unit MemorySwapMax)" 134217728
  expect_eq "CPUWeight" "$(prop $unit CPUWeight)" 20
  expect_eq "CPUQuotaPerSecUSec" "$(prop $unit CPUQuotaPerSecUSec)" 500ms
  expect_eq "CPUQuotaPeriodUSec" "$(prop $unit CPUQuotaPeriodUSec)" 50ms
  expect_eq "AllowedCPUs" "$(prop $unit AllowedCPUs)" 1
  expect_eq "AllowedMemoryNodes" "$(prop $unit AllowedMemoryNodes)" 0
  expect_eq "TasksMax" "$(prop $unit TasksMax)" 77
  expect_eq "Delegate" "$(prop $unit Delegate)" yes
  expect_eq "Slice" "$(prop $unit Slice)" system.slice
  expect_eq "DevicePolicy" "$(prop $unit DevicePolicy)" strict
  # runc leaves the IO limits to the files; husk also sets the unit's.
  if [ "$RT" = husk ]; then
    expect_eq "IOReadBandwidthMax" "$(prop $unit IOReadBandwidthMax)" "/dev/block/$disk 1048576"
  fi
  # Devices: the default set works, anything else is refused.
  check "/dev/null is writable" sd exec $id sh -c 'echo x > /dev/null'
  if sd exec $id sh -c 'mknod /tmp/vda b '"${disk%:*} ${disk#*:}"' && head -c1 /tmp/vda' >/dev/null 2>&1; then
    fail "a block device outside the allow list was readable"
  fi
  # The container's cgroup is the scope's.
  local pid
  pid=$(sd state $id | jq -r .pid)
  expect_eq "init's cgroup" "$(cat /proc/$pid/cgroup)" "0::/system.slice/$unit"
  check "delete" sd delete -f $id
  leftovers "$RT-bh-limits"
}

scenario_update_pause_ps_events() {
  local id=bh-upd unit="$RT-bh-upd.scope"
  start_detached $id '.linux.resources = {"memory": {"limit": 268435456}, "pids": {"limit": 50}, "cpu": {"quota": 20000, "period": 100000}}' || return 1
  check "update" sd update --memory 314572800 --pids-limit 60 --cpu-quota 30000 $id
  expect_eq "MemoryMax after update" "$(prop $unit MemoryMax)" 314572800
  expect_eq "TasksMax after update" "$(prop $unit TasksMax)" 60
  expect_eq "CPUQuotaPerSecUSec after update" "$(prop $unit CPUQuotaPerSecUSec)" 300ms
  expect_eq "memory.max after update" "$(in_ctr $id memory.max)" 314572800
  expect_eq "pids.max after update" "$(in_ctr $id pids.max)" 60
  expect_eq "cpu.max after update" "$(in_ctr $id cpu.max)" "30000 100000"
  check "pause" sd pause $id
  expect_eq "status paused" "$(sd state $id | jq -r .status)" paused
  expect_eq "cgroup.freeze" "$(cat /sys/fs/cgroup/system.slice/$unit/cgroup.freeze)" 1
  check "resume" sd resume $id
  expect_eq "status running" "$(sd state $id | jq -r .status)" running
  sd ps $id | grep -q 'sleep 300' || fail "ps does not list sleep: $(sd ps $id 2>&1)"
  local usage
  usage=$(sd events --stats $id | jq -r '.data.memory.usage.usage')
  [ "${usage:-0}" -gt 0 ] 2>/dev/null || fail "events --stats: memory usage '$usage'"
  check "delete" sd delete -f $id
  leftovers "$RT-bh-upd"
}

scenario_oom_event() {
  local id=bh-oom
  start_detached $id '.linux.resources = {"memory": {"limit": 33554432, "swap": 33554432}}' || return 1
  sd events $id >events.log 2>&1 &
  local ev=$!
  sleep 1
  # tail buffers all of an endless line: the memory cgroup kills it.
  sd exec $id sh -c 'tail /dev/zero' >/dev/null 2>&1
  local i=0
  until grep -q '"type":"oom"' events.log || [ $i -ge 50 ]; do sleep 0.2; i=$((i + 1)); done
  grep -q '"type":"oom"' events.log || fail "no oom event: $(head -c 300 events.log)"
  kill $ev 2>/dev/null; wait $ev 2>/dev/null
  check "delete" sd delete -f $id
  leftovers "$RT-bh-oom"
}

scenario_default_path_and_run() {
  # No cgroupsPath: the scope is $RT-ID.scope in system.slice.
  make_bundle b >/dev/null || return 1
  config b '.process.args = ["cat", "/proc/self/cgroup"] | del(.linux.cgroupsPath)'
  local out
  out=$(sd run --bundle b bh-default 2>&1)
  expect_eq "foreground run exits 0 (output: $out)" $? 0
  config b '.process.args = ["sleep", "300"] | .linux.namespaces |= map(select(.type != "cgroup"))'
  sd run -d --bundle b bh-default2 </dev/null >run.log 2>&1 || fail "run -d: $(cat run.log)"
  local pid
  pid=$(sd state bh-default2 | jq -r .pid)
  expect_eq "default unit" "$(cat /proc/$pid/cgroup)" "0::/system.slice/$RT-bh-default2.scope"
  check "delete" sd delete -f bh-default2
  leftovers "$RT-bh-default"
}

scenario_errors_leave_nothing() {
  make_bundle b >/dev/null || return 1
  config b '.process.args = ["sleep", "300"]'
  # A unit of that name exists already: refused, and the other unit is untouched.
  systemd-run --quiet --unit "$RT-bh-taken" --scope sleep 300 &
  local other=$!
  local i=0
  until systemctl is-active -q "$RT-bh-taken.scope" || [ $i -ge 50 ]; do sleep 0.1; i=$((i + 1)); done
  config b ".linux.cgroupsPath = \"system.slice:$RT:bh-taken\""
  # runc 1.1 ignores UnitExists and joins the other unit's cgroup (docs/runc-differences.md).
  if sd run -d --bundle b bh-taken </dev/null >err.txt 2>&1; then
    [ "$RT" = husk ] && fail "a container started in a unit that exists already"
    sd delete -f bh-taken >/dev/null 2>&1
  fi
  [ "$RT" = husk ] && { grep -q "already" err.txt || fail "unclear error for an existing unit: $(cat err.txt)"; }
  if [ "$RT" = husk ]; then
    systemctl is-active -q "$RT-bh-taken.scope" || fail "the existing unit was stopped"
  fi
  sd state bh-taken >/dev/null 2>&1 && fail "a state was left for bh-taken"
  kill $other 2>/dev/null; wait $other 2>/dev/null
  systemctl stop "$RT-bh-taken.scope" 2>/dev/null

  # Not slice:prefix:name: refused before anything is made.
  config b '.linux.cgroupsPath = "/not/systemd"'
  if sd run -d --bundle b bh-badpath </dev/null >err.txt 2>&1; then
    fail "a non-systemd cgroupsPath was accepted"
  fi
  [ "$RT" = husk ] && { grep -q 'slice:prefix:name' err.txt || fail "unclear error for a bad path: $(cat err.txt)"; }
  sd state bh-badpath >/dev/null 2>&1 && fail "a state was left for bh-badpath"

  # A failed job: the slice needs a unit that fails.
  cat >/run/systemd/system/husk-test-fails.service <<'UNIT'
[Service]
Type=oneshot
ExecStart=/bin/false
UNIT
  cat >/run/systemd/system/husktestbad.slice <<'UNIT'
[Unit]
Requires=husk-test-fails.service
After=husk-test-fails.service
UNIT
  systemctl daemon-reload
  config b ".linux.cgroupsPath = \"husktestbad.slice:$RT:bh-job\""
  if sd run -d --bundle b bh-job </dev/null >err.txt 2>&1; then
    fail "a container started although its unit's job failed"
  fi
  [ "$RT" = husk ] && { grep -q 'result .*dependency' err.txt || fail "unclear error for a failed job: $(cat err.txt)"; }
  sd state bh-job >/dev/null 2>&1 && fail "a state was left for bh-job"
  rm -f /run/systemd/system/husk-test-fails.service /run/systemd/system/husktestbad.slice
  systemctl reset-failed husk-test-fails.service husktestbad.slice 2>/dev/null
  systemctl daemon-reload
  pgrep -f 'sleep 300' >/dev/null && fail "a container process was left: $(pgrep -af 'sleep 300')"
  leftovers "$RT-bh-(taken|badpath|job)"
}
