#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Runs knit-bench beside the peers (raw C, libuv, tokio, Go) of the shared
# benchmark kit, in one session, so that every number of the final table
# comes from the same machine state. Builds knit-bench with the release
# preset first, then hands over to the kit's run.sh with knit plugged in
# (PROJECT_BENCH / PROJECT_PEER, see the kit's README "How knit plugs in").
#
# Every argument and every environment knob of the kit's run.sh passes
# through, for example:
#
#   bench/run-peers.sh                                    everything
#   WORKLOADS="yield_pingpong timers_sleep" bench/run-peers.sh
#   PEERS="tokio go" QUICK=1 bench/run-peers.sh
#   bench/run-peers.sh --table ../shared/bench-peers/results-latest.txt
#
# knit runs on the epoll backend (peer "knit"); when tcp_echo is among the
# workloads, the echo server runs once more on io_uring (peer
# "knit-uring") and the table is printed again with both columns.
#
# knit-only workloads (skew_spawn_mt, see bench/README.md) are not in the
# kit: when WORKLOADS names one, knit-bench runs it after the kit and its
# line is added to the results file and the table (no peer column).
#
# The kit lives beside the repository (../shared/bench-peers); PEER_KIT
# points elsewhere. The kit writes its build outputs (bin/, echo_client,
# tokio/target), run-stderr.log and results-latest.txt into its own
# directory, so a read-only kit (the shared copy is) is first copied to
# <build>/peer-kit and run from there; the copy is refreshed on every run
# and keeps its build outputs. Runs from any directory. The kit needs
# root only to install missing Debian packages (OUT=... puts the results
# elsewhere). KNIT_BUILD_DIR picks the build directory of knit-bench
# (default build/release, configured with the release preset).
# scripts/bench.sh wraps all of this and adds the Markdown table and chart.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kit=${PEER_KIT:-$root/../shared/bench-peers}
build=${KNIT_BUILD_DIR:-$root/build/release}
# Workloads knit-bench has and the kit does not.
knit_only="skew_spawn_mt"

if [ ! -x "$kit/run.sh" ]; then
    echo "run-peers: no peer kit at $kit (set PEER_KIT)" >&2
    exit 1
fi
kit=$(cd "$kit" && pwd)

# --table only prints a results file: nothing to build.
if [ "${1:-}" != "--table" ]; then
    echo "[run-peers] building knit-bench (release preset, $build)" >&2
    mkdir -p "$build"
    if ! (cd "$root" && cmake --preset release -B "$build" &&
        cmake --build "$build" --target knit-bench) >"$build/bench-build.log" 2>&1; then
        tail -n 40 "$build/bench-build.log" >&2
        echo "run-peers: building knit-bench failed ($build/bench-build.log)" >&2
        exit 1
    fi
    # The kit writes into its own directory: run a refreshed copy of a
    # read-only one. Read-only by its mode bits, not by [ -w ], which is
    # always true for root (the shared kit has no write bit, and root
    # must not fill it with build outputs either).
    if [ -z "$(find "$kit" -maxdepth 0 -perm -u=w)" ]; then
        copy=$build/peer-kit
        echo "[run-peers] $kit is read-only: running a copy in $copy" >&2
        mkdir -p "$copy"
        chmod -R u+w "$copy"
        cp -R "$kit/." "$copy/"
        chmod -R u+w "$copy"
        kit=$copy
    fi
fi

bench=$build/bench/knit-bench
if [ "${1:-}" != "--table" ] && [ ! -x "$bench" ]; then
    echo "run-peers: $bench was not built" >&2
    exit 1
fi

if [ "${1:-}" = "--table" ]; then
    exec "$kit/run.sh" "$@"
fi

# knit's column runs on epoll; the echo server then runs once more on
# io_uring as the peer "knit-uring", and the table shows both.
out=${OUT:-$kit/results-latest.txt}
KNIT_IO=epoll PROJECT_BENCH=$bench PROJECT_PEER=knit OUT=$out \
    "$kit/run.sh" "$@"
retable=0
if [ -z "${WORKLOADS:-}" ] || [[ " $WORKLOADS " == *" tcp_echo "* ]]; then
    echo "[run-peers] workload tcp_echo again, knit on io_uring (knit-uring)" >&2
    extra=$(mktemp)
    log=$(mktemp)
    trap 'rm -f "$extra" "$log"' EXIT
    # run.sh truncates its run-stderr.log: keep the main run's log.
    cp "$kit/run-stderr.log" "$log"
    # PEERS=" " (not empty, which means "all"): knit-uring alone. Installed
    # and built by the run above.
    KNIT_IO=uring PEERS=" " WORKLOADS=tcp_echo PROJECT_BENCH=$bench \
        PROJECT_PEER=knit-uring OUT=$extra SKIP_INSTALL=1 SKIP_BUILD=1 \
        "$kit/run.sh" >/dev/null
    cat "$kit/run-stderr.log" >>"$log"
    cp "$log" "$kit/run-stderr.log"
    # The result lines, the load generator's summaries and any failure.
    grep -E '^(peer=|# echo_client|# FAILED)' "$extra" >>"$out" || true
    retable=1
fi
for w in $knit_only; do
    if [[ " ${WORKLOADS:-} " == *" $w "* ]]; then
        echo "[run-peers] workload $w (knit only)" >&2
        reps=()
        [ -n "${REPS:-}" ] && reps=(--reps "$REPS")
        if ! KNIT_IO=epoll "$bench" "$w" "${reps[@]}" | tee -a "$out"; then
            echo "# FAILED peer=knit workload=$w" | tee -a "$out"
        fi
        retable=1
    fi
done
if [ "$retable" = 1 ]; then
    "$kit/run.sh" --table "$out"
fi
# With OUT elsewhere, the kit's stderr log goes beside it (the copy of a
# read-only kit is refreshed by the next run).
if [ -n "${OUT:-}" ]; then
    cp "$kit/run-stderr.log" "${out%.txt}-stderr.log"
fi
