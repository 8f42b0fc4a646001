#!/bin/bash
# restart_e2e.sh — container.restart() in `moonshim run`, end to end on busybox
# bundles: an exit policy restarting a crashing container with a growing
# backoff until it succeeds; a failing health check restarting a detached
# container, `moonshim state` following the new init; a user's TERM during
# a backoff ending the run at once. After each run: the cgroup is gone and
# nothing of the container runs. Prints "lua-restart: N passed, N failed".
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
MS=${MOONSHIM_BIN:-$REPO/build/moonshim}
T=$(mktemp -d /tmp/moonshim-restart.XXXXXX)
trap 'for d in "$T"/root/*; do [ -d "$d" ] && "$MS" --root "$T/root" delete --force "$(basename "$d")" >/dev/null 2>&1; done; rm -rf "$T"' EXIT
ID=rs$$
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   lua-restart/$1"; }
bad() { failed=$((failed + 1)); echo "FAIL lua-restart/$1: $2"; }

# leftovers ID ROOTFS: what of container ID is still there (cgroup dirs, processes)
leftovers() {
	local d p
	for d in /sys/fs/cgroup/unified/moonshim/$1 /sys/fs/cgroup/*/moonshim/$1; do
		[ -d "$d" ] && echo "cgroup $d"
	done
	for p in /proc/[0-9]*; do
		[ "$p/root" -ef "$2" ] 2>/dev/null && echo "process ${p#/proc/}"
	done
	return 0
}

# has FILE FILTER: some event of FILE matches (jq 1.6's -e looks at the last one only)
has() { jq -s -e "any(.[]; $2)" "$1" >/dev/null 2>&1; }

# bundle DIR SCRIPT: a busybox bundle running sh -c SCRIPT with a writable
# rootfs (the script counts its runs in /tmp/runs, which outlives a restart)
bundle() {
	bash "$REPO/tests/container/mkbundle.sh" "$1" -- sh -c "$2" >/dev/null
	jq '.root.readonly = false' "$1/config.json" >"$1/c" && mv "$1/c" "$1/config.json"
}
COUNT='n=$(cat /tmp/runs 2>/dev/null || echo 0); n=$((n + 1)); echo $n >/tmp/runs'

# 1. exits 1 twice, then 0: restarted with backoff 0, then 1 s; the run's
# status is the last process's; the log has all three runs
bundle "$T/crash" "$COUNT; echo run \$n; [ \$n -ge 3 ] && exit 0; exit 1"
cat >"$T/on-exit.lua" <<'L'
on("exit", function(ev)
  if ev.exit_status ~= 0 then
    local ok, err = container.restart()
    emit("policy.action", {action = "restart", ok = ok, err = err, restarts = ev.restarts})
  end
end)
L
start=$(date +%s.%N)
timeout 60 "$MS" --root "$T/root" run --bundle "$T/crash" --events "$T/ev1" --log "$T/log1" \
	--policy "$T/on-exit.lua" "${ID}a" >"$T/out1" 2>&1
rc=$?
took=$(echo "$(date +%s.%N) - $start" | bc)
rs=$(jq -c 'select(.type == "restart") | [.count, .backoff_s, .pid, .previous_pid, .exit_status]' "$T/ev1" | tr '\n' ' ')
start_pid=$(jq -r 'select(.type == "start") | .pid' "$T/ev1")
exit_pid=$(jq -r 'select(.type == "exit") | "\(.pid) \(.exit_status) \(.restarts)"' "$T/ev1")
p1=$(jq -r 'select(.type == "restart" and .count == 1) | .pid' "$T/ev1")
p2=$(jq -r 'select(.type == "restart" and .count == 2) | .pid' "$T/ev1")
chain=$(jq -r 'select(.type == "restart") | .previous_pid' "$T/ev1" | tr '\n' ' ')
b1=$(jq -r 'select(.type == "restart" and .count == 1) | .backoff_s' "$T/ev1")
b2=$(jq -r 'select(.type == "restart" and .count == 2) | .backoff_s' "$T/ev1")
runs=$(grep -o 'stdout F run [0-9]' "$T/log1" | tr '\n' ' ')
left=$(leftovers "${ID}a" "$T/crash/rootfs")
if [ $rc = 0 ] && [ "$(jq -s '[.[] | select(.type == "restart")] | length' "$T/ev1")" = 2 ] &&
	[ "$b1" = 0 ] && [ "$(echo "$b2 >= 1" | bc)" = 1 ] && [ "$(echo "$took >= 1" | bc)" = 1 ] &&
	[ "$chain" = "$start_pid $p1 " ] && [ "$exit_pid" = "$p2 0 2" ] && [ "$p1" != "$start_pid" ] &&
	[ "$runs" = "stdout F run 1 stdout F run 2 stdout F run 3 " ] && [ -z "$left" ]; then
	ok exit_policy_restarts_with_backoff
else bad exit_policy_restarts_with_backoff "rc=$rc took=$took restarts: $rs start=$start_pid exit='$exit_pid' runs='$runs' left='$left'; $(cat "$T/out1")"; fi

# 2. a health check fails on the first process (no server; it ignores TERM,
# so the grace ends in SIGKILL): the policy restarts it, the checks start
# over and the second process (serving) is healthy; `moonshim state` of
# the detached run shows the new init; a KILL then ends the run for good
bundle "$T/web" "$COUNT; mkdir -p /www; echo ok >/www/healthz; if [ \$n = 1 ]; then trap '' TERM; sleep 60; else exec httpd -f -p 8080 -h /www; fi"
cat >"$T/check.lua" <<'L'
check { name = "http", interval = 0.2, timeout = 0.5, retries = 2,
  run = function()
    local r, err = http.get("http://127.0.0.1:8080/healthz", { timeout = 0.5 })
    if not r then return false, err end
    return r.status == 200, r.status
  end }
L
cat >"$T/on-unhealthy.lua" <<'L'
on("health", function(ev)
  if ev.subject ~= "health" or ev.to ~= "unhealthy" then return end
  local old = container.pid()
  local ok, err = container.restart(0.5)
  emit("policy.action", {action = "restart", ok = ok, err = err, old = old, new = container.pid()})
end)
L
"$MS" --root "$T/root" run -d --bundle "$T/web" --events "$T/ev2" --check "$T/check.lua" \
	--policy "$T/on-unhealthy.lua" "${ID}b" >"$T/out2" 2>&1
rc=$?
first=$("$MS" --root "$T/root" state "${ID}b" 2>/dev/null | jq -r .pid)
for _ in $(seq 100); do # the restart, then the new process healthy: ~2 s
	has "$T/ev2" '.type == "health" and .subject == "health" and .to == "healthy"' && break
	sleep 0.1
done
state=$("$MS" --root "$T/root" state "${ID}b" 2>/dev/null | jq -r '"\(.pid) \(.status)"')
newpid=$(jq -r 'select(.type == "restart") | .pid' "$T/ev2")
act=$(jq -r 'select(.action == "restart") | "\(.ok) \(.old) \(.new)"' "$T/ev2")
health=$(jq -r 'select(.type == "health" and .subject == "health") | .to' "$T/ev2" | tr '\n' ' ')
"$MS" --root "$T/root" kill "${ID}b" KILL >/dev/null 2>&1
for _ in $(seq 100); do
	has "$T/ev2" '.type == "exit"' && break
	sleep 0.1
done
final=$("$MS" --root "$T/root" state "${ID}b" 2>/dev/null | jq -r .status)
ex=$(jq -r 'select(.type == "exit") | "\(.pid) \(.exit_status)"' "$T/ev2")
"$MS" --root "$T/root" delete "${ID}b" >/dev/null 2>&1
left=$(leftovers "${ID}b" "$T/web/rootfs")
if [ $rc = 0 ] && [ -n "$newpid" ] && [ "$newpid" != "$first" ] && [ "$state" = "$newpid running" ] &&
	[ "$act" = "true $first $newpid" ] && [ "$health" = "unhealthy starting healthy " ] &&
	[ "$final" = stopped ] && [ "$ex" = "$newpid 137" ] && [ -z "$left" ]; then
	ok health_check_restart_detached_state
else bad health_check_restart_detached_state "$(jq -c 'select(.type == "policy.action" or .type == "error")' "$T/ev2") rc=$rc first=$first new=$newpid state='$state' action='$act' health='$health' final=$final exit='$ex' left='$left'; $(cat "$T/out2")"; fi

# 3. a TERM from the user while a restart waits out its backoff (4 s after
# three quick restarts) ends the run at once; the restart call says why
bundle "$T/loop" "exit 3"
cat >"$T/always.lua" <<'L'
on("exit", function(ev)
  local ok, err = container.restart()
  emit("policy.action", {action = "restart", ok = ok, err = err})
end)
L
"$MS" --root "$T/root" run --bundle "$T/loop" --events "$T/ev3" --policy "$T/always.lua" \
	"${ID}c" >"$T/out3" 2>&1 &
ms=$! # (not under timeout: the TERM must reach moonshim itself)
for _ in $(seq 100); do
	has "$T/ev3" '.type == "restart" and .count == 3' && break
	sleep 0.1
done
sleep 0.5 # into the 4 s backoff
start=$(date +%s.%N)
kill -TERM $ms
wait $ms
rc=$?
took=$(echo "$(date +%s.%N) - $start" | bc)
n=$(jq -s '[.[] | select(.type == "restart")] | length' "$T/ev3")
why=$(jq -r 'select(.action == "restart" and .ok == null) | .err' "$T/ev3" | head -1)
left=$(leftovers "${ID}c" "$T/loop/rootfs")
if [ $rc = 3 ] && [ "$n" = 3 ] && [ "$(echo "$took < 1.5" | bc)" = 1 ] && [[ "$why" == *"user stopped"* ]] && [ -z "$left" ]; then
	ok term_during_backoff_ends_run
else bad term_during_backoff_ends_run "rc=$rc restarts=$n took=$took why='$why' left='$left'; $(cat "$T/out3")"; fi

# 4. --go-watch across a restart: a leaking Go program (the leak-mutex
# fixture) restarted once by its policy; the pprof scraper must follow the
# new process into its network namespace (it kept dialling the old, dead
# one) and the leak be found again in the new process, from a fresh history
GOBIN=$REPO/build/go-fixtures/leak-mutex
[ -x "$GOBIN" ] || bash "$REPO/tests/go/build-fixtures.sh" "$REPO/build/go-fixtures" >"$T/gobuild" 2>&1
if [ ! -x "$GOBIN" ]; then
	bad go_watch_follows_a_restart "the Go fixtures did not build: $(tail -5 "$T/gobuild")"
else
	bash "$REPO/tests/container/mkbundle.sh" "$T/gorun" -- /bin/leak-mutex >/dev/null
	cp "$GOBIN" "$T/gorun/rootfs/bin/leak-mutex"
	jq '.root.readonly = false' "$T/gorun/config.json" >"$T/c" &&
		mv "$T/c" "$T/gorun/config.json"
	cat >"$T/restart-once.lua" <<'L'
local restarted = false
go(function()
  sleep(3)
  local ok, err = container.restart()
  restarted = ok
  emit("policy.action", {action = "restart", ok = ok, err = err})
end)
on("go.goroutine_leak", function(ev)
  if ev.subject == "workload" and restarted then container.stop(1) end
end)
L
	timeout 60 "$MS" --root "$T/root" run --bundle "$T/gorun" --events "$T/ev4" --policy "$T/restart-once.lua" \
		--go-watch "pprof=http://127.0.0.1:6060,interval=1" "${ID}d" >"$T/out4" 2>&1
	rc=$?
	rtime=$(jq -r 'select(.type == "restart") | .time' "$T/ev4" | head -1)
	after=$(jq -r --arg t "$rtime" 'select(.type == "go.goroutine_leak" and .subject == "workload" and .time > $t and .site != null) | .site' "$T/ev4" | head -1)
	errs=$(jq -r 'select(.type == "go.watch" and .subject == "workload") | "\(.scrapes) scrapes, \(.scrape_errors) failed \(.last_error // "")"' "$T/ev4")
	left=$(leftovers "${ID}d" "$T/gorun/rootfs")
	if [ -n "$rtime" ] && [[ "$after" == *main.go:* ]] && [ -z "$left" ]; then
		ok go_watch_follows_a_restart
	else bad go_watch_follows_a_restart "rc=$rc restart at '$rtime', leak after it: '$after'; scraper: $errs; left='$left'; $(tail -5 "$T/out4")"; fi
fi

# 5. CVE-2024-21626 on the restart path: the first process replaces its cwd
# /work with a symlink to /proc/self/fd/6 and exits 1; the restarted init
# must be refused at its chdir (a clear error in the restart's result), never
# run in a host directory, and the run must end with nothing left behind
echo "host-secret-$$" >"$T/secret"
bundle "$T/plant" "if [ -L /work ]; then cat ../../../../../../../../../..$T/secret; exit 9; fi; cd /; rm -rf /work; ln -s /proc/self/fd/6 /work; exit 1"
jq '.process.cwd = "/work"' "$T/plant/config.json" >"$T/c" && mv "$T/c" "$T/plant/config.json"
timeout 30 "$MS" --root "$T/root" run --bundle "$T/plant" --events "$T/ev5" --log "$T/log5" \
	--policy "$T/on-exit.lua" "${ID}e" >"$T/out5" 2>&1
rc=$?
why=$(jq -r 'select(.type == "policy.action" and .action == "restart") | .err // ""' "$T/ev5" | head -1)
leaked=$(cat "$T/log5" "$T/out5" "$T/ev5" 2>/dev/null | grep -c "host-secret-$$")
left=$(leftovers "${ID}e" "$T/plant/rootfs")
if [ $rc != 124 ] && [ $rc != 9 ] && [ "$leaked" = 0 ] && [[ "$why" == *"process.cwd"*"/work: "* ]] && [ -z "$left" ]; then
	ok restart_refuses_a_planted_cwd
else bad restart_refuses_a_planted_cwd "rc=$rc leaked=$leaked restart error='$why' left='$left'; $(tail -3 "$T/out5")"; fi

echo "lua-restart: $passed passed, $failed failed"
[ $failed = 0 ]
