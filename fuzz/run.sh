#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Builds and runs the libFuzzer targets: fuzz/fuzz_<name>.c, each linked
# with the sources it exercises (the tables below; by default
# apps/crawl/<name>.c), with ASan and UBSan, for FUZZ_SECONDS (default 30)
# each, starting from fuzz/corpus/<name>/ when it exists and with the
# dictionary fuzz/<name>.dict when there is one. Targets of the
# runtime itself link a libknit that CMake builds once into the temporary
# directory with clang, the same sanitizers and libFuzzer's coverage
# instrumentation (-fsanitize=fuzzer-no-link); that build runs in the
# background while the other targets fuzz, and those targets run last.
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

# The sources of each target whose name does not say them; "@knit" stands
# for the runtime library (libknit.a, built by start_knit below).
declare -A SOURCES=(
    [robots]="apps/crawl/robots.c"
    [http_request]="apps/crawl/http_proto.c"
    [html]="apps/crawl/html.c apps/crawl/url.c"
    [chan_ops]="@knit"
)
# The pkg-config packages a target needs beyond libc.
declare -A PACKAGES=(
    [html]="libxml-2.0"
)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/knit-fuzz.XXXXXX")
keep_tmp=0
knit_pid=
cleanup() {
    # A libknit build still running writes into $tmp: let it end first
    # (an interrupt reaches it too, being in our process group).
    if [ -n "$knit_pid" ]; then
        wait "$knit_pid" 2>/dev/null || true
    fi
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

# Starts building libknit.a in the background, with clang and the
# fuzzers' sanitizers, into $tmp/knit (through CMake, so it has exactly the
# library's sources and definitions).
start_knit() {
    local dir="$tmp/knit" gen=()
    if command -v ninja >/dev/null 2>&1; then
        gen=(-G Ninja)
    fi
    echo "== libknit: building with $CLANG in the background"
    {
        cmake -S . -B "$dir" "${gen[@]}" -DCMAKE_C_COMPILER="$CLANG" \
            -DCMAKE_BUILD_TYPE= \
            -DCMAKE_C_FLAGS="-g -O1 -fsanitize=fuzzer-no-link" \
            -DKNIT_SANITIZE=address,undefined -DKNIT_WERROR=OFF \
            -DKNIT_BUILD_TESTS=OFF -DKNIT_BUILD_EXAMPLES=OFF \
            -DKNIT_BUILD_BENCH=OFF -DKNIT_BUILD_CRAWL=OFF &&
            cmake --build "$dir" --target knit_static -j "$(nproc)"
    } >"$tmp/knit.log" 2>&1 &
    knit_pid=$!
}

# Waits for that build; sets KNIT_FLAGS to what a target needs to use it.
KNIT_FLAGS=()
knit_ready() {
    local dir="$tmp/knit" status=0 extra
    if [ ${#KNIT_FLAGS[@]} -gt 0 ]; then
        return 0
    fi
    wait "$knit_pid" || status=$?
    knit_pid=
    if [ "$status" != 0 ] || [ ! -e "$dir/libknit.a" ]; then
        tail -n 30 "$tmp/knit.log" >&2
        return 1
    fi
    KNIT_FLAGS=(-I include -I "$dir/include" "$dir/libknit.a" -pthread)
    # libknit uses liburing when CMake found it, through pkg-config too.
    if grep -q '^URING_FOUND:INTERNAL=1' "$dir/CMakeCache.txt"; then
        read -r -a extra <<<"$(pkg-config --libs liburing)"
        KNIT_FLAGS+=("${extra[@]}")
    fi
}

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

# The targets that need libknit go last, their library building meanwhile.
first=()
last=()
for name in "${targets[@]}"; do
    if [[ " ${SOURCES[$name]:-} " == *" @knit "* ]]; then
        last+=("$name")
    else
        first+=("$name")
    fi
done
targets=("${first[@]}" "${last[@]}")
if [ ${#last[@]} -gt 0 ]; then
    start_knit
fi

failed=()
summary=()
for name in "${targets[@]}"; do
    src="fuzz/fuzz_$name.c"
    read -r -a deps <<<"${SOURCES[$name]:-apps/crawl/$name.c}"
    missing=0
    files=()
    flags=()
    for f in "$src" "${deps[@]}"; do
        if [ "$f" = @knit ]; then
            continue
        fi
        if [ ! -e "$f" ]; then
            echo "fuzz: $name: $f is missing" >&2
            missing=1
        fi
        files+=("$f")
    done
    if [ "$missing" = 1 ]; then
        failed+=("$name (missing sources)")
        continue
    fi
    if [[ " ${deps[*]} " == *" @knit "* ]]; then
        if ! knit_ready; then
            failed+=("$name (libknit build)")
            continue
        fi
        flags+=("${KNIT_FLAGS[@]}")
    fi
    if [ -n "${PACKAGES[$name]:-}" ]; then
        read -r -a pkgs <<<"${PACKAGES[$name]}"
        if ! pc=$(pkg-config --cflags --libs "${pkgs[@]}"); then
            failed+=("$name (pkg-config ${PACKAGES[$name]})")
            continue
        fi
        read -r -a pcflags <<<"$pc"
        flags+=("${pcflags[@]}")
    fi

    echo "== fuzz_$name: building"
    bin="$tmp/fuzz_$name"
    if ! "$CLANG" "${CFLAGS[@]}" "${files[@]}" "${flags[@]}" -o "$bin"; then
        failed+=("$name (build)")
        continue
    fi

    corpus="$tmp/corpus_$name"
    mkdir -p "$corpus" "$tmp/artifacts_$name"
    if [ -d "fuzz/corpus/$name" ]; then
        cp -R "fuzz/corpus/$name/." "$corpus/"
    fi

    # A dictionary of the input's tokens, when the target has one.
    dict=()
    if [ -f "fuzz/$name.dict" ]; then
        dict=(-dict="fuzz/$name.dict")
    fi

    echo "== fuzz_$name: running for ${FUZZ_SECONDS}s"
    log="$tmp/fuzz_$name.log"
    status=0
    "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -print_final_stats=1 \
        "${dict[@]}" -artifact_prefix="$tmp/artifacts_$name/" "$corpus" \
        >"$log" 2>&1 || status=$?
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
