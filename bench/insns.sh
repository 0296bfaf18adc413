#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Instructions per operation of one knit-bench workload, from callgrind:
#   bench/insns.sh BIN WORKLOAD N1 N2
# runs `valgrind --tool=callgrind BIN WORKLOAD --reps 1 --n N` for N1 and
# N2 and prints (Ir(N2) - Ir(N1)) / (N2 - N1): the difference cancels
# start-up and teardown. The unit is the workload's --n unit (a switch
# for yield_pingpong and wake_pingpong, a round trip for chan_pingpong).
# Instruction counts do not move with the load of a shared machine.
set -eu
bin=$1 w=$2 n1=$3 n2=$4
ir() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$bin" "$w" --reps 1 --n "$1" 2>&1 >/dev/null |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
i1=$(ir "$n1")
i2=$(ir "$n2")
echo "$w $(echo "scale=2; ($i2 - $i1) / ($n2 - $n1)" | bc)"
