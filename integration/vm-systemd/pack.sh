#!/bin/bash
# Packs the VM scenarios (tests/*.sh and the CRI client of integration/clients) into one
# self-extracting script for run.sh, which takes a single executable file.
# Usage: pack.sh OUT [MAIN_ARGS...]   (OUT runs tests/main.sh MAIN_ARGS... inside the VM)
set -euo pipefail
out=${1:?usage: pack.sh OUT [MAIN_ARGS...]}
shift
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$here"/tests/*.sh "$here/../clients/cri.py" "$tmp/"
{
  echo '#!/bin/bash'
  echo 'd=$(mktemp -d /tmp/husk-scenarios.XXXXXX)'
  echo 'sed "1,/^__PAYLOAD__\$/d" "$0" | base64 -d | tar -xz -C "$d" || exit 125'
  printf 'exec "$d/main.sh"'
  [ $# = 0 ] || printf ' %q' "$@"
  echo
  echo '__PAYLOAD__'
  tar -C "$tmp" -cz . | base64
} >"$out"
chmod 755 "$out"
