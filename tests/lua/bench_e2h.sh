#!/bin/bash
# bench_e2h.sh — `luabench event_to_handler` end to end, short: 20 cgroup
# events reach a Lua handler through the shim's path and it prints its
# RESULT line; its cgroup is gone afterwards, also when it is stopped with
# SIGTERM midway. Needs root and a cgroup2 mount. Prints
# "lua-bench: N passed, N failed".
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${LUABENCH_BIN:-$REPO/build/bench/luabench}
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   lua-bench/$1"; }
bad() { failed=$((failed + 1)); echo "FAIL lua-bench/$1: $2"; }
left() { ls -d /sys/fs/cgroup/*/moonshim-bench-"$1"-* /sys/fs/cgroup/moonshim-bench-"$1"-* 2>/dev/null; }

out=$(mktemp)
trap 'rm -f "$out"' EXIT
timeout 30 "$BIN" event_to_handler 20 0 >"$out" 2>&1 &
pid=$!
wait $pid
rc=$?
m=$(sed -n 's/^RESULT event_to_handler moonshim_us=\([0-9.]*\) .*/\1/p' "$out")
if [ $rc = 0 ] && awk -v m="$m" 'BEGIN {exit !(m + 0 > 0)}'; then ok events_reach_the_handler
else bad events_reach_the_handler "rc=$rc; $(cat "$out")"; fi
if [ -z "$(left $pid)" ]; then ok cgroup_removed
else bad cgroup_removed "left: $(left $pid)"; fi

"$BIN" event_to_handler 300 0 >"$out" 2>&1 &
pid=$!
sleep 1
had=$(left $pid)
kill -TERM $pid
wait $pid
if [ -n "$had" ] && [ -z "$(left $pid)" ]; then ok cgroup_removed_on_sigterm
else bad cgroup_removed_on_sigterm "during: '$had'; after: '$(left $pid)'"; fi

echo "lua-bench: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
