#!/bin/bash
# Lua health-check benchmarks (bench/lua_bench.c): one line per case with
# moonshim's number, the peer's, the ratio moonshim/peer (lower is better)
# and the verdict against the issue's target. The "  info:" lines under a
# case say what was measured.
#   checks_cpu        1,000 HTTP checks at a 1 s period against a local
#                     server (a separate process): CPU of the process running
#                     them, % of one core. Peer: the same probes as exec
#                     probes (the Docker/Kubernetes way), a `busybox wget`
#                     per probe per second, scheduler + children. Targets:
#                     moonshim <= 1% of a core, ratio <= 0.05.
#   check_memory      bytes per idle check: RSS with 1,000 checks declared
#                     and started (long interval) minus with none, / 1,000.
#                     No peer process to compare (an exec probe holds no
#                     memory between runs); the info line says what a check
#                     costs once it has run. Target <= 16 KiB.
#   event_to_handler  a real cgroup event to the first line of a Lua policy
#                     handler, through the shim's path (cg_watch ->
#                     ev_cgroup_* -> pl_dispatch -> on("populated", ...)):
#                     300 processes exit, each emptying a fresh cgroup
#                     (populated 1->0, the trigger of cgroup_event_latency),
#                     timed from a stamp just before the exit to stamp(),
#                     a C function, on the handler's first line. Median and
#                     p99; beside it the watcher alone (the event received
#                     from its channel) and the peer: an oomd-style loop
#                     reading cgroup.events every second (poll_1s), to the
#                     read that sees the change. Target: median <= 1 ms.
#                     Needs root and a cgroup2 mount (else skipped).
# Builds nothing (`make` does); takes ~2 * BENCH_SECS + 55 s.
#   bench/run_lua.sh [LUABENCH]    BENCH_SECS=60
set -uo pipefail
BIN=${1:-build/bench/luabench}
SECS=${BENCH_SECS:-60}

CPU_TARGET_PCT=1     # moonshim, % of one core for 1,000 checks
CPU_TARGET_RATIO=0.05
MEM_TARGET_B=16384   # bytes per idle check
E2H_TARGET_US=1000   # event_to_handler, median

if [ ! -x "$BIN" ]; then
	echo "bench lua: $BIN is not built (make $BIN)"
	exit 1
fi

# shellcheck source=bench/leftovers.sh
. "$(dirname "$0")/leftovers.sh"

out=$(mktemp)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait; [ -n "$pid" ] && cgroup_leftovers lua "$pid"; rm -f "$out"' EXIT

result= # the RESULT line of the last run
run_case() { # case args...
	"$BIN" "$@" >"$out" &
	pid=$!
	wait "$pid"
	local rc=$?
	cgroup_leftovers lua "$pid"
	pid=
	sed -n 's/^INFO [a-z_0-9]*:\{0,1\} */  info: /p' "$out"
	result=$(grep '^RESULT ' "$out")
	[ $rc -eq 0 ] && [ -n "$result" ]
}

val() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$result"; }
ratio() { awk -v m="$1" -v p="$2" 'BEGIN {if (p + 0 > 0) printf "%.3g", m / p; else print "n/a"}'; }
# shellcheck disable=SC2317 # called through verdict
within() { awk -v v="$1" -v t="$2" 'BEGIN {exit !(v + 0 <= t + 0)}'; }
# shellcheck disable=SC2317 # called through verdict
cpu_ok() { within "$m" "$CPU_TARGET_PCT" && within "$r" "$CPU_TARGET_RATIO"; }

ncases=0 ok=0 broken=0
v= # the last verdict
verdict() { # command... -> v=ok if it succeeds, else MISS; counted
	ncases=$((ncases + 1))
	if "$@"; then ok=$((ok + 1)) v=ok; else v=MISS; fi
}

if run_case checks_cpu "$SECS" 1000; then
	m=$(val moonshim_pct) p=$(val peer_pct)
	r=$(ratio "$m" "$p")
	[ "$(val peer_scale)" = 1 ] || p="$p (x$(val peer_scale))"
	verdict cpu_ok
	echo "bench checks_cpu: moonshim=$m% of a core peer=$p% ratio=$r target: moonshim<=$CPU_TARGET_PCT% ratio<=$CPU_TARGET_RATIO $v"
else
	broken=1
	echo "bench checks_cpu: run failed"
fi

if run_case check_memory 1000; then
	m=$(val bytes_per_check) a=$(val active_bytes_per_check)
	verdict within "$m" $MEM_TARGET_B
	echo "bench check_memory: moonshim=$m B per idle check (after running: $a B) peer=n/a ratio=n/a target<=$MEM_TARGET_B B $v"
else
	broken=1
	echo "bench check_memory: run failed"
fi

if [ "$(id -u)" -ne 0 ] || ! grep -q ' cgroup2 ' /proc/self/mounts; then
	echo "bench event_to_handler: skipped (needs root and a cgroup2 mount)"
elif run_case event_to_handler; then
	m=$(val moonshim_us) m99=$(val moonshim_p99_us) w=$(val watcher_us) w99=$(val watcher_p99_us)
	p=$(val poll_us) p99=$(val poll_p99_us)
	verdict within "$m" $E2H_TARGET_US
	echo "bench event_to_handler: moonshim=$m us p99=$m99 us watcher=$w us p99=$w99 us poll_1s=$p us p99=$p99 us ratio=$(ratio "$m" "$p") target<=${E2H_TARGET_US}us $v"
else
	broken=1
	echo "bench event_to_handler: run failed"
fi

echo "bench lua: $ncases cases, $ok within target"
exit $broken
