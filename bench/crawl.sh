#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# knit-crawl on the demo site, the figures of issue 8: 8 hosts, 5,000
# pages, no artificial delays, concurrency 64, no rate limit. Prints
# pages per second and crawler CPU seconds per 1,000 pages in the
# `peer=knit workload=NAME value=X unit=U` form of the other benchmarks.
#
#   bench/crawl.sh [KNIT_CRAWL] [RUNS]    (default: the release build, 3)
#   bench/crawl.sh --redis [KNIT_CRAWL] [RUNS]
#
# Retry-After: 1 answers of the demo site (3% + 2% of the pages fail once
# that way) put a floor of about one second under every run.
#
# --redis: the distributed mode, 1, 2 and 3 processes sharing one crawl
# through a redis-server started here (127.0.0.1, port PORT + 100, no
# persistence), each process with --concurrency 64 --per-host 8; a fresh
# demo server for every run (it keeps per-page attempt counters, so every
# run meets the same transient failures). pages/s is all the processes'
# rows over the wall time from the first start to the last exit.
set -euo pipefail
cd "$(dirname "$0")/.."
REDIS_MODE=
if [ "${1:-}" = --redis ]; then
    REDIS_MODE=1
    shift
fi
CRAWL=${1:-build/release/apps/crawl/knit-crawl}
RUNS=${2:-3}
PORT=${PORT:-24000}
WORK=$(mktemp -d)
if [ -n "$REDIS_MODE" ]; then
    RPORT=$((PORT + 100))
    redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
        >"$WORK/redis.log" 2>&1 &
    REDIS=$!
    SERVER=
    trap 'kill $REDIS $SERVER 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
    for _ in $(seq 100); do
        redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG && break
        sleep 0.05
    done
    for n in 1 2 3; do
        for run in $(seq "$RUNS"); do
            "$CRAWL" serve-demo --port "$PORT" --hosts 8 --pages 5000 \
                --slow-ms 0 >"$WORK/server.log" 2>&1 &
            SERVER=$!
            for _ in $(seq 100); do
                grep -q "Ctrl-C to stop" "$WORK/server.log" && break
                sleep 0.05
            done
            rm -f "$WORK"/p*.db*
            id=bench-$n-$run-$$
            t0=$(date +%s.%N)
            pids=()
            for p in $(seq "$n"); do
                "$CRAWL" crawl "http://127.0.0.1:$PORT/" --db "$WORK/p$p.db" \
                    --concurrency 64 --per-host 8 --rate 0 --quiet \
                    --redis "redis://127.0.0.1:$RPORT" --crawl-id "$id" &
                pids+=($!)
            done
            for pid in "${pids[@]}"; do wait "$pid"; done
            t1=$(date +%s.%N)
            kill "$SERVER"
            wait "$SERVER" 2>/dev/null || true
            SERVER=
            pages=0
            for p in $(seq "$n"); do
                pages=$((pages + $(sqlite3 "$WORK/p$p.db" "SELECT count(*) FROM pages")))
            done
            awk -v p="$pages" -v a="$t0" -v b="$t1" -v n="$n" -v r="$run" 'BEGIN {
                printf "peer=knit workload=crawl_redis_8x5000_c64 processes=%d run=%d pages=%d value=%.0f unit=pages/s\n", n, r, p, p / (b - a)
            }'
        done
    done
    exit 0
fi
"$CRAWL" serve-demo --port "$PORT" --hosts 8 --pages 5000 --slow-ms 0 \
    >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do
    grep -q "Ctrl-C to stop" "$WORK/server.log" && break
    sleep 0.05
done
for run in $(seq "$RUNS"); do
    rm -f "$WORK"/c.db*
    /usr/bin/time -f "%e %U %S" -o "$WORK/time" "$CRAWL" crawl \
        "http://127.0.0.1:$PORT/" --db "$WORK/c.db" --concurrency 64 \
        --per-host 8 --rate 0 --quiet
    read -r wall user sys <"$WORK/time"
    pages=$(sqlite3 "$WORK/c.db" "SELECT count(*) FROM pages")
    awk -v p="$pages" -v w="$wall" -v u="$user" -v s="$sys" -v r="$run" 'BEGIN {
        printf "peer=knit workload=crawl_8x5000_c64 run=%d pages=%d value=%.0f unit=pages/s\n", r, p, p / w
        printf "peer=knit workload=crawl_8x5000_c64 run=%d value=%.3f unit=cpu_s_per_1000_pages (user %.2f sys %.2f)\n", r, (u + s) * 1000 / p, u, s
    }'
done
