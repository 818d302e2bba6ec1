#!/bin/sh
# Stage 2 (PID 1 on the tmpfs root): mount the API filesystems, cgroup2 alone on
# /sys/fs/cgroup (a pure cgroup v2 host), run the tests, power off.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t securityfs securityfs /sys/kernel/security
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
ip link set lo up 2>/dev/null
export PATH=/bin:/sbin
echo "HUSK-VM-BOOTED kernel $(uname -r) controllers: $(cat /sys/fs/cgroup/cgroup.controllers) lsm: $(cat /sys/kernel/security/lsm 2>&1)"
sh /husk/tests.sh /husk/runtime 2>&1
echo "HUSK-VM-DONE"
sync
poweroff -f
