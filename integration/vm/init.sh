#!/bin/busybox sh
# Stage 1 (PID 1 in the initramfs). The initramfs root cannot be pivot_root'ed away from
# (which the runtime does for each container), so copy the tree to a tmpfs and switch_root.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t tmpfs -o size=300m,mode=755 tmpfs /newroot
for d in bin sbin etc husk lib lib64 usr; do
  [ -e "/$d" ] && /bin/busybox cp -a "/$d" /newroot/
done
/bin/busybox mkdir -p /newroot/proc /newroot/sys /newroot/dev /newroot/tmp /newroot/run
/bin/busybox umount /proc
exec /bin/busybox switch_root /newroot /husk/stage2.sh
