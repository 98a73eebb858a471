#!/usr/bin/env bash
# Runs the peers bench K times (default 3) and prints the peer goal rows
# of bench_report after each run: on a shared or noisy machine one run can be
# off by 2x for the cache-bound groups, so look at all of them.
#
#   CARGO_TARGET_DIR=target-bench tools/scripts/repeat_peers.sh 3
set -euo pipefail
cd "$(dirname "$0")/../.."
K=${1:-3}
cargo build --release -p cogen-tools --bin bench_report >&2
for k in $(seq 1 "$K"); do
    echo "== run $k ($(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg))"
    cargo bench --bench peers >/dev/null 2>&1
    cargo run --release -p cogen-tools --bin bench_report 2>/dev/null | grep -E '^\| `peer_|^\| peers \|'
done
