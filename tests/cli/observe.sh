#!/bin/bash
# observe.sh — `moonshim inspect`, `events` and `top` end to end. First the
# readers against journals written as publish.h describes them (hostile
# lines, a torn last line, rotation, a container appearing while
# following, a supervisor gone); then real `moonshim run -d` containers
# with Lua checks: inspect's State and last five results, events merged
# and filtered, and `top` live in a private tmux server (rows, health
# flipping to unhealthy, a resize cut to the width, q quitting).
# Prints "cli-observe: N passed, N failed" ($TEST_SUITE's name when set;
# MOONSHIM_BIN=build/asan/moonshim runs it on the sanitized program).
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
# ct_wait SECONDS CMD... (the container suites' poll; sourcing sets only variables)
# shellcheck source=tests/container/lib.sh
. "$REPO/tests/container/lib.sh"
MS=${MOONSHIM_BIN:-$REPO/build/moonshim}
T=$(mktemp -d /tmp/moonshim-observe.XXXXXX)
SOCK=ms-observe-$$ # tmux -L: a private server
ID=ob$$
bgpids=()
cleanup() {
	tmux -L "$SOCK" kill-server 2>/dev/null
	for p in "${bgpids[@]}"; do kill "$p" 2>/dev/null; done
	for d in "$T"/root/*; do
		[ -d "$d" ] && "$MS" --root "$T/root" delete --force "$(basename "$d")" >/dev/null 2>&1
	done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
passed=0 failed=0
NAME=${TEST_SUITE:-cli-observe} # cli-observe-asan: the same with build/asan/moonshim
ok() { passed=$((passed + 1)); echo "ok   $NAME/$1"; }
bad() { failed=$((failed + 1)); echo "FAIL $NAME/$1: $2"; }

# ─── the readers, on journals as publish.h writes them ────────────────────

F=$T/fix # a run root and a containerd root
mkdir -p "$F/run/a" "$F/cd/k8s/b"
sleep 600 &
SUP=$!
bgpids+=($SUP)
SUP_START=$(awk '{ sub(/.*\) /, ""); print $20 }' /proc/$SUP/stat)
status() { # DIR ID PID START PROCESS-STATUS
	printf '{"version":1,"id":"%s","mode":"run","supervisor":{"pid":%s,"start_time":%s},"cgroup":null,"updated":"2026-01-01T00:00:00Z","process":{"status":"%s","pid":%s,"started":"2026-01-01T00:00:00Z","restarts":1},"scripts":[],"health":null,"events":{}}\n' \
		"$2" "$3" "$4" "$5" "$3" >"$1/status.json"
}
status "$F/run/a" a "$SUP" "$SUP_START" running
status "$F/cd/k8s/b" b 999999 1 running
ev() { printf '{"time":"%s","id":"%s","type":"%s"%s}\n' "$1" "$2" "$3" "${4:-}"; }
{
	ev 2026-01-01T00:00:01Z a start ',"pid":7'
	echo 'not json at all'
	printf '{"time":"2026-01-01T00:00:02Z","type":"x","v":"%070000d"}\n' 0
	ev 2026-01-01T00:00:04Z a health ',"to":"unhealthy","output":"a\u001b[2Jb"'
} >"$F/run/a/events.jsonl"
ev 2025-12-31T23:00:00Z b old >"$F/cd/k8s/b/events.jsonl.1"
ev 2026-01-01T00:00:03Z b start >"$F/cd/k8s/b/events.jsonl"
R=(--root "$F/run" events --containerd-root "$F/cd")

out=$("$MS" "${R[@]}" 2>"$T/err")
rc=$?
want='2026-01-01T00:00:01.000000000Z container start a (pid=7)
2026-01-01T00:00:03.000000000Z container start k8s/b
2026-01-01T00:00:04.000000000Z container health a (output=a\x1b[2Jb, to=unhealthy)'
if [ $rc = 0 ] && [ "$out" = "$want" ] && [ "$(grep -c 'longer than 64 KiB' "$T/err")" = 1 ] &&
	[ "$(grep -c "'\[' or '{' expected" "$T/err")" = 1 ]; then
	ok events_merged_by_time_hostile_lines_skipped
else bad events_merged_by_time_hostile_lines_skipped "rc=$rc out='$out' err='$(cat "$T/err")'"; fi

out=$("$MS" "${R[@]}" --since 2025-12-31T22:00:00Z --until 1767225602 --filter type=start --filter type=old 2>/dev/null)
want='2025-12-31T23:00:00.000000000Z container old k8s/b
2026-01-01T00:00:01.000000000Z container start a (pid=7)'
if [ "$out" = "$want" ]; then ok events_since_reaches_the_rotated_journal
else bad events_since_reaches_the_rotated_journal "'$out'"; fi

out=$("$MS" "${R[@]}" --format json b 2>/dev/null)
if [ "$out" = '{"time":"2026-01-01T00:00:03Z","id":"b","type":"start"}' ]; then ok events_json_and_id_filter
else bad events_json_and_id_filter "'$out'"; fi

why=
for a in "--since yesterday" "--filter image=x" "--format yaml" "--bogus" "--until"; do
	# shellcheck disable=SC2086
	"$MS" "${R[@]}" $a >"$T/o" 2>&1
	rc=$?
	[ $rc = 2 ] && [ "$(grep -c '^moonshim events: ' "$T/o")" = 1 ] || why="$why [$a: rc=$rc $(cat "$T/o")]"
done
if [ -z "$why" ]; then ok events_bad_arguments_one_message_each
else bad events_bad_arguments_one_message_each "$why"; fi

# out of memory (an address-space limit the program's start fits in and its
# events' texts do not): what could not be stored is named on stderr and the
# exit status is 1, not a silently shorter listing and 0. Not under ASan,
# whose shadow memory no such limit admits.
OOM_EVENTS=100000 OOM_VM_KB=20000 # ~30 MB of event text against 20 MB of address space
if [[ $MS != */asan/* ]]; then
	mkdir -p "$T/oom/run/big" "$T/oom/cd"
	awk -v n=$OOM_EVENTS 'BEGIN { pad = sprintf("%0250d", 0)
		for (i = 0; i < n; i++)
			printf "{\"time\":\"2026-01-01T00:00:%02dZ\",\"id\":\"big\",\"type\":\"t\",\"pad\":\"%s\"}\n", i % 60, pad }' \
		>"$T/oom/run/big/events.jsonl"
	(
		ulimit -v $OOM_VM_KB
		exec "$MS" --root "$T/oom/run" events --containerd-root "$T/oom/cd" --format json
	) >/dev/null 2>"$T/oom.err"
	rc=$?
	if [ $rc = 1 ] && grep -q '^moonshim events: big: an event could not be stored: out of memory' "$T/oom.err" &&
		grep -q '^moonshim events: [0-9]* events or journals could not be stored$' "$T/oom.err"; then
		ok events_out_of_memory_named_exit_1
	else bad events_out_of_memory_named_exit_1 "rc=$rc err='$(head -c 600 "$T/oom.err")'"; fi
	rm -rf "$T/oom"
fi

# --follow: appended lines, a torn line completed later, rotation, a new container
"$MS" "${R[@]}" --follow >"$T/follow" 2>"$T/follow.err" &
fpid=$!
bgpids+=($fpid)
sleep 0.5
ev 2026-01-01T00:01:00Z a f1 >>"$F/run/a/events.jsonl"
printf '{"time":"2026-01-01T00:01:01Z","id":"a",' >>"$F/run/a/events.jsonl"
sleep 0.5
printf '"type":"f2"}\n' >>"$F/run/a/events.jsonl"
mv "$F/run/a/events.jsonl" "$F/run/a/events.jsonl.1"
ev 2026-01-01T00:01:02Z a f3 >"$F/run/a/events.jsonl"
mkdir -p "$F/cd/k8s/c" && ev 2026-01-01T00:01:03Z c f4 >"$F/cd/k8s/c/events.jsonl"
mkdir -p "$F/cd/ns2/d" && ev 2026-01-01T00:01:04Z d f5 >"$F/cd/ns2/d/events.jsonl"
got() { [ "$(grep -c ' container f[0-9] ' "$T/follow")" -ge 5 ]; }
ct_wait 5 got
sleep 0.3
kill -TERM $fpid
wait $fpid
rc=$?
types=$(awk '{ print $3 ":" $4 }' "$T/follow" | tr '\n' ' ')
if [ $rc = 0 ] && [ "$types" = "f1:a f2:a f3:a f4:k8s/c f5:ns2/d " ]; then ok events_follow_torn_line_rotation_new_containers
else bad events_follow_torn_line_rotation_new_containers "rc=$rc '$types' $(cat "$T/follow.err")"; fi

# --since reaching into events.jsonl.1 while events.jsonl ends in a torn line
G=$T/fix2
mkdir -p "$G/run/e"
# (over 64 KiB: a line of it crosses a read's end and passes through the line buffer)
awk 'BEGIN { for (i = 1; i <= 1000; i++) printf "{\"time\":\"2026-01-01T00:00:01Z\",\"id\":\"e\",\"type\":\"old1\",\"pad\":\"%080d\"}\n", i }' >"$G/run/e/events.jsonl.1"
{ ev 2026-01-01T00:00:02Z e cur1; printf '{"time":"2026-01-01T00:00:03Z","id":"e","type":"cu'; } >"$G/run/e/events.jsonl"
"$MS" --root "$G/run" events --containerd-root "$G/none" -f --since 2025-12-31T00:00:00Z >"$T/follow2" 2>&1 &
fpid=$!
bgpids+=($fpid)
sleep 0.5
printf 'r2"}\n' >>"$G/run/e/events.jsonl"
got2() { [ "$(grep -c ' container ' "$T/follow2")" -ge 1002 ]; }
ct_wait 5 got2
kill -TERM $fpid
wait $fpid
types=$(awk '{ print $3 }' "$T/follow2" | uniq -c | awk '{ print $2 "*" $1 }' | tr '\n' ' ')
if [ "$types" = "old1*1000 cur1*1 cur2*1 " ]; then ok events_since_rotated_then_torn_line_completed
else bad events_since_rotated_then_torn_line_completed "'$types' $(cat "$T/follow2")"; fi

out=$("$MS" --root "$F/run" inspect --containerd-root "$F/cd" a k8s/b nope 2>"$T/err")
rc=$?
st=$(jq -r '[.[] | .Key + "=" + .State.Status + "/" + (.Supervisor.Alive | tostring)] | join(" ")' <<<"$out")
if [ $rc = 1 ] && [ "$st" = "a=running/true k8s/b=stopped/false" ] &&
	[ "$(cat "$T/err")" = "Error: No such object: nope" ] &&
	jq -e '.[1].Supervisor.Note | test("supervisor is gone")' <<<"$out" >/dev/null; then
	ok inspect_live_gone_and_unknown
else bad inspect_live_gone_and_unknown "rc=$rc '$st' $(cat "$T/err")"; fi

out=$("$MS" --root "$F/run" top --once --containerd-root "$F/cd" 2>&1)
rows=$(awk 'NR > 2 { print $1 ":" $2 }' <<<"$out" | tr '\n' ' ')
if [ "$rows" = "a:running k8s/b:stopped " ]; then
	ok top_once_rows_sorted
else bad top_once_rows_sorted "'$rows' $out"; fi
# nothing published at all: an empty frame, no events, no error
out=$("$MS" --root "$T/empty" top --once --containerd-root "$T/empty2" 2>&1)
evs=$("$MS" --root "$T/empty" events --containerd-root "$T/empty2" 2>&1)
if [ "$(wc -l <<<"$out")" = 2 ] && grep -q "0 containers" <<<"$out" && [ -z "$evs" ]; then ok empty_roots
else bad empty_roots "'$out' '$evs'"; fi

# top with stdin not a terminal (</dev/null): keys are not read, it runs on
# until a signal, which it leaves by with status 0
tmux -L "$SOCK" -f /dev/null new-session -d -s nokeys -x 100 -y 10 \
	"$MS --root $F/run top --interval 0.2 --containerd-root $F/cd </dev/null; echo \$? >$T/top0.rc"
shown() { tmux -L "$SOCK" capture-pane -p -t nokeys 2>/dev/null | grep -q "^a  *running"; }
ct_wait 5 shown
sleep 1
sh_pid=$(tmux -L "$SOCK" list-panes -t nokeys -F '#{pane_pid}' 2>/dev/null)
top_pid=$(pgrep -P "$sh_pid" 2>/dev/null)
alive=no
[ -n "$top_pid" ] && [ ! -e "$T/top0.rc" ] && alive=yes
[ -n "$top_pid" ] && kill -TERM "$top_pid"
stopped() { [ "$(cat "$T/top0.rc" 2>/dev/null)" = 0 ]; }
if [ $alive = yes ] && ct_wait 5 stopped; then ok top_without_a_keyboard_runs_until_a_signal
else bad top_without_a_keyboard_runs_until_a_signal "alive=$alive rc='$(cat "$T/top0.rc" 2>&1)'"; fi
tmux -L "$SOCK" kill-server 2>/dev/null

kill $SUP 2>/dev/null

# ─── real supervisors ─────────────────────────────────────────────────────

bash "$REPO/tests/container/mkbundle.sh" "$T/b" -- sh >/dev/null
mkdir -p "$T/b/rootfs/www" && echo ok >"$T/b/rootfs/www/healthz"
jq '.root.readonly = false' "$T/b/config.json" >"$T/c" && mv "$T/c" "$T/b/config.json"
cp -a "$T/b" "$T/b2"
# ok: httpd for good; flaky: httpd for 3 s, then gone (healthy, then unhealthy)
jq '.process.args = ["httpd", "-f", "-p", "8080", "-h", "/www"]' "$T/b/config.json" >"$T/c" && mv "$T/c" "$T/b/config.json"
jq '.process.args = ["sh", "-c", "httpd -f -p 8080 -h /www & sleep 3; kill %1; sleep 600"]' "$T/b2/config.json" >"$T/c" && mv "$T/c" "$T/b2/config.json"
cat >"$T/check.lua" <<'L'
check {
  name = "http", interval = 0.2, timeout = 0.5, retries = 2,
  run = function()
    local r, err = http.get("http://127.0.0.1:8080/healthz", { timeout = 0.5 })
    if not r then return false, err end
    return r.status == 200, r.status
  end,
}
L
OK=${ID}ok FLAKY=${ID}flaky
"$MS" --root "$T/root" run -d --bundle "$T/b" --check "$T/check.lua" "$OK" </dev/null >"$T/run1" 2>&1 ||
	bad run_detached "$(cat "$T/run1")"
"$MS" --root "$T/root" run -d --bundle "$T/b2" --check "$T/check.lua" "$FLAKY" </dev/null >"$T/run2" 2>&1 ||
	bad run_detached "$(cat "$T/run2")"
NC=(--containerd-root "$T/none")

# tmux: top in a private server, 150x20
tmux -L "$SOCK" -f /dev/null new-session -d -s top -x 150 -y 20 \
	"$MS --root $T/root top --interval 0.3 ${NC[*]}; echo \$? >$T/top.rc; sleep 60"
pane() { tmux -L "$SOCK" capture-pane -p -t top; }
row() { pane | grep -E "^$1 "; }
both() { row "$OK" | grep -q running && row "$FLAKY" | grep -q running; }
if ct_wait 10 both; then ok top_shows_both_containers
else bad top_shows_both_containers "$(pane)"; fi

flipped() { row "$FLAKY" | grep -q unhealthy && row "$OK" | grep -q " healthy "; }
if ct_wait 15 flipped; then ok top_health_flips_to_unhealthy
else bad top_health_flips_to_unhealthy "$(pane)"; fi
mem=$(row "$OK" | grep -cE ' [0-9.]+[BKMG]? / ')
if [ "$mem" = 1 ]; then ok top_memory_from_the_cgroup
else bad top_memory_from_the_cgroup "$(row "$OK")"; fi

tmux -L "$SOCK" resize-window -t top -x 40 -y 12 2>/dev/null
narrow() {
	local p w
	p=$(pane)
	w=$(awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }' <<<"$p")
	[ "$w" -le 40 ] && grep -q "^moonshim top" <<<"$p" && grep -q "^$OK" <<<"$p"
}
if ct_wait 5 narrow; then ok top_resize_cut_to_the_width
else bad top_resize_cut_to_the_width "$(pane)"; fi

tmux -L "$SOCK" send-keys -t top q
# top's own exit status, through the shell (which then sleeps: the pane
# stays alive, so what top left the terminal in can be looked at)
dead() { [ "$(cat "$T/top.rc" 2>/dev/null)" = 0 ]; }
if ct_wait 5 dead; then ok top_quits_on_q
else bad top_quits_on_q "status '$(cat "$T/top.rc" 2>&1)'"; fi
# the terminal is restored: out of the alternate screen (no frame left), the cursor shown
term=$(tmux -L "$SOCK" list-panes -t top -F '#{alternate_on} #{cursor_flag}' 2>&1)
if [ "$term" = "0 1" ] && ! pane | grep -q "moonshim top"; then ok top_restores_the_terminal
else bad top_restores_the_terminal "alternate_on, cursor_flag: '$term'; $(pane | head -3)"; fi
tmux -L "$SOCK" kill-server 2>/dev/null

out=$("$MS" --root "$T/root" inspect "${NC[@]}" "$FLAKY" "$OK")
check=$(jq -r '.[0] | [.State.Status, .State.Running, (.State.Pid > 0), .State.Health.Status,
	(.State.Health.Checks[0].Log | length <= 5), (.State.Health.Checks[0].Log[-1] | has("Start") and has("End") and has("ExitCode") and has("Output")),
	.Supervisor.Alive] | map(tostring) | join(" ")' <<<"$out" 2>&1)
okh=$(jq -r '.[1].State.Health.Status' <<<"$out" 2>&1)
if [ "$check" = "running true true unhealthy true true true" ] && [ "$okh" = healthy ]; then
	ok inspect_state_health_last_five
else bad inspect_state_health_last_five "'$check' '$okh' $(head -c 1500 <<<"$out")"; fi

out=$("$MS" --root "$T/root" events "${NC[@]}" --since 5m --filter type=health "$FLAKY")
if grep -qE "^20[0-9-]+T[0-9:.]+Z container health $FLAKY \(.*to=unhealthy" <<<"$out" && ! grep -q " $OK " <<<"$out"; then
	ok events_real_health_transitions
else bad events_real_health_transitions "'$out'"; fi

# a follower sees a new container's start and a kill's exit
"$MS" --root "$T/root" events "${NC[@]}" -f --filter type=start --filter type=exit >"$T/f2" 2>&1 &
fpid=$!
bgpids+=($fpid)
sleep 0.5
"$MS" --root "$T/root" kill "$OK" KILL >/dev/null 2>&1
cp -a "$T/b" "$T/b3"
"$MS" --root "$T/root" run -d --bundle "$T/b3" "${ID}new" </dev/null >"$T/run3" 2>&1
saw() { grep -q "container exit $OK" "$T/f2" && grep -q "container start ${ID}new" "$T/f2"; }
if ct_wait 10 saw; then ok events_follow_real_containers
else bad events_follow_real_containers "$(cat "$T/f2")"; fi
kill $fpid 2>/dev/null

gone() { "$MS" --root "$T/root" inspect "${NC[@]}" "$OK" 2>/dev/null | jq -e '.[0].State.Status == "exited" or .[0].State.Status == "stopped"' >/dev/null; }
if ct_wait 10 gone; then ok inspect_after_kill_exited
else bad inspect_after_kill_exited "$("$MS" --root "$T/root" inspect "${NC[@]}" "$OK" 2>&1 | head -c 600)"; fi

echo "$NAME: $passed passed, $failed failed"
[ "$failed" = 0 ]
