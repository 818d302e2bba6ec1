#!/bin/bash
# Boots the pure cgroup v2 VM (qemu, TCG: no KVM) and prints its console. Exit 0 only when
# the VM booted, ran every check and all passed.
# Usage: run.sh RUNTIME_BINARY [WORK_DIR]   (timeout: $HUSK_VM_TIMEOUT seconds, default 280)
set -uo pipefail
bin=${1:?usage: run.sh RUNTIME_BINARY [WORK_DIR]}
work=${2:-$(mktemp -d /tmp/husk-vm.XXXXXX)}
here=$(cd "$(dirname "$0")" && pwd)
command -v qemu-system-x86_64 >/dev/null || { echo "run.sh: qemu-system-x86_64 is missing (make deps)" >&2; exit 1; }
"$here/build.sh" "$bin" "$work" || exit 1
timeout "${HUSK_VM_TIMEOUT:-280}" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 768 \
  -nographic -no-reboot -monitor none -serial stdio \
  -kernel "$work/vmlinuz" -initrd "$work/initrd.gz" \
  -append 'console=ttyS0 quiet panic=-1 loglevel=3' </dev/null | tee "$work/console.log"
grep -aq 'HUSK-VM-BOOTED' "$work/console.log" || { echo "run.sh: the VM did not boot" >&2; exit 1; }
summary=$(grep -ao 'HUSK-VM-SUMMARY.*' "$work/console.log" | tr -d '\r')
[ -n "$summary" ] || { echo "run.sh: the tests did not finish" >&2; exit 1; }
case "$summary" in *" failed=0") exit 0 ;; *) exit 1 ;; esac
