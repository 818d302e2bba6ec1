#!/bin/bash
# Cgroup command latency, husk vs runc vs crun side by side (one hyperfine run per command,
# every runtime inside the same `v1-only` wrapper, state roots on a tmpfs as /run/* would be):
#   update --memory --pids-limit   events --stats   pause + resume
# on a running busybox container (`sleep`) with memory, pids and cpu limits.
# crun 1.8 has no `events`: it is measured where it can be.
# Environment: HUSK_BIN, SHARED_DIR, RUNS (default 60), RUNTIMES (default "husk runc crun").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
runs=${RUNS:-60}
runtimes=${RUNTIMES:-husk runc crun}
die() { echo "bench-cgroups: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root"
[ -x "$shared/v1-only" ] || die "$shared/v1-only not found (set SHARED_DIR)"
if [ -z "${BENCH_CGROUPS_INSIDE:-}" ]; then
  exec env BENCH_CGROUPS_INSIDE=1 HUSK_BIN="$husk_bin" "$shared/v1-only" "$0" "$@"
fi
command -v hyperfine >/dev/null && command -v jq >/dev/null || die "hyperfine and jq needed (make deps)"

work=$(mktemp -d /tmp/husk-bench-cg.XXXXXX)
mount -t tmpfs tmpfs "$work"
declare -A bin
names=()
for r in $runtimes; do
  case $r in husk) b=$husk_bin ;; *) b=$(command -v "$r" || true) ;; esac
  [ -n "$b" ] && [ -x "$b" ] && { bin[$r]=$b; names+=("$r"); } || echo "bench-cgroups: $r not found, skipped" >&2
done
cleanup() {
  for r in "${names[@]}"; do "${bin[$r]}" --root "$work/root-$r" delete -f "cg-$r" >/dev/null 2>&1 || true; done
  umount "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

b=$work/bundle
mkdir -p "$b/rootfs/bin" "$b/rootfs/proc" "$b/rootfs/sys" "$b/rootfs/dev" "$b/rootfs/tmp"
cp "$(readlink -f "$(command -v busybox)")" "$b/rootfs/bin/busybox"
ln -s busybox "$b/rootfs/bin/sleep"
(cd "$work" && runc spec --bundle "$work" && mv "$work/config.json" "$work/spec.json")
jq '.process.terminal = false | .process.args = ["/bin/sleep", "100000"] | del(.linux.cgroupsPath)
    | .linux.resources.memory = {"limit": 104857600} | .linux.resources.pids = {"limit": 100}
    | .linux.resources.cpu = {"shares": 512, "quota": 50000, "period": 100000}' \
  "$work/spec.json" > "$b/config.json"

u=(); e=(); p=()
for r in "${names[@]}"; do
  R="${bin[$r]} --root $work/root-$r"
  # Distinct ids: without cgroupsPath runc and crun would share /<id> in every hierarchy.
  $R run -d --bundle "$b" "cg-$r" >/dev/null 2>&1 </dev/null || die "$r run -d failed"
  u+=(-n "update $r" "$R update --memory 200000000 --pids-limit 99 cg-$r")
  if $R events --stats "cg-$r" >/dev/null 2>&1; then
    e+=(-n "events --stats $r" "$R events --stats cg-$r")
  fi
  p+=(-n "pause+resume $r" "$R pause cg-$r && $R resume cg-$r")
done
hyperfine -N -w 5 -r "$runs" "${u[@]}"
hyperfine -N -w 5 -r "$runs" "${e[@]}"
hyperfine -w 3 -r "$runs" "${p[@]}"
