# Sourced by the bench scripts after they set `here` (this directory): where things are.
#   repo      the repository
#   shared    ../shared (SHARED_DIR), with v1only, its v1-only wrapper
#   husk_bin  $HUSK_BIN, else the newest husk build: make build's target/<triple>/release/husk
#             or cargo's target/release/husk (under $CARGO_TARGET_DIR when set); empty if none
repo=$(cd "$here/../.." && pwd)
shared=${SHARED_DIR:-$repo/../shared}
v1only=$shared/v1-only
target_dir=${CARGO_TARGET_DIR:-$repo/target}
husk_bin=${HUSK_BIN:-$({ ls -t "$target_dir"/*/release/husk "$target_dir"/release/husk 2>/dev/null || true; } | head -n1)}

# preflight NAME TOOL...: die() with NAME as its prefix, then the checks every bench script
# makes: root, the v1-only wrapper, and each TOOL on PATH.
bench_name=bench
die() { echo "$bench_name: $*" >&2; exit 1; }
preflight() {
    bench_name=$1
    shift
    [ "$(id -u)" = 0 ] || die "must run as root"
    [ -x "$v1only" ] || die "$v1only not found (set SHARED_DIR)"
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null || die "$t missing (make deps)"
    done
}

# resolve_runtimes: for each name in $runtimes, its binary (husk: $husk_bin, the others from
# PATH) resolved into bin[NAME] and the name appended to names; one that is missing is said
# on stderr and appended to skipped. Dies when none is left.
declare -A bin
names=()
skipped=()
resolve_runtimes() {
    local r b
    for r in $runtimes; do
        case $r in
            husk) b=$husk_bin ;;
            *) b=$(command -v "$r" || true) ;;
        esac
        if [ -n "$b" ] && [ -x "$b" ]; then
            bin[$r]=$(readlink -f "$b")
            names+=("$r")
        else
            echo "$bench_name: $r not found${b:+ at $b}, skipped" >&2
            skipped+=("$r")
        fi
    done
    [ ${#names[@]} -gt 0 ] || die "no runtime to measure"
}
