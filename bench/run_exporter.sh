#!/bin/bash
# `moonshim metrics` benchmarks, one line per case.
#   exporter_scrape  CPU the exporter process spends per scrape of
#                    /metrics (HTTP, scanning, parsing, cgroup reads,
#                    rendering) with 100 live containers' state: 100
#                    status.json files as a supervisor with two checks,
#                    a Go watch and a policy writes them, each naming its
#                    own real cgroup (memory, CPU and PSI files read at
#                    every scrape), all supervised — for liveness — by one
#                    running process. SCRAPES scrapes by curl, one after the
#                    other; CPU from the exporter's /proc stat. No fair peer
#                    exists (cAdvisor is not packaged, and reads other
#                    things), so the ratio is to a 1 s budget: the share of
#                    one core a 1 s scrape interval would take. Target: <= 0.1.
#   publish_cost     the extra CPU of publishing in a supervisor: detached
#                    containers with a check every 100 ms run side by side for
#                    SECS seconds, PAIRS supervisors publishing (the default)
#                    and PAIRS with MOONSHIM_NO_PUBLISH=1; CPU ms per second of
#                    one supervisor, from /proc. Ratio with/without (lower is
#                    better). Target: <= 1.2.
# Needs root; takes ~60 s.
#   bench/run_exporter.sh [MOONSHIM]    SCRAPES=300 SECS=20 PAIRS=4
set -uo pipefail
MOONSHIM=$(realpath "${1:-build/moonshim}")
REPO=$(cd "$(dirname "$0")/.." && pwd)
SCRAPES=${SCRAPES:-300}
SECS=${SECS:-20}
PAIRS=${PAIRS:-4}
CONTAINERS=100
SCRAPE_TARGET=0.1   # CPU seconds per scrape / 1 s interval: a tenth of a core at most
PUBLISH_TARGET=1.2  # supervisor CPU with publishing / without
TICK=$(getconf CLK_TCK)

if [ "$(id -u)" -ne 0 ] || ! command -v curl >/dev/null; then
	echo "bench exporter: skipped (needs root and curl)"
	exit 0
fi

T=$(mktemp -d /tmp/moonshim-bench-exp.XXXXXX)
CG=moonshim-bench-exp-$$
cgdirs=() pids=()
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	local d p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for d in "$T"/ct/*/; do
		[ -d "$d" ] && timeout 10 "$MOONSHIM" --root "$T/ct" delete --force "$(basename "$d")" >/dev/null 2>&1
	done
	wait 2>/dev/null
	for d in "${cgdirs[@]}"; do rmdir "$d"/c* "$d" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

ratio() { awk -v m="$1" -v p="$2" 'BEGIN {if (p + 0 > 0) printf "%.3g", m / p; else print "n/a"}'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN {print (r != "n/a" && r + 0 <= t + 0) ? "PASS" : "MISS"}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null; } # utime + stime
start_time() { awk '{print $22}' "/proc/$1/stat"; }

# ─── exporter_scrape ─────────────────────────────────────────────────────
# a cgroup per container in every tree the host mounts (unified, and the v1
# memory, cpu and pids hierarchies of a hybrid host)
while read -r _ mnt type opts _; do
	case $type in
	cgroup2) cgdirs+=("$mnt/$CG") ;;
	cgroup) [[ ,$opts, == *,memory,* || ,$opts, == *,cpu,* || ,$opts, == *,pids,* ]] && cgdirs+=("$mnt/$CG") ;;
	esac
done </proc/self/mounts
for d in "${cgdirs[@]}"; do
	mkdir -p "$d"
	for i in $(seq $CONTAINERS); do mkdir -p "$d/c$i"; done
done
sleep 1000 &
live=$!
pids+=("$live")
st=$(start_time "$live")
mkdir -p "$T/run" "$T/cd"
for i in $(seq $CONTAINERS); do
	mkdir -p "$T/run/c$i"
	cat >"$T/run/c$i/status.json" <<J
{"version":1,"id":"c$i","mode":"run","labels":{"container":"app$i","pod":"pod$i","namespace":"default"},
"supervisor":{"pid":$live,"start_time":$st},"cgroup":"$CG/c$i","updated":"2026-12-05T21:25:37.5Z",
"process":{"status":"running","pid":4242,"started":"2026-12-05T21:25:30Z","restarts":1},
"scripts":[{"name":"checks.lua","kind":"check"},{"name":"policy.lua","kind":"policy"}],
"health":{"Status":"healthy","FailingStreak":0,"Log":[],"Ready":true,"Checks":[
{"Name":"http","Role":"liveness","Status":"healthy","FailingStreak":0,"Log":[],"Probes":{"pass":900,"fail":3,"timeout":1,"error":0,"duration":{"le":[0.001,0.0025,0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10],"counts":[100,300,200,150,100,30,10,8,3,1,1,0,0,2],"sum":4.2}}},
{"Name":"ready","Role":"readiness","Status":"healthy","FailingStreak":0,"Log":[],"Probes":{"pass":450,"fail":0,"timeout":0,"error":0,"duration":{"le":[0.001,0.0025,0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10],"counts":[200,200,50,0,0,0,0,0,0,0,0,0,0,0],"sum":0.6}}}]},
"events":{"start":1,"health":4,"memory.high":12,"policy.action":3,"pressure":2},
"policy":{"actions":{"restart":1,"throttle":2},"step":1},
"go":{"findings":{"goroutine_leak":1,"sched_anomaly":2},"last_findings":[],"sched":{"uptime_ms":90000,"gomaxprocs":4,"idleprocs":2,"threads":11,"spinningthreads":0,"idlethreads":4,"runqueue":0}},
"errors":{"count":1,"by_script":{"checks.lua":1},"last":[]},
"runtime":{"goroutines":14,"steals":120,"parks":9000,"switches":40000,"threads":4,"rss_bytes":1400000}}
J
done

"$MOONSHIM" --root "$T/run" metrics --listen 127.0.0.1:0 --containerd-root "$T/cd" 2>"$T/exporter.log" &
exp=$!
pids+=("$exp")
for _ in $(seq 50); do
	port=$(grep -o 'port [0-9]*' "$T/exporter.log" | cut -d' ' -f2)
	[ -n "$port" ] && break
	sleep 0.1
done
[ -n "${port:-}" ] || { echo "bench exporter_scrape: the exporter did not start: $(cat "$T/exporter.log")"; exit 1; }
url=http://127.0.0.1:$port/metrics
for _ in 1 2 3 4 5; do curl -s -o "$T/scrape" "$url"; done # warm: page cache, allocator
n=$(grep -c 'id="c' "$T/scrape")
live_n=$(sed -n 's/^moonshim_containers{mode="run"} //p' "$T/scrape")
c0=$(cpu_ticks "$exp")
for _ in $(seq "$SCRAPES"); do curl -s -o /dev/null "$url"; done
c1=$(cpu_ticks "$exp")
us=$(awk -v d=$((c1 - c0)) -v t="$TICK" -v n="$SCRAPES" 'BEGIN {printf "%.0f", d / t * 1e6 / n}')
r=$(ratio "$(awk -v u="$us" 'BEGIN {print u / 1e6}')" 1)
echo "  info: $live_n live containers, $n series, $(wc -c <"$T/scrape") bytes per scrape, $SCRAPES scrapes"
echo "bench exporter_scrape: moonshim=$us us/scrape budget=1000000 us ratio=$r target<=$SCRAPE_TARGET $(verdict "$r" $SCRAPE_TARGET)"
kill "$exp" 2>/dev/null

# ─── publish_cost ────────────────────────────────────────────────────────
bash "$REPO/tests/container/mkbundle.sh" "$T/b" -- sh -c 'exec sleep 600' >/dev/null
cat >"$T/check.lua" <<'L'
check { name = "tick", interval = 0.1, retries = 3, run = function() return true end }
L
mkdir -p "$T/ct"
# PAIRS of each, their CPU summed: a supervisor takes a few ms a second,
# and /proc counts in clock ticks (10 ms)
for i in $(seq "$PAIRS"); do
	"$MOONSHIM" --root "$T/ct" run -d --bundle "$T/b" --check "$T/check.lua" "pub$i" >/dev/null 2>&1 &&
		MOONSHIM_NO_PUBLISH=1 "$MOONSHIM" --root "$T/ct" run -d --bundle "$T/b" --check "$T/check.lua" "nopub$i" >/dev/null 2>&1 ||
		{ echo "bench publish_cost: run -d failed"; exit 1; }
done
[ -f "$T/ct/pub1/status.json" ] && [ ! -f "$T/ct/nopub1/status.json" ] ||
	echo "  info: WARNING: expected status.json for pub1 only (pub1: $(ls "$T/ct/pub1"), nopub1: $(ls "$T/ct/nopub1"))"
sv_cpu() { # PREFIX: the summed CPU ticks of its supervisors
	local i sum=0 sv
	for i in $(seq "$PAIRS"); do
		sv=$(jq -r .supervisor "$T/ct/$1$i/state.json")
		sum=$((sum + $(cpu_ticks "$sv")))
	done
	echo $sum
}
sleep 1
a0=$(sv_cpu pub) b0=$(sv_cpu nopub)
sleep "$SECS"
a1=$(sv_cpu pub) b1=$(sv_cpu nopub)
ms_pub=$(awk -v d=$((a1 - a0)) -v t="$TICK" -v n="$PAIRS" -v s="$SECS" 'BEGIN {printf "%.2f", d / t * 1000 / n / s}')
ms_no=$(awk -v d=$((b1 - b0)) -v t="$TICK" -v n="$PAIRS" -v s="$SECS" 'BEGIN {printf "%.2f", d / t * 1000 / n / s}')
r=$(ratio "$ms_pub" "$ms_no")
probes=$(jq -r '.health.Checks[0].Probes.pass // "?"' "$T/ct/pub1/status.json" 2>/dev/null)
echo "  info: $PAIRS supervisors each way for $SECS s, a check every 100 ms ($probes probes in pub1's last status.json)"
echo "bench publish_cost: publishing=$ms_pub ms/s without=$ms_no ms/s ratio=$r target<=$PUBLISH_TARGET $(verdict "$r" $PUBLISH_TARGET)"
