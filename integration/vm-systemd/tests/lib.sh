# Sourced by the scenario scripts that run inside the systemd VM. Each scenario file defines
# functions named `scenario_*`; main.sh runs each once per runtime with $RT set to the
# runtime's name (husk, or runc as the control) and $RTBIN to its path.
#
#   check DESC CMD...    run CMD; a non-zero exit fails the scenario with DESC
#   expect_eq DESC GOT WANT
#   leftovers PATTERN    fail if a unit or cgroup whose name matches PATTERN remains
#   make_bundle DIR      a busybox bundle (husk spec) with terminal off

FAILED=0

fail() {
  echo "    FAIL: $*"
  FAILED=1
}

check() {
  local desc=$1
  shift
  local out
  if ! out=$("$@" 2>&1); then
    fail "$desc: \`$*\` failed: $(echo "$out" | tail -n 5)"
    return 1
  fi
  return 0
}

expect_eq() {
  if [ "$2" != "$3" ]; then
    fail "$1: got '$2', want '$3'"
    return 1
  fi
  return 0
}

# Units (any state) and cgroup directories whose name matches the extended regex $1.
leftovers() {
  local units cgroups
  units=$(systemctl list-units --all --plain --no-legend 2>/dev/null | awk '{print $1}' | grep -E "$1")
  cgroups=$(find /sys/fs/cgroup -type d 2>/dev/null | grep -E "$1")
  if [ -n "$units$cgroups" ]; then
    fail "left behind: $(echo $units $cgroups)"
    return 1
  fi
  return 0
}

make_bundle() {
  local b=$1
  mkdir -p "$b/rootfs/bin" "$b/rootfs/proc" "$b/rootfs/sys" "$b/rootfs/dev" "$b/rootfs/tmp" "$b/rootfs/etc"
  cp /bin/busybox "$b/rootfs/bin/busybox"
  for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -sf busybox "$b/rootfs/bin/$a"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$b/rootfs/etc/passwd"
  echo 'root:x:0:' >"$b/rootfs/etc/group"
  (cd "$b" && husk spec) || return 1
  jq '.process.terminal = false' "$b/config.json" >"$b/config.json.new" && mv "$b/config.json.new" "$b/config.json"
}

# Edit a bundle's config.json with a jq filter.
config() {
  jq "$2" "$1/config.json" >"$1/config.json.new" && mv "$1/config.json.new" "$1/config.json"
}

# A busybox image for podman and containerd, imported once per boot.
busybox_image() {
  podman image exists localhost/busybox:latest 2>/dev/null && return 0
  local d
  d=$(mktemp -d)
  make_bundle "$d/b" >/dev/null || return 1
  tar -C "$d/b/rootfs" -c . | podman import -q - localhost/busybox:latest >/dev/null
  local rc=$?
  rm -rf "$d"
  return $rc
}
