#!/bin/sh
# The cgroup v2 checks, run inside the pure cgroup v2 VM against the runtime given as $1.
# One line per check, `PASS name` or `FAIL name: why`, then
# `HUSK-VM-SUMMARY passed=N failed=M`, which tests/cgroup_v2_vm.rs parses.
R=${1:?usage: tests.sh RUNTIME}
ROOT=/run/husk-vm-state
CG=/sys/fs/cgroup
W=/tmp/vmtest
passed=0
failed=0

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
rt() { "$R" --root "$ROOT" "$@"; }
# rund NAME: run -d the bundle $W/NAME as container NAME. Its output goes to a file: a detached
# container keeps its stdio open, a pipe would never see EOF.
rund() {
  if rt run -d --bundle "$W/$1" "$1" > "$W/$1.out" 2>&1 < /dev/null; then return 0; fi
  fail "$1-run" "$(cat "$W/$1.out")"
  return 1
}

# expect NAME ACTUAL WANT
expect() {
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "got '$2', want '$3'"; fi
}
# expect_file NAME FILE WANT
expect_file() {
  expect "$1" "$(cat "$2" 2>&1)" "$3"
}
# waitfor SECONDS COMMAND...: until COMMAND succeeds
waitfor() {
  n=$(($1 * 10)); shift
  while [ $n -gt 0 ]; do
    "$@" && return 0
    sleep 0.1
    n=$((n - 1))
  done
  return 1
}
nonempty() { [ -s "$1" ]; }

# mkbundle NAME ARGS_JSON RESOURCES_JSON [LINUX_DEVICES_JSON]: $W/NAME, cgroup /husk-vm/NAME
mkbundle() {
  b=$W/$1
  rm -rf "$b"
  mkdir -p "$b/rootfs/bin" "$b/rootfs/proc" "$b/rootfs/sys" "$b/rootfs/dev" "$b/rootfs/tmp"
  cp /bin/busybox "$b/rootfs/bin/busybox"
  for a in sh sleep cat echo head tail seq ls true; do ln -s busybox "$b/rootfs/bin/$a"; done
  cat > "$b/config.json" <<JSON
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false, "user": { "uid": 0, "gid": 0 }, "args": $2,
    "env": [ "PATH=/bin" ], "cwd": "/",
    "capabilities": { "bounding": [ "CAP_KILL" ], "effective": [ "CAP_KILL" ], "permitted": [ "CAP_KILL" ] },
    "noNewPrivileges": true
  },
  "root": { "path": "rootfs" },
  "hostname": "vm",
  "mounts": [
    { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": [ "nosuid", "mode=755" ] },
    { "destination": "/sys", "type": "sysfs", "source": "sysfs", "options": [ "nosuid", "noexec", "nodev", "ro" ] },
    { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": [ "nosuid", "noexec", "nodev", "ro" ] }
  ],
  "linux": {
    "cgroupsPath": "/husk-vm/$1",
    "resources": $3,
    "devices": ${4:-[]},
    "namespaces": [ { "type": "pid" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" }, { "type": "cgroup" } ]
  }
}
JSON
}

KMSG='[ { "path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 420 } ]'

t_host() {
  c=$(cat $CG/cgroup.controllers)
  for want in cpu io memory pids; do
    case " $c " in *" $want "*) ;; *) fail host-controllers "no $want in '$c'"; return ;; esac
  done
  pass host-controllers
  if grep -q ' cgroup ' /proc/mounts; then fail host-pure-v2 "a v1 hierarchy is mounted"; else pass host-pure-v2; fi
}

t_apply() {
  mkbundle apply '["sh", "-c", "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max > /tmp/seen; sleep 300"]' \
    '{ "memory": { "limit": 104857600, "reservation": 52428800, "swap": 209715200 },
       "cpu": { "shares": 1024, "quota": 50000, "period": 100000, "cpus": "0" },
       "pids": { "limit": 42 }, "blockIO": { "weight": 300 },
       "unified": { "memory.high": "94371840" } }'
  rund apply || return
  d=$CG/husk-vm/apply
  expect_file apply-memory.max $d/memory.max 104857600
  expect_file apply-memory.low $d/memory.low 52428800
  if [ -e $d/memory.swap.max ]; then expect_file apply-memory.swap.max $d/memory.swap.max 104857600; fi
  expect_file apply-cpu.weight $d/cpu.weight 39
  expect_file apply-cpu.max $d/cpu.max "50000 100000"
  expect_file apply-cpuset.cpus $d/cpuset.cpus 0
  expect_file apply-pids.max $d/pids.max 42
  expect apply-io.weight "$(head -n1 $d/io.weight 2>&1)" "default 2930"
  expect_file apply-unified-memory.high $d/memory.high 94371840
  pid=$(rt state apply | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
  if grep -qx "$pid" $d/cgroup.procs; then pass apply-init-in-cgroup; else fail apply-init-in-cgroup "pid $pid not in $(cat $d/cgroup.procs)"; fi
  if waitfor 20 nonempty $W/apply/rootfs/tmp/seen; then
    expect apply-seen-inside "$(cat $W/apply/rootfs/tmp/seen | tr '\n' ' ')" "104857600 42 "
  else
    fail apply-seen-inside "the container wrote nothing"
  fi
  rt delete --force apply
  if [ -e $d ]; then fail apply-removed "$d still exists"; else pass apply-removed; fi
}

t_pids() {
  mkbundle pids '["sh", "-c", "(for i in $(seq 1 40); do sleep 60 & done) 2>/tmp/err; echo done > /tmp/done; exec sleep 300"]' \
    '{ "pids": { "limit": 10 } }'
  rund pids || return
  if waitfor 30 nonempty $W/pids/rootfs/tmp/done; then
    n=$(cat $CG/husk-vm/pids/pids.current)
    if [ "$n" -le 10 ]; then pass pids-capped; else fail pids-capped "pids.current $n > 10"; fi
    if grep -q fork $W/pids/rootfs/tmp/err; then pass pids-fork-refused; else fail pids-fork-refused "$(cat $W/pids/rootfs/tmp/err)"; fi
  else
    fail pids-capped "the fork loop did not finish"
  fi
  rt delete --force pids
}

t_oom() {
  # tail raises its own oom_score_adj so that it, not the shell that reports, is the victim.
  mkbundle oom '["sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.1; done; head -c 200000000 /dev/zero | sh -c \"echo 1000 > /proc/self/oom_score_adj; exec tail\"; echo $? > /tmp/rc; sleep 300"]' \
    '{ "memory": { "limit": 20971520, "swap": 20971520 } }'
  rund oom || return
  expect_file oom-swap.max $CG/husk-vm/oom/memory.swap.max 0
  : > $W/oom.events
  rt events --interval 1s oom > $W/oom.events 2>&1 &
  ev=$!
  waitfor 30 grep -q '"type":"stats"' $W/oom.events || fail oom-events-stats "no stats line: $(cat $W/oom.events)"
  touch $W/oom/rootfs/tmp/go
  if waitfor 60 nonempty $W/oom/rootfs/tmp/rc; then
    rc=$(cat $W/oom/rootfs/tmp/rc)
    if [ "$rc" != 0 ]; then pass oom-killed; else fail oom-killed "tail exited 0"; fi
  else
    fail oom-killed "no exit status"
  fi
  if waitfor 30 grep -q '{"type":"oom","id":"oom"}' $W/oom.events; then pass oom-event; else fail oom-event "$(cat $W/oom.events | cut -c1-200)"; fi
  if grep -q 'oom_kill [1-9]' $CG/husk-vm/oom/memory.events; then pass oom-memory.events; else fail oom-memory.events "$(cat $CG/husk-vm/oom/memory.events)"; fi
  kill $ev 2>/dev/null
  wait $ev 2>/dev/null
  rt delete --force oom
}

# devices_case NAME DEVICES_RULES WANT(ok|denied)
devices_case() {
  mkbundle "$1" '["sh", "-c", "{ echo \"<7>husk vm test\" > /dev/kmsg; } 2>/tmp/err; echo $? > /tmp/rc; head -c1 /dev/null; echo $? > /tmp/null; while true; do if { echo \"<7>again\" > /dev/kmsg; } 2>/dev/null; then echo ok > /tmp/later; fi; sleep 0.2; done"]' \
    "{ \"devices\": $2 }" "$KMSG"
  rund $1 || return
  if waitfor 30 nonempty $W/$1/rootfs/tmp/rc; then
    rc=$(cat $W/$1/rootfs/tmp/rc)
    case "$3:$rc" in
      ok:0) pass $1-kmsg-allowed ;;
      denied:0) fail $1-kmsg-denied "write to /dev/kmsg succeeded" ;;
      denied:*) if grep -q "not permitted" $W/$1/rootfs/tmp/err; then pass $1-kmsg-denied; else fail $1-kmsg-denied "$(cat $W/$1/rootfs/tmp/err)"; fi ;;
      *) fail $1-kmsg-allowed "$(cat $W/$1/rootfs/tmp/err)" ;;
    esac
  else
    fail $1 "the container wrote nothing"
  fi
  waitfor 10 nonempty $W/$1/rootfs/tmp/null
  expect $1-dev-null "$(cat $W/$1/rootfs/tmp/null 2>&1)" 0
}

t_devices() {
  devices_case devdeny '[ { "allow": false, "access": "rwm" } ]' denied
  # update -r with device rules replaces the eBPF program: the write starts to work.
  cat > $W/devupd.json <<'JSON'
{ "devices": [ { "allow": false, "access": "rwm" }, { "allow": true, "type": "c", "major": 1, "minor": 11, "access": "w" } ] }
JSON
  if out=$(rt update -r $W/devupd.json devdeny 2>&1); then
    if waitfor 20 nonempty $W/devdeny/rootfs/tmp/later; then pass devices-update-replaces-program; else fail devices-update-replaces-program "still denied after update"; fi
  else
    fail devices-update-replaces-program "$out"
  fi
  rt delete --force devdeny
  devices_case devallow '[ { "allow": false, "access": "rwm" }, { "allow": true, "type": "c", "major": 1, "minor": 11, "access": "w" } ]' ok
  rt delete --force devallow
}

t_update() {
  mkbundle upd '["sleep", "300"]' '{ "memory": { "limit": 104857600 }, "pids": { "limit": 50 } }'
  rund upd || return
  if out=$(rt update --memory 200m --pids-limit 20 --cpu-share 512 --cpu-quota 30000 upd 2>&1); then
    d=$CG/husk-vm/upd
    expect_file update-memory.max $d/memory.max 209715200
    expect_file update-pids.max $d/pids.max 20
    expect_file update-cpu.weight $d/cpu.weight 20
    expect_file update-cpu.max $d/cpu.max "30000 100000"
  else
    fail update "$out"
  fi
  echo '{ "unified": { "pids.max": "7" }, "memory": { "limit": 157286400 } }' > $W/upd.json
  if out=$(rt update -r $W/upd.json upd 2>&1); then
    expect_file update-r-unified $CG/husk-vm/upd/pids.max 7
    expect_file update-r-memory $CG/husk-vm/upd/memory.max 157286400
  else
    fail update-r "$out"
  fi
  rt delete --force upd
}

t_pause() {
  mkbundle pause '["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done"]' '{}'
  rund pause || return
  waitfor 20 nonempty $W/pause/rootfs/tmp/n
  if out=$(rt pause pause 2>&1); then pass pause; else fail pause "$out"; fi
  expect_file pause-cgroup.freeze $CG/husk-vm/pause/cgroup.freeze 1
  if rt state pause | grep -q '"status": "paused"'; then pass pause-state-paused; else fail pause-state-paused "$(rt state pause)"; fi
  a=$(cat $W/pause/rootfs/tmp/n); sleep 1; b=$(cat $W/pause/rootfs/tmp/n)
  expect pause-no-progress "$b" "$a"
  rt resume pause || fail resume "resume failed"
  if waitfor 20 sh -c "[ \"\$(cat $W/pause/rootfs/tmp/n)\" != '$a' ]"; then pass resume-progress; else fail resume-progress "stuck at $a"; fi
  rt pause pause
  if out=$(rt delete --force pause 2>&1) && [ ! -e $CG/husk-vm/pause ]; then pass delete-force-paused; else fail delete-force-paused "$out"; fi
}

t_ps_stats_killall() {
  mkbundle ps '["sh", "-c", "sleep 301 & sleep 302 & wait"]' '{ "pids": { "limit": 42 }, "memory": { "limit": 104857600 } }'
  rund ps || return
  pid=$(rt state ps | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
  waitfor 20 sh -c "[ \$(wc -l < $CG/husk-vm/ps/cgroup.procs) -eq 3 ]"
  j=$(rt ps --format json ps)
  case "$j" in *"$pid"*) pass ps-json ;; *) fail ps-json "$j lacks $pid" ;; esac
  s=$(rt events --stats ps)
  case "$s" in '{"type":"stats","id":"ps","data":{'*) pass stats-envelope ;; *) fail stats-envelope "$s" ;; esac
  case "$s" in *'"pids":{"current":3,"limit":42}'*) pass stats-pids ;; *) fail stats-pids "$s" ;; esac
  case "$s" in *'"usage":{"limit":104857600,'*) pass stats-memory ;; *) fail stats-memory "$s" ;; esac
  rt kill --all ps KILL
  if waitfor 20 sh -c "[ ! -s $CG/husk-vm/ps/cgroup.procs ]"; then pass kill-all; else fail kill-all "left: $(cat $CG/husk-vm/ps/cgroup.procs)"; fi
  rt delete --force ps
}

t_refused() {
  mkbundle refused '["true"]' '{ "memory": { "swappiness": 10 } }'
  if out=$(rt create --bundle $W/refused refused 2>&1); then
    fail refused-swappiness "create succeeded"
    rt delete --force refused
  else
    case "$out" in *memory.swappiness*) pass refused-swappiness ;; *) fail refused-swappiness "$out" ;; esac
  fi
  if [ -e $CG/husk-vm/refused ] || [ -e $ROOT/refused ]; then fail refused-nothing-left "leftovers"; else pass refused-nothing-left; fi
  mkbundle netcls '["true"]' '{ "network": { "classID": 5 } }'
  if out=$(rt run --bundle $W/netcls netcls 2>&1 </dev/null); then fail refused-network "run succeeded"; else
    case "$out" in *network.classID*) pass refused-network ;; *) fail refused-network "$out" ;; esac
  fi
}

# CLONE_INTO_CGROUP: on this pure v2 host the init is cloned straight into its cgroup (the
# debug log says so), a createRuntime hook (init is set up but has not exec'd) finds it there,
# and the program's first look at /proc/self/cgroup is the root of its cgroup namespace.
t_clone_into_cgroup() {
  mkbundle cic '["cat", "/proc/self/cgroup"]' '{ "pids": { "limit": 20 } }'
  cat > $W/cic-hook.sh <<EOF
#!/bin/sh
pid=\$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' | head -n1)
cat /proc/\$pid/cgroup > $W/cic.hook 2>&1
EOF
  chmod 755 $W/cic-hook.sh
  sed -i "s|\"root\": { \"path\": \"rootfs\" },|\"root\": { \"path\": \"rootfs\" }, \"hooks\": { \"createRuntime\": [ { \"path\": \"$W/cic-hook.sh\" } ] },|" $W/cic/config.json
  out=$("$R" --root "$ROOT" --debug --log $W/cic.log run --bundle $W/cic cic 2>&1 < /dev/null)
  expect clone-into-cgroup-run "$out" "0::/"
  if grep -q 'cloned into its cgroup' $W/cic.log; then pass clone-into-cgroup-used; else
    fail clone-into-cgroup-used "$(grep -i 'clone\|cgroup' $W/cic.log | tail -n3)"
  fi
  expect_file clone-into-cgroup-before-exec $W/cic.hook "0::/husk-vm/cic"
  if [ -e $CG/husk-vm/cic ] || [ -e $ROOT/cic ]; then fail clone-into-cgroup-nothing-left "leftovers"; else pass clone-into-cgroup-nothing-left; fi
  # The init is charged to pids.max from birth: a limit of 0 refuses the clone itself.
  mkbundle cic0 '["true"]' '{ "pids": { "limit": 0 } }'
  if out=$(rt run --bundle $W/cic0 cic0 2>&1 < /dev/null); then fail clone-into-cgroup-pids-0 "run succeeded"; else
    case "$out" in *EAGAIN*pids.limit*) pass clone-into-cgroup-pids-0 ;; *) fail clone-into-cgroup-pids-0 "$out" ;; esac
  fi
  if [ -e $CG/husk-vm/cic0 ] || [ -e $ROOT/cic0 ]; then fail clone-into-cgroup-pids-0-nothing-left "leftovers"; else pass clone-into-cgroup-pids-0-nothing-left; fi
}

# with_apparmor NAME PROFILE: add process.apparmorProfile to the bundle $W/NAME.
with_apparmor() {
  sed -i "s/\"noNewPrivileges\": true/\"noNewPrivileges\": true, \"apparmorProfile\": \"$2\"/" "$W/$1/config.json"
}

# AppArmor (the Debian kernel runs it): a profile loaded with Debian's apparmor_parser is the
# container's from its first instruction, and what it denies fails; an unknown profile fails
# create with an error naming it and leaves nothing behind.
t_apparmor() {
  case ",$(cat /sys/kernel/security/lsm 2>/dev/null)," in
    *,apparmor,*) pass apparmor-enabled ;;
    *) fail apparmor-enabled "lsm: $(cat /sys/kernel/security/lsm 2>&1)"; return ;;
  esac
  cat > $W/husk-vm-test.profile <<'EOF'
profile husk-vm-test flags=(attach_disconnected,mediate_deleted) {
  file,
  capability,
  signal,
  unix,
  network,
  deny /tmp/denied/** w,
  deny /secret r,
}
EOF
  if out=$(apparmor_parser -r -K $W/husk-vm-test.profile 2>&1); then pass apparmor-profile-loaded; else
    fail apparmor-profile-loaded "apparmor_parser: $out"; return
  fi
  mkbundle aa '["sh", "-c", "cat /proc/self/attr/current; echo; mkdir -p /tmp/denied; if echo x > /tmp/denied/f; then echo write-ok; else echo write-denied; fi; if echo y > /tmp/f; then echo tmp-ok; fi; if cat /secret; then echo; else echo read-denied; fi"]' '{}'
  echo secret-content > $W/aa/rootfs/secret
  with_apparmor aa husk-vm-test
  rt run --bundle $W/aa aa > $W/aa.out 2>&1 < /dev/null
  out=$(cat $W/aa.out)
  case "$out" in *"husk-vm-test (enforce)"*) pass apparmor-attr-current ;; *) fail apparmor-attr-current "$out" ;; esac
  case "$out" in *write-denied*) pass apparmor-write-denied ;; *) fail apparmor-write-denied "$out" ;; esac
  case "$out" in *tmp-ok*) pass apparmor-write-allowed ;; *) fail apparmor-write-allowed "$out" ;; esac
  if grep -q read-denied $W/aa.out && ! grep -q secret-content $W/aa.out; then pass apparmor-read-denied; else fail apparmor-read-denied "$out"; fi
  # Without apparmorProfile the container is unconfined.
  mkbundle aanone '["cat", "/proc/self/attr/current"]' '{}'
  out=$(rt run --bundle $W/aanone aanone 2>&1 < /dev/null)
  expect apparmor-unconfined-by-default "$out" unconfined
  # A profile that is not loaded: create fails, naming it, and nothing is left.
  mkbundle aamissing '["true"]' '{}'
  with_apparmor aamissing husk-vm-not-loaded
  if out=$(rt run --bundle $W/aamissing aamissing 2>&1 < /dev/null); then
    fail apparmor-missing-profile "run succeeded: $out"
  else
    case "$out" in *husk-vm-not-loaded*) pass apparmor-missing-profile ;; *) fail apparmor-missing-profile "$out" ;; esac
    echo "   (the error: $out)"
  fi
  if [ -e $CG/husk-vm/aamissing ] || [ -e $ROOT/aamissing ]; then fail apparmor-missing-nothing-left "leftovers"; else pass apparmor-missing-nothing-left; fi
  apparmor_parser -R $W/husk-vm-test.profile >/dev/null 2>&1
}

mkdir -p $W
for t in t_host t_apply t_pids t_oom t_devices t_update t_pause t_ps_stats_killall t_refused t_clone_into_cgroup t_apparmor; do
  echo "-- $t (uptime $(cut -d' ' -f1 /proc/uptime)s)"
  $t
done
if [ -e $CG/husk-vm ]; then fail nothing-left "$CG/husk-vm: $(ls $CG/husk-vm)"; else pass nothing-left; fi
left=$(ls $ROOT 2>/dev/null)
expect state-root-empty "$left" ""
echo "HUSK-VM-SUMMARY passed=$passed failed=$failed"
