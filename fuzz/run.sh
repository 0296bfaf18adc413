#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Builds and runs the libFuzzer targets: fuzz/fuzz_<name>.c, each linked
# with the apps/crawl source it exercises (the table below; by default
# apps/crawl/<name>.c), with ASan and UBSan, for FUZZ_SECONDS (default 30)
# each, starting from fuzz/corpus/<name>/ when it exists.
#
#   fuzz/run.sh                  every target
#   fuzz/run.sh http_request     only the named targets
#   FUZZ_SECONDS=600 fuzz/run.sh
#
# The corpus is copied to a temporary directory, so the repository stays
# clean; new inputs the fuzzer finds are dropped with it. A crashing input
# is kept: its path is printed and its directory is not removed.
#
# Exit status: 0 when every target ran clean; 1 when one crashed (or
# leaked, hung, or did not build); 77 (CTest's "skipped") when clang or its
# libFuzzer runtime is unavailable.
set -euo pipefail

cd "$(dirname "$0")/.."

CLANG=${CLANG:-clang}
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
# shellcheck disable=SC2054 # the commas belong to -fsanitize=
CFLAGS=(-std=c11 -D_GNU_SOURCE -g -O1
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
    -I apps/crawl)

# The apps/crawl sources of each target whose name does not say them.
declare -A SOURCES=(
    [robots]="apps/crawl/robots.c"
    [http_request]="apps/crawl/http_proto.c"
)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/knit-fuzz.XXXXXX")
keep_tmp=0
cleanup() {
    if [ "$keep_tmp" = 0 ]; then
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT

# libFuzzer comes with clang's compiler-rt; without it there is nothing
# to run, which is a skip, not a failure.
if ! command -v "$CLANG" >/dev/null 2>&1; then
    echo "fuzz: $CLANG not found; skipping" >&2
    exit 77
fi
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
    '{ (void)d; (void)n; return 0; }' >"$tmp/probe.c"
if ! "$CLANG" -fsanitize=fuzzer,address,undefined "$tmp/probe.c" \
    -o "$tmp/probe" >/dev/null 2>&1; then
    echo "fuzz: $CLANG cannot build libFuzzer targets; skipping" >&2
    exit 77
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in fuzz/fuzz_*.c; do
        [ -e "$f" ] || continue
        name=${f#fuzz/fuzz_}
        targets+=("${name%.c}")
    done
fi
if [ ${#targets[@]} = 0 ]; then
    echo "fuzz: no targets in fuzz/" >&2
    exit 1
fi

failed=()
summary=()
for name in "${targets[@]}"; do
    src="fuzz/fuzz_$name.c"
    read -r -a deps <<<"${SOURCES[$name]:-apps/crawl/$name.c}"
    missing=0
    for f in "$src" "${deps[@]}"; do
        if [ ! -e "$f" ]; then
            echo "fuzz: $name: $f is missing" >&2
            missing=1
        fi
    done
    if [ "$missing" = 1 ]; then
        failed+=("$name (missing sources)")
        continue
    fi

    echo "== fuzz_$name: building"
    bin="$tmp/fuzz_$name"
    if ! "$CLANG" "${CFLAGS[@]}" "$src" "${deps[@]}" -o "$bin"; then
        failed+=("$name (build)")
        continue
    fi

    corpus="$tmp/corpus_$name"
    mkdir -p "$corpus" "$tmp/artifacts_$name"
    if [ -d "fuzz/corpus/$name" ]; then
        cp -R "fuzz/corpus/$name/." "$corpus/"
    fi

    echo "== fuzz_$name: running for ${FUZZ_SECONDS}s"
    log="$tmp/fuzz_$name.log"
    status=0
    "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$tmp/artifacts_$name/" "$corpus" >"$log" 2>&1 ||
        status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
    if [ "$status" != 0 ]; then
        keep_tmp=1
        tail -n 40 "$log" >&2
        echo "fuzz: $name FAILED (exit $status); log $log," \
            "inputs in $tmp/artifacts_$name/" >&2
        failed+=("$name")
        summary+=("fuzz_$name: FAILED after ${runs:-?} runs")
    else
        line="fuzz_$name: ${runs:-?} runs in ${FUZZ_SECONDS}s"
        summary+=("$line, ${cov:-cov: ?}")
    fi
done

echo "== summary"
for line in "${summary[@]}"; do
    echo "$line"
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: failed: ${failed[*]}" >&2
    exit 1
fi
