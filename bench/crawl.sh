#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# knit-crawl on the demo site, the figures of issue 8: 8 hosts, 5,000
# pages, no artificial delays, concurrency 64, no rate limit. Prints
# pages per second and crawler CPU seconds per 1,000 pages in the
# `peer=knit workload=NAME value=X unit=U` form of the other benchmarks.
#
#   bench/crawl.sh [KNIT_CRAWL] [RUNS]    (default: the release build, 3)
#
# Retry-After: 1 answers of the demo site (3% + 2% of the pages fail once
# that way) put a floor of about one second under every run.
set -euo pipefail
cd "$(dirname "$0")/.."
CRAWL=${1:-build/release/apps/crawl/knit-crawl}
RUNS=${2:-3}
PORT=${PORT:-24000}
WORK=$(mktemp -d)
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
