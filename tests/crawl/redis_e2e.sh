#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# knit-crawl's distributed mode end to end: a redis-server and
# `knit-crawl serve-demo` started here on 127.0.0.1, several crawler
# processes sharing one crawl through them:
#
#   redis_e2e.sh KNIT_CRAWL CASE
#
#   three    three processes crawl the demo site together: the union of
#            their HTML pages is exactly `serve-demo --list`, no page is
#            stored by two processes, each stored some; `status` says
#            finished; `merge` gives the list again; a fourth process
#            started afterwards finds the crawl finished and exits at once
#   kill     one of three processes is SIGKILLed mid-crawl: the others
#            reclaim what it held and finish; the merged databases hold
#            exactly the list; pages stored twice <= entries reclaimed
#   restart  Redis (with its append-only file) is stopped mid-crawl and
#            started again: the processes reconnect and finish with
#            exactly the list
#   rate     two processes with --rate 10 on a one-host site: the host's
#            token bucket is shared, so together they take at least
#            (requests - 1) / R seconds (two per-process limits would take
#            half of that)
#   cli      bad command lines exit 2 with a message; an unreachable
#            Redis, an unknown crawl, merging into an existing database
#            exit 1 with a message
#
# Ports: each case has its own range of 8 blocks of 64 in 30000-32559
# (e2e.sh uses 10000-29199; Linux gives client sockets ports from 32768
# up, so a listening port below cannot be held by one, even across the
# Redis restart), the block picked from this shell's PID, moving on when
# it is taken. Own ranges, because ctest runs cases side by side: the
# restart case leaves its port free for a second, and another case's
# redis-server once took it (the crawlers then met an empty Redis).
# start_redis also checks that the server answering is the one it
# started. Exits 77 (skipped) when redis-server or redis-cli is not
# installed.
set -euo pipefail

CRAWL=$1
CASE=$2
WORK=$(mktemp -d)
REDIS_PID=
SERVER_PID=
CRAWLERS=()

cleanup() {
    for pid in "${CRAWLERS[@]}" "$SERVER_PID" "$REDIS_PID"; do
        if [ -n "$pid" ]; then
            kill -9 "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "FAIL ($CASE): $*" >&2
    for f in "$WORK"/*.log; do
        [ -f "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }
    done
    exit 1
}

command -v redis-server >/dev/null && command -v redis-cli >/dev/null || {
    echo "SKIP: redis-server / redis-cli not installed"
    exit 77
}

# Whether something listens on 127.0.0.1:$1.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_redis [persist]: redis-server on $RPORT (appendonly when asked,
# files in $WORK); waits until it answers PING.
start_redis() {
    local aof=no
    [ "${1:-}" = persist ] && aof=yes
    redis-server --port "$RPORT" --bind 127.0.0.1 --save '' \
        --appendonly "$aof" --appendfsync always --dir "$WORK" \
        >>"$WORK/redis.log" 2>&1 &
    REDIS_PID=$!
    for _ in $(seq 100); do
        kill -0 "$REDIS_PID" 2>/dev/null || break
        # Ours, not another test's on the same port.
        redis-cli -p "$RPORT" info server 2>/dev/null |
            grep -q "^process_id:$REDIS_PID" && return 0
        sleep 0.05
    done
    kill -9 "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
    REDIS_PID=
    return 1
}

# setup SEED HOSTS PAGES SLOW [persist]: Redis on RPORT, the demo site on
# PORT = RPORT + 1 ..., and want.txt.
setup() {
    local seed=$1 hosts=$2 pages=$3 slow=$4 base
    local index
    case $CASE in
    three) index=0 ;; kill) index=1 ;; restart) index=2 ;; rate) index=3 ;;
    *) index=4 ;;
    esac
    base=$(( $$ % 8 ))
    for try in $(seq 0 7); do
        RPORT=$((30000 + (index * 8 + (base + try) % 8) * 64))
        PORT=$((RPORT + 1))
        listening "$RPORT" && continue
        start_redis "${5:-}" || continue
        "$CRAWL" serve-demo --port "$PORT" --seed "$seed" --hosts "$hosts" \
            --pages "$pages" --slow-ms "$slow" >"$WORK/server.log" 2>&1 &
        SERVER_PID=$!
        for _ in $(seq 200); do
            grep -q "Ctrl-C to stop" "$WORK/server.log" && break
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.05
        done
        if grep -q "Ctrl-C to stop" "$WORK/server.log"; then
            "$CRAWL" serve-demo --list --port "$PORT" --seed "$seed" \
                --hosts "$hosts" --pages "$pages" >"$WORK/want.txt"
            [ -s "$WORK/want.txt" ] || fail "empty list"
            URL=redis://127.0.0.1:$RPORT
            return 0
        fi
        for pid in "$SERVER_PID" "$REDIS_PID"; do
            kill -9 "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        done
        SERVER_PID=
        REDIS_PID=
        rm -f "$WORK"/*.aof "$WORK"/appendonlydir -r
    done
    fail "could not start redis-server and serve-demo"
}

# crawler NAME [options]: one process of crawl "t" in the background,
# its database NAME.db, its output NAME.log; its PID is appended to
# CRAWLERS.
crawler() {
    local name=$1
    shift
    "$CRAWL" crawl "http://127.0.0.1:$PORT/" --redis "$URL" --crawl-id t \
        --consumer "$name" --db "$WORK/$name.db" --quiet "$@" \
        >"$WORK/$name.log" 2>&1 &
    CRAWLERS+=($!)
}

# finish PID SECONDS: wait for a crawler; fails unless it exits 0 in time.
finish() {
    local pid=$1 t=$2 rc=0
    for _ in $(seq $((t * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && fail "crawler $pid still running after ${t}s"
    wait "$pid" || rc=$?
    [ "$rc" -eq 0 ] || fail "crawler $pid exited $rc"
}

# stored_html DB...: the HTML pages in the databases, sorted, with repeats.
stored_html() {
    for db in "$@"; do
        sqlite3 "$db" "SELECT url FROM pages WHERE status = 200 AND
                       content_type LIKE 'text/html%'"
    done | sort
}

rows() { sqlite3 "$1" "SELECT count(*) FROM pages"; }

# check_union DB...: their HTML pages, once each, are exactly the list.
check_union() {
    stored_html "$@" | sort -u >"$WORK/got.txt"
    diff -u "$WORK/want.txt" "$WORK/got.txt" >"$WORK/diff.txt" ||
        fail "union of the stored pages differs from the list: $(head -20 "$WORK/diff.txt")"
}

# distinct DB...: URLs stored, counted once.
distinct() {
    for db in "$@"; do sqlite3 "$db" "SELECT url FROM pages"; done |
        sort -u | wc -l
}

total() {
    local n=0
    for db in "$@"; do n=$((n + $(rows "$db"))); done
    echo "$n"
}

status_field() { # the number after "$1" in `status`
    "$CRAWL" status --redis "$URL" --crawl-id t | grep -o "$1[^,;)]*" |
        grep -o '[0-9]*' | head -1
}

COMMON=(--rate 0 --concurrency 8 --per-host 4 --timeout 5000 --retries 2)

case $CASE in
three)
    setup 11 3 240 30
    for n in c1 c2 c3; do crawler "$n" "${COMMON[@]}" --reclaim-ms 10000; done
    for pid in "${CRAWLERS[@]}"; do finish "$pid" 60; done
    dbs=("$WORK/c1.db" "$WORK/c2.db" "$WORK/c3.db")
    check_union "${dbs[@]}"
    [ "$(total "${dbs[@]}")" -eq "$(distinct "${dbs[@]}")" ] ||
        fail "a page was stored by two processes (no process was killed)"
    for db in "${dbs[@]}"; do
        [ "$(rows "$db")" -gt 0 ] || fail "$db: this process stored nothing"
    done
    "$CRAWL" status --redis "$URL" --crawl-id t >"$WORK/status.txt"
    grep -q ": finished" "$WORK/status.txt" || fail "status: $(cat "$WORK/status.txt")"
    grep -q "0 of them twice" "$WORK/status.txt" || fail "status: $(cat "$WORK/status.txt")"
    grep -q "bytes per URL" "$WORK/status.txt" || fail "status: no memory figure"
    "$CRAWL" merge --db "$WORK/all.db" "${dbs[@]}" 2>"$WORK/merge.log" ||
        fail "merge failed"
    stored_html "$WORK/all.db" >"$WORK/merged.txt"
    diff -q "$WORK/want.txt" "$WORK/merged.txt" >/dev/null ||
        fail "the merged database is not the list"
    # A latecomer: the crawl is finished, so it stores nothing and ends.
    crawler late "${COMMON[@]}"
    finish "${CRAWLERS[-1]}" 20
    [ "$(rows "$WORK/late.db")" -eq 0 ] || fail "the latecomer fetched pages"
    cat "$WORK/status.txt"
    ;;
kill)
    setup 12 3 300 80
    for n in c1 c2 c3; do crawler "$n" "${COMMON[@]}" --reclaim-ms 1500; done
    for _ in $(seq 300); do
        n=$(sqlite3 "$WORK/c1.db" "SELECT count(*) FROM pages" 2>/dev/null || echo 0)
        [ "${n:-0}" -ge 25 ] && break
        sleep 0.1
    done
    [ "${n:-0}" -ge 25 ] || fail "c1 did not get going"
    kill -9 "${CRAWLERS[0]}"
    wait "${CRAWLERS[0]}" 2>/dev/null || true
    echo "killed c1 after it stored $n pages"
    CRAWLERS=("${CRAWLERS[@]:1}")
    for pid in "${CRAWLERS[@]}"; do finish "$pid" 60; done
    dbs=("$WORK/c1.db" "$WORK/c2.db" "$WORK/c3.db")
    "$CRAWL" merge --db "$WORK/all.db" "${dbs[@]}" 2>"$WORK/merge.log" ||
        fail "merge failed"
    stored_html "$WORK/all.db" >"$WORK/merged.txt"
    diff -u "$WORK/want.txt" "$WORK/merged.txt" >"$WORK/diff.txt" ||
        fail "pages lost or extra after the kill: $(head -20 "$WORK/diff.txt")"
    twice=$(( $(total "${dbs[@]}") - $(distinct "${dbs[@]}") ))
    reclaimed=$(status_field "entries reclaimed")
    "$CRAWL" status --redis "$URL" --crawl-id t | grep -q ": finished" ||
        fail "status does not say finished"
    echo "stored twice: $twice, entries reclaimed: $reclaimed"
    [ "$twice" -le "$reclaimed" ] ||
        fail "$twice pages stored twice but only $reclaimed entries reclaimed"
    grep -q "reclaimed" "$WORK/c2.log" "$WORK/c3.log" || [ "$reclaimed" -eq 0 ] ||
        fail "no survivor reported a reclaim"
    ;;
restart)
    setup 13 3 240 60 persist
    for n in c1 c2; do crawler "$n" "${COMMON[@]}" --reclaim-ms 10000; done
    for _ in $(seq 300); do
        n=$(( $(rows "$WORK/c1.db" 2>/dev/null || echo 0) +
              $(rows "$WORK/c2.db" 2>/dev/null || echo 0) ))
        [ "$n" -ge 40 ] && break
        sleep 0.1
    done
    [ "$n" -ge 40 ] || fail "the crawl did not get going"
    kill -TERM "$REDIS_PID"
    wait "$REDIS_PID" 2>/dev/null || true
    echo "stopped Redis after $n pages"
    sleep 1
    start_redis persist || fail "redis-server did not start again"
    for pid in "${CRAWLERS[@]}"; do finish "$pid" 60; done
    check_union "$WORK/c1.db" "$WORK/c2.db"
    grep -q "connected again" "$WORK/c1.log" "$WORK/c2.log" ||
        fail "no crawler reported reconnecting"
    "$CRAWL" status --redis "$URL" --crawl-id t | grep -q ": finished" ||
        fail "status does not say finished"
    ;;
rate)
    setup 15 1 40 0
    t0=$(date +%s.%N)
    for n in c1 c2; do
        crawler "$n" --rate 10 --concurrency 8 --per-host 4 --timeout 5000 \
            --retries 2 --reclaim-ms 10000
    done
    for pid in "${CRAWLERS[@]}"; do finish "$pid" 60; done
    t1=$(date +%s.%N)
    check_union "$WORK/c1.db" "$WORK/c2.db"
    # Requests: every stored row, plus one robots.txt per process.
    req=$(( $(total "$WORK/c1.db" "$WORK/c2.db") + 2 ))
    awk -v a="$t0" -v b="$t1" -v n="$req" 'BEGIN {
        printf "%d requests in %.2f s (shared limit: >= %.2f s)\n", n, b - a, (n - 1) / 10
        exit !(b - a >= 0.9 * (n - 1) / 10)
    }' || fail "the two processes went faster than one shared --rate allows"
    ;;
cli)
    setup 14 1 20 0
    expect_exit() { # CODE MESSAGE ARGS...: exit status and a line of stderr
        local code=$1 msg=$2 rc=0
        shift 2
        "$CRAWL" "$@" >"$WORK/out.txt" 2>&1 || rc=$?
        [ "$rc" -eq "$code" ] || fail "'$*' exited $rc, not $code: $(cat "$WORK/out.txt")"
        grep -q -- "$msg" "$WORK/out.txt" || fail "'$*' did not say '$msg': $(cat "$WORK/out.txt")"
    }
    S=http://127.0.0.1:$PORT/
    expect_exit 2 "give both" crawl "$S" --redis "$URL"
    expect_exit 2 "give both" crawl "$S" --crawl-id t
    expect_exit 2 "give both" status --redis "$URL"
    expect_exit 2 "redis://HOST" crawl "$S" --redis "http://x" --crawl-id t
    expect_exit 2 "crawl-id wants" crawl "$S" --redis "$URL" --crawl-id "a b"
    expect_exit 2 "need --redis" crawl "$S" --reclaim-ms 1000
    expect_exit 2 "reclaim-ms wants" crawl "$S" --redis "$URL" --crawl-id t --reclaim-ms 5
    expect_exit 2 "go with 'crawl'" resume --db "$WORK/x.db" --redis "$URL" --crawl-id t
    expect_exit 2 "merge: give" merge --db "$WORK/m.db"
    expect_exit 1 "Connection refused" crawl "$S" --db "$WORK/r.db" \
        --redis redis://127.0.0.1:1 --crawl-id t
    expect_exit 1 "not a redis://" crawl "$S" --db "$WORK/r.db" \
        --redis redis://127.0.0.1:99999 --crawl-id t
    expect_exit 1 "no crawl 'nope'" status --redis "$URL" --crawl-id nope
    # A small crawl, then merging into an existing file.
    crawler c1 "${COMMON[@]}"
    finish "${CRAWLERS[0]}" 30
    expect_exit 0 "finished" status --redis "$URL" --crawl-id t
    expect_exit 1 "exists" merge --db "$WORK/c1.db" "$WORK/c1.db"
    expect_exit 1 "missing.db" merge --db "$WORK/m.db" "$WORK/missing.db"
    ;;
*)
    fail "unknown case"
    ;;
esac
echo "ok ($CASE)"
