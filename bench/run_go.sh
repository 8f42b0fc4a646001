#!/bin/bash
# --go-watch benchmarks (bench/go_bench.c): one line per case with
# moonshim's number, the peer's, the ratio moonshim/peer and the verdict
# against the issue's target. The "  info:" lines under a case say what was
# measured.
#   stderr_passthrough  a child writes GO_BENCH_MIB (1024) MiB of 100-byte
#                       log lines into a pipe; MiB/s that reach a drained
#                       sink pipe through the shim's tap (shim/io/tap.c, with
#                       gowatch's line hook) against a thread copying with
#                       read()/write() (higher is better), the tap in its
#                       default lossless mode (nothing may be dropped).
#                       Target: ratio >= 0.95, and in drop mode
#                       (stderr=non-blocking) with a sink nobody reads the
#                       child keeps writing (>= 0.9 of its drained rate,
#                       the excess dropped, counted); the lossless tap
#                       holds the child there, as a plain pipe would. Info:
#                       the tap's rate into /dev/null.
#   scrape_cost         CPU per scrape of /debug/pprof/goroutine?debug=1 of a
#                       Go program with 10,000 parked goroutines
#                       (bench/go/scrape): moonshim's http_do + parse +
#                       detector, beside the workload's own CPU for it;
#                       peer: a `curl` process per scrape (lower is better).
#                       No target: information.
# Builds nothing (`make bench` does); takes about a minute.
#   bench/run_go.sh [GOWATCHBENCH] [GOSCRAPE]    GO_BENCH_MIB=1024 GO_BENCH_ROUNDS=5
set -uo pipefail
BIN=${1:-build/bench/gowatchbench}
GOSCRAPE=${2:-build/bench/goscrape}
MIB=${GO_BENCH_MIB:-1024}
ROUNDS=${GO_BENCH_ROUNDS:-5}
SCRAPES=50

PASS_TARGET_RATIO=0.95  # tap / plain copy, bytes/s
STALL_TARGET_RATIO=0.9  # the child's rate with an unread sink / with a drained one

for f in "$BIN" "$GOSCRAPE"; do
	if [ ! -x "$f" ]; then
		echo "bench go: $f is not built (make $f)"
		exit 1
	fi
done

out=$(mktemp)
pid=
# the bench's children (writers, the Go program, curl) die with it (PR_SET_PDEATHSIG)
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait; rm -f "$out"' EXIT
trap 'exit 130' INT TERM HUP

result= # the RESULT line of the last run
run_case() { # case args...
	"$BIN" "$@" >"$out" &
	pid=$!
	wait "$pid"
	local rc=$?
	pid=
	sed -n 's/^INFO [a-z_0-9]*:\{0,1\} */  info: /p' "$out"
	result=$(grep '^RESULT ' "$out")
	[ $rc -eq 0 ] && [ -n "$result" ]
}

val() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$result"; }
ratio() { awk -v m="$1" -v p="$2" 'BEGIN {if (p + 0 > 0) printf "%.3g", m / p; else print "n/a"}'; }
at_least() { awk -v v="$1" -v t="$2" 'BEGIN {exit !(v + 0 >= t + 0)}'; }

ncases=0 ok=0 broken=0

if run_case stderr_passthrough "$MIB" "$ROUNDS"; then
	m=$(val moonshim_mibs) p=$(val peer_mibs) r=$(ratio "$(val moonshim_mibs)" "$(val peer_mibs)")
	s=$(val stalled_ratio)
	ncases=$((ncases + 1))
	if at_least "$r" $PASS_TARGET_RATIO && at_least "$s" $STALL_TARGET_RATIO &&
		[ "$(val stalled_dropped)" -gt 0 ]; then
		ok=$((ok + 1)) v=ok
	else
		v=MISS
	fi
	echo "bench stderr_passthrough: moonshim=$m MiB/s peer(copy)=$p MiB/s ratio=$r" \
		"into /dev/null=$(val devnull_mibs) MiB/s;" \
		"drop mode, unread sink: child at $s of its rate, $(val stalled_dropped) B dropped" \
		"target: ratio>=$PASS_TARGET_RATIO, unread>=$STALL_TARGET_RATIO $v"
else
	broken=1
	echo "bench stderr_passthrough: run failed"
fi

if run_case scrape_cost "$GOSCRAPE" 10000 "$SCRAPES"; then
	m=$(val moonshim_ms) p=$(val peer_ms)
	echo "bench scrape_cost: moonshim=$m ms CPU per scrape (workload $(val workload_ms) ms)" \
		"peer(curl)=$p ms (workload $(val peer_workload_ms) ms) ratio=$(ratio "$m" "$p");" \
		"debug=2: moonshim=$(val moonshim2_ms) ms (workload $(val workload2_ms) ms)" \
		"peer=$(val peer2_ms) ms ratio=$(ratio "$(val moonshim2_ms)" "$(val peer2_ms)")" \
		"target=none info"
else
	broken=1
	echo "bench scrape_cost: run failed"
fi

echo "bench go: $ncases cases with a target, $ok within it"
exit $broken
