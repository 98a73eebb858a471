#!/usr/bin/env bash
# System calls per request of one server of benches/net.rs under strace:
# serves ID (GROUP/ID) alone in one process (`net` bench, `serve` mode),
# attaches `strace -c -f` to that process, drives it from a second process
# (`client` mode, saturating, NET_BENCH_SECS seconds, default 3), then
# prints strace's table and the calls per request.
#
#   tools/scripts/net_syscalls.sh net_echo/cogen [CLIENT_GROUP]
#
# CLIENT_GROUP is net_echo, net_http (depth 16) or net_http1 (depth 1),
# each also with `_mt` (the same client); by default the group of ID, so
# the two-thread ids work as they are (`net_echo_mt/cogen`: a `Runtime` of
# two loops; `-f` counts every thread of the server). Run from the
# repository's root; builds the
# bench first. strace slows the server down a lot: the rate it prints is
# not the server's, but the calls per request are.
set -euo pipefail
id=${1:?usage: net_syscalls.sh GROUP/ID [CLIENT_GROUP]}
group=${2:-${id%%/*}}
bench=$(cargo bench --bench net --no-run 2>&1 | sed -n 's/.*Executable benches\/net.rs (\(.*\))$/\1/p')
[ -x "$bench" ] || { echo "cannot build benches/net.rs" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bench" serve "$id" >"$work/serve" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q '^listening on' "$work/serve" && break; sleep 0.1; done
addr=$(sed -n 's/^listening on //p' "$work/serve")
strace -c -f -p "$server" -o "$work/strace" &
tracer=$!
sleep 0.5
NET_BENCH_SECS=${NET_BENCH_SECS:-3} "$bench" client "$group" "$addr" | tee "$work/client"
kill -INT "$tracer"
wait "$tracer" || true
kill "$server"
wait "$server" 2>/dev/null || true
cat "$work/strace"
requests=$(awk '{print $1; exit}' "$work/client")
calls=$(awk '$NF == "total" {print $4; exit}' "$work/strace")
awk -v c="$calls" -v r="$requests" -v id="$id" -v g="$group" \
    'BEGIN { printf "%s (%s): %d calls / %d requests = %.3f system calls per request\n", id, g, c, r, c / r }'
