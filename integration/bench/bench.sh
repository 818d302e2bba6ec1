#!/bin/bash
# husk benchmark: husk, runc and crun side by side, in ONE hyperfine run, every runtime
# inside the same `v1-only` wrapper (crun refuses this host's hybrid cgroup layout; see
# ../shared/HOST.md), on the same busybox bundle running `true`:
#   - create + start + delete -f   (the lifecycle a container engine drives)
#   - run                          (foreground run, deleted on exit)
# then the peak RSS of `run` for each (GNU time %M, median of $RSS_RUNS), husk's stripped
# binary size, ratios to crun, and docs/benchmarks.md.
#
# Environment:
#   HUSK_BIN     husk binary (default: the newest <repo>/target/[<triple>/]release/husk; skipped if missing)
#   SHARED_DIR   dir holding v1-only (default: <repo>/../shared)
#   RUNS         hyperfine runs per command (default 50), WARMUP (default 5)
#   RSS_RUNS     runs for the RSS median (default 7)
#   RUNTIMES     which runtimes (default "husk runc crun")
#   OUT          report file (default <repo>/docs/benchmarks.md; "-" = don't write)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
runs=${RUNS:-50}
warmup=${WARMUP:-5}
rss_runs=${RSS_RUNS:-7}
runtimes=${RUNTIMES:-husk runc crun}
out=${OUT:-$repo/docs/benchmarks.md}

preflight bench hyperfine jq /usr/bin/time busybox

resolve_runtimes

work=$(mktemp -d /tmp/husk-bench.XXXXXX)
# State roots (and the bundle) on a tmpfs, as /run is on a real host: runtimes that fsync
# their state are not charged for a disk that production never gives them.
mount -t tmpfs -o size=64m,mode=700 husk-bench "$work"
cleanup() {
    for r in "${names[@]}"; do
        for id in "bench-$r-csd" "bench-$r-run" "bench-$r-rss" "bench-$r-sec"; do
            "${bin[$r]}" --root "$work/root-$r" delete -f "$id" >/dev/null 2>&1 || true
        done
    done
    umount "$work" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The bundle: busybox-static rootfs, runc's default config with terminal off and `true`.
bundle=$work/bundle
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/proc" "$bundle/rootfs/sys" "$bundle/rootfs/dev" \
    "$bundle/rootfs/tmp" "$bundle/rootfs/etc"
cp "$(readlink -f "$(command -v busybox)")" "$bundle/rootfs/bin/busybox"
ln -s busybox "$bundle/rootfs/bin/sh"
ln -s busybox "$bundle/rootfs/bin/true"
echo 'root:x:0:0:root:/root:/bin/sh' >"$bundle/rootfs/etc/passwd"
echo 'root:x:0:' >"$bundle/rootfs/etc/group"
(cd "$work" && runc spec --bundle "$work" && mv "$work/config.json" "$work/spec.json")
jq '.process.terminal = false | .process.args = ["/bin/true"] | del(.linux.resources)' \
    "$work/spec.json" >"$bundle/config.json"
# The same bundle with podman's default seccomp profile (issue 5), as podman writes it: with
# noNewPrivileges unset (podman's default), so the filter goes in while the runtime still
# holds CAP_SYS_ADMIN.
sbundle=$work/bundle-seccomp
mkdir -p "$sbundle"
"$here/podman-seccomp.py" >"$work/seccomp.json"
jq --slurpfile sc "$work/seccomp.json" --arg root "$bundle/rootfs" \
    '.linux.seccomp = $sc[0] | .root.path = $root | del(.process.noNewPrivileges)' \
    "$bundle/config.json" >"$sbundle/config.json"

# Each runtime gets its own state root and cgroup parent is the runtime's default.
cmds=()
for r in "${names[@]}"; do
    b=${bin[$r]}
    root=$work/root-$r
    cmds+=(-n "$r create+start+delete"
        "$b --root $root create --bundle $bundle bench-$r-csd >/dev/null && $b --root $root start bench-$r-csd && $b --root $root delete -f bench-$r-csd")
done
for r in "${names[@]}"; do
    b=${bin[$r]}
    cmds+=(-n "$r run" "$b --root $work/root-$r run --bundle $bundle bench-$r-run")
done
for r in "${names[@]}"; do
    b=${bin[$r]}
    root=$work/root-$r
    cmds+=(-n "$r create+start+delete seccomp"
        "$b --root $root create --bundle $sbundle bench-$r-sec >/dev/null && $b --root $root start bench-$r-sec && $b --root $root delete -f bench-$r-sec")
done

echo "== hyperfine ($runs runs each, inside v1-only)"
"$v1only" hyperfine --warmup "$warmup" --runs "$runs" --time-unit millisecond \
    --export-json "$work/hyperfine.json" "${cmds[@]}"

# Peak RSS of `run`, median of $rss_runs, also inside v1-only. Each runtime's executable is
# first dropped from the page cache (dd iflag=nocache): how a binary's pages were cached changes
# how much fault-around maps (a file just written by cp sits in large folios), so every runtime
# is measured as after a reboot, its code read back from disk.
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
declare -A rss
for r in "${names[@]}"; do
    b=${bin[$r]}
    sync
    dd if="$(readlink -f "$b")" iflag=nocache count=0 status=none || true
    vals=$("$v1only" sh -c '
        b=$1 root=$2 bundle=$3 id=$4 n=$5
        i=0
        while [ $i -lt $n ]; do
            /usr/bin/time -f %M -o "$root.rss" "$b" --root "$root" run --bundle "$bundle" "$id" >/dev/null
            tail -n 1 "$root.rss"
            i=$((i + 1))
        done' rss "$b" "$work/root-$r" "$bundle" "bench-$r-rss" "$rss_runs")
    rss[$r]=$(echo "$vals" | median)
done

# Figures (ms) from hyperfine's JSON.
ms() { jq -r --arg n "$1" '.results[] | select(.command == $n) | .median * 1000' "$work/hyperfine.json"; }
declare -A csd run sec
for r in "${names[@]}"; do
    csd[$r]=$(ms "$r create+start+delete")
    run[$r]=$(ms "$r run")
    sec[$r]=$(ms "$r create+start+delete seccomp")
done
ratio() { # ratio VALUE REF
    if [ -n "${2:-}" ]; then awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else print "-" }'; else echo "-"; fi
}
fmt() { awk -v a="$1" 'BEGIN { printf "%.1f", a }'; }
ref_csd=${csd[crun]:-}
ref_run=${run[crun]:-}
ref_sec=${sec[crun]:-}
ref_rss=${rss[crun]:-}

version() { "$1" --version 2>/dev/null | head -n 1; }
size=""
if [ -n "${bin[husk]:-}" ]; then
    strip -o "$work/husk.stripped" "${bin[husk]}"
    size=$(stat -c %s "$work/husk.stripped")
fi

table() {
    echo "| runtime | create+start+delete (ms) | ratio to crun | run (ms) | ratio to crun | create+start+delete, podman's seccomp profile (ms) | ratio to crun | peak RSS of run (KiB) | ratio to crun |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for r in "${names[@]}"; do
        echo "| $r | $(fmt "${csd[$r]}") | $(ratio "${csd[$r]}" "$ref_csd") | $(fmt "${run[$r]}") | $(ratio "${run[$r]}" "$ref_run") | $(fmt "${sec[$r]}") | $(ratio "${sec[$r]}" "$ref_sec") | ${rss[$r]} | $(ratio "${rss[$r]}" "$ref_rss") |"
    done
}

echo
echo "== results (medians; ratios to crun)"
table
if [ -n "$size" ]; then
    echo "husk stripped binary: $size bytes ($((size / 1024)) KiB)"
fi

[ "$out" = "-" ] && exit 0
{
    echo "# Benchmarks"
    echo
    echo "Written by \`make bench\` (integration/bench/bench.sh). Last run: $(date -u +%Y-%m-%dT%H:%MZ),"
    echo "$(uname -sr), $(nproc) CPUs. All runtimes ran side by side in one hyperfine run ($runs runs"
    echo "each, $warmup warm-up), each with its own \`--root\`, all inside \`../shared/v1-only\` (a private"
    echo "mount namespace with only this host's cgroup v1 hierarchies: crun refuses the hybrid layout, and"
    echo "the others run in the same wrapper for fairness). The bundle is a busybox-static rootfs with"
    echo "\`runc spec\`'s config (terminal off, no \`linux.resources\`) running \`/bin/true\`."
    echo
    echo "- *create+start+delete*: \`create\`, \`start\`, \`delete -f\` in sequence."
    echo "- *run*: foreground \`run\` (the container is deleted when it exits)."
    echo "- *podman's seccomp profile*: create+start+delete with \`linux.seccomp\` set to podman's default"
    echo "  profile (/usr/share/containers/seccomp.json as podman writes it, integration/bench/podman-seccomp.py),"
    echo "  and \`noNewPrivileges\` unset, as podman's default config has it."
    echo "- *peak RSS*: GNU time's \`%M\` for \`run\`, median of $rss_runs runs."
    echo
    echo "The machine is shared and noisy: compare the ratios within one run, not absolute times"
    echo "across runs."
    echo
    table
    echo
    for r in "${skipped[@]}"; do
        echo "Not measured in this run: $r (binary not found)."
        echo
    done
    if [ -n "$size" ]; then
        echo "husk's stripped binary: $size bytes ($((size / 1024)) KiB)."
        echo
    fi
    echo "Versions:"
    echo
    for r in "${names[@]}"; do
        echo "- $r: $(version "${bin[$r]}")"
    done
    echo
    echo "Targets (issue 3): husk no slower than crun on both timings and RSS no higher than"
    echo "crun's; the project's goal is 0.75× crun for create+start+delete."
    cat <<'TXT'

## Why husk's peak RSS is low

Almost all of a runtime's RSS is file-backed code, and the kernel maps a page fault's
neighbours too (fault-around, 64 KiB): code run once anywhere in a 4.5 MB `.text` costs a whole
window. `make build` therefore:

- links husk as a static PIE (glibc linked in, ASLR kept): no dynamic loader and no 1.2 MB of
  libc.so windows, and a faster start;
- packs its relative relocations (`-z pack-relative-relocs`, a 3.5 KB table instead of 260 KB);
- orders `.text` by a profile: the ~700 Rust functions that create/start/run/exec/delete
  execute (crates/shim/hot-functions.txt) come first and together
  (`lld --symbol-ordering-file`, crates/shim/build.rs). The list is made by
  integration/bench/hot_functions.py, one uprobe per function over real container lifecycles;
  regenerate it after large changes (a stale list only costs RSS, never correctness).

Measured on 2026-11-25 (`/usr/bin/time -f %M husk run` of the same bundle): dynamic build
5.4 MB, static PIE 4.5 MB, static PIE with the ordered layout 2.8 MB; crun 3.4 MB. Right after
`cp` or `install` wrote the binary, before its pages ever left the page cache, the same build
peaks at 3.2 MB: a file written in large chunks is cached in large folios, and faults map more
of it. The table measures each runtime's binary read back from disk.
TXT
} >"$out"

# The other latencies the issues ask `make bench` for, appended to the same report:
# exec (issue 6), rootless run (issue 13), the cgroup commands (issue 4), end to end through
# podman and ctr (issue 7).
# BENCH_MORE=0 skips them (the clients take a few minutes to set up).
if [ "${BENCH_MORE:-1}" = 1 ]; then
    {
        echo
        echo "## exec of \`true\` into a running container"
        echo
        "$here/exec.sh" || echo "(exec.sh failed: run it by hand for the cause)"
        echo
        echo "## Rootless \`run\` of \`true\`, as an ordinary user"
        echo
        "$here/rootless.sh" 2>/dev/null || echo "(rootless.sh failed: run it by hand for the cause)"
        echo
        echo "## Cgroup commands on a running container (update, events --stats, pause+resume)"
        echo
        echo '```'
        "$here/cgroups.sh" 2>&1 | grep -E "^Benchmark|Time \(mean|times faster|ran$" \
            || echo "(cgroups.sh failed: run it by hand for the cause)"
        echo '```'
        echo
        echo "## End to end through the clients (podman run --rm, ctr run --rm)"
        echo
        OUT= "$here/clients.sh" 2>/dev/null || echo "(clients.sh failed: run it by hand for the cause)"
    } >>"$out"
fi
echo "wrote $out"
