#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Reads the raw output of a kit run (bench/run-peers.sh, scripts/bench.sh:
# lines "peer=P workload=W value=V unit=U ...") and prints, per workload,
# knit beside the peers, the best peer, their ratio and issue 7's target:
#
#   bench/table.sh RAW            a Markdown table (and the run's failures)
#   bench/table.sh --tsv RAW      label<TAB>ratio, one line per knit value
#                                 that has a peer to compare with (chart.sh)
#
# The ratio is oriented so that > 1 means knit is better: knit / best for
# the rates (units ending in _per_s, higher is better), best / knit for
# everything else (times, CPU, bytes: lower is better). "Best peer" is
# the best of libuv, tokio and Go; raw, the hand-written floor, has its
# own column and is not a peer. knit runs on epoll; knit-uring is knit's
# echo server on io_uring (tcp_echo rows only), shown in its own column
# and, in the ratio column, in parentheses.
set -euo pipefail

mode=md
if [ "${1:-}" = "--tsv" ]; then
    mode=tsv
    shift
fi
if [ $# -ne 1 ] || [ ! -r "$1" ]; then
    echo "usage: bench/table.sh [--tsv] RAW_OUTPUT" >&2
    exit 1
fi

awk -v mode="$mode" '
# Issue 7 targets: workload (tcp_echo_cN_* with N as "N") -> "op factor
# reference subject text"; reference "abs" = the factor is the bound,
# otherwise the bound is factor x the value of the reference peer.
BEGIN {
    T["yield_pingpong"]          = "le 6 abs knit <= 6 ns"
    T["wake_pingpong"]           = "le 15 abs knit <= 15 ns"
    T["spawn_join_1t"]           = "ge 12000000 abs knit >= 12 M/s"
    T["spawn_join_mt"]           = "ge 2 tokio knit >= 2x tokio"
    T["chan_throughput_1p1c"]    = "ge 4 best knit >= 4x best peer"
    T["chan_throughput_4p1c_mt"] = "ge 2 go knit >= 2x Go"
    T["chan_pingpong"]           = "le 40 abs knit <= 40 ns"
    T["timers_sleep_wall"]       = "le 1 tokio knit <= tokio"
    T["timeout_ready"]           = "ge 3 tokio knit >= 3x tokio"
    T["timer_arm_cancel"]        = "ge 1 libuv knit >= libuv"
    T["tcp_echo_cN_srv_user"]    = "le 0.2 abs knit <= 0.2 us (epoll)"
    T["tcp_echo_cN_srv_cpu"]     = "lt 1 raw knit-uring uring < raw"
    T["idle_chan"]               = "le 4608 abs knit <= 4.5 KiB"
    T["idle_sleep"]              = "le 4608 abs knit <= 4.5 KiB"
    npeer = split("libuv tokio go", peer, " ")
}
/^# FAILED/ { failed[++nf] = $0; next }
/^peer=/ {
    p = ""; w = ""; v = ""; u = ""
    for (i = 1; i <= NF; i++) {
        eq = index($i, "=")
        k = substr($i, 1, eq - 1); x = substr($i, eq + 1)
        if (k == "peer") p = x
        else if (k == "workload") w = x
        else if (k == "value") v = x
        else if (k == "unit") u = x
    }
    if (p == "" || w == "") next
    if (!(w in unit)) { order[++nw] = w; unit[w] = u }
    val[w, p] = v
}
function has(w, p) { return ((w, p) in val) && val[w, p] != "nan" }
function higher(w) { return unit[w] ~ /_per_s$/ }
# > 1: a is better than b; none unless both are positive.
function ratio(w, a, b) {
    if (a <= 0 || b <= 0) return ""
    return higher(w) ? a / b : b / a
}
function cell(w, p) { return ((w, p) in val) ? val[w, p] : "-" }
END {
    if (mode == "md") {
        print "| workload | unit | better | knit | knit-uring | tokio | go | libuv | raw floor | best peer | ratio | target | met |"
        print "|---|---|---|--:|--:|--:|--:|--:|--:|---|--:|---|---|"
    }
    for (j = 1; j <= nw; j++) {
        w = order[j]
        # The best peer of this row.
        best = ""
        for (i = 1; i <= npeer; i++) {
            if (!has(w, peer[i])) continue
            if (best == "" || ratio(w, val[w, peer[i]], val[w, best]) > 1)
                best = peer[i]
        }
        r = ""; ru = ""
        if (best != "" && has(w, "knit")) r = ratio(w, val[w, "knit"], val[w, best])
        if (best != "" && has(w, "knit-uring"))
            ru = ratio(w, val[w, "knit-uring"], val[w, best])
        # The target of this row and whether it is met.
        key = w; sub(/^tcp_echo_c[0-9]+/, "tcp_echo_cN", key)
        tgt = "-"; met = "-"
        if (key in T) {
            split(T[key], f, " ")
            tgt = T[key]; sub(/^[^ ]+ [^ ]+ [^ ]+ [^ ]+ /, "", tgt)
            ref = f[3]; subj = f[4]
            bound = ""
            if (ref == "abs") bound = f[2]
            else if (ref == "best" && best != "") bound = f[2] * val[w, best]
            else if (ref != "best" && has(w, ref)) bound = f[2] * val[w, ref]
            if (has(w, subj) && bound != "") {
                x = val[w, subj] + 0
                ok = (f[1] == "le") ? x <= bound : (f[1] == "ge") ? x >= bound : x < bound
                met = ok ? "met" : "**not met**"
            } else
                met = "no data"
        }
        if (mode == "tsv") {
            dir = higher(w) ? "higher" : "lower"
            if (r != "") printf "%s vs %s [%s]\t%.4f\n", w, best, dir, r
            if (ru != "") printf "%s (uring) vs %s [%s]\t%.4f\n", w, best, dir, ru
            continue
        }
        rs = (r == "") ? "-" : sprintf("%.2f", r)
        if (ru != "") rs = rs sprintf(" (uring %.2f)", ru)
        bs = (best == "") ? "-" : best " " val[w, best]
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", \
            w, unit[w], higher(w) ? "higher" : "lower", cell(w, "knit"), \
            cell(w, "knit-uring"), cell(w, "tokio"), cell(w, "go"), \
            cell(w, "libuv"), cell(w, "raw"), bs, rs, tgt, met
    }
    if (mode == "md" && nf > 0) {
        print ""
        print "Failures in this run:"
        print ""
        for (i = 1; i <= nf; i++) print "    " failed[i]
    }
}' "$1"
