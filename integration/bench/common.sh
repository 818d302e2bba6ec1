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
