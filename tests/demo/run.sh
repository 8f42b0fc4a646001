#!/bin/bash
# `make demo`: a Go web service (tests/demo/web) in a moonshim container with
# memory, pids and CPU limits, its request log and the container's cgroup
# events printed side by side as they happen.
#   web: ...     the service's own log (the container's stdout)
#   event: ...   a line of moonshim's --events file (exit, memory.high, oom_kill, ...)
#   demo: ...    this script: what the background driver does, and the ending
# A driver requests / and allocates memory past memory.high so events appear
# without any input; then it is the user's turn (curl), and Ctrl-C stops it
# all: the container gets SIGINT and exits 0, moonshim removes its cgroup and
# state, and this script checks both and exits 0.
#   tests/demo/run.sh [MOONSHIM] [WEB]     (default build/moonshim build/demo/web)
#   DEMO_SECONDS=N   stop by itself after N seconds (SIGINT to moonshim), for CI
#   DEMO_DIR=DIR     bundle, state and events (default: the directory of WEB)
DEMO_REPO=$(cd "$(dirname "$0")/../.." && pwd)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
MOONSHIM=${1:-build/moonshim}
WEB=${2:-build/demo/web}
DIR=${DEMO_DIR:-$(dirname "$WEB")}
SECONDS_LIMIT=${DEMO_SECONDS:-}
ID=demo
PORT=8080
BUNDLE=$DIR/bundle
STATE=$DIR/state
EVENTS=$DIR/events.jsonl
CGROUPS=$DIR/cgroups # the container's cgroup dirs, recorded while it runs

MIB=$((1 << 20))
MEM_LIMIT=$((256 * MIB))      # memory.max / memory.limit_in_bytes
MEM_RESERVATION=$((64 * MIB)) # memory.high on v2, the soft limit on v1
PIDS_LIMIT=64
CPU_PERIOD=100000 # us
CPU_QUOTA=50000   # us per period: half a core

say() { echo "demo: $*"; }
die() { echo "demo: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (namespaces and cgroups); try: sudo make demo"
[ -x "$MOONSHIM" ] || die "$MOONSHIM is missing; build it with: make $MOONSHIM"
[ -x "$WEB" ] || die "$WEB is missing; build it with: make $WEB"
# A container left by an interrupted earlier run would make `run` refuse the
# id (and hold the port).
if "$MOONSHIM" --root "$STATE" state "$ID" >/dev/null 2>&1; then
	say "removing container \"$ID\" left by an earlier run"
	"$MOONSHIM" --root "$STATE" delete --force "$ID"
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
	die "something already listens on port $PORT; stop it first (the service needs that port)"
fi

# ─── the bundle ─────────────────────────────────────────────────────────────
rm -rf "$BUNDLE"
bash tests/container/mkbundle.sh "$BUNDLE" -- /bin/web || die "could not build the bundle in $BUNDLE"
cp "$WEB" "$BUNDLE/rootfs/bin/web"
# No network namespace: the container shares the host's, so the service's
# :8080 is the host's :8080 and `curl localhost:8080` works without a veth
# pair, a bridge or port forwarding (which a container runtime leaves to a
# CNI plugin; moonshim only brings up loopback in a new network namespace).
jq --arg host moonshim-demo \
	--argjson limit $MEM_LIMIT --argjson reservation $MEM_RESERVATION \
	--argjson pids $PIDS_LIMIT --argjson quota $CPU_QUOTA --argjson period $CPU_PERIOD '
	  .hostname = $host
	| .linux.namespaces |= map(select(.type != "network"))
	| .linux.resources.memory = {limit: $limit, reservation: $reservation}
	| .linux.resources.pids = {limit: $pids}
	| .linux.resources.cpu = {quota: $quota, period: $period}' \
	"$BUNDLE/config.json" >"$BUNDLE/config.json.new" && mv "$BUNDLE/config.json.new" "$BUNDLE/config.json" ||
	die "could not edit $BUNDLE/config.json"

: >"$EVENTS"
rm -f "$CGROUPS"

# ─── the background helpers ─────────────────────────────────────────────────
# They ignore SIGINT (a command started with & does, but a bash subshell
# running a function catches it again, hence the trap in each), so Ctrl-C
# reaches only moonshim and the container; they are stopped once moonshim
# has finished, after the last events have been printed.

# format_events: one readable line per JSON event: time of day, type, and
# whatever else the event carries as key=value.
format_events() {
	trap '' INT
	jq -R -r --unbuffered '
	  # counters as "high:1,max:2", the ones at 0 left out
	  def show: if type == "string" then .
	    elif type == "object" then
	      ([to_entries[] | select(.value != 0) | "\(.key):\(.value | tojson)"] | join(",")) as $s
	      | if $s == "" then "0" else $s end
	    else tojson end;
	  (fromjson? // {type: "unparsed", line: .})
	| (.time | tostring) as $t
	| ([$t | capture("T(?<c>[0-9:]+([.][0-9]{1,3})?)")][0].c // $t) as $clock
	| (del(.time, .id, .type) | to_entries | map("\(.key)=\(.value | show)") | join(" ")) as $rest
	| "event: \($clock) \(.type) \($rest)"'
}

# driver: wait for the service, record the container's cgroups, then request
# / and allocate past memory.high (64 MiB) but below memory.max (256 MiB).
driver() {
	local cpid=
	trap '' INT
	trap '[ -n "$cpid" ] && kill "$cpid" 2>/dev/null && wait "$cpid"; exit 0' TERM
	req() { # PATH: one request, its answer printed as a demo: line; fails
		# quietly when the service is gone (stopped, or killed: the events say)
		local out rc
		out=$(mktemp)
		curl -sS --max-time 60 "http://localhost:$PORT$1" >"$out" 2>&1 &
		cpid=$!
		wait "$cpid"
		rc=$?
		cpid=
		[ $rc -eq 0 ] && say "GET $1: $(tr '\n' ' ' <"$out")"
		rm -f "$out"
		return $rc
	}
	local i pid
	for ((i = 0; i < 100; i++)); do
		curl -sf --max-time 1 "http://localhost:$PORT/healthz" >/dev/null 2>&1 && break
		sleep 0.1
	done
	[ $i -lt 100 ] || { say "the service did not answer on :$PORT within 10 s"; return; }
	pid=$("$MOONSHIM" --root "$STATE" state "$ID" 2>/dev/null | jq -r '.pid // empty')
	if [ -n "$pid" ] && [ -r "/proc/$pid/cgroup" ]; then
		cp "/proc/$pid/cgroup" "$CGROUPS"
	else
		say "could not read the container's pid from \`moonshim state $ID\`"
	fi
	req / || return
	for i in 1 2; do
		req "/alloc?mb=100" || return
		sleep 1
	done
	say "holding 200 MiB for 5 s: the memory guard's ladder climbs"
	sleep 5
	req / && req /free || return
	sleep 14 # the ladder judges its throttle and, calm again, relaxes it
	sleep 1
	req "/alloc?mb=100" && req /free || return
	say "leaking 20 goroutines a second for 25 s: moonshim's Go watcher scrapes pprof"
	for ((i = 0; i < 25; i++)); do
		curl -sf --max-time 2 "http://localhost:$PORT/leak?n=20" >/dev/null || return
		sleep 1
	done
	req / || return
	say "your turn: curl localhost:$PORT/alloc?mb=200 (twice to reach memory.max and the OOM killer),"
	say "          curl localhost:$PORT/free, curl localhost:$PORT/ -- and Ctrl-C to stop"
}

# follow_events FILE STOP: print FILE's lines as they are appended (like
# tail -f) until the file STOP exists and every line has been printed, so
# the last events (exit) are never cut off.
follow_events() {
	local line='' part
	trap '' INT
	exec 4<"$1"
	while :; do
		if IFS= read -r part <&4; then
			printf '%s\n' "$line$part"
			line=
		else
			line+=$part # a line still being written
			[ -e "$2" ] && break
			sleep 0.1
		fi
	done
}

STOP=$DIR/events.stop
driver_pid=
stop_helpers() {
	[ -n "$driver_pid" ] && kill "$driver_pid" 2>/dev/null
	touch "$STOP" # follow_events drains the file and ends, then the formatter
	wait 2>/dev/null
	rm -f "$STOP"
	driver_pid=
}
trap stop_helpers EXIT

rm -f "$STOP"
follow_events "$EVENTS" "$STOP" | format_events &
driver &
driver_pid=$!

# ─── the container ──────────────────────────────────────────────────────────
limits="memory.max $((MEM_LIMIT / MIB)) MiB, memory.high $((MEM_RESERVATION / MIB)) MiB, pids $PIDS_LIMIT, cpu $((CPU_QUOTA * 100 / CPU_PERIOD))%"
say "running the service in container \"$ID\" ($limits); events from $EVENTS"
[ -n "$SECONDS_LIMIT" ] && say "stopping by itself after $SECONDS_LIMIT s (DEMO_SECONDS)"
runner=()
# --foreground keeps moonshim in the terminal's process group, so Ctrl-C
# still reaches it; after the time, SIGINT, and SIGKILL if it hangs 30 s more.
[ -n "$SECONDS_LIMIT" ] && runner=(timeout --foreground --preserve-status -k 30 -s INT "$SECONDS_LIMIT")
# Ctrl-C: bash waits for moonshim (which forwards it to the container) and
# then carries on here instead of dying with it.
trap ':' INT
# the demo's health check (HTTP on /healthz, a goroutine not a process per
# probe), its memory guard (the ladder, tests/demo/policy.lua) and the Go
# watcher (SCHED lines from its stderr, its goroutine profile from pprof);
# their events join the stream
"${runner[@]}" "$MOONSHIM" --root "$STATE" run --bundle "$BUNDLE" --events "$EVENTS" \
	--check "$DEMO_REPO/scripts/http-check.lua" --policy "$DEMO_REPO/tests/demo/policy.lua" \
	--go-watch "schedtrace=2000,pprof=http://127.0.0.1:$PORT,interval=2" "$ID"
rc=$?
trap - INT
stop_helpers

# ─── what it left ───────────────────────────────────────────────────────────
left=0
if "$MOONSHIM" --root "$STATE" state "$ID" >/dev/null 2>&1; then
	say "moonshim left the container's state: \`moonshim --root $STATE state $ID\` still answers"
	left=1
fi
# left_cgroups FILE: the directories of FILE (a copy of /proc/PID/cgroup,
# lines "N:controllers:path") that still exist. Each hierarchy's mount point
# comes from mountinfo (field 5 the mount point, field 4 the root it shows).
left_cgroups() {
	local ctrls path mnt root d
	while IFS=: read -r _ ctrls path; do
		[ "$path" = / ] && continue # a hierarchy the container was not placed in
		for mnt in $(awk -v c="$ctrls" '{
			for (i = 7; $i != "-"; i++);
			fs = $(i + 1); opts = "," $(i + 3) ","
			if (c == "" && fs == "cgroup2") print $5 "|" $4
			else if (c != "" && fs == "cgroup") {
				n = split(c, want, ","); ok = 1
				for (j = 1; j <= n; j++) if (index(opts, "," want[j] ",") == 0) ok = 0
				if (ok) print $5 "|" $4
			}
		}' /proc/self/mountinfo); do
			root=${mnt#*|} mnt=${mnt%|*}
			[ "$root" = / ] && root=
			d=$mnt${path#"$root"}
			[ "$d" != "$mnt" ] && [ -d "$d" ] && echo "$d"
		done
	done <"$1"
	return 0
}
if [ -s "$CGROUPS" ]; then
	for d in $(left_cgroups "$CGROUPS"); do
		say "moonshim left the container's cgroup $d"
		left=1
	done
fi

if [ $rc -eq 0 ] && [ $left -eq 0 ]; then
	say "the container exited 0; its cgroup and state are gone"
	exit 0
fi
if grep -q '"type":"oom_kill"' "$EVENTS"; then
	say "moonshim exited $rc: the OOM killer ended the container at memory.max ($((MEM_LIMIT / MIB)) MiB)"
elif [ $rc -gt 128 ]; then
	say "moonshim exited $rc: the container was killed by signal $((rc - 128))"
else
	say "moonshim exited $rc"
fi
[ $rc -ne 0 ] && exit $rc
exit 1
