#!/bin/bash
# Run the cgroup benchmarks (bench/cgroup_bench.c) and print one line per
# case: moonshim's number, the 1 s polling loop's (how oomd and
# systemd-oomd watch), the ratio moonshim/poll_1s (lower is better) and the
# verdict against the issue's target. The "  info:" lines under a case say
# what was measured. Needs root and a cgroup2 mount; takes ~2 minutes.
#   bench/run_cgroup.sh [CGROUPBENCH] [MOONSHIM]    BENCH_IDLE_SECS=60
set -uo pipefail
BIN=${1:-build/bench/cgroupbench}
MOONSHIM=${2:-build/moonshim}
IDLE_SECS=${BENCH_IDLE_SECS:-60}

if [ "$(id -u)" -ne 0 ] || ! grep -q ' cgroup2 ' /proc/self/mounts; then
	echo "bench cgroup: skipped (needs root and a cgroup2 mount)"
	exit 0
fi

# shellcheck source=bench/leftovers.sh
. "$(dirname "$0")/leftovers.sh"
leftovers() { cgroup_leftovers cgroup "$1"; }

out=$(mktemp)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait; [ -n "$pid" ] && leftovers "$pid"; rm -f "$out"' EXIT

result= # the RESULT line of the last run
run_case() { # case args...
	"$BIN" "$@" >"$out" &
	pid=$!
	wait "$pid"
	local rc=$?
	leftovers "$pid"
	pid=
	sed -n 's/^INFO [a-z_0-9]*:\{0,1\} */  info: /p' "$out"
	result=$(grep '^RESULT ' "$out")
	[ $rc -eq 0 ] && [ -n "$result" ]
}

val() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$result"; }
ratio() { awk -v m="$1" -v p="$2" 'BEGIN {if (p + 0 > 0) printf "%.3g", m / p; else print "n/a"}'; }
within() { awk -v v="$1" -v t="$2" 'BEGIN {exit !(v + 0 <= t + 0)}'; }
latency_ok() { within "$m" 1000 && within "$m99" 10000; } # the median and p99 targets

ncases=0 ok=0 broken=0
v= # the last verdict
verdict() { # command... -> v=ok if it succeeds, else MISS; counted
	ncases=$((ncases + 1))
	if "$@"; then ok=$((ok + 1)) v=ok; else v=MISS; fi
}

if run_case cgroup_event_latency; then
	m=$(val moonshim_us) m99=$(val moonshim_p99_us) p=$(val poll_us) p99=$(val poll_p99_us)
	verdict latency_ok
	echo "bench cgroup_event_latency: moonshim=$m us p99=$m99 us poll_1s=$p us p99=$p99 us ratio=$(ratio "$m" "$p") target: median<=1000us p99<=10000us $v"
else
	broken=1
	echo "bench cgroup_event_latency: run failed"
fi

if run_case psi_onset; then
	m=$(val moonshim_ms) t=$(val trigger_2s_ms) p=$(val poll_ms)
	how=$([ "$(val moonshim_mode)" = poll ] && echo "poll fallback" || echo "kernel trigger")
	verdict within "$m" 100
	echo "bench psi_onset: moonshim=$m ms ($how) trigger_2s=$t ms poll_1s=$p ms ratio=$(ratio "$m" "$p") target<=100ms $v"
else
	broken=1
	echo "bench psi_onset: run failed"
fi

if run_case watch_idle_cpu "$MOONSHIM" "$IDLE_SECS"; then
	m=$(val moonshim_pct) p=$(val poll_pct)
	verdict within "$m" 0.1
	echo "bench watch_idle_cpu: moonshim=$m% of a core per cgroup poll_1s=$p% ratio=$(ratio "$m" "$p") target<=0.1% $v"
else
	broken=1
	echo "bench watch_idle_cpu: run failed"
fi

echo "bench cgroup: $ncases cases, $ok within target"
exit $broken
