#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# knit-crawl end to end, against `knit-crawl serve-demo` on 127.0.0.1:
#
#   e2e.sh KNIT_CRAWL CASE
#
# Each case serves its own seed on its own ports and checks the database
# with sqlite3:
#   list      the HTML pages stored are exactly `serve-demo --list`; no
#             robots.txt-disallowed URL was fetched; the counters add up;
#             --jsonl exports one line per page
#   sigint    SIGINT mid-crawl exits 130 with the URL left queued; resume
#             finishes with exactly the list
#   kill9     kill -9 at random moments, three times, then resume to the
#             end: exactly the list, each page stored once (a page stored
#             twice would fail the crawl: pages.url is a primary key)
#   errors    bad command lines exit 2 with a message; an existing crawl
#             is not overwritten; an unreachable host is recorded as a
#             permanent failure; resume of a missing crawl fails cleanly
#   limits    --max-pages, --max-depth and --exclude hold; --rate R keeps
#             one host at no more than R requests per second
#   timeouts  pages slower than --timeout are retried, then recorded as
#             failed with the reason; the crawl still finishes
set -euo pipefail

CRAWL=$1
CASE=$2
WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "FAIL ($CASE): $*" >&2
    exit 1
}

# serve SEED HOSTS PAGES: start serve-demo on a free block of ports below
# the ephemeral range (where the crawlers' own connections could hold a
# port), picked from the case and this shell's PID so that parallel runs
# rarely meet, and moving on when the block is taken; sets PORT and
# SERVER_PID.
serve() {
    local seed=$1 hosts=$2 pages=$3 slow=${4:-50} base
    base=$(( ($(cksum <<<"$CASE" | cut -d' ' -f1) + $$ * 7) % 300 ))
    for try in $(seq 0 15); do
        PORT=$((10000 + ((base + try * 37) % 300) * 64))
        "$CRAWL" serve-demo --port "$PORT" --seed "$seed" --hosts "$hosts" \
            --pages "$pages" --slow-ms "$slow" >"$WORK/server.log" 2>&1 &
        SERVER_PID=$!
        for _ in $(seq 200); do
            grep -q "Ctrl-C to stop" "$WORK/server.log" && return 0
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.05
        done
        cat "$WORK/server.log" >&2
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    done
    fail "serve-demo did not start"
}

# expect SEED HOSTS PAGES: the list a correct crawl stores.
expect() {
    "$CRAWL" serve-demo --list --port "$PORT" --seed "$1" --hosts "$2" \
        --pages "$3" >"$WORK/want.txt"
    [ -s "$WORK/want.txt" ] || fail "empty list"
}

q() { sqlite3 "$WORK/c.db" "$1"; }

# stored_html: the HTML pages in the database, sorted as the list is.
check_list() {
    q "SELECT url FROM pages WHERE status = 200 AND content_type LIKE
       'text/html%' ORDER BY url" >"$WORK/got.txt"
    if ! cmp -s "$WORK/want.txt" "$WORK/got.txt"; then
        diff "$WORK/want.txt" "$WORK/got.txt" | head -20 >&2
        fail "stored HTML pages differ from the list ($(wc -l <"$WORK/got.txt") vs $(wc -l <"$WORK/want.txt"))"
    fi
    [ "$(q 'SELECT count(*) FROM frontier WHERE state = 0')" = 0 ] ||
        fail "URLs left queued after a finished crawl"
    echo "ok: $(wc -l <"$WORK/want.txt") HTML pages, exactly the list"
}

crawl() {
    "$CRAWL" crawl "http://127.0.0.1:$PORT/" --db "$WORK/c.db" --quiet \
        --timeout 5000 "$@"
}

# In the background, as the process itself (so $! is knit-crawl's PID,
# not a subshell's): "bg crawl ARGS" or "bg resume ARGS".
bg() {
    if [ "$1" = crawl ]; then
        shift
        (exec "$CRAWL" crawl "http://127.0.0.1:$PORT/" --db "$WORK/c.db" \
            --quiet --timeout 5000 "$@") &
    else
        shift
        (exec "$CRAWL" resume --db "$WORK/c.db" --quiet "$@") &
    fi
    BG_PID=$!
}

case $CASE in
list)
    serve 11 3 150
    expect 11 3 150
    crawl --concurrency 32 --per-host 8 --rate 0 --jsonl "$WORK/out.jsonl"
    check_list
    [ "$(q "SELECT count(*) FROM pages WHERE url LIKE '%/private/%'")" = 0 ] ||
        fail "fetched a /private/ page robots.txt forbids"
    [ "$(q 'SELECT count(*) FROM frontier WHERE state = 2')" -gt 0 ] ||
        fail "no URL was skipped for robots.txt"
    [ "$(q "SELECT count(*) FROM pages WHERE redirect_to IS NOT NULL")" -gt 0 ] ||
        fail "no redirect recorded"
    [ "$(q "SELECT count(*) FROM pages WHERE error LIKE '%gave up%'")" -gt 0 ] ||
        fail "no permanent failure recorded"
    [ "$(q "SELECT count(*) FROM pages WHERE attempts > 1 AND status = 200")" -gt 0 ] ||
        fail "no page succeeded on a retry"
    [ "$(wc -l <"$WORK/out.jsonl")" = "$(q 'SELECT count(*) FROM pages')" ] ||
        fail "--jsonl lines != pages"
    head -1 "$WORK/out.jsonl" | grep -q '^{"url":"http://127.0.0.1' ||
        fail "bad JSON line: $(head -1 "$WORK/out.jsonl")"
    ;;
sigint)
    serve 12 2 200
    expect 12 2 200
    rc=0
    bg crawl --rate 40 --per-host 2 --grace 3000
    pid=$BG_PID
    sleep 1
    kill -INT "$pid"
    wait "$pid" || rc=$?
    [ "$rc" = 130 ] || fail "exit $rc after SIGINT, want 130"
    left=$(q 'SELECT count(*) FROM frontier WHERE state = 0')
    [ "$left" -gt 0 ] || fail "nothing left queued after SIGINT"
    echo "interrupted with $left URLs queued"
    "$CRAWL" resume --db "$WORK/c.db" --quiet --rate 0
    check_list
    ;;
kill9)
    serve 13 4 300
    expect 13 4 300
    # A kill may come before the crawl recorded its start (a slow build
    # on a loaded machine): the database then holds no crawl, and the
    # user's next step, like this test's, is to start it again.
    has_crawl() {
        [ "$(q 'SELECT count(*) FROM frontier' 2>/dev/null || echo 0)" -gt 0 ]
    }
    for round in 1 2 3; do
        if has_crawl; then
            bg resume --rate 60
        else
            bg crawl --rate 60 --concurrency 8
        fi
        pid=$BG_PID
        ms=$((300 + RANDOM % 1200))
        sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
        kill -9 "$pid" 2>/dev/null || true # it may have finished already
        wait "$pid" 2>/dev/null || true
        echo "round $round: killed with" \
            "$(q 'SELECT count(*) FROM pages' 2>/dev/null || echo 0) pages stored"
    done
    if has_crawl; then
        "$CRAWL" resume --db "$WORK/c.db" --quiet --rate 0
    else
        "$CRAWL" crawl "http://127.0.0.1:$PORT/" --db "$WORK/c.db" --quiet \
            --timeout 5000 --rate 0
    fi
    check_list
    ;;
errors)
    rc=0; "$CRAWL" crawl --db "$WORK/x.db" 2>"$WORK/err" || rc=$?
    [ "$rc" = 2 ] && grep -q "start URL" "$WORK/err" || fail "no URL: exit $rc"
    rc=0; "$CRAWL" crawl "not a url" --db "$WORK/x.db" 2>"$WORK/err" || rc=$?
    [ "$rc" = 1 ] && grep -q "not an http(s) URL" "$WORK/err" ||
        fail "bad URL: exit $rc: $(cat "$WORK/err")"
    rc=0; "$CRAWL" crawl http://x/ --concurrency 0 2>"$WORK/err" || rc=$?
    [ "$rc" = 2 ] && grep -q -- "--concurrency" "$WORK/err" || fail "bad number: $rc"
    rc=0; "$CRAWL" frobnicate 2>"$WORK/err" || rc=$?
    [ "$rc" = 2 ] && grep -q "unknown command" "$WORK/err" || fail "bad command: $rc"
    rc=0; "$CRAWL" crawl http://x/ --include '(' --db "$WORK/y.db" 2>"$WORK/err" || rc=$?
    [ "$rc" = 1 ] && grep -q "bad --include" "$WORK/err" || fail "bad regex: $rc"
    rc=0; "$CRAWL" resume --db "$WORK/none.db" 2>"$WORK/err" || rc=$?
    [ "$rc" = 1 ] && grep -q "no crawl to resume" "$WORK/err" || fail "resume nothing: $rc"
    "$CRAWL" --version | grep -q "^knit-crawl [0-9]" || fail "--version"
    "$CRAWL" --help | grep -q "exit status" || fail "--help"
    # Nobody listens on port 1: refused, retried, recorded as failed.
    "$CRAWL" crawl http://127.0.0.1:1/ --db "$WORK/c.db" --quiet --retries 2 \
        --ignore-robots
    [ "$(q "SELECT attempts || ' ' || (error LIKE '%gave up%') FROM pages")" = "3 1" ] ||
        fail "unreachable host: $(q 'SELECT * FROM pages')"
    rc=0; "$CRAWL" crawl http://127.0.0.1:1/ --db "$WORK/c.db" --quiet 2>"$WORK/err" || rc=$?
    [ "$rc" = 1 ] && grep -q "already holds a crawl" "$WORK/err" ||
        fail "overwrote a crawl: $rc"
    ;;
limits)
    serve 14 1 60
    crawl --max-pages 10 --rate 0
    [ "$(q 'SELECT count(*) FROM pages')" -le 10 ] || fail "--max-pages 10"
    rm -f "$WORK"/c.db*
    crawl --max-depth 1 --rate 0
    [ "$(q 'SELECT max(depth) FROM pages')" = 1 ] || fail "--max-depth 1"
    rm -f "$WORK"/c.db*
    crawl --exclude '/articles/' --rate 0
    [ "$(q "SELECT count(*) FROM pages WHERE url LIKE '%/articles/%'")" = 0 ] ||
        fail "--exclude"
    rm -f "$WORK"/c.db*
    # 21 requests at 10/s with a burst of 1 take at least 2 s.
    t0=$(date +%s%N)
    crawl --max-pages 20 --rate 10 --per-host 4
    ms=$((($(date +%s%N) - t0) / 1000000))
    [ "$ms" -ge 1900 ] || fail "--rate 10: 21 requests in $ms ms"
    echo "ok: --rate 10 took $ms ms for 21 requests"
    ;;
timeouts)
    # 5% of the pages answer after 5 s; the crawl allows 300 ms.
    serve 15 2 300 5000
    t0=$(date +%s)
    crawl --timeout 300 --retries 1 --rate 0
    [ $(($(date +%s) - t0)) -lt 30 ] || fail "the crawl waited for slow pages"
    n=$(q "SELECT count(*) FROM pages WHERE error LIKE '%deadline%'")
    [ "$n" -gt 0 ] || fail "no page timed out: $(q 'SELECT url, error FROM pages WHERE error IS NOT NULL')"
    [ "$(q "SELECT min(attempts) FROM pages WHERE error LIKE '%deadline%'")" = 2 ] ||
        fail "timed-out pages were not retried once"
    echo "ok: $n pages timed out, each after 2 attempts"
    ;;
*)
    fail "unknown case"
    ;;
esac
echo "e2e $CASE: passed"
