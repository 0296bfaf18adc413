#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# One command for the benchmark suite (issue 7): installs what is missing,
# builds knit-bench in release mode and runs the shared peer kit
# (../shared/bench-peers: raw C floor, libuv, tokio, Go) with knit in the
# same session through bench/run-peers.sh (every workload; the echo
# server once per I/O backend: peers "knit" on epoll and "knit-uring"),
# then writes the Markdown table and the chart:
#
#   bench/results/latest.txt     the raw result lines (plus the load
#                                average before and after, and the commit)
#   bench/results/latest.md      the table (bench/table.sh)
#   bench/results/latest-stderr.log   the stderr of every benchmark process
#   bench/results.svg            the chart (bench/chart.sh)
#
# Usage:
#   scripts/bench.sh                   the full run (15-25 min on 2 cores)
#   QUICK=1 scripts/bench.sh           a smoke run: counts / 10
#   scripts/bench.sh --report FILE     only the table (stdout) and the chart
#                                      of an earlier run's raw output
#
# The kit's knobs pass through (WORKLOADS, PEERS, REPS, ECHO_CONNS, ...,
# see its README), and bench/run-peers.sh's (KNIT_BUILD_DIR: default
# build/release; PEER_KIT). Installing needs root (apt-get): the project's
# packages via scripts/setup.sh, gnuplot-nox here, and the peers' (Go,
# libuv, Debian's tokio crates) by the kit's own run.sh; each is a no-op
# when everything is there. Nothing is downloaded but Debian packages:
# tokio is built offline from Debian's crates, Go with GOPROXY=off.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
results=$root/bench/results
chart=$root/bench/results.svg

log() { echo "[bench] $*" >&2; }

# Installs Debian packages that are not installed yet (nothing otherwise).
need_debs() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
            grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        log "not root: run apt-get install -y ${missing[*]} as root"
        return 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2 || {
        apt-get update >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2
    }
}

report() { # $1 = raw output: the table on stdout, the chart
    "$root/bench/table.sh" "$1"
    "$root/bench/chart.sh" "$1" "$chart"
}

need_debs gnuplot-nox

if [ "${1:-}" = "--report" ]; then
    report "${2:?usage: scripts/bench.sh --report RAW_OUTPUT}"
    exit 0
fi

"$root/scripts/setup.sh" >&2

mkdir -p "$results"
raw=$results/latest.txt
build=${KNIT_BUILD_DIR:-$root/build/release}
# The commit knit-bench is built from, and the tracked files that differ
# from it at that moment (read-only git; run-peers.sh builds next).
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
changed=$(git -C "$root" diff --name-only HEAD 2>/dev/null | paste -sd, - || true)
load0=$(uptime)
log "load before: $load0"
OUT=$raw KNIT_BUILD_DIR=$build "$root/bench/run-peers.sh"
load1=$(uptime)
log "load after: $load1"
{
    echo "# bench.sh: built from commit $commit${changed:+, uncommitted changes in $changed}"
    echo "# bench.sh: load before:$load0"
    echo "# bench.sh: load after:$load1"
} >>"$raw"
report "$raw" | tee "$results/latest.md"
log "table: $results/latest.md, chart: $chart"
