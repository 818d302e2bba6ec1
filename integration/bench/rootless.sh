#!/bin/bash
# Rootless `run` of busybox `true` as an ordinary user: husk, runc and crun side by side in ONE
# hyperfine run, all inside the same `v1-only` wrapper (crun refuses this host's hybrid cgroup
# layout), each with the bundle `runc spec --rootless` writes (one user namespace mapping the
# user's own ids; no cgroup of its own, since cgroup v1 is not delegated to users). The user
# (husk-bench-rootless) is created for the run and removed afterwards, with its runtime dir.
# A runtime that cannot run the bundle rootless here is reported and left out.
#
# Prints a markdown table (median ms, ratio to crun) on stdout; bench.sh pastes it into
# docs/benchmarks.md.
#
# Environment: HUSK_BIN, SHARED_DIR, RUNS (default 50), WARMUP (default 5), RUNTIMES
# (default "husk runc crun"), as bench.sh.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
runs=${RUNS:-50}
warmup=${WARMUP:-5}
runtimes=${RUNTIMES:-husk runc crun}
user=husk-bench-rootless

preflight bench-rootless hyperfine jq busybox runc runuser useradd

remove_user() {
    local uid
    uid=$(id -u "$user" 2>/dev/null) || return 0
    pkill -KILL -u "$uid" 2>/dev/null || true
    rm -rf "/run/user/$uid"
    userdel --remove "$user" 2>/dev/null || true
    sed -i "/^$user:/d" /etc/subuid /etc/subgid 2>/dev/null || true
}
remove_user
useradd --create-home --shell /bin/sh "$user"
trap remove_user EXIT
uid=$(id -u "$user")
home=$(getent passwd "$user" | cut -d: -f6)
xdg=/run/user/$uid
install -d -m 0700 -o "$uid" -g "$uid" "$xdg"

# The binaries, where the user can run them; the bundle, made and owned by the user.
mkdir -p "$home/bin" "$home/bundle/rootfs/bin" "$home/bundle/rootfs/proc" "$home/bundle/rootfs/sys" \
    "$home/bundle/rootfs/dev" "$home/bundle/rootfs/tmp" "$home/bundle/rootfs/etc"
cp "$(readlink -f "$(command -v busybox)")" "$home/bundle/rootfs/bin/busybox"
ln -s busybox "$home/bundle/rootfs/bin/true"
echo 'root:x:0:0:root:/root:/bin/sh' >"$home/bundle/rootfs/etc/passwd"
echo 'root:x:0:' >"$home/bundle/rootfs/etc/group"
resolve_runtimes
for r in "${names[@]}"; do
    install -m 0755 "${bin[$r]}" "$home/bin/$r"
    bin[$r]=$home/bin/$r
done
# The binaries stay root's, as installed ones are; the bundle is the user's.
chown "$uid:$uid" "$home"
chown -R "$uid:$uid" "$home/bundle"

# As the user, inside v1-only, with a clean environment.
as_user() {
    "$v1only" runuser -u "$user" -- env -i HOME="$home" USER="$user" LOGNAME="$user" \
        PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin XDG_RUNTIME_DIR="$xdg" "$@"
}
# runc spec --rootless maps the ids of whoever runs it: the user.
as_user sh -c "cd '$home/bundle' && runc spec --rootless"
as_user sh -c "cd '$home/bundle' && jq '.process.terminal = false | .process.args = [\"/bin/true\"]' config.json >c.json && mv c.json config.json"

cmds=()
measured=()
for r in "${names[@]}"; do
    b=${bin[$r]}
    if err=$(as_user "$b" --root "$xdg/$r" run --bundle "$home/bundle" "probe-$r" 2>&1); then
        cmds+=(-n "$r rootless run" "$b --root $xdg/$r run --bundle $home/bundle bench-$r")
        measured+=("$r")
    else
        echo "bench-rootless: $r cannot run rootless here, left out: $(echo "$err" | tail -n 1)" >&2
        echo "- $r: not measured (\`run\` as the user failed: $(echo "$err" | tail -n 1 | cut -c1-160))" >>"$home/notes"
    fi
done
[ ${#measured[@]} -gt 0 ] || die "no runtime runs rootless here"
as_user hyperfine --warmup "$warmup" --runs "$runs" --time-unit millisecond \
    --export-json "$home/hyperfine.json" "${cmds[@]}" >&2

ms() { jq -r --arg n "$1 rootless run" '.results[] | select(.command == $n) | .median * 1000' "$home/hyperfine.json"; }
declare -A t
for r in "${measured[@]}"; do t[$r]=$(ms "$r"); done
ref=${t[crun]:-${t[runc]:-}}
refname=$([ -n "${t[crun]:-}" ] && echo crun || echo runc)
echo "| runtime | rootless run (ms) | ratio to $refname |"
echo "|---|---:|---:|"
for r in "${measured[@]}"; do
    awk -v r="$r" -v a="${t[$r]}" -v b="$ref" 'BEGIN { printf "| %s | %.1f | %.2f× |\n", r, a, a / b }'
done
[ -f "$home/notes" ] && { echo; cat "$home/notes"; }
echo
echo "($runs runs each, $warmup warm-up, as the unprivileged user $user, inside v1-only.)"
