#!/usr/bin/env bash
# Instructions and simulated branch mispredictions per operation for every
# (group, id) of the criterion benches, counted by callgrind: numbers that
# do not depend on the machine's load, and barely on the machine.
#
# `tools/src/bin/op_count.rs` runs one id's iteration (the benches' own
# workload, from benches/workloads/) N times. Each id runs under
# `valgrind --tool=callgrind --branch-sim=yes` at the two N that
# `op_count --list` gives for its group; one iteration is
# (count(N2) - count(N1)) / (N2 - N1), so set-up and process start cancel
# out. The loop's own cost (group `baseline`, id `iter` or `iter_timed`
# after the id's kind) is subtracted, and the rest is divided by the
# group's operations per iteration. Mispredictions are callgrind's
# simulated ones (Bcm + Bim: conditional and indirect branches), not the
# CPU's.
#
#   tools/scripts/count_all.sh                       # every group and id
#   tools/scripts/count_all.sh switch spawn_join/cogen   # some groups or group/ids
#   JOBS=2 tools/scripts/count_all.sh                # two valgrinds at a time
#
# Prints one Markdown table per group; a run over every group (no
# arguments) also writes the numbers to $CARGO_TARGET_DIR/op_counts.json
# (default target/ at the repository's root), which bench_report reads.
# Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/../.."

JOBS=${JOBS:-1}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release -p cogen-tools --bin op_count >&2
BIN="$TARGET/release/op_count"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# bench group id kind ops op n1 n2, filtered by the arguments (the
# baseline is always counted).
"$BIN" --list >"$OUT/all"
if [ $# -eq 0 ]; then
    cp "$OUT/all" "$OUT/list"
else
    awk -v want="$*" 'BEGIN { n = split(want, w, " ") }
        $2 == "baseline" { print; next }
        { for (i = 1; i <= n; i++) if (w[i] == $2 || w[i] == $2 "/" $3) { print; next } }' \
        "$OUT/all" >"$OUT/list"
fi

# Runs one (group, id, N) under callgrind; its output file is cg.<group>.<id>.<N>.
count_one() {
    valgrind --tool=callgrind --branch-sim=yes \
        --callgrind-out-file="$OUT/cg.$1.$2.$3" "$BIN" "$1" "$2" "$3" \
        >/dev/null 2>"$OUT/log.$1.$2.$3" ||
        { echo "failed: $1 $2 $3 (see valgrind's log below)" >&2; cat "$OUT/log.$1.$2.$3" >&2; return 1; }
}
export -f count_one
export BIN OUT
awk '{ print $2, $3, $7; print $2, $3, $8 }' "$OUT/list" |
    xargs -P "$JOBS" -n 3 bash -c 'count_one "$@"' _

# "Ir mispredicts" of one output file, by the event names of its header.
totals() {
    awk '/^events:/ { for (i = 2; i <= NF; i++) ev[$i] = i - 1 }
        /^summary:/ { printf "%s %s", $(ev["Ir"] + 1), $(ev["Bcm"] + 1) + $(ev["Bim"] + 1) }' "$1"
}

# group id kind ops op ir_per_iter mispredicts_per_iter, one line per id.
while read -r bench group id kind ops op n1 n2; do
    read -r ir1 m1 <<<"$(totals "$OUT/cg.$group.$id.$n1")"
    read -r ir2 m2 <<<"$(totals "$OUT/cg.$group.$id.$n2")"
    awk -v b="$bench" -v g="$group" -v id="$id" -v k="$kind" -v ops="$ops" -v op="$op" \
        -v i1="$ir1" -v i2="$ir2" -v m1="$m1" -v m2="$m2" -v n1="$n1" -v n2="$n2" \
        'BEGIN { d = n2 - n1; printf "%s %s %s %s %s %s %.2f %.3f\n", b, g, id, k, ops, op, (i2 - i1) / d, (m2 - m1) / d }'
done <"$OUT/list" >"$OUT/per_iter"

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
meta=$(printf '"cpu": "%s", "kernel": "%s", "rustc": "%s", "valgrind": "%s", "date": "%s"' \
    "$cpu" "$(uname -r)" "$(rustc -V)" "$(valgrind --version)" "$(date -u +%Y-%m-%d)")

# Tables and JSON, the loop subtracted and divided by the operations.
awk -v meta="$meta" -v json="$OUT/json" '
    $2 == "baseline" { base[$3] = $7; base_m[$3] = $8; next }
    { line[++n] = $0 }
    END {
        printf "Loop alone per iteration (subtracted below): %.1f instructions (iter), %.1f (iter_timed)\n",
            base["iter"], base["iter_timed"]
        printf "{ %s,\n  \"loop_instructions\": { \"iter\": %.2f, \"iter_timed\": %.2f },\n  \"ids\": [\n",
            meta, base["iter"], base["iter_timed"] > json
        for (i = 1; i <= n; i++) {
            split(line[i], f, " ")
            ir = (f[7] - base[f[4]]) / f[5]
            mis = (f[8] - base_m[f[4]]) / f[5]
            if (mis < 0 && mis > -0.005) mis = 0 # no "-0.00"
            if (f[2] != group) {
                group = f[2]
                op = f[6]
                gsub("_", " ", op)
                printf "\n%s (`%s`), per %s\n\n| id | instructions | mispredictions |\n|---|---:|---:|\n", group, f[1], op
            }
            printf "| %s | %.1f | %.2f |\n", f[3], ir, mis
            printf "    { \"bench\": \"%s\", \"group\": \"%s\", \"id\": \"%s\", \"ops_per_iter\": %d, \"op\": \"%s\", \"instructions_per_op\": %.3f, \"mispredicts_per_op\": %.4f }%s\n",
                f[1], f[2], f[3], f[5], op, ir, mis, (i < n ? "," : "") > json
        }
        print "  ]\n}" > json
    }' "$OUT/per_iter"

# Only a full run replaces the JSON, so that bench_report never shows a
# subset as if it were all.
if [ $# -eq 0 ]; then
    mkdir -p "$TARGET"
    cp "$OUT/json" "$TARGET/op_counts.json"
    echo >&2
    echo "wrote $TARGET/op_counts.json" >&2
fi
