#!/usr/bin/env bash
# User-space instructions per request of one server of benches/net.rs,
# counted by callgrind: serves ID (GROUP/ID) alone under
# `valgrind --tool=callgrind`, drives it from a second process (`client`
# mode) once to warm it up, zeroes the counters, drives it for N1 seconds
# and dumps, zeroes, drives it for N2 seconds and dumps; prints
# (Ir(2) - Ir(1)) / (requests(2) - requests(1)), so that the cost of the
# client's 100 new connections per run cancels out. Kernel time is not
# counted (callgrind sees user space only).
#
#   tools/scripts/net_instructions.sh net_echo/cogen [CLIENT_GROUP]
#
# Run from the repository's root; builds the bench first. Needs valgrind.
set -euo pipefail
id=${1:?usage: net_instructions.sh GROUP/ID [CLIENT_GROUP]}
group=${2:-${id%%/*}}
N1=${N1:-2}
N2=${N2:-4}
bench=$(cargo bench --bench net --no-run 2>&1 | sed -n 's/.*Executable benches\/net.rs (\(.*\))$/\1/p')
[ -x "$bench" ] || { echo "cannot build benches/net.rs" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" "$bench" serve "$id" >"$work/serve" 2>"$work/valgrind" &
server=$!
for _ in $(seq 300); do grep -q '^listening on' "$work/serve" && break; sleep 0.1; done
addr=$(sed -n 's/^listening on //p' "$work/serve")
drive() { NET_BENCH_SECS=$1 "$bench" client "$group" "$addr" | awk '{print $1}'; }
# Ir so far, from a fresh dump (the newest file callgrind wrote).
dump() {
    callgrind_control -d "$server" >/dev/null
    sleep 0.5
    local newest
    newest=$(ls -t "$work"/cg.* | sed -n 1p)
    callgrind_annotate "$newest" 2>/dev/null |
        awk '/PROGRAM TOTALS/ && !done {gsub(",", "", $1); print $1; done = 1}'
}
drive 1 >/dev/null
callgrind_control -z "$server" >/dev/null
r1=$(drive "$N1")
i1=$(dump)
callgrind_control -z "$server" >/dev/null
r2=$(drive "$N2")
i2=$(dump)
kill "$server"
wait "$server" 2>/dev/null || true
awk -v i1="$i1" -v i2="$i2" -v r1="$r1" -v r2="$r2" -v id="$id" -v g="$group" 'BEGIN {
    printf "%s (%s): %d requests: %d instructions; %d requests: %d instructions; %.0f instructions per request\n",
        id, g, r1, i1, r2, i2, (i2 - i1) / (r2 - r1) }'
