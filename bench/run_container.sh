#!/bin/bash
# Container benchmarks: `moonshim run` beside runc on the same busybox bundle
# (tests/container/mkbundle.sh), one line per case with ours, the peer, the
# ratio moonshim/runc (lower is better) and the verdict against the target.
#   run_true       wall time of a foreground `run` of /bin/true, create to
#                  exit and clean-up, BENCH_RUNS times each, alternating so
#                  machine noise hits both; medians. Target: ratio <= 0.3.
#   supervise_rss  memory of the moonshim process that supervises a detached
#                  container (the parent of its init): VmRSS and Pss. runc
#                  leaves no process behind a detached container, so the peer
#                  is runc's own process during a foreground `runc run` of the
#                  same bundle, as context. Target: RSS <= 1536 kB.
# Needs root and runc; takes ~10 s.
#   bench/run_container.sh [MOONSHIM]    BENCH_RUNS=30  RUNC=runc
set -uo pipefail
MOONSHIM=$(realpath "${1:-build/moonshim}")
RUNC=${RUNC:-runc}
RUNS=${BENCH_RUNS:-30}
REPO=$(cd "$(dirname "$0")/.." && pwd)

RUN_TRUE_TARGET=0.3  # moonshim/runc, wall time
RSS_TARGET_KB=1536   # the supervisor's VmRSS
STEP_TIMEOUT=30      # seconds one runtime invocation may take before it is killed
READY_TRIES=200      # 10 ms polls for a container to be running (2 s)

if [ "$(id -u)" -ne 0 ] || ! command -v "$RUNC" >/dev/null; then
	echo "bench container: skipped (needs root and runc)"
	exit 0
fi

T=$(mktemp -d /tmp/moonshim-bench-ct.XXXXXX)
ids_moon=() ids_runc=()
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	local id
	for id in "${ids_moon[@]}"; do
		timeout 10 "$MOONSHIM" --root "$T/moon" delete --force "$id" >/dev/null 2>&1
	done
	for id in "${ids_runc[@]}"; do
		timeout 10 "$RUNC" --root "$T/runc" delete -f "$id" >/dev/null 2>&1
	done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

moon() { timeout -k 5 $STEP_TIMEOUT "$MOONSHIM" --root "$T/moon" "$@"; }
runc_() { timeout -k 5 $STEP_TIMEOUT "$RUNC" --root "$T/runc" "$@"; }

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
ratio() { awk -v m="$1" -v p="$2" 'BEGIN {if (p + 0 > 0) printf "%.3g", m / p; else print "n/a"}'; }
# shellcheck disable=SC2317 # called through verdict
within() { awk -v v="$1" -v t="$2" 'BEGIN {exit !(v + 0 <= t + 0)}'; }
spread() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {printf "%.1f/%.1f/%.1f", v[1]/1000, v[int(NR*0.9+0.5)]/1000, v[NR]/1000}'; }
now_us() { echo "${EPOCHREALTIME/./}"; } # bash's clock: no fork inside the timed span

ncases=0 ok=0 broken=0
v= # the last verdict
verdict() { # command... -> v=ok if it succeeds, else MISS; counted
	ncases=$((ncases + 1))
	if "$@"; then ok=$((ok + 1)) v=ok; else v=MISS; fi
}

# bundle DIR ARGS...: a busybox bundle running ARGS (quietly: mkbundle.sh
# only talks on failure).
bundle() {
	local dir=$1
	shift
	bash "$REPO/tests/container/mkbundle.sh" "$dir" -- "$@" >"$T/mkbundle.log" 2>&1 || {
		echo "bench container: could not build the bundle in $dir:"
		cat "$T/mkbundle.log"
		return 1
	}
}

# ─── run_true ───────────────────────────────────────────────────────────────
# One foreground run each: the time from exec to exit of the runtime, which
# includes creating the container, running /bin/true, and removing it. The
# runtimes are called directly (no `timeout` wrapper): a wrapper's own fork
# and exec would be in the span and shrink the ratio toward 1.
run_true() {
	local i t0 t1 id rc mt=() rt=() m r err=$T/run_true.err
	bundle "$T/true" /bin/true || return 1
	for ((i = 0; i < RUNS; i++)); do
		id=moon-true-$i
		t0=$(now_us)
		"$MOONSHIM" --root "$T/moon" run --bundle "$T/true" "$id" </dev/null >/dev/null 2>"$err"
		rc=$?
		t1=$(now_us)
		if [ $rc -ne 0 ]; then
			ids_moon+=("$id")
			echo "bench run_true: moonshim run exited $rc:"
			sed 's/^/  /' "$err"
			return 1
		fi
		mt+=($((t1 - t0)))
		id=runc-true-$i
		t0=$(now_us)
		"$RUNC" --root "$T/runc" run --bundle "$T/true" "$id" </dev/null >/dev/null 2>"$err"
		rc=$?
		t1=$(now_us)
		if [ $rc -ne 0 ]; then
			ids_runc+=("$id")
			echo "bench run_true: runc run exited $rc:"
			sed 's/^/  /' "$err"
			return 1
		fi
		rt+=($((t1 - t0)))
	done
	m=$(printf '%s\n' "${mt[@]}" | median | awk '{printf "%.2f", $1 / 1000}')
	r=$(printf '%s\n' "${rt[@]}" | median | awk '{printf "%.2f", $1 / 1000}')
	echo "  info: $RUNS runs each, alternating; wall time of \`run\` of /bin/true (create, run, wait, clean up)"
	echo "  info: moonshim min/p90/max $(spread "${mt[@]}") ms, runc $(spread "${rt[@]}") ms"
	verdict within "$(ratio "$m" "$r")" $RUN_TRUE_TARGET
	echo "bench run_true: moonshim=$m ms runc=$r ms ratio=$(ratio "$m" "$r") target<=$RUN_TRUE_TARGET $v"
}

# ─── supervise_rss ──────────────────────────────────────────────────────────
# kb PID FIELD FILE: a "Field:   N kB" value from /proc/PID/FILE.
kb() { awk -v f="$2:" '$1 == f {print $2; exit}' "/proc/$1/$3"; }

# wait_running SIDE ID: poll the runtime's state until the container runs.
wait_running() {
	local i s
	for ((i = 0; i < READY_TRIES; i++)); do
		s=$("$1" state "$2" 2>/dev/null | jq -r '.status // empty' 2>/dev/null)
		[ "$s" = running ] && return 0
		sleep 0.01
	done
	return 1
}

supervise_rss() {
	local id=moon-sleep pid sup exe m_rss m_pss r_rss r_pss rpid err=$T/supervise.err
	bundle "$T/sleep" sleep 1000 || return 1

	ids_moon+=("$id")
	if ! moon run -d --bundle "$T/sleep" "$id" </dev/null >/dev/null 2>"$err"; then
		echo "bench supervise_rss: moonshim run -d failed:"
		sed 's/^/  /' "$err"
		return 1
	fi
	wait_running moon "$id" || { echo "bench supervise_rss: moonshim's container never reported running"; return 1; }
	pid=$(moon state "$id" | jq -r '.pid // empty')
	sup=$(awk '$1 == "PPid:" {print $2}' "/proc/$pid/status" 2>/dev/null)
	exe=$(readlink "/proc/$sup/exe" 2>/dev/null)
	if [ -z "$sup" ] || [ "$exe" != "$MOONSHIM" ]; then
		echo "bench supervise_rss: the parent of the container's init (pid ${pid:-?}) is ${sup:-?} (${exe:-?}), not $MOONSHIM"
		return 1
	fi
	m_rss=$(kb "$sup" VmRSS status) m_pss=$(kb "$sup" Pss smaps_rollup)
	echo "  info: moonshim supervisor pid $sup (parent of init $pid): VmRSS $m_rss kB, Pss $m_pss kB, $(awk '$1 == "Threads:" {print $2}' "/proc/$sup/status") threads"
	moon kill "$id" KILL >/dev/null 2>&1
	moon delete --force "$id" >/dev/null 2>&1

	# The peer: runc in the foreground stays until the container exits.
	id=runc-sleep
	ids_runc+=("$id")
	"$RUNC" --root "$T/runc" run --bundle "$T/sleep" "$id" </dev/null >/dev/null 2>"$err" &
	rpid=$!
	if wait_running runc_ "$id"; then
		r_rss=$(kb "$rpid" VmRSS status) r_pss=$(kb "$rpid" Pss smaps_rollup)
		echo "  info: runc run (foreground) pid $rpid: VmRSS $r_rss kB, Pss $r_pss kB"
	else
		echo "  info: runc's container never reported running:"
		sed 's/^/    /' "$err"
	fi
	runc_ kill "$id" KILL >/dev/null 2>&1
	wait "$rpid" 2>/dev/null
	runc_ delete -f "$id" >/dev/null 2>&1

	verdict within "$m_rss" $RSS_TARGET_KB
	echo "bench supervise_rss: moonshim=$m_rss kB (Pss $m_pss kB) runc_foreground=${r_rss:-n/a} kB (Pss ${r_pss:-n/a} kB) ratio=$(ratio "$m_rss" "${r_rss:-0}") target<=$RSS_TARGET_KB kB $v"
}

run_true || broken=1
supervise_rss || broken=1
echo "bench container: $ncases cases, $ok within target"
exit $broken
