#!/usr/bin/env bash
# Instructions per resume/yield round trip, for cogen and each peer, counted
# by callgrind (no timing noise). For each peer, runs
# `tools/src/bin/switch_count.rs` with N1 and N2 round trips and prints
# (Ir(N2) - Ir(N1)) / (N2 - N1): creating the coroutine, starting Lua and
# the process itself cancel out. The last column also subtracts the driving
# loop's own instructions (the `baseline` peer: the same loop around `x + 1`),
# which is the figure to compare with a bare switch.
#
#   tools/scripts/count_instructions.sh                   # every peer, N1=1000000 N2=2000000
#   tools/scripts/count_instructions.sh cogen corosensei  # some peers
#   RING=10000 tools/scripts/count_instructions.sh        # round robin over 10,000 coroutines,
#                                                         # with callgrind's cache simulation:
#                                                         # also L1 data misses per round trip
#
# Needs valgrind. Honours CARGO_TARGET_DIR (default target/ at the repository's root).
set -euo pipefail
cd "$(dirname "$0")/../.."

N1=${N1:-1000000}
N2=${N2:-2000000}
RING=${RING:-1}
PEERS=("$@")
if [ ${#PEERS[@]} -eq 0 ]; then
    PEERS=(cogen cogen_stackless corosensei nightly_raw generator_rs lua54)
fi
CACHE=()
if [ "$RING" -gt 1 ]; then
    CACHE=(--cache-sim=yes)
fi

cargo build --release -p cogen-tools --bin switch_count >&2
BIN="${CARGO_TARGET_DIR:-target}/release/switch_count"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# Runs one peer under callgrind; prints its summary line's counts
# (Ir, and with the cache simulation also Dr Dw I1mr D1mr D1mw ...).
count() {
    valgrind --tool=callgrind "${CACHE[@]}" --callgrind-out-file="$OUT/cg.$1.$2" \
        "$BIN" "$1" "$2" "$RING" 2>"$OUT/log.$1.$2" >/dev/null
    awk '/^summary:/ {$1 = ""; print}' "$OUT/cg.$1.$2"
}

# Per round trip: "Ir" or "Ir D1-misses".
per_trip() {
    local a b
    a=$(count "$1" "$N1")
    b=$(count "$1" "$N2")
    awk -v a="$a" -v b="$b" -v n1="$N1" -v n2="$N2" -v cache="${#CACHE[@]}" 'BEGIN {
        split(a, x, " "); split(b, y, " "); d = n2 - n1
        if (cache > 0) printf "%.1f %.2f", (y[1] - x[1]) / d, (y[5] + y[6] - x[5] - x[6]) / d
        else printf "%.1f", (y[1] - x[1]) / d
    }'
}

# The driving loop's own cost: the same loop around a plain `x + 1`.
base=$(per_trip baseline)
base_ir=${base%% *}
echo "Round trips over $RING coroutine(s). Driving loop alone (baseline): $base_ir instructions per iteration"
echo
if [ ${#CACHE[@]} -gt 0 ]; then
    echo "| peer | instructions per round trip (loop included) | without the loop | L1 data misses per round trip |"
    echo "|---|---:|---:|---:|"
else
    echo "| peer | instructions per round trip (loop included) | without the loop |"
    echo "|---|---:|---:|"
fi
for peer in "${PEERS[@]}"; do
    read -r ir misses <<<"$(per_trip "$peer")"
    net=$(awk -v p="$ir" -v b="$base_ir" 'BEGIN {printf "%.1f", p - b}')
    if [ ${#CACHE[@]} -gt 0 ]; then
        echo "| $peer | $ir | $net | $misses |"
    else
        echo "| $peer | $ir | $net |"
    fi
done
