#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Where an echo server's time goes: system calls per request and a perf
# profile, for knit (epoll and io_uring) beside the kit's raw floor and
# libuv (bench/RESULTS.md, "TCP echo"). Needs perf and a built kit (the
# one scripts/bench.sh built: PEER_KIT, default /tmp/h-kit).
#
#   bench/echo-profile.sh [CONNS]       (default 100)
#
# For each server: the kit's client runs for 8 s; 2 s in, `perf stat`
# counts the server's system calls for 3 s (tracing slows it, so only
# the ratios per request mean something), then `perf record -g` samples
# it for 2 s into /tmp/echo-profile-NAME.data. Prints calls per request
# and the share of the kernel, libc and the server's own code.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kit=${PEER_KIT:-/tmp/h-kit}
conns=${1:-100}
knit=${KNIT_BUILD_DIR:-$root/build/release}/bench/knit-bench
[ -x "$kit/echo_client" ] || { echo "no $kit/echo_client: run scripts/bench.sh first" >&2; exit 1; }
[ -x "$knit" ] || { echo "no $knit: build the release preset first" >&2; exit 1; }

calls='read write recvfrom sendto epoll_wait epoll_ctl io_uring_enter'
events=$(for c in $calls; do printf 'syscalls:sys_enter_%s,' "$c"; done)
port=40200

profile() { # NAME IO BINARY
    local name=$1 io=$2 bin=$3 sp cp
    port=$((port + 1))
    KNIT_IO=$io setsid taskset -c 0 "$bin" echo_server --port "$port" 2>/dev/null &
    sp=$!
    sleep 0.5
    taskset -c 1 "$kit/echo_client" -H 127.0.0.1 -p "$port" -c "$conns" -d 8 \
        -w 1 -s 64 -P "$sp" -n "$name" >/dev/null 2>&1 &
    cp=$!
    sleep 2
    perf stat -x, -e "${events%,}" -p "$sp" -- sleep 3 2>"/tmp/echo-profile-$name.stat"
    perf record -q -F 2999 -g -p "$sp" -o "/tmp/echo-profile-$name.data" -- sleep 2 \
        >/dev/null 2>&1
    wait "$cp" || true
    kill -TERM -- "-$sp" 2>/dev/null || true
    wait "$sp" 2>/dev/null || true
    # Requests: one send or write per request for every server here.
    awk -F, -v name="$name" '
        { n[$3] = $1 }
        END {
            req = n["syscalls:sys_enter_sendto"] + n["syscalls:sys_enter_write"]
            printf "%-11s per request:", name
            for (k in n) if (n[k] > 0) {
                s = k; sub("syscalls:sys_enter_", "", s)
                printf " %s %.2f", s, n[k] / req
            }
            printf "\n"
        }' "/tmp/echo-profile-$name.stat"
    printf '%-11s cycles:' "$name"
    perf report -i "/tmp/echo-profile-$name.data" --no-children --sort dso \
        --stdio 2>/dev/null | awk '/^ +[0-9]/ { printf " %s %s", $2, $1 }'
    printf '\n'
}

profile raw epoll "$kit/bin/raw-bench"
profile libuv epoll "$kit/bin/uv-bench"
profile knit epoll "$knit"
profile knit-uring uring "$knit"
