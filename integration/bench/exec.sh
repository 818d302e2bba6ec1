#!/bin/bash
# husk exec benchmark: `exec ID true` into a running busybox container, for husk, runc and
# crun side by side in ONE hyperfine run, every runtime inside the same `v1-only` wrapper
# (crun refuses this host's hybrid cgroup layout; see ../shared/HOST.md). Each runtime runs
# its own container (`sleep`), started before and deleted after, in the same wrapper.
#
# Prints a markdown table (median ms, ratio to crun) on stdout; bench.sh can call this and
# paste the table into docs/benchmarks.md.
#
# Environment:
#   HUSK_BIN     husk binary (default: the newest <repo>/target/[<triple>/]release/husk; skipped if missing)
#   SHARED_DIR   dir holding v1-only (default: <repo>/../shared)
#   RUNS         hyperfine runs per command (default 100), WARMUP (default 10)
#   RUNTIMES     which runtimes (default "husk runc crun")
#   EXPORT_JSON  also keep hyperfine's JSON there (default: not kept)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
runs=${RUNS:-100}
warmup=${WARMUP:-10}
runtimes=${RUNTIMES:-husk runc crun}

preflight bench-exec hyperfine jq busybox runc

resolve_runtimes

work=$(mktemp -d /tmp/husk-bench-exec.XXXXXX)
cleanup() {
    for r in "${names[@]}"; do
        "$v1only" "${bin[$r]}" --root "$work/root-$r" delete -f "bench-exec-$r" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# The bundle: busybox-static rootfs, runc's default config, terminal off, `sleep 100000`.
bundle=$work/bundle
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/proc" "$bundle/rootfs/sys" "$bundle/rootfs/dev" \
    "$bundle/rootfs/tmp" "$bundle/rootfs/etc"
cp "$(readlink -f "$(command -v busybox)")" "$bundle/rootfs/bin/busybox"
for a in sh true sleep; do ln -s busybox "$bundle/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$bundle/rootfs/etc/passwd"
echo 'root:x:0:' >"$bundle/rootfs/etc/group"
(cd "$work" && runc spec --bundle "$work" && mv "$work/config.json" "$work/spec.json")
jq '.process.terminal = false | .process.args = ["/bin/sleep", "100000"] | del(.linux.resources)' \
    "$work/spec.json" >"$bundle/config.json"

cmds=()
for r in "${names[@]}"; do
    cmds+=(-n "$r exec" "${bin[$r]} --root $work/root-$r exec bench-exec-$r /bin/true")
done

# One wrapper for everything: start the containers, measure, and leave deletion to cleanup.
echo "== hyperfine: exec true ($runs runs each, inside v1-only)" >&2
"$v1only" bash -c '
    set -e
    work=$1 bundle=$2 warmup=$3 runs=$4; shift 4
    while [ "$1" != -- ]; do
        name=$1 b=$2; shift 2
        "$b" --root "$work/root-$name" run -d --bundle "$bundle" "bench-exec-$name" </dev/null >/dev/null
    done
    shift
    hyperfine --warmup "$warmup" --runs "$runs" --time-unit millisecond -N \
        --export-json "$work/hyperfine.json" "$@" >&2' \
    bench-exec "$work" "$bundle" "$warmup" "$runs" \
    $(for r in "${names[@]}"; do echo "$r ${bin[$r]}"; done) -- "${cmds[@]}"

ms() { jq -r --arg n "$1" '.results[] | select(.command == $n) | .median * 1000' "$work/hyperfine.json"; }
declare -A med
for r in "${names[@]}"; do med[$r]=$(ms "$r exec"); done
ref=${med[crun]:-}

echo "| runtime | exec \`true\` (median ms) | vs crun |"
echo "|---|---|---|"
for r in "${names[@]}"; do
    ratio="-"
    [ -n "$ref" ] && ratio=$(awk -v a="${med[$r]}" -v b="$ref" 'BEGIN { printf "%.2fx", a / b }')
    printf '| %s | %.2f | %s |\n' "$r" "${med[$r]}" "$ratio"
done
if [ -n "${EXPORT_JSON:-}" ]; then cp "$work/hyperfine.json" "$EXPORT_JSON"; fi
