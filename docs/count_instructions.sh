#!/usr/bin/env bash
# Instructions per resume/yield round trip, for cogen and each peer, counted
# by callgrind (no timing noise). For each peer, runs
# `examples/switch_count.rs` with N1 and N2 round trips and prints
# (Ir(N2) - Ir(N1)) / (N2 - N1): creating the coroutine, starting Lua and
# the process itself cancel out. The last column also subtracts the driving
# loop's own instructions (the `baseline` peer: the same loop around `x + 1`),
# which is the figure to compare with a bare switch.
#
#   docs/count_instructions.sh                 # every peer, N1=1000000 N2=2000000
#   docs/count_instructions.sh cogen corosensei
#
# Needs valgrind. Honours CARGO_TARGET_DIR (default ./target).
set -euo pipefail
cd "$(dirname "$0")/.."

N1=${N1:-1000000}
N2=${N2:-2000000}
PEERS=("$@")
if [ ${#PEERS[@]} -eq 0 ]; then
    PEERS=(cogen cogen_stackless corosensei nightly_raw generator_rs lua54)
fi

cargo build --release --example switch_count >&2
BIN="${CARGO_TARGET_DIR:-target}/release/examples/switch_count"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# Total instructions (Ir) of one run, from callgrind's summary line.
count() {
    valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.$1.$2" "$BIN" "$1" "$2" \
        2>"$OUT/log.$1.$2" >/dev/null
    awk '/^summary:/ {print $2}' "$OUT/cg.$1.$2"
}

per_trip() {
    local a b
    a=$(count "$1" "$N1")
    b=$(count "$1" "$N2")
    awk -v a="$a" -v b="$b" -v n1="$N1" -v n2="$N2" 'BEGIN {printf "%.1f", (b - a) / (n2 - n1)}'
}

# The driving loop's own cost: the same loop around a plain `x + 1`.
base=$(per_trip baseline)
echo "Driving loop alone (baseline): $base instructions per iteration"
echo
echo "| peer | instructions per round trip (loop included) | without the loop |"
echo "|---|---:|---:|"
for peer in "${PEERS[@]}"; do
    per=$(per_trip "$peer")
    net=$(awk -v p="$per" -v b="$base" 'BEGIN {printf "%.1f", p - b}')
    echo "| $peer | $per | $net |"
done
