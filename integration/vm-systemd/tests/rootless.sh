# Rootless on cgroup v2 with systemd: the login user dev (uid 1000, lingering, so its
# `systemd --user` runs) drives the runtime by hand with --systemd-cgroup (a scope in its own
# manager, over its session bus), and rootless podman with its defaults (systemd cgroup
# manager, its default network) runs containers with --memory, --pids-limit and --cpus, seen
# from inside and in `podman stats`.
#
# systemd 252 delegates only the memory and pids controllers to user@.service; --cpus needs
# cpu too, so the scenarios add the drop-in podman's documentation gives (Delegate=cpu cpuset
# io memory pids) once per boot and restart dev's manager, as an administrator would.

DEV_UID=1000
DEV_XDG=/run/user/$DEV_UID
DEV_IMG=localhost/busybox:latest

# CMD... as dev, in its home, with its session's environment and nothing of root's.
as_dev() {
  runuser -u dev -- env -i HOME=/home/dev USER=dev LOGNAME=dev \
    PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin XDG_RUNTIME_DIR=$DEV_XDG \
    DBUS_SESSION_BUS_ADDRESS=unix:path=$DEV_XDG/bus \
    sh -c 'cd "$HOME" && exec "$@"' sh "$@"
}

dev_pm() { as_dev timeout 120 podman --runtime "$RTBIN" "$@"; }

# Once per boot: the cpu controllers delegated to dev's manager, and dev's busybox image.
dev_setup() {
  [ -e /run/husk-test-rootless ] && return 0
  mkdir -p /etc/systemd/system/user@.service.d
  printf '[Service]\nDelegate=cpu cpuset io memory pids\n' >/etc/systemd/system/user@.service.d/delegate.conf
  systemctl daemon-reload
  systemctl restart user@$DEV_UID.service || { fail "restarting user@$DEV_UID.service"; return 1; }
  local ctl=/sys/fs/cgroup/user.slice/user-$DEV_UID.slice/user@$DEV_UID.service/cgroup.controllers
  case " $(cat $ctl) " in *" cpu "*) ;; *) fail "cpu not delegated to dev: $(cat $ctl)"; return 1 ;; esac
  local d
  d=$(mktemp -d /tmp/rootless-image.XXXXXX)
  make_bundle "$d/b" >/dev/null || { fail "making the busybox rootfs"; return 1; }
  tar -C "$d/b/rootfs" -cf "$d/busybox.tar" . && chmod -R a+rX "$d"
  check "podman import as dev" as_dev podman import -q "$d/busybox.tar" $DEV_IMG || { rm -rf "$d"; return 1; }
  rm -rf "$d"
  touch /run/husk-test-rootless
}

# dev's units (any state) and cgroups whose name matches the extended regex $1.
dev_leftovers() {
  local units cgroups
  units=$(as_dev systemctl --user list-units --all --plain --no-legend 2>/dev/null | awk '{print $1}' | grep -E "$1")
  cgroups=$(find /sys/fs/cgroup/user.slice -type d 2>/dev/null | grep -E "$1")
  if [ -n "$units$cgroups" ]; then
    fail "left behind: $(echo $units $cgroups)"
    return 1
  fi
  return 0
}

dev_prop() { as_dev systemctl --user show -P "$2" "$1"; }

scenario_by_hand_user_scope() {
  dev_setup || return 1
  local id=rl-scope unit="$RT-rl-scope.scope" b=/home/dev/bundle-$RT
  rm -rf $b
  make_bundle $b >/dev/null || return 1
  rm $b/config.json
  chown -R dev: $b
  check "$RT spec --rootless" as_dev sh -c "cd $b && $RT spec --rootless" || return 1
  config $b '.process.terminal = false | .process.args = ["sleep", "300"]
    | .linux.cgroupsPath = "user.slice:'"$RT"':rl-scope"
    | .linux.resources = {"memory": {"limit": 67108864}, "pids": {"limit": 55}, "cpu": {"quota": 20000, "period": 100000}}'
  chown dev: $b/config.json
  # run -d: the container's stdio must not be our pipe.
  if ! as_dev $RT --systemd-cgroup run -d --bundle $b $id </dev/null >run.log 2>&1; then
    fail "run -d as dev: $(tail -n 5 run.log)"
    rm -rf $b
    return 1
  fi
  local pid
  pid=$(as_dev $RT state $id | jq .pid)
  expect_eq "init's host uid" "$(awk '/^Uid:/ {print $2}' /proc/$pid/status)" $DEV_UID
  case "$(cat /proc/$pid/cgroup)" in
    *"/user@$DEV_UID.service/user.slice/$unit") ;;
    *) fail "init's cgroup is not dev's scope $unit: $(cat /proc/$pid/cgroup)" ;;
  esac
  expect_eq "limits inside" "$(as_dev $RT exec $id sh -c 'cd /sys/fs/cgroup && cat memory.max pids.max cpu.max' | paste -sd' ')" \
    "67108864 55 20000 100000"
  expect_eq "MemoryMax TasksMax on dev's unit" "$(dev_prop $unit MemoryMax) $(dev_prop $unit TasksMax)" "67108864 55"
  expect_eq "CPUQuotaPerSecUSec on dev's unit" "$(dev_prop $unit CPUQuotaPerSecUSec)" 200ms
  check "kill" as_dev $RT kill $id KILL
  local i=0
  while [ "$(as_dev $RT state $id 2>/dev/null | jq -r .status)" = running ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  check "delete" as_dev $RT delete $id
  [ -e "$DEV_XDG/$RT/$id" ] && fail "state $DEV_XDG/$RT/$id left after delete"
  dev_leftovers "$RT-rl-scope"
  rm -rf $b
}

# A detached rootless podman container with the limits: inside, on podman's scope in dev's
# manager, in podman stats; then stop and rm leave no unit.
scenario_podman_defaults_limits() {
  dev_setup || return 1
  local n=$RT-rl-pm id pid out
  if ! dev_pm run -d --name $n --memory 128m --pids-limit 77 --cpus 0.5 $DEV_IMG sleep 300 >run.log 2>&1; then
    fail "podman run -d as dev: $(tail -n 5 run.log)"
    dev_pm rm -f -t 0 $n >/dev/null 2>&1
    return 1
  fi
  read -r id pid < <(dev_pm inspect --format '{{.Id}} {{.State.Pid}}' $n)
  case "$(dev_pm inspect --format '{{.OCIRuntime}}' $n)" in
    "$RT" | "$RTBIN") ;;
    *) fail "podman ran $(dev_pm inspect --format '{{.OCIRuntime}}' $n), not $RTBIN" ;;
  esac
  expect_eq "limits inside" "$(dev_pm exec $n sh -c 'cd /sys/fs/cgroup && cat memory.max pids.max cpu.max' | paste -sd' ')" \
    "134217728 77 50000 100000"
  case "$(cat /proc/$pid/cgroup)" in
    *"/user@$DEV_UID.service/"*"libpod-$id.scope"*) ;;
    *) fail "init's cgroup is not in dev's manager: $(cat /proc/$pid/cgroup)" ;;
  esac
  expect_eq "TasksMax on the scope" "$(dev_prop libpod-$id.scope TasksMax)" 77
  out=$(dev_pm stats --no-stream --format '{{.MemUsage}}|{{.PIDs}}' $n 2>&1)
  echo "$out" | grep -Eq '^[0-9.]*[1-9][0-9.]*[kMG]?B / 134\.2MB\|1$' || fail "podman stats: '$out'"
  check "podman stop" dev_pm stop -t 10 $n
  check "podman rm" dev_pm rm $n
  [ -e "$DEV_XDG/$RT/$id" ] && fail "the runtime's state $DEV_XDG/$RT/$id is left after rm"
  dev_leftovers "libpod-$id"
}

# Rootless podman's default network (slirp4netns): the container has a route out and its own
# interface, and the run leaves nothing.
scenario_podman_default_network() {
  dev_setup || return 1
  local out
  out=$(dev_pm run --rm $DEV_IMG sh -c 'ip route show | grep ^default | cut -d" " -f1-3; echo $((6*7))' 2>&1)
  expect_eq "default route and output" "$(echo "$out" | paste -sd' ')" "default via 10.0.2.2 42"
  [ -n "$(ls $DEV_XDG/$RT 2>/dev/null)" ] && fail "state left in $DEV_XDG/$RT: $(ls $DEV_XDG/$RT)"
  dev_leftovers "libpod-[0-9a-f]{64}\.scope"
}
