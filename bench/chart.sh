#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/chart.sh RAW_OUTPUT OUT.svg
#
# Draws knit against the best peer (libuv, tokio, Go) of every workload of
# a kit run as a horizontal bar chart (SVG, gnuplot from Debian's
# gnuplot-nox): one bar per workload from 1.0 to the ratio that
# bench/table.sh computes, oriented so that > 1 (green, right of the line
# at 1.0) means knit is better, whether the workload's unit is a rate
# (higher is better) or a time, CPU or memory figure (lower is better;
# the ratio is then inverted). Each label says which. The x axis is
# logarithmic: 4x better and 4x worse are the same length.
set -euo pipefail

if [ $# -ne 2 ] || [ ! -r "$1" ]; then
    echo "usage: bench/chart.sh RAW_OUTPUT OUT.svg" >&2
    exit 1
fi
raw=$1
out=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command -v gnuplot >/dev/null || {
    echo "chart: no gnuplot (apt-get install gnuplot-nox)" >&2
    exit 1
}

data=$(mktemp)
trap 'rm -f "$data"' EXIT
"$here/table.sh" --tsv "$raw" >"$data"
rows=$(wc -l <"$data")
if [ "$rows" -eq 0 ]; then
    echo "chart: no knit value with a peer to compare in $raw" >&2
    exit 1
fi
# The x range: both ends of every bar (1.0 and the ratio), with room for
# the value labels.
read -r xmin xmax < <(awk -F'\t' '
    BEGIN { lo = 1; hi = 1 }
    { if ($2 < lo) lo = $2; if ($2 > hi) hi = $2 }
    END { print lo / 3, hi * 3 }' "$data")
when=$(sed -n 's/^# peer benchmark kit run: //p' "$raw" | head -n 1)
height=$((rows * 26 + 140))

gnuplot <<EOF
set terminal svg size 900,$height noenhanced font "sans,12" background "white"
set output "$out"
set datafile separator "\t"
set title "knit vs the best peer (libuv, tokio, Go) per workload; > 1: knit better\n[higher]: a rate, ratio = knit/best; [lower]: time, CPU or bytes, ratio = best/knit${when:+\nrun $when}"
set logscale x 10
set xrange [$xmin:$xmax]
set yrange [$rows - 0.4:-0.6]
set xlabel "ratio (log scale)"
set format x "%g"
set grid xtics lc rgb "#dddddd"
set ytics scale 0 font "sans,11"
set style fill solid 0.85 noborder
set arrow from 1, graph 0 to 1, graph 1 nohead lw 2 lc rgb "black" front
lo(r) = r < 1 ? r : 1
hi(r) = r < 1 ? 1 : r
color(r) = r >= 1 ? 0x2e8b57 : 0xc0392b
plot "$data" using (1):0:(lo(\$2)):(hi(\$2)):(\$0 - 0.35):(\$0 + 0.35):(color(\$2)):ytic(1) \
        with boxxyerror lc rgb variable notitle, \
     "" using (\$2 >= 1 ? \$2 : NaN):0:(sprintf("%.2f", \$2)) \
        with labels left offset 0.6,0 font "sans,10" notitle, \
     "" using (\$2 < 1 ? \$2 : NaN):0:(sprintf("%.2f", \$2)) \
        with labels right offset -0.6,0 font "sans,10" notitle
EOF
echo "chart: $out ($rows bars)" >&2
