#!/bin/bash
# The systemd driver's cost, measured inside the systemd VM: husk, runc and crun side by side
# in ONE hyperfine run, each with --systemd-cgroup (a transient scope per container), on the
# same busybox bundle running `true` (ociVersion 1.0.2, which crun 1.8.1 needs):
#   - create + start + delete -f
#   - run (foreground, deleted on exit)
# once as hosts run (ASLR on) and once with ASLR off (see below why).
# Run it as the VM's script: integration/vm-systemd/run.sh integration/vm-systemd/bench.sh
# (RUNS, WARMUP override hyperfine's counts). Prints hyperfine's table and the medians.
set -euo pipefail
runs=${RUNS:-30}
warmup=${WARMUP:-3}
work=$(mktemp -d /tmp/sd-bench.XXXXXX)
rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,proc,sys,dev,tmp,etc}
cp /bin/busybox "$rootfs/bin/busybox"
ln -s busybox "$rootfs/bin/true"
ln -s busybox "$rootfs/bin/sh"
cmds=()
for rt in husk runc crun; do
  b=$work/$rt
  mkdir -p "$b"
  (cd "$b" && husk spec)
  jq --arg r "$rootfs" --arg p "system.slice:bench:$rt" \
    '.ociVersion = "1.0.2" | .process.terminal = false | .process.args = ["true"] | .root.path = $r | .linux.cgroupsPath = $p' \
    "$b/config.json" >"$b/c" && mv "$b/c" "$b/config.json"
  sd="$rt --systemd-cgroup"
  cmds+=(-n "$rt create+start+delete" "$sd create --bundle $b csd-$rt && $sd start csd-$rt && $sd delete -f csd-$rt")
  cmds+=(-n "$rt run" "$sd run --bundle $b run-$rt")
done
echo "$(systemctl --version | head -n1), $(husk --version | head -n1), $(runc --version | head -n1), $(crun --version | head -n1)"
# Twice: as hosts run (ASLR on), then with ASLR off. Under TCG qemu translates guest code into
# host code and caches the translation by virtual address; with ASLR every process maps its
# binary elsewhere, so each one pays to translate all the code it runs, a cost real hardware
# (and KVM) does not have and that grows with the amount of code a binary executes. Without
# ASLR the translations are reused and what remains is each runtime's own work.
aslr=$(cat /proc/sys/kernel/randomize_va_space)
trap 'echo "$aslr" >/proc/sys/kernel/randomize_va_space' EXIT
for mode in "$aslr" 0; do
  echo "$mode" >/proc/sys/kernel/randomize_va_space
  echo
  echo "== kernel.randomize_va_space=$mode"
  hyperfine --style basic --warmup "$warmup" --runs "$runs" --time-unit millisecond \
    --export-json "$work/h.json" "${cmds[@]}" </dev/null
  echo
  echo "| command (randomize_va_space=$mode) | median ms |"
  echo "|---|---:|"
  jq -r '.results[] | "| \(.command) | \(.median * 1000 | . * 10 | round / 10) |"' "$work/h.json"
done
leftover=$(systemctl list-units --all --plain --no-legend | awk '{print $1}' | grep -E '^bench-' || true)
rm -rf "$work"
[ -z "$leftover" ] || { echo "left behind: $leftover"; exit 1; }
