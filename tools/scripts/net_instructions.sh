#!/usr/bin/env bash
# User-space instructions and simulated branch mispredictions per request
# of the servers of benches/net.rs, counted by callgrind. For each server
# id (GROUP/ID): serves it alone under `valgrind --tool=callgrind
# --branch-sim=yes`, and for each of the group's client workloads drives
# it from a second process (`client` mode, saturating) once to warm it up,
# zeroes the counters, drives it for N1 seconds and dumps, zeroes, drives
# it for N2 seconds and dumps; reports
# (count(2) - count(1)) / (requests(2) - requests(1)), so that the cost of
# the client's 100 new connections per run cancels out. Kernel time is not
# counted (callgrind sees user space only); mispredictions are callgrind's
# simulated ones (Bcm + Bim), not the CPU's. A server of two threads runs
# them one at a time under valgrind: its counts are the work of both.
#
#   tools/scripts/net_instructions.sh                      # every id of every group
#   tools/scripts/net_instructions.sh net_echo             # one group's ids
#   tools/scripts/net_instructions.sh net_echo/cogen net_http/tokio
#
# Prints one line per (id, workload) as it goes, then one Markdown table
# per group. The `net_http` groups are driven at pipelining depth 16 and
# depth 1 (client groups `net_http` and `net_http1`). N1 and N2 (seconds,
# default 2 and 4) set the two runs' lengths. Run from the repository's
# root; builds the bench first. Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/../.."
N1=${N1:-2}
N2=${N2:-4}

# Every server id, as benches/net.rs lists them (`IDS` there).
ALL="net_echo/cogen net_echo/tokio net_echo/smol net_echo/may
net_http/cogen net_http/tokio net_http/may_minihttp
net_echo_mt/cogen net_echo_mt/cogen_1t net_echo_mt/tokio net_echo_mt/may
net_http_mt/cogen net_http_mt/cogen_1t net_http_mt/tokio net_http_mt/may_minihttp"
ids=()
for want in "${@:-}"; do
    for id in $ALL; do
        if [ -z "$want" ] || [ "$want" = "$id" ] || [ "$want" = "${id%%/*}" ]; then ids+=("$id"); fi
    done
done
[ ${#ids[@]} -gt 0 ] || { echo "no such id or group: $*" >&2; exit 1; }

bench=$(cargo bench --bench net --no-run 2>&1 | sed -n 's/.*Executable benches\/net.rs (\(.*\))$/\1/p')
[ -x "$bench" ] || { echo "cannot build benches/net.rs" >&2; exit 1; }
work=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT

# "Ir mispredictions" of the newest dump of the running server.
dump() {
    local before newest
    before=$(ls "$work"/cg.* 2>/dev/null | wc -l)
    callgrind_control -d "$server" >/dev/null 2>&1
    for _ in $(seq 100); do
        [ "$(ls "$work"/cg.* 2>/dev/null | wc -l)" -gt "$before" ] && break
        sleep 0.1
    done
    sleep 0.2
    newest=$(ls -t "$work"/cg.* | sed -n 1p)
    awk '/^events:/ { for (i = 2; i <= NF; i++) ev[$i] = i - 1 }
        /^(summary|totals):/ && !done {
            printf "%s %s\n", $(ev["Ir"] + 1), $(ev["Bcm"] + 1) + $(ev["Bim"] + 1); done = 1 }' "$newest"
}

# Requests the client (GROUP) completed against the server at $addr in
# SECONDS, at full speed.
drive() { NET_BENCH_SECS=$2 "$bench" client "$1" "$addr" | awk '{print $1}'; }

for id in "${ids[@]}"; do
    group=${id%%/*}
    rm -f "$work"/cg.*
    valgrind --tool=callgrind --branch-sim=yes --callgrind-out-file="$work/cg.%p" \
        "$bench" serve "$id" >"$work/serve" 2>"$work/valgrind" &
    server=$!
    for _ in $(seq 600); do grep -q '^listening on' "$work/serve" && break; sleep 0.1; done
    addr=$(sed -n 's/^listening on //p' "$work/serve")
    [ -n "$addr" ] || { echo "$id did not start:" >&2; cat "$work/valgrind" >&2; exit 1; }
    case $group in
        net_http*) clients="net_http net_http1" ;;
        *) clients=$group ;; # the client takes an `_mt` group as its 1-thread one
    esac
    for client in $clients; do
        drive "$client" 1 >/dev/null
        callgrind_control -z "$server" >/dev/null 2>&1
        r1=$(drive "$client" "$N1")
        read -r i1 m1 <<<"$(dump)"
        callgrind_control -z "$server" >/dev/null 2>&1
        r2=$(drive "$client" "$N2")
        read -r i2 m2 <<<"$(dump)"
        case $client in
            net_http) workload="depth 16" ;;
            net_http1) workload="depth 1" ;;
            *) workload="echo" ;;
        esac
        awk -v id="$id" -v w="$workload" -v r1="$r1" -v r2="$r2" -v i1="$i1" -v i2="$i2" \
            -v m1="$m1" -v m2="$m2" 'BEGIN {
                if (r2 <= r1) { printf "%s\t%s\t%d\t%d\tn/a\tn/a\n", id, w, r1, r2; exit }
                printf "%s\t%s\t%d\t%d\t%.0f\t%.2f\n", id, w, r1, r2, (i2 - i1) / (r2 - r1), (m2 - m1) / (r2 - r1) }' |
            tee -a "$work/rows" >&2
    done
    kill "$server"
    wait "$server" 2>/dev/null || true
    server=
done

echo
echo "$(lscpu | sed -n 's/^Model name: *//p' | head -1); $(uname -r); $(rustc -V); $(valgrind --version); $(date -u '+%Y-%m-%d %H:%M UTC')"
awk -F'\t' -v n1="$N1" -v n2="$N2" '{
        split($1, p, "/")
        if (p[1] != group) {
            group = p[1]
            printf "\n%s, per request (requests served under valgrind in %s s / %s s)\n\n", group, n1, n2
            print "| id | workload | requests | instructions | mispredictions |"
            print "|---|---|---:|---:|---:|"
        }
        printf "| %s | %s | %d / %d | %s | %s |\n", p[2], $2, $3, $4, $5, $6
    }' "$work/rows"
