#!/usr/bin/env bash
# Which functions of the benches' workloads hold a coroutine's suspend:
# corosensei's switch out of a coroutine (`mov rsp, [rdx]` after pushing
# the return address), found in the disassembly of `op_count`.
#
# A suspend is a `ret` into the resumer's stack that the CPU predicts only
# when the frame that suspends is the one the coroutine went on in after
# its last resume. So a wait's switch should sit in the task's or the
# body's own code (a `coroutine_func` of a workload closure), not in a
# function of cogen's: each of cogen's frames between the caller and the
# switch costs two mispredicted returns per wait (see "Waits that switch
# in their caller's frame" in docs/BENCHMARKS.md). cogen's functions listed
# here are the waits that keep their switch out of line on purpose
# (`JoinHandle::join_waiting`) or a regression.
#
#   tools/scripts/switch_sites.sh           # every function, with a count
#   tools/scripts/switch_sites.sh cogen     # only cogen's own functions
#                                           # (`cogen::...`, `<cogen::...>::...`)
set -euo pipefail
cd "$(dirname "$0")/../.."

TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release -p cogen-tools --bin op_count >&2
objdump -d --no-show-raw-insn -C "$TARGET/release/op_count" |
    awk '/^[0-9a-f]+ </ { name = substr($0, index($0, "<") + 1); sub(/>:$/, "", name) }
         /\tmov +\(%rdx\),%rsp/ { count[name]++ }
         END { for (n in count) printf "%d\t%s\n", count[n], n }' |
    awk -F'\t' -v only="${1:-}" 'only == "" || $2 ~ ("^<?" only "::")' |
    sort -t$'\t' -k2
