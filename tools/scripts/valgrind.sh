#!/usr/bin/env bash
# Runs cogen's test binaries under valgrind's memcheck: invalid reads and
# writes, use of uninitialised or freed memory, mismatched frees, and leaks,
# in cogen and in everything it calls (corosensei, std, the vendored Lua).
#
# Coroutine stacks: corosensei registers every stack it maps with valgrind
# (VALGRIND_STACK_REGISTER client requests in `DefaultStack::new`, compiled
# in unconditionally, no feature needed), so memcheck understands the stack
# switches. The build uses the default features: the `sanitizer` feature
# would call AddressSanitizer's runtime, which is not there.
#
#   tools/scripts/valgrind.sh                       # the default set below
#   tools/scripts/valgrind.sh close_drop event_loop # some test binaries ("lib": the unit tests)
#
# Skipped, because they measure time, count the process's memory mappings,
# or run other programs (valgrind slows everything down 20-50 times and maps
# memory of its own):
#   event_loop_watchdog (whole file), soak (whole file), examples (whole file;
#   it builds and runs the examples with cargo), and the tests in SKIP below.
# Every property test runs PROPTEST_CASES cases (default here: 100; proptest
# lets the variable override the counts written in the tests).
#
# Exit status: 0 if every binary passed with no memcheck error, 1 otherwise.
# Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v valgrind >/dev/null || {
    echo "valgrind.sh: valgrind is not installed" >&2
    exit 2
}

DEFAULT=(lib coroutine close_drop status generator pipeline streaming sieve stackless
    lua_suite model send_sync stack event_loop event_loop_channel event_loop_stackless
    event_loop_io event_loop_proptest fuzz_event_loop fuzz_coroutine moves event_loop_faults
    event_loop_timeout nested_waits loop_pipelines observe pipeline_scope pipeline_result
    event_loop_select event_loop_timed_waits event_loop_cancel runtime sync_channel
    chain_adversarial event_loop_recycle)
BINARIES=("$@")
if [ ${#BINARIES[@]} -eq 0 ]; then
    BINARIES=("${DEFAULT[@]}")
fi

# Tests that depend on timing or on the number of mappings, per binary.
declare -A SKIP=(
    # Deadlines of a few milliseconds compared with the order of wake-ups.
    [event_loop]="sleep_orders_tasks_by_deadline
        sleep_until_a_past_deadline_returns_at_once_and_others_run_while_sleeping
        ten_thousand_concurrent_stackful_tasks_with_default_stacks"
    # Maps stacks until the process's mapping limit.
    [stack]="running_out_of_mappings_is_a_clear_error"
)

export PROPTEST_CASES=${PROPTEST_CASES:-100}
# A case of the fuzzer may take far longer than its native 10 s under valgrind.
export COGEN_FUZZ_TIMEOUT_SECS=${COGEN_FUZZ_TIMEOUT_SECS:-300}

VALGRIND=(valgrind --tool=memcheck --error-exitcode=101 --quiet
    --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite,indirect
    --fair-sched=yes --num-callers=40
    --suppressions=tools/scripts/valgrind.supp)

echo "building the tests (default features)..."
json=$(cargo test --no-run --message-format=json 2>/dev/null)

# The executable of the test target (or, for "lib", of the unit tests) `name`.
executable() {
    local kind=test name=$1
    if [ "$name" = lib ]; then
        kind=lib
        name=cogen
    fi
    grep -F "\"kind\":[\"$kind\"]" <<<"$json" |
        grep -F "\"name\":\"$name\"" |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | head -n 1
}

failed=()
for name in "${BINARIES[@]}"; do
    exe=$(executable "$name")
    if [ -z "$exe" ]; then
        echo "valgrind.sh: no test binary named '$name'" >&2
        failed+=("$name")
        continue
    fi
    args=(--test-threads=1)
    if [ -n "${SKIP[$name]:-}" ]; then
        args+=(--exact)
        for t in ${SKIP[$name]}; do
            args+=(--skip "$t")
        done
    fi
    printf '\n=== %s\n' "$name"
    start=$SECONDS
    if "${VALGRIND[@]}" "$exe" "${args[@]}"; then
        echo "--- $name: clean ($((SECONDS - start)) s)"
    else
        echo "--- $name: FAILED with status $? ($((SECONDS - start)) s)"
        failed+=("$name")
    fi
done

echo
if [ ${#failed[@]} -eq 0 ]; then
    echo "valgrind memcheck: all clean (${BINARIES[*]})"
else
    echo "valgrind memcheck: failures in ${failed[*]}"
    exit 1
fi
