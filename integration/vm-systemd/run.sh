#!/bin/bash
# integration/vm-systemd/run.sh SCRIPT
#
# Boots the Debian 12 VM with systemd as PID 1 on pure cgroup v2 (qemu TCG), with the husk
# under test at /usr/local/bin/husk and every other binary `make build` produces beside it in
# /usr/local/bin; runs SCRIPT (any executable file of the host) as root once multi-user.target
# is reached and dev's user manager runs; streams SCRIPT's output to stdout; powers off and
# exits with SCRIPT's status (125: the VM did not get as far as running it).
#
# Builds what it needs when missing or stale: the image (image.sh, cached under /var/tmp by
# its package list) and the binaries (`make build`; set HUSK_VM_BIN_DIR to a directory of
# binaries to take those instead). Console (kernel and systemd) in $HUSK_VM_WORK/console.log
# (default: a temp dir, removed unless HUSK_VM_KEEP=1). Timeout: $HUSK_VM_TIMEOUT s (1800: make test's scenarios take 7-11 min, and a busy machine makes TCG much slower).
set -uo pipefail
script=${1:?usage: run.sh SCRIPT}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
[ -f "$script" ] && [ -x "$script" ] || { echo "run.sh: $script is not an executable file" >&2; exit 125; }
command -v qemu-system-x86_64 >/dev/null || { echo "run.sh: qemu-system-x86_64 is missing (make deps)" >&2; exit 125; }

image=$("$here/image.sh") || { echo "run.sh: building the image failed" >&2; exit 125; }
bindir=${HUSK_VM_BIN_DIR:-}
if [ -z "$bindir" ]; then
  make -s -C "$repo" build >&2 || { echo "run.sh: make build failed" >&2; exit 125; }
  triple=$(rustc -vV | sed -n 's/^host: //p')
  bindir=${CARGO_TARGET_DIR:-$repo/target}/$triple/release
fi
[ -x "$bindir/husk" ] || { echo "run.sh: $bindir/husk is missing" >&2; exit 125; }

work=${HUSK_VM_WORK:-$(mktemp -d /tmp/husk-vm-systemd.XXXXXX)}
mkdir -p "$work"
cleanup() { [ "${HUSK_VM_KEEP:-0}" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT
# The payload disk: the binaries (regular executable files of the build directory) and SCRIPT.
payload=$work/payload
mkdir -p "$payload/bin"
find "$bindir" -maxdepth 1 -type f -perm -u+x -exec cp {} "$payload/bin/" \;
cp "$script" "$payload/script"
chmod 755 "$payload/script"
mkfs.ext4 -q -F -L husk-payload -d "$payload" "$work/payload.img" 256M >/dev/null \
  || { echo "run.sh: making the payload disk failed" >&2; exit 125; }
: >"$work/status"

# ttyS0: console (to a file); ttyS1: SCRIPT's output (to our stdout); ttyS2: status lines.
# The root disk is a snapshot: the cached image is never written.
timeout "${HUSK_VM_TIMEOUT:-1800}" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 3072 \
  -nographic -no-reboot -monitor none -nodefaults \
  -drive "file=$image/disk.img,if=virtio,format=raw,snapshot=on" \
  -drive "file=$work/payload.img,if=virtio,format=raw,readonly=on" \
  -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
  -append 'root=/dev/vda rw console=ttyS0 quiet loglevel=3 systemd.show_status=0' \
  -serial "file:$work/console.log" -serial stdio -serial "file:$work/status" </dev/null
qemu_rc=$?
rc=$(sed -n 's/^HUSK-VM-EXIT \([0-9]*\).*/\1/p' "$work/status" | tr -d '\r' | tail -n1)
if [ -z "$rc" ]; then
  if [ "$qemu_rc" = 124 ]; then
    echo "run.sh: timed out after ${HUSK_VM_TIMEOUT:-1800}s" >&2
  fi
  if grep -q HUSK-VM-BOOTED "$work/status"; then
    echo "run.sh: SCRIPT did not finish (qemu exit $qemu_rc)" >&2
  else
    echo "run.sh: the VM did not boot to multi-user.target (qemu exit $qemu_rc); console tail:" >&2
    tail -n 30 "$work/console.log" >&2
  fi
  exit 125
fi
booted=$(sed -n 's/^HUSK-VM-BOOTED \([0-9.]*\).*/\1/p' "$work/status" | tr -d '\r' | tail -n1)
echo "run.sh: booted in ${booted}s (guest uptime), SCRIPT exited $rc" >&2
exit "$rc"
