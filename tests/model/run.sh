#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Model-checks knit's park/unpark protocol (park.pml) with spin. The model
# of the C code as it is must verify (safety: assertions and end states;
# liveness: every run terminates), and every mutant must be refuted, so
# that this test cannot pass by checking nothing. See README.md.
#
# Usage: tests/model/run.sh [-v]     exit 0: every check as expected
#        -v: also print each verifier's full output
# Needs: spin (Debian/Ubuntu package "spin") and a C compiler ($CC or cc).
set -u

here=$(cd "$(dirname "$0")" && pwd)
model="$here/park.pml"
cc=${CC:-cc}
verbose=0
[ "${1:-}" = "-v" ] && verbose=1

if ! command -v spin >/dev/null 2>&1; then
    echo "run.sh: spin is not installed (apt-get install -y spin):" \
         "cannot model-check the park/unpark protocol" >&2
    exit 1
fi
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "run.sh: no C compiler ($cc) to build spin's verifier" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/knit-model.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

start=$(date +%s)

# check NAME EXPECT SPIN_DEFS CC_FLAGS PAN_ARGS
#   EXPECT: pass (no error, search complete) or fail (an error found).
#   Writes its report to $tmp/NAME/report and "ok"/"FAIL" to .../result.
check() {
    name=$1 expect=$2 defs=$3 ccflags=$4 panargs=$5
    dir="$tmp/$name"
    mkdir -p "$dir"
    cp "$model" "$dir/park.pml"
    rep="$dir/report"
    : >"$rep"
    echo FAIL >"$dir/result"
    t0=$(date +%s)
    # shellcheck disable=SC2086
    if ! (cd "$dir" && spin $defs -a park.pml >spin.log 2>&1); then
        { echo "FAIL $name: spin -a failed:"; cat "$dir/spin.log"; } >>"$rep"
        return
    fi
    # shellcheck disable=SC2086
    if ! (cd "$dir" && "$cc" -w $ccflags -o pan pan.c >cc.log 2>&1); then
        { echo "FAIL $name: building the verifier failed:"
          tail -n 20 "$dir/cc.log"; } >>"$rep"
        return
    fi
    # shellcheck disable=SC2086
    (cd "$dir" && ./pan $panargs >pan.log 2>&1)
    t1=$(date +%s)
    log="$dir/pan.log"
    errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
    stored=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$log" | tail -n 1)
    trans=$(sed -n 's/^ *\([0-9.e+]*\) transitions.*/\1/p' "$log" | tail -n 1)
    what="states=${stored:-?} transitions=${trans:-?} errors=${errors:-?}, $((t1 - t0))s"
    if [ "$verbose" -eq 1 ]; then
        { echo "---- $name: spin $defs; cc $ccflags; pan $panargs"
          grep -v '^Depth=' "$log"; } >>"$rep"
    fi
    if [ -z "$errors" ]; then
        { echo "FAIL $name: the verifier gave no result:"
          tail -n 20 "$log"; } >>"$rep"
        return
    fi
    case $expect in
    pass)
        if [ "$errors" -ne 0 ]; then
            { echo "FAIL $name: expected no error ($what)"
              grep -E '^pan:' "$log" | head -n 3
              where "$dir" "$defs"; } >>"$rep"
        elif grep -q 'max search depth too small\|search not completed' "$log"
        then
            echo "FAIL $name: the search was cut short ($what)" >>"$rep"
        else
            echo "ok   $name: verified ($what)" >>"$rep"
            echo ok >"$dir/result"
        fi
        ;;
    fail)
        if [ "$errors" -eq 0 ]; then
            echo "FAIL $name: the mutant was not caught ($what)" >>"$rep"
        else
            why=$(grep -E '^pan:[0-9]+:|acceptance cycle' "$log" | head -n 1)
            { echo "ok   $name: counterexample found, as expected ($what)"
              echo "       ${why:-error}"
              where "$dir" "$defs"; } >>"$rep"
            echo ok >"$dir/result"
        fi
        ;;
    esac
}

# Where each worker was left at the end of the counterexample (spin's
# process 0 is init, processes 1..NW the workers 0..NW-1).
where() {
    label() { grep -n "^$1:" "$dir/park.pml" | cut -d: -f1; }
    sleepl=$(label sleep) msleepl=$(label msleep) spinl=$(label spinning)
    mmovel=$(label mmove) mpolll=$(label mpoll) mleavel=$(label mleave)
    exitl=$(label exit)
    # shellcheck disable=SC2086
    (cd "$1" && spin $2 -t park.pml 2>&1) |
        sed -n 's/^ *[0-9]*:[[:space:]]*proc *\([0-9]*\) (worker[^)]*) park.pml:\([0-9]*\).*/\1 \2/p' |
        while read -r n at; do
            what=""
            if { [ "$at" -ge "$sleepl" ] && [ "$at" -le $((sleepl + 2)) ]; } ||
               [ "$at" = "$msleepl" ]; then
                what="asleep in epoll_wait, never woken"
            elif [ "$at" = "$spinl" ]; then
                what="keeps the CPU until C has started"
            elif [ -n "$mmovel" ] && [ "$at" -ge "$mmovel" ] &&
                 [ "$at" -le $((mpolll + 1)) ]; then
                what="in knit__manual_idle: all idle, moves the clock"
            elif [ -n "$mleavel" ] && [ "$at" -ge "$mleavel" ] &&
                 [ "$at" -le $((mleavel + 1)) ]; then
                what="has drained a wake-up (a runnable task), still idle"
            elif [ "$at" -gt "$exitl" ]; then
                what="left its loop"
            fi
            echo "       worker $((n - 1)) at park.pml:$at${what:+: $what}"
        done
}

safe="-DSAFETY -DNOCLAIM"       # assertions + invalid end states
live=""                         # the ltl "terminates", weak fairness
fast="-O0"                      # small searches: compile fast
opt="-O1"                       # the 3-worker search

# Two lanes (a 2-core machine): the 3-worker search alone in one, the
# rest in the other.
(
    check park3-safety pass "-DNW=3 -DSMALL" \
        "$opt $safe -DCOLLAPSE" "-m100000 -w24"
) &
lane=$!
check park2-safety pass "" "$fast $safe" "-m100000"
check park2-liveness pass "" "$fast $live" "-a -f -m200000"
check park2-no-pending-check pass "-DNO_PENDING_CHECK" "$fast $safe" "-m100000"
check park2-manual pass "-DMANUAL" "$fast $safe" "-m100000"
check mutant-manual-idle-split fail "-DMANUAL -DBUG_MANUAL_IDLE_SPLIT" "$fast $safe" "-m100000"
check park2-abandon pass "-DABANDON" "$fast $safe" "-m100000"
check mutant-abandon-not-due fail "-DABANDON -DBUG_ABANDON_NOT_DUE" "$fast $safe" "-m100000"
check mutant-unlocked-idle fail "-DBUG_UNLOCKED_IDLE" "$fast $safe" "-m100000"
check mutant-look-before-mark fail "-DBUG_LOOK_BEFORE_MARK" "$fast $safe" "-m100000"
check mutant-nonsticky-wake fail "-DBUG_NONSTICKY_WAKE" "$fast $safe" "-m100000"
check mutant-no-wake-on-push fail "-DBUG_NO_WAKE_ON_PUSH" "$fast $safe" "-m100000"
check mutant-wake-if-nonempty fail "-DBUG_WAKE_IF_NONEMPTY" "$fast $safe" "-m100000"
check mutant-deferred-post-lost fail "-DBUG_DEFERRED_POST_LOST" "$fast $safe" "-m100000"
check mutant-fast-end-no-recheck fail "-DBUG_FAST_END_NO_RECHECK" "$fast $safe" "-m100000"
check mutant-unlocked-idle-liveness fail "-DBUG_UNLOCKED_IDLE" "$fast $live" \
    "-a -f -m200000"
wait "$lane"

status=0
for d in park2-safety park2-liveness park2-no-pending-check park3-safety \
         park2-manual mutant-manual-idle-split park2-abandon \
         mutant-abandon-not-due mutant-unlocked-idle mutant-look-before-mark \
         mutant-nonsticky-wake mutant-no-wake-on-push \
         mutant-wake-if-nonempty mutant-deferred-post-lost \
         mutant-fast-end-no-recheck \
         mutant-unlocked-idle-liveness; do
    if [ -f "$tmp/$d/report" ]; then
        cat "$tmp/$d/report"
    else
        echo "FAIL $d: did not run"
    fi
    [ "$(cat "$tmp/$d/result" 2>/dev/null)" = ok ] || status=1
done

end=$(date +%s)
if [ "$status" -eq 0 ]; then
    echo "park/unpark model: every check as expected ($((end - start))s)"
else
    echo "park/unpark model: FAILED ($((end - start))s)"
fi
exit "$status"
