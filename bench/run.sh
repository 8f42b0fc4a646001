#!/bin/bash
# Run every benchmark case on moonshim's runtime and on Go's, alternating so
# machine noise hits both, and print one line per case with the medians and
# the ratio (moonshim/go, lower is better) against the issue's target.
# The first line names the Go that built the twin (`go version` of GOBENCH).
#   bench/run.sh [MOONBENCH] [GOBENCH]    BENCH_REPEAT=5  BENCH_SCALE=1 (divides N)
#                BENCH_CASES="chan_throughput ..." (default: every case)
set -uo pipefail
MOON=${1:-build/bench/moonbench}
GOBENCH=${2:-build/bench/gobench}
REPEAT=${BENCH_REPEAT:-5}
SCALE=${BENCH_SCALE:-1}
ONLY=${BENCH_CASES:-}
GOTOOL=${GO:-/usr/local/go/bin/go}

# case  default-N  target-ratio
CASES="yield_pingpong 20000000 0.25
chan_pingpong 5000000 0.35
chan_throughput 10000000 0.5
spawn_join 1000000 0.3
skynet 1000000 0.5
parked_memory 100000 1.6
sleep_storm 100000 1.0"

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

run_one() { # binary case n -> "value unit" or fails
	local out
	out=$("$1" "$2" "$3" 2>/dev/null) || return 1
	awk '/^RESULT /{print $2, $3; found=1} END {exit !found}' <<<"$out"
}

echo "bench: Go twin $GOBENCH built by $("$GOTOOL" version "$GOBENCH" 2>/dev/null | cut -d' ' -f2)"
ncases=0 ok=0 broken=0
while read -r name n target; do
	[ -z "$ONLY" ] || [[ " $ONLY " == *" $name "* ]] || continue
	[ "$SCALE" -gt 1 ] && [ "$name" != skynet ] && n=$((n / SCALE))
	mv=() gv=() unit=
	for ((i = 0; i < REPEAT; i++)); do
		if r=$(run_one "$MOON" "$name" "$n"); then mv+=("${r% *}"); unit=${r#* }; else broken=1; echo "bench $name: moonshim run failed"; fi
		if r=$(run_one "$GOBENCH" "$name" "$n"); then gv+=("${r% *}"); else broken=1; echo "bench $name: go run failed"; fi
	done
	[ ${#mv[@]} -gt 0 ] && [ ${#gv[@]} -gt 0 ] || continue
	m=$(printf '%s\n' "${mv[@]}" | median)
	g=$(printf '%s\n' "${gv[@]}" | median)
	ratio=$(awk -v m="$m" -v g="$g" 'BEGIN {printf "%.2f", (g > 0) ? m / g : 0}')
	verdict=$(awk -v r="$ratio" -v t="$target" 'BEGIN {print (r <= t) ? "ok" : "MISS"}')
	ncases=$((ncases + 1))
	[ "$verdict" = ok ] && ok=$((ok + 1))
	echo "bench $name: moonshim=$m $unit go=$g $unit ratio=$ratio target=<=$target $verdict"
done <<<"$CASES"
echo "bench: $ncases cases, $ok within target"
exit $broken
