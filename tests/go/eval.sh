#!/bin/bash
# eval.sh — `make eval-go`: every Go fixture (tests/go/fixtures, listed in
# expect.tsv) under `moonshim run --go-watch` in a busybox container of its
# own (its own network namespace, so each serves pprof on 127.0.0.1:6060),
# a few at a time. One line per fixture: expected, detected, seconds to
# detect, the site named; then `TP=.. FP=.. FN=..` and
# `eval-go: N passed, N failed`. Every fixture runs with schedtrace, gctrace
# and pprof watched; expect.tsv's env column adds to its environment
# (VAR=VALUE, comma-separated) and its cgroup column sets limits:
# cpu=CORES (a CPU quota), mem=BYTES (linux.resources.memory.limit).
#   tests/go/eval.sh [SECONDS]    (default 60: the issue's bound; make test runs a short one)
#   EVAL_JOBS=N   fixtures at once (default 4)
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
MS=${MOONSHIM_BIN:-$REPO/build/moonshim}
LIMIT=${1:-60}
JOBS=${EVAL_JOBS:-4}
GODIR=${EVAL_GO_DIR:-$REPO/tests/go} # the fixtures and their build script
FIX=$GODIR/fixtures
BIN=$REPO/build/go-fixtures
T=$(mktemp -d /tmp/moonshim-evalgo.XXXXXX)
cleanup() {
	for d in "$T"/root/*; do [ -d "$d" ] && "$MS" --root "$T/root" delete --force "$(basename "$d")" >/dev/null 2>&1; done
	rm -rf "$T"
}
trap cleanup EXIT

bash "$GODIR/build-fixtures.sh" "$BIN" >"$T/build.log" 2>&1 || {
	cat "$T/build.log"
	echo "eval-go: 0 passed, 1 failed"
	exit 1
}

# run_one NAME EVENT KIND SITE ENV CGROUP: writes $T/NAME.result
# "verdict expected detected seconds site"
run_one() {
	local name=$1 event=$2 kind=$3 site=$4 env=$5 cgroup=$6
	local b=$T/b-$name ev=$T/$name.events
	bash "$REPO/tests/container/mkbundle.sh" "$b" -- "/bin/$name" >/dev/null
	cp "$BIN/$name" "$b/rootfs/bin/$name"
	local jqf='.root.readonly = false'
	if [ "$env" != - ]; then
		jqf+=" | .process.env += [\"${env//,/\",\"}\"]"
	fi
	local lim
	for lim in ${cgroup//,/ }; do
		case $lim in
		-) ;;
		cpu=[0-9]*) jqf+=" | .linux.resources.cpu = {\"quota\": $((${lim#cpu=} * 100000)), \"period\": 100000}" ;;
		mem=[0-9]*) jqf+=" | .linux.resources.memory = {\"limit\": ${lim#mem=}}" ;;
		*) echo "eval.sh: $name: cgroup column: \"$lim\" is not cpu=CORES or mem=BYTES" >&2 ;;
		esac
	done
	jq "$jqf" "$b/config.json" >"$b/c.json" && mv "$b/c.json" "$b/config.json"
	local start=$SECONDS found=
	"$MS" --root "$T/root" run --bundle "$b" --events "$ev" \
		--go-watch "schedtrace=1000,gctrace,pprof=http://127.0.0.1:6060,interval=2" "eval-$name" \
		>"$T/$name.out" 2>"$T/$name.err" &
	local pid=$!
	while [ $((SECONDS - start)) -lt "$LIMIT" ] && kill -0 $pid 2>/dev/null; do
		if [ "$event" != none ] && [ -s "$ev" ] &&
			jq -e --arg t "$event" --arg k "$kind" 'select(.type == $t and .subject == "workload"
				and ($k == "-" or .kind == $k or ($k == "site" and (.kind == "site" or .kind == "leakprofile"))))' \
				"$ev" >/dev/null 2>&1; then
			found=$((SECONDS - start))
			break
		fi
		sleep 1
	done
	kill -TERM $pid 2>/dev/null
	wait $pid 2>/dev/null
	local got_site=- detected=none
	if [ -s "$ev" ]; then
		detected=$(jq -r 'select(.subject == "workload" and (.type == "go.goroutine_leak" or .type == "go.sched_anomaly"
			or .type == "go.gc_thrash"))
			| .type + "/" + .kind' "$ev" 2>/dev/null | sort -u | tr '\n' ' ')
		[ -n "$detected" ] || detected=none
		if [ "$event" = go.goroutine_leak ]; then
			got_site=$(jq -r --arg s "$site" 'select(.type == "go.goroutine_leak" and .site != null
				and (.site | endswith($s))) | .site' "$ev" 2>/dev/null | head -1)
			[ -n "$got_site" ] || got_site=-
		fi
	fi
	local verdict
	if [ "$event" = none ]; then
		if [ "$detected" = none ] || ! grep -q go.goroutine_leak <<<"$detected"; then verdict=TN; else verdict=FP; fi
	elif [ -n "$found" ] && { [ "$site" = - ] || [ "$got_site" != - ]; }; then
		verdict=TP
	else
		verdict=FN
	fi
	echo "$verdict ${found:--} $got_site $detected" >"$T/$name.result"
}

names=()
running=()
while IFS=$'\t' read -r name event kind site env cgroup; do
	[ -z "$name" ] || [ "${name:0:1}" = "#" ] || [ "$name" = name ] && continue
	names+=("$name")
	while [ ${#running[@]} -ge "$JOBS" ]; do
		wait -n
		still=()
		for p in "${running[@]}"; do kill -0 "$p" 2>/dev/null && still+=("$p"); done
		running=("${still[@]}")
	done
	run_one "$name" "$event" "$kind" "$site" "$env" "$cgroup" &
	running+=($!)
done <"$FIX/expect.tsv"
wait

tp=0 fp=0 fn=0 tn=0
printf '%-18s %-34s %-6s %-5s %s\n' fixture expected verdict secs "site / detected"
while IFS=$'\t' read -r name event kind site env cgroup; do
	[ -z "$name" ] || [ "${name:0:1}" = "#" ] || [ "$name" = name ] && continue
	read -r verdict secs got detected <"$T/$name.result" 2>/dev/null || verdict=FN
	case $verdict in TP) tp=$((tp + 1)) ;; FP) fp=$((fp + 1)) ;; FN) fn=$((fn + 1)) ;; TN) tn=$((tn + 1)) ;; esac
	printf '%-18s %-34s %-6s %-5s %s %s\n' "$name" "$event/$kind ${site}" "$verdict" "${secs:--}" "${got:--}" "${detected:-}"
	if [ "$verdict" = FP ] || [ "$verdict" = FN ]; then
		sed 's/^/    | /' "$T/$name.err" | tail -5
	fi
done <"$FIX/expect.tsv"
echo "TP=$tp FP=$fp FN=$fn TN=$tn (limit ${LIMIT}s)"
echo "eval-go: $((tp + tn)) passed, $((fp + fn)) failed"
[ $((fp + fn)) -eq 0 ]
