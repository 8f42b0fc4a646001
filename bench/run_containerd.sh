#!/bin/bash
# Shim benchmarks under a real containerd: containerd-shim-moon-v2 beside
# containerd-shim-runc-v2 on the same private containerd (tests/containerd/lib.sh)
# in the same run, one line per case with ours, the peer, the ratio moon/runc
# (lower is better) and the verdict against the target.
#   ctr_run_true  wall time of `ctr run --rm --rootfs DIR ID /bin/true` (the
#                 whole client round trip: shim start, create, start, wait,
#                 delete, shutdown, the `delete` subcommand), BENCH_RUNS times
#                 each, alternating so machine noise hits both; medians.
#                 Target: ratio <= 0.6.
#   shim_rss      memory of the shim process serving an idle `sleep` container
#                 (`ctr run -d`), VmRSS and Pss after it has been up a moment.
#                 Target: RSS ratio <= 0.15 and RSS <= 2048 kB.
#   shim_threads  threads of that shim process. Target: moon <= 3.
#   stats_cost    CPU time the shim spends per Task.Stats call on a running
#                 `sleep` container: BENCH_STATS_CALLS calls (default 5000)
#                 sent straight to its socket by build/tests/ttcall, the
#                 shim's utime+stime (/proc/PID/stat, all its threads)
#                 before and after; µs per call. Target: ratio <= 0.5.
# Needs root, containerd, ctr and containerd-shim-runc-v2; takes ~20 s.
#   bench/run_containerd.sh [SHIM]    BENCH_RUNS=20  (SHIM: build/containerd-shim-moon-v2)
# CONTAINERD/CTR choose the containerd (tests/containerd/lib.sh); its own
# containerd-shim-runc-v2 is the peer. `make bench` runs it on containerd
# 2.4.2 (with runc 1.5.3) and on Debian's 1.6.
set -uo pipefail
[ $# -gt 0 ] && export MOONSHIM_SHIM=$1
# shellcheck source=tests/containerd/lib.sh
. "$(dirname "$0")/../tests/containerd/lib.sh"
RUNS=${BENCH_RUNS:-20}

RUN_TRUE_TARGET=0.6 # moon/runc, ctr run wall time
RSS_RATIO_TARGET=0.15
RSS_TARGET_KB=2048
THREADS_TARGET=3
STATS_CALLS=${BENCH_STATS_CALLS:-5000}
STATS_TARGET=0.5 # moon/runc, shim CPU per Stats call
TTCALL=$CD_REPO/build/tests/ttcall
IDLE_SECONDS=1 # the shim settles (the Go one's runtime starts its workers) before it is measured

MOON_RT=io.containerd.moon.v2
RUNC_RT=io.containerd.runc.v2

if [ "$(id -u)" -ne 0 ] || [ ! -x "$CD_CONTAINERD" ] || ! command -v containerd-shim-runc-v2 >/dev/null; then
	echo "bench containerd: skipped (needs root, containerd and containerd-shim-runc-v2)"
	exit 0
fi
if [ ! -x "$CD_SHIM" ]; then
	echo "bench containerd: no shim at $CD_SHIM (make it first)"
	exit 1
fi

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
ratio() { awk -v m="$1" -v p="$2" 'BEGIN {if (p + 0 > 0) printf "%.3g", m / p; else print "n/a"}'; }
# shellcheck disable=SC2317 # called through verdict
within() { awk -v v="$1" -v t="$2" 'BEGIN {exit !(v != "n/a" && v + 0 <= t + 0)}'; }
# shellcheck disable=SC2317 # called through verdict
both() { within "$1" "$2" && within "$3" "$4"; }
spread() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {printf "%.1f/%.1f/%.1f", v[1]/1000, v[int(NR*0.9+0.5)]/1000, v[NR]/1000}'; }
now_us() { echo "${EPOCHREALTIME/./}"; } # bash's clock: no fork inside the timed span

ncases=0 ok=0 broken=0
v= # the last verdict
verdict() { # command... -> v=ok if it succeeds, else MISS; counted
	ncases=$((ncases + 1))
	if "$@"; then ok=$((ok + 1)) v=ok; else v=MISS; fi
}

# ─── ctr_run_true ───────────────────────────────────────────────────────────
# one_run RUNTIME ID: prints the wall time of one `ctr run --rm` in µs; fails
# (with ctr's stderr) if ctr does. ctr is called directly: a `timeout` wrapper's
# fork and exec would be in the span.
one_run() {
	local t0 t1 rc
	t0=$(now_us)
	"$CD_CTR" --address "$CD_SOCK" -n "$CD_NS" run --rm --runtime "$1" --fifo-dir "$CD_DIR/fifo" --rootfs "$CD_ROOTFS" "$2" /bin/true \
		</dev/null >/dev/null 2>"$CD_DIR/run.err"
	rc=$?
	t1=$(now_us)
	if [ $rc -ne 0 ]; then
		echo "bench ctr_run_true: ctr run --runtime $1 exited $rc:" >&2
		sed 's/^/  /' "$CD_DIR/run.err" >&2
		return 1
	fi
	echo $((t1 - t0))
}

ctr_run_true() {
	local i t mt=() rt=() m r
	# one unmeasured run each: containerd resolves and caches the shim path,
	# the page cache holds both binaries
	one_run $MOON_RT "$(cd_id warm-moon)" >/dev/null || return 1
	one_run $RUNC_RT "$(cd_id warm-runc)" >/dev/null || return 1
	for ((i = 0; i < RUNS; i++)); do
		t=$(one_run $MOON_RT "$(cd_id "moon$i")") || return 1
		mt+=("$t")
		t=$(one_run $RUNC_RT "$(cd_id "runc$i")") || return 1
		rt+=("$t")
	done
	m=$(printf '%s\n' "${mt[@]}" | median | awk '{printf "%.1f", $1 / 1000}')
	r=$(printf '%s\n' "${rt[@]}" | median | awk '{printf "%.1f", $1 / 1000}')
	echo "  info: $RUNS runs each, alternating; wall time of \`ctr run --rm --rootfs DIR ID /bin/true\`"
	echo "  info: moon min/p90/max $(spread "${mt[@]}") ms, runc-v2 $(spread "${rt[@]}") ms"
	verdict within "$(ratio "$m" "$r")" $RUN_TRUE_TARGET
	echo "bench ctr_run_true$CD_TAG: moonshim=$m ms runc_v2=$r ms ratio=$(ratio "$m" "$r") target<=$RUN_TRUE_TARGET $v"
}

# ─── shim_rss, shim_threads ─────────────────────────────────────────────────
# kb PID FIELD FILE: a "Field:   N kB" value from /proc/PID/FILE.
kb() { awk -v f="$2:" '$1 == f {print $2; exit}' "/proc/$1/$3"; }

# idle_shim RUNTIME ID: starts a detached sleep container, prints its shim's
# pid once it has been idle a moment.
idle_shim() {
	local pid
	if ! cd_ctr run -d --runtime "$1" --fifo-dir "$CD_DIR/fifo" --rootfs "$CD_ROOTFS" "$2" /bin/sleep 1000 </dev/null >/dev/null 2>"$CD_DIR/run.err"; then
		echo "bench shim_rss: ctr run -d --runtime $1 failed:" >&2
		sed 's/^/  /' "$CD_DIR/run.err" >&2
		return 1
	fi
	sleep $IDLE_SECONDS
	pid=$(cd_shim_pids "$2")
	if [ "$(echo "$pid" | wc -w)" -ne 1 ]; then
		echo "bench shim_rss: shims serving $2 ($1): '$pid', want one" >&2
		return 1
	fi
	echo "$pid"
}

shim_memory() {
	local mid rid mp rp m_rss m_pss r_rss r_pss m_thr r_thr m_anon r_anon
	mid=$(cd_id idle-moon) rid=$(cd_id idle-runc)
	mp=$(idle_shim $MOON_RT "$mid") || return 1
	rp=$(idle_shim $RUNC_RT "$rid") || return 1
	m_rss=$(kb "$mp" VmRSS status) m_pss=$(kb "$mp" Pss smaps_rollup) m_anon=$(kb "$mp" RssAnon status)
	r_rss=$(kb "$rp" VmRSS status) r_pss=$(kb "$rp" Pss smaps_rollup) r_anon=$(kb "$rp" RssAnon status)
	m_thr=$(awk '$1 == "Threads:" {print $2}' "/proc/$mp/status")
	r_thr=$(awk '$1 == "Threads:" {print $2}' "/proc/$rp/status")
	echo "  info: moon shim pid $mp ($(readlink "/proc/$mp/exe")): VmRSS $m_rss kB, Pss $m_pss kB, RssAnon $m_anon kB, $m_thr threads, $(find "/proc/$mp/fd" -mindepth 1 | wc -l) fds"
	echo "  info: runc-v2 shim pid $rp ($(readlink "/proc/$rp/exe")): VmRSS $r_rss kB, Pss $r_pss kB, RssAnon $r_anon kB, $r_thr threads, $(find "/proc/$rp/fd" -mindepth 1 | wc -l) fds"
	cd_rm "$mid"
	cd_rm "$rid"

	verdict both "$(ratio "$m_rss" "$r_rss")" $RSS_RATIO_TARGET "$m_rss" $RSS_TARGET_KB
	echo "bench shim_rss$CD_TAG: moonshim=$m_rss kB (Pss $m_pss kB) runc_v2=$r_rss kB (Pss $r_pss kB) ratio=$(ratio "$m_rss" "$r_rss") (Pss $(ratio "$m_pss" "$r_pss")) target<=$RSS_RATIO_TARGET and <=$RSS_TARGET_KB kB $v"
	verdict within "$m_thr" $THREADS_TARGET
	echo "bench shim_threads$CD_TAG: moonshim=$m_thr runc_v2=$r_thr ratio=$(ratio "$m_thr" "$r_thr") target<=$THREADS_TARGET $v"
}

# ─── stats_cost ─────────────────────────────────────────────────────────────
# cpu_us PID: utime+stime of process PID (every thread) in µs.
cpu_us() { awk -v hz="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); printf "%d", ($12 + $13) * 1000000 / hz}' "/proc/$1/stat"; }
# (not the sum of /proc/PID/task/*/schedstat: it counts only the threads
# alive at the time; for runc's shim it read a quarter of this figure)

# stats_per_call PID SOCKET ID: the shim's CPU µs per call; the client's own
# line (its wall time per call) goes to stderr.
stats_per_call() {
	local c0 c1 out
	c0=$(cpu_us "$1")
	# containerd 2.x's runc shim serves the task API as v3 only (status 12:
	# unimplemented for v2): ask it that way
	out=$(CONTAINERD_NAMESPACE=$CD_NS "$TTCALL" "$2" stats "$3" "$STATS_CALLS") ||
		{ [[ $out == *"status 12"* ]] && c0=$(cpu_us "$1") &&
			out=$(CONTAINERD_NAMESPACE=$CD_NS TTCALL_SERVICE=containerd.task.v3.Task "$TTCALL" "$2" stats "$3" "$STATS_CALLS"); } || {
		echo "bench stats_cost: ttcall stats failed: $out" >&2
		return 1
	}
	c1=$(cpu_us "$1")
	echo "  info: $(readlink "/proc/$1/exe"), $STATS_CALLS calls on one connection: $out" >&2
	awk -v c=$((c1 - c0)) -v n="$STATS_CALLS" 'BEGIN {printf "%.1f", c / n}'
}

stats_cost() {
	local mid rid mp rp m r
	[ -x "$TTCALL" ] || { echo "bench stats_cost: no $TTCALL (make all)" >&2; return 1; }
	mid=$(cd_id stats-moon) rid=$(cd_id stats-runc)
	mp=$(idle_shim $MOON_RT "$mid") || return 1
	rp=$(idle_shim $RUNC_RT "$rid") || return 1
	m=$(stats_per_call "$mp" "$(cd_shim_socket "$mid")" "$mid") || return 1
	r=$(stats_per_call "$rp" "$(cd_shim_socket "$rid")" "$rid") || return 1
	cd_rm "$mid"
	cd_rm "$rid"
	verdict within "$(ratio "$m" "$r")" $STATS_TARGET
	echo "bench stats_cost: moonshim=$m us runc_v2=$r us ratio=$(ratio "$m" "$r") target<=$STATS_TARGET $v"
}

cd_start || exit 1
cd_rootfs
CD_VERSION=$("$CD_CTR" --address "$CD_SOCK" version 2>/dev/null | awk '/Server:/ {s=1} s && $1 == "Version:" {print $2; exit}')
# each line names the containerd (and so the containerd-shim-runc-v2) it ran on
CD_TAG=" (containerd ${CD_VERSION#v})"
echo "  info: containerd $CD_VERSION, runc shim $CD_RUNC_SHIM, shim $CD_SHIM"
ctr_run_true || broken=1
shim_memory || broken=1
stats_cost || broken=1
echo "bench containerd: $ncases cases, $ok within target"
exit $broken
