#!/bin/bash
# Runs inside the systemd VM (integration/vm-systemd/run.sh): every scenario of every
# scenario file, with husk and with runc as the control. Exits 0 only when all pass with both.
# Usage: main.sh [FILE...]   (default: every *.sh here but lib.sh and main.sh)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
files=("$@")
if [ ${#files[@]} = 0 ]; then
  for f in "$here"/*.sh; do
    case ${f##*/} in lib.sh | main.sh) ;; *) files+=("${f##*/}") ;; esac
  done
fi
export PATH=/usr/local/bin:$PATH
systemd_version=$(systemctl --version | awk 'NR == 1 {print $2}')
echo "systemd $systemd_version, $(uname -r), cgroup $(stat -fc %T /sys/fs/cgroup), $(husk --version | head -n1), $(runc --version | head -n1)"
passed=0 failed=0
results=()
for f in "${files[@]}"; do
  unset -f $(declare -F | awk '$3 ~ /^scenario_/ {print $3}') 2>/dev/null
  . "$here/$f"
  for s in $(declare -F | awk '$3 ~ /^scenario_/ {print $3}'); do
    for RT in husk runc; do
      RTBIN=$(command -v $RT)
      export RT RTBIN
      FAILED=0
      start=$(date +%s)
      echo "== ${f%.sh}/${s#scenario_} [$RT]"
      work=$(mktemp -d /tmp/scenario.XXXXXX)
      (cd "$work" && { "$s" || FAILED=1; }; exit $FAILED) 2>&1 | sed 's/^/  /'
      rc=${PIPESTATUS[0]}
      rm -rf "$work"
      secs=$(($(date +%s) - start))
      if [ "$rc" = 0 ]; then
        passed=$((passed + 1)); results+=("ok    ${f%.sh}/${s#scenario_} [$RT] ${secs}s")
      else
        failed=$((failed + 1)); results+=("FAIL  ${f%.sh}/${s#scenario_} [$RT]")
      fi
    done
  done
done
echo
printf '%s\n' "${results[@]}"
echo "systemd VM scenarios: passed=$passed failed=$failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
