#!/bin/bash
# checks_e2e.sh — `moonshim run --check` end to end: a busybox httpd in the
# container, Lua checks reaching it inside the container's network
# namespace, health transitions in the event stream; a broken script
# reported with file and line while the container runs on; a runaway
# check stopped while another keeps its state. Prints
# "lua-checks: N passed, N failed".
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
MS=${MOONSHIM_BIN:-$REPO/build/moonshim}
T=$(mktemp -d /tmp/moonshim-checks.XXXXXX)
trap 'for d in "$T"/root/*; do [ -d "$d" ] && "$MS" --root "$T/root" delete --force "$(basename "$d")" >/dev/null 2>&1; done; rm -rf "$T"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   lua-checks/$1"; }
bad() { failed=$((failed + 1)); echo "FAIL lua-checks/$1: $2"; }

bash "$REPO/tests/container/mkbundle.sh" "$T/b" -- sh >/dev/null
mkdir -p "$T/b/rootfs/www" && echo ok >"$T/b/rootfs/www/healthz"
# httpd up for 2 s, then gone for 2 s: healthy, then unhealthy
jq '.process.args = ["sh", "-c", "httpd -f -p 8080 -h /www & sleep 2; kill %1; sleep 2; exit 4"] | .root.readonly = false' \
	"$T/b/config.json" >"$T/c" && mv "$T/c" "$T/b/config.json"

cat >"$T/fast.lua" <<'L'
check {
  name = "http", interval = 0.2, timeout = 0.5, retries = 2,
  run = function()
    local r, err = http.get("http://127.0.0.1:8080/healthz", { timeout = 0.5 })
    if not r then return false, err end
    return r.status == 200, r.status
  end,
}
L
"$MS" --root "$T/root" run --bundle "$T/b" --events "$T/ev1" --check "$T/fast.lua" c1 >"$T/out1" 2>&1
rc=$?
h=$(jq -r 'select(.type == "health" and .subject == "health") | .to' "$T/ev1" | tr '\n' ' ')
if [ $rc = 4 ] && [ "$h" = "healthy unhealthy " ]; then ok http_check_healthy_then_unhealthy
else bad http_check_healthy_then_unhealthy "rc=$rc health transitions: '$h'; $(cat "$T/out1")"; fi

printf 'check {\n  name = "x",\n  run = function() return true end\n' >"$T/broken.lua"
"$MS" --root "$T/root" run --bundle "$T/b" --events "$T/ev2" --check "$T/broken.lua" c2 >"$T/out2" 2>&1
rc=$?
lines=$(grep -c . "$T/out2")
if [ $rc = 4 ] && [ "$lines" = 1 ] && grep -q "broken.lua:4:" "$T/out2" && grep -q '"type":"error"' "$T/ev2"; then
	ok syntax_error_named_container_runs_on
else bad syntax_error_named_container_runs_on "rc=$rc: $(cat "$T/out2")"; fi

cat >"$T/runaway.lua" <<'L'
check { name = "spin", interval = 0.2, timeout = 5, retries = 1,
  run = function() while true do end end }
check { name = "http", interval = 0.2, timeout = 0.5, retries = 5,
  run = function()
    local r = http.get("http://127.0.0.1:8080/healthz", { timeout = 0.5 })
    return r ~= nil and r.status == 200
  end }
L
"$MS" --root "$T/root" run --bundle "$T/b" --events "$T/ev3" --check "$T/runaway.lua" c3 >"$T/out3" 2>&1
spin=$(jq -r 'select(.type == "health" and .subject == "check" and .check == "spin") | .to' "$T/ev3" | head -1)
http=$(jq -r 'select(.type == "health" and .subject == "check" and .check == "http") | .to' "$T/ev3" | head -1)
if [ "$spin" = unhealthy ] && [ "$http" = healthy ]; then ok runaway_check_stopped_others_healthy
else bad runaway_check_stopped_others_healthy "spin=$spin http=$http; $(cut -c1-300 "$T/ev3")"; fi

# errors surface: a check that raises, one that loops forever (stopped for
# its CPU budget), one past its timeout and a policy handler that raises
# each yield one "error" event naming the script and line in 3 s (at most
# one per script per 10 s), while the container runs to its end and
# another check stays healthy
bash "$REPO/tests/container/mkbundle.sh" "$T/e" -- sh -c 'sleep 3; exit 4' >/dev/null
cat >"$T/raise.lua" <<'L'
check { name = "boom", interval = 0.1, retries = 1000,
  run = function()
    error("kaput")
  end }
L
cat >"$T/spin.lua" <<'L'
check { name = "spin", interval = 0.2, timeout = 5, retries = 1000,
  run = function()
    local n = 0
    while true do n = n + 1 end
  end }
L
cat >"$T/slow.lua" <<'L'
check { name = "slow", interval = 0.1, timeout = 0.05, retries = 1000,
  run = function() sleep(0.2) return true end }
L
cat >"$T/alive.lua" <<'L'
check { name = "alive", interval = 0.1, run = function() return true end }
L
cat >"$T/errpol.lua" <<'L'
on("error", function(ev)
  error("handler broke on " .. ev.check)
end)
L
"$MS" --root "$T/root" run --bundle "$T/e" --events "$T/ev_err" --check "$T/raise.lua" --check "$T/spin.lua" \
	--check "$T/slow.lua" --check "$T/alive.lua" --policy "$T/errpol.lua" c_err >"$T/out_err" 2>&1
rc=$?
errs() { jq -c --arg s "$1" 'select(.type == "error" and (.script | endswith($s))) | [.line, .reason, .check // .handler, .message, .suppressed]' "$T/ev_err"; }
boom=$(errs /raise.lua) spin=$(errs /spin.lua) slow=$(errs /slow.lua) pol=$(errs /errpol.lua)
alive=$(jq -r 'select(.type == "health" and .check == "alive" and .subject == "check") | .to' "$T/ev_err" | tr '\n' ' ')
if [ $rc = 4 ] && [[ "$boom" == '[3,"raised","boom","'*'raise.lua:3: kaput",null]' ]] &&
	[[ "$spin" == '[4,"budget","spin","'*'spin.lua:4: stopped after '*' ms of CPU (budget 200 ms)",null]' ]] &&
	[[ "$slow" == '[2,"timeout","slow","the check ran '*' ms, past its timeout (50 ms)",null]' ]] &&
	[[ "$pol" == '[2,"raised","'*'errpol.lua:1: on(\"error\")","'*'errpol.lua:2: handler broke on '*'",null]' ]] &&
	[ "$alive" = "healthy " ]; then
	ok errors_surface_named_rate_limited
else bad errors_surface_named_rate_limited "rc=$rc boom=$boom spin=$spin slow=$slow pol=$pol alive='$alive'; $(head -c 600 "$T/out_err")"; fi

# a policy reacting to a real memory.high event (the soft limit on a hybrid
# host), and reading the cgroup; its error in another handler is reported
cat >"$T/pol.lua" <<'L'
on("memory.high", function(ev)
  local m = cgroup.memory()
  emit("policy.action", { action = "noted", current = m.current })
end)
on("exit", function(ev) emit("policy.action", { action = "saw-exit", status = ev.exit_status }) end)
on("exit", function(ev) error("deliberate") end)
L
jq '.process.args = ["sh", "-c", "dd if=/dev/zero of=/dev/null bs=48M count=1 2>/dev/null; exit 5"]
  | .linux.resources.memory = {"limit": 134217728, "reservation": 16777216}' "$T/b/config.json" >"$T/c2.json"
cp "$T/b/config.json" "$T/config.keep" && cp "$T/c2.json" "$T/b/config.json"
"$MS" --root "$T/root" run --bundle "$T/b" --events "$T/ev4" --policy "$T/pol.lua" c4 >"$T/out4" 2>&1
rc=$?
cp "$T/config.keep" "$T/b/config.json"
noted=$(jq -r 'select(.type == "policy.action" and .action == "noted") | .current' "$T/ev4" | head -1)
sawexit=$(jq -r 'select(.type == "policy.action" and .action == "saw-exit") | .status' "$T/ev4")
perr=$(jq -r 'select(.type == "error") | .handler + " " + .message' "$T/ev4")
if [ $rc = 5 ] && [ "${noted:-0}" -gt 0 ] && [ "$sawexit" = 5 ] && [[ "$perr" == *pol.lua:6*deliberate* ]]; then
	ok policy_reacts_to_memory_high_and_exit
else bad policy_reacts_to_memory_high_and_exit "rc=$rc noted=$noted sawexit=$sawexit err=$perr"; fi

# an alert hook: a command receiving the event as JSON on stdin
cat >"$T/hook.lua" <<L
hook("exit", {"sh", "-c", "cat > $T/hook.json; echo hooked \$MOONSHIM_EVENT"}, {timeout = 5})
L
"$MS" --root "$T/root" run --bundle "$T/b" --events "$T/ev5" --policy "$T/hook.lua" c5 >"$T/out5" 2>&1
got=$(jq -r '.exit_status' "$T/hook.json" 2>/dev/null)
said=$(jq -r 'select(.type == "hook") | .stdout' "$T/ev5")
if [ "$got" = 4 ] && [ "$said" = "hooked exit" ]; then ok alert_hook_gets_event_json
else bad alert_hook_gets_event_json "hook.json exit_status=$got stdout=$said; $(cat "$T/out5")"; fi

# exec.container: Docker's CMD check, a second process of the container
# with its user, environment and capabilities; killed at its timeout
cat >"$T/exec.lua" <<'L'
check { name = "exec", interval = 0.3, timeout = 2, retries = 1,
  run = function()
    local r, err = exec.container({"sh", "-c", "id -u; echo $HOME $EXTRA; grep CapEff /proc/self/status"},
                                  {env = {EXTRA = "given"}, user = "1000:1000"})
    if not r then return false, err end
    emit("policy.action", {action = "probe", out = r.stdout, status = r.status})
    return r.status == 0
  end }
check { name = "slow", interval = 0.5, timeout = 3, retries = 1,
  run = function()
    local t0 = now()
    local r = exec.container({"sleep", "10"}, {timeout = 0.3})
    emit("policy.action", {action = "slow", timed_out = r.timed_out, status = r.status, took = now() - t0})
    return not r.timed_out
  end }
L
"$MS" --root "$T/root" run --bundle "$T/b" --events "$T/ev6" --check "$T/exec.lua" c6 >"$T/out6" 2>&1
out=$(jq -r 'select(.action == "probe") | .out' "$T/ev6" | head -4 | tr '\n' ' ')
slow=$(jq -r 'select(.action == "slow") | "\(.timed_out) \(.status) \(.took < 1)"' "$T/ev6" | head -1)
h=$(jq -r 'select(.type == "health" and .subject == "check" and .check == "exec") | .to' "$T/ev6" | head -1)
if [[ "$out" == "1000 "*" given CapEff:"* ]] && [ "$slow" = "true 137 true" ] && [ "$h" = healthy ]; then
	ok exec_container_check
else bad exec_container_check "out='$out' slow='$slow' health=$h; $(cat "$T/out6")"; fi

# CVE-2024-21626 through exec.container: a cwd through /proc/self/fd/N, named
# by the script or planted by the workload as a symlink, is refused and the
# host file behind the runtime's fds is never read
echo "host-secret-$$" >"$T/secret"
cp "$T/b/config.json" "$T/config.keep"
jq '.process.args = ["sh", "-c", "for n in 3 4 5 6 7 8 9 10; do ln -s /proc/self/fd/$n /w$n; done; sleep 2; exit 4"]' \
	"$T/config.keep" >"$T/b/config.json"
cat >"$T/escape.lua" <<L
check { name = "escape", interval = 0.3, timeout = 2, retries = 1,
  run = function()
    for n = 3, 10 do
      for _, cwd in ipairs({"/proc/self/fd/" .. n, "/w" .. n}) do
        local r, err = exec.container({"cat", "../../../../../../../../../..$T/secret"}, {cwd = cwd})
        emit("policy.action", {action = "escape", cwd = cwd, out = r and r.stdout or "", err = err or ""})
      end
    end
    return true
  end }
L
"$MS" --root "$T/root" run --bundle "$T/b" --events "$T/ev_esc" --check "$T/escape.lua" c_esc >"$T/out_esc" 2>&1
rc=$?
cp "$T/config.keep" "$T/b/config.json"
leaked=$(jq -r 'select(.action == "escape") | .out' "$T/ev_esc" | grep -c "host-secret-$$")
refused=$(jq -r 'select(.action == "escape" and .cwd == "/w6") | .err' "$T/ev_esc" | grep -c 'process.cwd /w6: refusing')
if [ $rc = 4 ] && [ "$leaked" = 0 ] && [ "${refused:-0}" -ge 1 ]; then ok exec_container_cwd_escape_refused
else bad exec_container_cwd_escape_refused "rc=$rc leaked=$leaked refused=$refused; $(grep escape "$T/ev_esc" | head -c 600)"; fi

# container.stop(grace): TERM ignored, killed after the grace period; a
# function as an alert hook, reported like a command's
bash "$REPO/tests/container/mkbundle.sh" "$T/stub" -- sh -c 'trap "" TERM; sleep 30' >/dev/null
cat >"$T/stop.lua" <<'L'
on("start", function() end)
hook("exit", function(ev) emit("policy.action", {action = "fn-hook", status = ev.exit_status}) end)
L
cat >"$T/stopcheck.lua" <<'L'
check { name = "stopper", interval = 0.3, retries = 1, run = function() return false end }
L
cat >>"$T/stop.lua" <<'L'
on("health", function(ev)
  if ev.subject ~= "health" or ev.to ~= "unhealthy" then return end
  local t0 = now()
  local gone, how = container.stop(0.5)
  emit("policy.action", {action = "stopped", gone = gone, how = how, state = container.state(), took = now() - t0})
end)
L
start=$SECONDS
"$MS" --root "$T/root" run --bundle "$T/stub" --events "$T/ev7" --check "$T/stopcheck.lua" --policy "$T/stop.lua" c7 >"$T/out7" 2>&1
rc=$?
st=$(jq -r 'select(.action == "stopped") | "\(.gone) \(.how) \(.state) \(.took >= 0.5 and .took < 3)"' "$T/ev7")
fh=$(jq -r 'select(.type == "hook") | "\(.function | test("stop.lua:2")) \(.exit_status)"' "$T/ev7")
fs=$(jq -r 'select(.action == "fn-hook") | .status' "$T/ev7")
if [ $rc = 137 ] && [ "$st" = "true killed stopped true" ] && [ "$fh" = "true 0" ] && [ "$fs" = 137 ] && [ $((SECONDS - start)) -lt 10 ]; then
	ok container_stop_grace_and_function_hook
else bad container_stop_grace_and_function_hook "rc=$rc stopped='$st' hook='$fh' fn-hook=$fs; $(cat "$T/out7")"; fi

# go() and channels between tasks, events.subscribe; endless go() tasks
# and a task waiting on a channel end when the container exits
cat >"$T/go.lua" <<'L'
local results = chan(4)
go(function(a, b) results:send(a + b) end, 2, 3)
go(function() local t0 = now(); sleep(0.05); results:send(now() - t0) end)
local unbuf = chan()
go(function() for i = 1, 3 do unbuf:send(i) end unbuf:close() end)
local sub = events.subscribe("health")
go(function()
  local v = results:recv()
  local w = results:recv()
  local got = {}
  while true do local x, ok = unbuf:recv(); if not ok then break end; got[#got + 1] = x end
  local _, ok, why = results:recv(0.05)
  local ev = sub:recv(5)
  emit("policy.action", {action = "go", sum = v, slept = w >= 0.05, got = table.concat(got, ","),
                         timeout = why, subscribed = ev and ev.subject})
  go(function() while true do sleep(0.01) end end)
  go(function() local c = chan(); c:recv() end)
end)
L
cat >"$T/ok.lua" <<'L'
check { name = "ok", interval = 0.1, retries = 1, run = function() return true end }
L
start=$SECONDS
timeout 20 "$MS" --root "$T/root" run --bundle "$T/b" --events "$T/ev8" --policy "$T/go.lua" --check "$T/ok.lua" c8 >"$T/out8" 2>&1
rc=$?
got=$(jq -r 'select(.action == "go") | "\(.sum) \(.slept) \(.got) \(.timeout) \(.subscribed)"' "$T/ev8")
if [ $rc = 4 ] && [ "$got" = "5 true 1,2,3 timeout check" ] && [ $((SECONDS - start)) -lt 10 ]; then
	ok go_channels_subscribe_end_with_container
else bad go_channels_subscribe_end_with_container "rc=$rc got='$got'; $(cat "$T/out8")"; fi

# pressure handlers: a real CPU stall (three spinners on this machine's
# cores) for a threshold and a duration; the memory rule stays quiet
bash "$REPO/tests/container/mkbundle.sh" "$T/cpu" -- sh -c 'for i in 1 2 3; do (while :; do :; done) & done; sleep 4; kill %1 %2 %3' >/dev/null
cat >"$T/psi.lua" <<'L'
on("pressure", {resource = "cpu", threshold = 20, duration = 1}, function(ev)
  emit("policy.action", {action = "cpu1", lasted = ev.lasted_s, rule = ev.rule})
end)
on("pressure", {resource = "cpu", threshold = 10, duration = 2.5}, function(ev)
  emit("policy.action", {action = "cpu25", lasted = ev.lasted_s})
end)
on("pressure", {resource = "memory", kind = "full", threshold = 80, duration = 1}, function(ev)
  emit("policy.action", {action = "mem"})
end)
L
"$MS" --root "$T/root" run --bundle "$T/cpu" --events "$T/ev9" --policy "$T/psi.lua" c9 >"$T/out9" 2>&1
rc=$?
c1=$(jq -r 'select(.action == "cpu1") | .rule' "$T/ev9" | head -1)
c25=$(jq -r 'select(.action == "cpu25") | .lasted >= 2.5' "$T/ev9" | head -1)
mem=$(jq -r 'select(.action == "mem") | .action' "$T/ev9")
if [ $rc = 0 ] && [ "$c1" = "cpu:some:200ms:1s" ] && [ "$c25" = true ] && [ -z "$mem" ]; then
	ok pressure_handler_threshold_duration
else bad pressure_handler_threshold_duration "rc=$rc cpu1=$c1 cpu25=$c25 mem=$mem; $(grep -v health "$T/ev9" | cut -c1-200 | head)"; fi

# the graduated response (policies/ladder.lua) on a real shortage: 80 MiB
# of tmpfs (unreclaimable without swap) under a 96 MiB limit climbs every
# step, judges each throttle "no progress", runs the pre-kill hook, kills;
# the same ladder as a dry run reports and leaves the container alone
bash "$REPO/tests/container/mkbundle.sh" "$T/mem" -- sh -c 'dd if=/dev/zero of=/big/fill bs=1M count=80 2>/dev/null; sleep 8; exit 6' >/dev/null
jq '.mounts += [{"destination": "/big", "type": "tmpfs", "source": "tmpfs", "options": ["size=200m"]}]
  | .linux.resources.memory = {"limit": 100663296}' "$T/mem/config.json" >"$T/m.json" && mv "$T/m.json" "$T/mem/config.json"
cat >"$T/ladder.lua" <<'L'
ladder { dry_run = false, level = 0.7, cooldown = 0.3, watch = 0.6,
         pre_kill = function(state) emit("policy.action", {action = "hooked", step = state.step}) end }
L
start=$SECONDS
"$MS" --root "$T/root" run --bundle "$T/mem" --events "$T/ev10" --policy "$T/ladder.lua" c10 >"$T/out10" 2>&1
rc=$?
seq=$(jq -r 'select(.type == "policy.action" or .type == "policy.outcome") | .action // ("outcome:" + .result)' "$T/ev10" | tr '\n' ' ')
want="notify reclaim lower-memory.high outcome:no progress freeze outcome:no progress pre-kill hooked kill "
if [ $rc = 137 ] && [ "$seq" = "$want" ] && [ $((SECONDS - start)) -lt 8 ]; then
	ok ladder_climbs_judges_throttles_kills
else bad ladder_climbs_judges_throttles_kills "rc=$rc seq='$seq'; $(grep -v health "$T/ev10" | cut -c1-200 | head -20)"; fi
echo 'ladder { level = 0.7, cooldown = 0.3, watch = 0.6 }' >"$T/dry.lua"
"$MS" --root "$T/root" run --bundle "$T/mem" --events "$T/ev11" --policy "$T/dry.lua" c11 >"$T/out11" 2>&1
rc=$?
dry=$(jq -r 'select(.type == "policy.action") | "\(.action):\(.dry_run)"' "$T/ev11" | sort -u | tr '\n' ' ')
if [ $rc = 6 ] && [[ "$dry" == *"kill:true"* ]] && [[ "$dry" != *":false"* ]]; then
	ok ladder_dry_run_reports_only
else bad ladder_dry_run_reports_only "rc=$rc actions='$dry'"; fi

# a bad --go-watch value: one error line naming it, nothing left behind
"$MS" --root "$T/root" run --bundle "$T/b" --go-watch "schedtrace=1000,frob=1" c12 >"$T/out12" 2>&1
rc=$?
if [ $rc = 1 ] && [ "$(grep -c . "$T/out12")" = 1 ] && grep -q '"frob"' "$T/out12" &&
	! "$MS" --root "$T/root" state c12 >/dev/null 2>&1 && [ ! -e /sys/fs/cgroup/unified/moonshim/c12 ]; then
	ok go_watch_bad_option_one_error
else bad go_watch_bad_option_one_error "rc=$rc: $(cat "$T/out12")"; fi

# left: ID's cgroup dirs on any hierarchy and its state (empty: none)
leftovers() {
	local d
	for d in /sys/fs/cgroup/*/moonshim/"$1" /sys/fs/cgroup/moonshim/"$1"; do [ -e "$d" ] && echo "$d"; done
	"$MS" --root "$T/root" state "$1" >/dev/null 2>&1 && echo "state of $1"
}

# the workload's own server answers 5,000 `[`: a check decoding it with
# pcall(json.decode, ...) gets an error (the parser recursed per level on
# the check's goroutine stack and killed moonshim: the container ran on
# unsupervised, its status lost, state and cgroups left)
bash "$REPO/tests/container/mkbundle.sh" "$T/deep" -- sh >/dev/null
mkdir -p "$T/deep/rootfs/www" && head -c 5000 /dev/zero | tr '\0' '[' >"$T/deep/rootfs/www/deep"
jq '.process.args = ["sh", "-c", "httpd -f -p 8080 -h /www & sleep 2; kill %1; exit 6"] | .root.readonly = false' \
	"$T/deep/config.json" >"$T/c" && mv "$T/c" "$T/deep/config.json"
cat >"$T/deep.lua" <<'L'
check { name = "json", interval = 0.2, timeout = 1, retries = 1,
  run = function()
    local r, err = http.get("http://127.0.0.1:8080/deep", { timeout = 1 })
    if not r then return false, err end
    local ok, v, e = pcall(json.decode, r.body)
    emit("policy.action", { action = "decoded", len = #r.body, ok = ok, err = e })
    return v ~= nil, e
  end }
L
"$MS" --root "$T/root" run --bundle "$T/deep" --events "$T/ev13" --check "$T/deep.lua" c13 >"$T/out13" 2>&1
rc=$?
said=$(jq -r 'select(.action == "decoded") | "\(.len) \(.ok) \(.err)"' "$T/ev13" | head -1)
h=$(jq -r 'select(.type == "health" and .subject == "check" and .check == "json") | .to' "$T/ev13" | head -1)
ex=$(jq -r 'select(.type == "exit") | .exit_status' "$T/ev13")
left=$(leftovers c13)
if [ $rc = 6 ] && [ "$said" = "5000 true json.decode: JSON nested deeper than 64 levels" ] &&
	[ "$h" = unhealthy ] && [ "$ex" = 6 ] && [ -z "$left" ]; then
	ok deep_json_body_is_a_check_error_status_kept
else bad deep_json_body_is_a_check_error_status_kept "rc=$rc said='$said' health=$h exit=$ex left='$left'; $(tail -3 "$T/out13")"; fi

# a policy whose top level sleeps forever and one with a looping __gc: the
# first is ended after 10 s with an error naming it (it hung moonshim: the
# container waits for the policies to load), the second is refused at its
# setmetatable; the container runs, its status is moonshim's, the exit
# event is written and nothing is left
echo 'sleep(1e10)' >"$T/sleepy.lua"
echo 'setmetatable({}, {__gc = function() while true do end end})' >"$T/gc.lua"
jq '.process.args = ["sh", "-c", "exit 7"]' "$T/deep/config.json" >"$T/c" && mv "$T/c" "$T/deep/config.json"
start=$SECONDS
timeout 40 "$MS" --root "$T/root" run --bundle "$T/deep" --events "$T/ev14" --policy "$T/sleepy.lua" --policy "$T/gc.lua" c14 >"$T/out14" 2>&1
rc=$?
took=$((SECONDS - start))
errs=$(jq -r 'select(.type == "error") | .message' "$T/ev14")
ex=$(jq -r 'select(.type == "exit") | .exit_status' "$T/ev14")
left=$(leftovers c14)
if [ $rc = 7 ] && [ $took -lt 20 ] && [ "$ex" = 7 ] && [ -z "$left" ] &&
	[[ "$errs" == *"sleepy.lua: its top level still waited after 10 s"* ]] &&
	[[ "$errs" == *"gc.lua:1: setmetatable: __gc finalizers are not allowed"* ]]; then
	ok hostile_policies_end_moonshim_keeps_status
else bad hostile_policies_end_moonshim_keeps_status "rc=$rc took=${took}s exit=$ex left='$left' errors: $errs; $(tail -3 "$T/out14")"; fi

echo "lua-checks: $passed passed, $failed failed"
[ $failed = 0 ]
