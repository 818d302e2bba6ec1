#!/bin/bash
# Builds what the pure cgroup v2 VM boots: the Debian 6.1 kernel (from its package, cached)
# and an initramfs holding busybox, the runtime under test (with its shared libraries) and
# the tests. Usage: build.sh RUNTIME_BINARY OUT_DIR
#   OUT_DIR/vmlinuz, OUT_DIR/initrd.gz
# Needs: apt-get (download only), dpkg-deb, cpio, gzip, /bin/busybox (busybox-static).
# The kernel and apparmor_parser (package apparmor) are cached in $HUSK_VM_CACHE
# (default /var/tmp/husk-vm-cache).
set -euo pipefail

bin=${1:?usage: build.sh RUNTIME_BINARY OUT_DIR}
out=${2:?usage: build.sh RUNTIME_BINARY OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
cache=${HUSK_VM_CACHE:-/var/tmp/husk-vm-cache}
busybox=${BUSYBOX:-/bin/busybox}

for tool in cpio gzip dpkg-deb; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool is missing (make deps)" >&2; exit 1; }
done
[ -x "$busybox" ] || { echo "build.sh: $busybox is missing (package busybox-static)" >&2; exit 1; }
[ -x "$bin" ] || { echo "build.sh: runtime binary $bin is missing" >&2; exit 1; }
mkdir -p "$cache" "$out"

# The kernel: the package linux-image-amd64 depends on (bookworm: 6.1), downloaded once.
kernel=$(ls "$cache"/vmlinuz-* 2>/dev/null | head -n1 || true)
if [ -z "$kernel" ]; then
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
  if [ -z "$pkg" ]; then
    apt-get update -qq >/dev/null 2>&1 || true
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
  fi
  [ -n "$pkg" ] || { echo "build.sh: cannot find the linux-image package (apt-get update?)" >&2; exit 1; }
  (cd "$cache" && apt-get download -q "$pkg" >/dev/null 2>&1) \
    || { echo "build.sh: apt-get download $pkg failed" >&2; exit 1; }
  deb=$(ls "$cache"/"$pkg"_*.deb | head -n1)
  tmp=$(mktemp -d)
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './boot/vmlinuz-*'
  mv "$tmp"/boot/vmlinuz-* "$cache"/
  rm -rf "$tmp" "$deb"
  kernel=$(ls "$cache"/vmlinuz-* | head -n1)
fi
cp "$kernel" "$out/vmlinuz"

# apparmor_parser from Debian's apparmor package (downloaded once, not installed on the host),
# for the AppArmor checks: the VM's kernel runs AppArmor.
parser="$cache/apparmor_parser"
if [ ! -x "$parser" ]; then
  tmp=$(mktemp -d)
  if ! (cd "$tmp" && apt-get download -q apparmor >/dev/null 2>&1); then
    apt-get update -qq >/dev/null 2>&1 || true
    (cd "$tmp" && apt-get download -q apparmor >/dev/null 2>&1) \
      || { echo "build.sh: apt-get download apparmor failed" >&2; rm -rf "$tmp"; exit 1; }
  fi
  dpkg-deb --fsys-tarfile "$tmp"/apparmor_*.deb | tar -x -C "$tmp" ./sbin/apparmor_parser
  mv "$tmp/sbin/apparmor_parser" "$parser"
  rm -rf "$tmp"
fi

# The initramfs tree.
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,run,newroot,husk}
cp "$busybox" "$root/bin/busybox"
for a in $("$busybox" --list); do
  [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
done
# The runtime, apparmor_parser and the shared libraries they load.
cp "$bin" "$root/husk/runtime"
cp "$parser" "$root/sbin/apparmor_parser"
for b in "$bin" "$parser"; do
  ldd "$b" >/dev/null 2>&1 || continue
  for lib in $(ldd "$b" | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i}'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
done
cp "$here/init.sh" "$root/init"
cp "$here/stage2.sh" "$root/husk/stage2.sh"
cp "$here/tests.sh" "$root/husk/tests.sh"
chmod 755 "$root/init" "$root/husk/"*.sh
echo "root:x:0:0:root:/:/bin/sh" > "$root/etc/passwd"
echo "root:x:0:" > "$root/etc/group"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out/initrd.gz"
echo "build.sh: $out/vmlinuz ($(basename "$kernel")), $out/initrd.gz"
