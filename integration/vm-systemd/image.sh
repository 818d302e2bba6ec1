#!/bin/bash
# Builds (or reuses) the systemd VM's image: a Debian 12 root filesystem made by mmdebstrap
# from packages.txt, as an ext4 disk (mkfs.ext4 -d: no loop mount), with the kernel and
# initrd it installed. Cached under $HUSK_VM_SYSTEMD_CACHE (default /var/tmp/husk-vm-systemd)
# in a directory named by the hash of packages.txt, this script and guest/; the .debs are kept
# beside it so that a rebuild downloads nothing. Prints the image directory
# (disk.img, vmlinuz, initrd.img).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${HUSK_VM_SYSTEMD_CACHE:-/var/tmp/husk-vm-systemd}
mirror=${HUSK_VM_MIRROR:-http://deb.debian.org/debian}
key=$(cat "$here/packages.txt" "$here/image.sh" "$here"/guest/* | sha256sum | cut -c1-16)
dir=$cache/image-$key
if [ -s "$dir/disk.img" ] && [ -s "$dir/vmlinuz" ] && [ -s "$dir/initrd.img" ]; then
  echo "$dir"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "image.sh: building the image needs root" >&2; exit 1; }
for tool in mmdebstrap mkfs.ext4; do
  command -v "$tool" >/dev/null || { echo "image.sh: $tool is missing (make deps)" >&2; exit 1; }
done
mkdir -p "$cache/debs"
# Only one build at a time; the loser reuses the winner's image.
exec 9>"$cache/.lock"
flock 9
if [ -s "$dir/disk.img" ]; then echo "$dir"; exit 0; fi
# Images of other keys are stale: keep the cache to one image.
rm -rf "$cache"/image-* "$cache"/build.*
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
pkgs=$(grep -v '^#' "$here/packages.txt" | grep . | paste -sd,)
echo "image.sh: building the Debian 12 image in $dir (a few minutes)" >&2
mmdebstrap --variant=apt --include="$pkgs" \
  --skip=download/empty --skip=essential/unlink \
  --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
  --setup-hook="sync-in $cache/debs /var/cache/apt/archives/" \
  --customize-hook="sync-out /var/cache/apt/archives $cache/debs" \
  --customize-hook="copy-in $here/guest/husk-vm-run /usr/local/sbin/" \
  --customize-hook="copy-in $here/guest/husk-vm-script.service /etc/systemd/system/" \
  --customize-hook='chroot "$1" systemctl enable husk-vm-script.service' \
  --customize-hook='chroot "$1" useradd -m -u 1000 -s /bin/bash dev' \
  --customize-hook='echo dev:100000:65536 > "$1"/etc/subuid; echo dev:100000:65536 > "$1"/etc/subgid' \
  --customize-hook='mkdir -p "$1"/var/lib/systemd/linger && touch "$1"/var/lib/systemd/linger/dev' \
  --customize-hook='echo husk-vm > "$1"/etc/hostname; echo "/dev/vda / ext4 rw,errors=remount-ro 0 1" > "$1"/etc/fstab' \
  --customize-hook='passwd --root "$1" -d root >/dev/null' \
  --customize-hook='for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer man-db.timer systemd-timesyncd.service; do ln -sf /dev/null "$1/etc/systemd/system/$u"; done' \
  bookworm "$root" "$mirror" >&2
mkdir -p "$work/out"
cp -L "$root"/boot/vmlinuz-* "$work/out/vmlinuz"
cp -L "$root"/boot/initrd.img-* "$work/out/initrd.img"
chmod 644 "$work/out/vmlinuz" "$work/out/initrd.img"
mkfs.ext4 -q -F -L husk-root -d "$root" "$work/out/disk.img" 8G >/dev/null
mv "$work/out" "$dir"
echo "image.sh: $dir ready" >&2
echo "$dir"
