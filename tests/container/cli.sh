#!/bin/bash
# cli.sh — moonshim's runc-like verbs on live containers: run -d, state, ps,
# list, exec (namespaces, seccomp, --env/--cwd/--user, --process, --detach,
# exit status), kill, delete (--force), run's --events and --log (losing no
# line of a big output), --go-watch's stderr tap (losing no byte of an 8.3 MB
# single write) and its memory after a hostile profile, and signal forwarding
# by a foreground run. Each case runs against runc first where
# runc has the verb (a check of the case itself: a runc-side failure is
# reported as "runc: ..."), then against moonshim.
#   bash tests/container/cli.sh [CASE...]
# Prints "ok NAME" / "FAIL NAME" (with the reasons), then
# "container-cli: N passed, N failed"; exits 1 on any failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

JOBS=${CT_JOBS:-3}
# an init that exits 3 on SIGTERM, whichever runtime or process sends it
TRAP_INIT='trap "exit 3" TERM; echo started; while :; do sleep 1; done'
V1_CONTROLLERS="memory cpu pids devices" # the v1 hierarchies moonshim must use
# an error from a verb other than run: "moonshim: ..." or "moonshim VERB: ..."
ERR_LINE='moonshim( [a-z]+)?: '

# ---------------------------------------------------------------- plumbing

cl_id() { echo "$CT_PREFIX-$1-$2"; } # CASE SIDE

# cl_why CASE SIDE TEXT...: record a problem with one side.
cl_why() { echo "$2: ${*:3}" >>"$CT_DIR/b/$1.why"; }

# cl_want CASE SIDE DESCRIPTION CMD...: run CMD; on failure record DESCRIPTION.
cl_want() {
	local c=$1 s=$2 desc=$3
	shift 3
	"$@" || cl_why "$c" "$s" "$desc"
}

# cl_bundle CASE SIDE [ARGS...]: the side's bundle dir ($CT_DIR/b/CASE-SIDE).
cl_bundle() {
	local dir=$CT_DIR/b/$1-$2
	shift 2
	ct_bundle "$dir" -- "$@"
	echo "$dir"
}

# cl_start CASE SIDE ARGS...: run -d a container with process.args ARGS, wait
# for state "running"; stdout/stderr of the container go to CASE-SIDE.stdio.
cl_start() {
	local c=$1 s=$2 b id
	shift 2
	b=$(cl_bundle "$c" "$s" "$@")
	id=$(cl_id "$c" "$s")
	if ! ct_rt "$s" run -d -b "$b" "$id" </dev/null >"$b.stdio" 2>&1; then
		cl_why "$c" "$s" "run -d failed: $(head -c 300 "$b.stdio")"
		return 1
	fi
	ct_wait 10 cl_is "$s" "$id" running || {
		cl_why "$c" "$s" "state never says running (last: $(ct_state_status "$s" "$id"))"
		return 1
	}
}
cl_is() { [ "$(ct_state_status "$1" "$2")" = "$3" ]; }
cl_pid() { ct_rt "$1" state "$2" 2>/dev/null | jq -r .pid; }

# cl_cgroup_dirs ID: moonshim's cgroup dirs for ID that exist now.
cl_cgroup_dirs() {
	local c
	[ -d "/sys/fs/cgroup/unified/moonshim/$1" ] && echo "/sys/fs/cgroup/unified/moonshim/$1"
	for c in $V1_CONTROLLERS; do
		[ -d "/sys/fs/cgroup/$c/moonshim/$1" ] && echo "/sys/fs/cgroup/$c/moonshim/$1"
	done
	return 0
}

# cl_gone CASE SIDE ID: after delete — no state, no state dir, no processes,
# and (moonshim) no cgroup dirs.
cl_gone() {
	local c=$1 s=$2 id=$3 left
	ct_rt "$s" state "$id" >/dev/null 2>&1 && cl_why "$c" "$s" "state still answers after delete"
	[ -e "$CT_DIR/$s/$id" ] && cl_why "$c" "$s" "state dir $CT_DIR/$s/$id left"
	left=$(ct_root_pids "$CT_DIR/b/$c-$s/rootfs")
	[ -n "$left" ] && cl_why "$c" "$s" "processes left: $left"
	if [ "$s" = moon ]; then
		left=$(cl_cgroup_dirs "$id")
		[ -n "$left" ] && cl_why "$c" "$s" "cgroup dirs left:" $left
	fi
	return 0
}

# cl_exec SIDE ID [OPTION...] -- CMD...: exec; moonshim takes "-- CMD" after
# the id, runc the command right after it.
cl_exec() {
	local s=$1 id=$2 opts=()
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
	shift
	case $s in
	runc) ct_rt runc exec "${opts[@]}" "$id" "$@" ;;
	moon) ct_rt moon exec "${opts[@]}" "$id" -- "$@" ;;
	esac
}

# cl_case NAME SIDES: run cl_NAME for each side, then record the result.
cl_case() {
	local c=$1 s
	: >"$CT_DIR/b/$c.why"
	for s in $2; do
		if [ "$s" = moon ] && ! ct_have_moon; then cl_why "$c" moon "not built ($MOON)"; continue; fi
		"cl_$c" "$s"
		ct_rt "$s" delete --force "$(cl_id "$c" "$s")" >/dev/null 2>&1
	done
	if [ -s "$CT_DIR/b/$c.why" ]; then ct_result "$c" fail "$CT_DIR/b/$c.why"; else ct_result "$c" ok; fi
}

# ---------------------------------------------------------------- run -d, state, ps, list

# state: the same keys as runc's, status running, a live pid, the bundle
cl_state() {
	local s=$1 c=state id b pid
	id=$(cl_id $c "$s")
	b=$CT_DIR/b/$c-$s
	cl_start $c "$s" sh -c "$TRAP_INIT" || return
	ct_rt "$s" state "$id" >"$b.state" 2>&1 || { cl_why $c "$s" "state failed: $(cat "$b.state")"; return; }
	jq -r 'keys_unsorted | sort | join(",")' "$b.state" >"$CT_DIR/b/$c.keys.$s" 2>/dev/null
	pid=$(jq -r .pid "$b.state")
	cl_want $c "$s" "status is $(jq -r .status "$b.state"), want running" [ "$(jq -r .status "$b.state")" = running ]
	cl_want $c "$s" "pid $pid is not alive" kill -0 "$pid"
	cl_want $c "$s" "id is $(jq -r .id "$b.state")" [ "$(jq -r .id "$b.state")" = "$id" ]
	cl_want $c "$s" "bundle is $(jq -r .bundle "$b.state"), want $b" [ "$(jq -r .bundle "$b.state")" = "$b" ]
	cl_want $c "$s" "rootfs is $(jq -r .rootfs "$b.state"), want $b/rootfs" [ "$(jq -r .rootfs "$b.state")" = "$b/rootfs" ]
	cl_want $c "$s" "created is not RFC 3339: $(jq -r .created "$b.state")" \
		grep -qE '^"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}(\.[0-9]+)?(Z|[+-][0-9:]+)"$' <(jq .created "$b.state")
	cl_want $c "$s" "pid $pid is not rooted in the bundle's rootfs" [ "/proc/$pid/root" -ef "$b/rootfs" ]
	if [ "$s" = moon ]; then
		cl_want $c "$s" "keys $(cat "$CT_DIR/b/$c.keys.moon"), runc's $(cat "$CT_DIR/b/$c.keys.runc" 2>/dev/null)" \
			cmp -s "$CT_DIR/b/$c.keys.runc" "$CT_DIR/b/$c.keys.moon"
		# while it runs, the init is in moonshim/ID on v2 and every v1 controller
		local d
		for d in /sys/fs/cgroup/unified/moonshim/$id $(for x in $V1_CONTROLLERS; do echo "/sys/fs/cgroup/$x/moonshim/$id"; done); do
			cl_want $c "$s" "init $pid is not in $d" grep -qx "$pid" "$d/cgroup.procs"
		done
	fi
}

cl_state_unknown() {
	local s=$1 c=state_unknown out rc
	out=$(ct_rt "$s" state "$CT_PREFIX-nosuch" 2>&1)
	rc=$?
	cl_want $c "$s" "state of an unknown id exits 0" [ $rc != 0 ]
	# (runc's "container does not exist" names no id; ours must)
	[ "$s" = moon ] && cl_want $c "$s" "error is not one moonshim: line naming the id: $out" grep -qxE "$ERR_LINE.*$CT_PREFIX-nosuch.*" <<<"$out"
	[ "$s" = runc ] && echo "$rc" >"$CT_DIR/b/$c.rc.runc"
	[ "$s" = moon ] && cl_want $c "$s" "exit status $rc, runc's $(cat "$CT_DIR/b/$c.rc.runc")" [ "$rc" = "$(cat "$CT_DIR/b/$c.rc.runc")" ]
}

cl_ps() {
	local s=$1 c=ps id pid b=$CT_DIR/b/ps-$1
	id=$(cl_id $c "$s")
	cl_start $c "$s" sh -c "$TRAP_INIT" || return
	pid=$(cl_pid "$s" "$id")
	ct_rt "$s" ps "$id" >"$b.table" 2>&1
	# (runc prints ps(1)'s "UID PID PPID C STIME TTY TIME CMD"; only a PID
	# column is required here)
	cl_want $c "$s" "ps table has no PID column: $(head -n1 "$b.table")" grep -qE '^(.* )?PID( |$)' <(head -n1 "$b.table")
	cl_want $c "$s" "ps table lacks pid $pid in its PID column: $(head -c 300 "$b.table")" \
		awk -v p="$pid" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "PID") col = i; next } $col == p { found = 1 } END { exit !found }' "$b.table"
	ct_rt "$s" ps --format json "$id" >"$b.json" 2>&1
	cl_want $c "$s" "ps --format json lacks $pid: $(head -c 300 "$b.json")" jq -e --argjson p "$pid" 'index($p) != null' "$b.json" >/dev/null
}

cl_list() {
	local s=$1 c=list id pid b=$CT_DIR/b/list-$1
	id=$(cl_id $c "$s")
	cl_start $c "$s" sh -c "$TRAP_INIT" || return
	pid=$(cl_pid "$s" "$id")
	ct_rt "$s" list >"$b.table" 2>&1
	cl_want $c "$s" "list table lacks \"$id $pid running\": $(cat "$b.table")" grep -qE "^$id +$pid +running " "$b.table"
	cl_want $c "$s" "list table has no header" grep -qE '^ID +PID +STATUS +BUNDLE +CREATED +OWNER' "$b.table"
	ct_rt "$s" list --format json >"$b.json" 2>&1
	cl_want $c "$s" "list --format json lacks $id running $pid: $(head -c 300 "$b.json")" \
		jq -e --arg id "$id" --argjson p "$pid" 'any(.[]; .id == $id and .status == "running" and .pid == $p)' "$b.json" >/dev/null
}

# ---------------------------------------------------------------- exec

NS_ALL="cgroup ipc mnt net pid pid_for_children time time_for_children user uts"

# an exec'd process shares the init's namespaces and seccomp/nnp state
cl_exec_ns() {
	local s=$1 c=exec_ns id pid n b=$CT_DIR/b/exec_ns-$1
	id=$(cl_id $c "$s")
	cl_start $c "$s" sh -c "$TRAP_INIT" || return
	pid=$(cl_pid "$s" "$id")
	cl_exec "$s" "$id" -- sh -c "for n in $NS_ALL; do echo \$n \$(readlink /proc/self/ns/\$n); done" >"$b.ns" 2>&1 ||
		cl_why $c "$s" "exec failed: $(head -c 300 "$b.ns")"
	for n in $NS_ALL; do
		echo "$n $(readlink "/proc/$pid/ns/$n")"
	done >"$b.ns.init"
	cl_want $c "$s" "exec'd namespaces differ from init's: $(diff "$b.ns.init" "$b.ns" | tr '\n' ' ')" cmp -s "$b.ns.init" "$b.ns"
	cl_exec "$s" "$id" -- cat /proc/self/status >"$b.status" 2>&1
	grep -E '^(Seccomp|NoNewPrivs|CapEff|CapBnd):' "/proc/$pid/status" >"$b.status.init"
	cl_want $c "$s" "exec'd Seccomp/NoNewPrivs/caps differ from init's: $(diff "$b.status.init" <(grep -E '^(Seccomp|NoNewPrivs|CapEff|CapBnd):' "$b.status") | tr '\n' ' ')" \
		cmp -s "$b.status.init" <(grep -E '^(Seccomp|NoNewPrivs|CapEff|CapBnd):' "$b.status")
}

# the same with a seccomp profile: exec'd processes are filtered too
cl_exec_seccomp() {
	local s=$1 c=exec_seccomp id b=$CT_DIR/b/exec_seccomp-$1 out
	id=$(cl_id $c "$s")
	b=$(cl_bundle $c "$s" sh -c "$TRAP_INIT")
	ct_cfg "$b" '.linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", syscalls: [{names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1}]}'
	ct_rt "$s" run -d -b "$b" "$id" </dev/null >"$b.stdio" 2>&1 || { cl_why $c "$s" "run -d failed: $(cat "$b.stdio")"; return; }
	ct_wait 10 cl_is "$s" "$id" running || { cl_why $c "$s" "not running"; return; }
	out=$(cl_exec "$s" "$id" -- sh -c 'grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status; mkdir /dev/shm/d; echo mkdir=$?' 2>&1)
	cl_want $c "$s" "exec'd process not filtered: $out" grep -q '^Seccomp:	2' <<<"$out"
	cl_want $c "$s" "mkdir not refused with EPERM: $out" grep -q 'mkdir=1' <<<"$out"
	cl_want $c "$s" "exec'd process has no NoNewPrivs: $out" grep -q '^NoNewPrivs:	1' <<<"$out"
}

# exec's exit status, --env, --cwd, --user, stdin
cl_exec_opts() {
	local s=$1 c=exec_opts id out rc
	id=$(cl_id $c "$s")
	cl_start $c "$s" sh -c "$TRAP_INIT" || return
	cl_exec "$s" "$id" -- sh -c 'exit 5' >/dev/null 2>&1
	rc=$?
	cl_want $c "$s" "exec exit status $rc, want 5" [ $rc = 5 ]
	out=$(cl_exec "$s" "$id" --env FOO=bar --env PATH=/bin --cwd /tmp --user 1000:1000 -- sh -c 'echo "$FOO $PATH $(pwd) $(id -u):$(id -g)"' 2>&1)
	cl_want $c "$s" "exec --env/--cwd/--user gave: $out, want: bar /bin /tmp 1000:1000" [ "$out" = "bar /bin /tmp 1000:1000" ]
	out=$(echo piped | cl_exec "$s" "$id" -- cat 2>&1)
	cl_want $c "$s" "exec stdin: $out" [ "$out" = piped ]
}

cl_exec_process() {
	local s=$1 c=exec_process id b=$CT_DIR/b/exec_process-$1 out
	id=$(cl_id $c "$s")
	cl_start $c "$s" sh -c "$TRAP_INIT" || return
	jq '.process | .args = ["sh", "-c", "echo $MSG from $(pwd) as $(id -u)"] | .env = ["MSG=hello", "PATH=/bin"] | .cwd = "/dev" | .user = {uid: 65534, gid: 65534}' \
		"$b/config.json" >"$b.process.json"
	out=$(cl_exec "$s" "$id" --process "$b.process.json" -- 2>&1)
	cl_want $c "$s" "exec --process gave: $out" [ "$out" = "hello from /dev as 65534" ]
}

# an exec whose argument is too big for execve: a named error, not a status
# that could be the process's own
cl_exec_e2big() {
	local s=$1 c=exec_e2big id b=$CT_DIR/b/exec_e2big-$1 out rc
	id=$(cl_id $c "$s")
	cl_start $c "$s" sh -c "$TRAP_INIT" || return
	jq '.process | .args = ["true", ("x" * 200000)]' "$b/config.json" >"$b.process.json"
	out=$(cl_exec "$s" "$id" --process "$b.process.json" -- 2>&1)
	rc=$?
	cl_want $c "$s" "exec of a 200 kB argument: status $rc" [ $rc != 0 ]
	cl_want $c "$s" "exec of a 200 kB argument does not name E2BIG: $(head -c 200 <<<"$out")" grep -qiE 'too big|argument list too long' <<<"$out"
}

# a process file nesting 800 arrays: one clear error, the exec'd nothing, the
# container runs on (the parser recursed per level and overflowed its stack)
cl_exec_process_deep() {
	local s=$1 c=exec_process_deep id b=$CT_DIR/b/exec_process_deep-$1 out rc
	id=$(cl_id $c "$s")
	cl_start $c "$s" sh -c "$TRAP_INIT" || return
	{ printf '{"args": ["true"], "cwd": "/", "deep": '; printf '[%.0s' $(seq 800); printf ']%.0s' $(seq 800); printf '}'; } >"$b.process.json"
	out=$(cl_exec "$s" "$id" --process "$b.process.json" -- 2>&1)
	rc=$?
	cl_want $c "$s" "exec --process of 800 levels: status $rc, said: $out" [ $rc != 0 ]
	cl_want $c "$s" "want one line naming the file and the depth, got: $out" \
		grep -q "^moonshim: .*process.json: JSON nested deeper than 64 levels$" <<<"$out"
	cl_want $c "$s" "more than one line: $out" [ "$(grep -c . <<<"$out")" = 1 ]
	cl_want $c "$s" "not running after the refused exec" cl_is "$s" "$id" running
}

cl_exec_detach() {
	local s=$1 c=exec_detach id n
	id=$(cl_id $c "$s")
	cl_start $c "$s" sh -c "$TRAP_INIT" || return
	cl_want $c "$s" "exec --detach failed" cl_exec "$s" "$id" --detach -- sleep 60 </dev/null >/dev/null 2>&1
	n=$(ct_rt "$s" ps --format json "$id" 2>/dev/null | jq length)
	# init, its sleep 1, and the detached sleep 60
	cl_want $c "$s" "ps lists ${n:-no} processes after exec --detach, want >= 3" [ "${n:-0}" -ge 3 ]
}

# CVE-2024-21626: an exec's cwd never leads out of the container, whether the
# operator names /proc/self/fd/N (--cwd, --process) or the workload plants a
# symlink to it on the way to its cwd. Until execve the runtime's child holds
# host fds (cgroup dir, sync socket); reading the host file through one must
# fail, and the exec must fail rather than run elsewhere.
cl_exec_cwd_escape() {
	local s=$1 c=exec_cwd_escape id b=$CT_DIR/b/exec_cwd_escape-$1 n out up=../../../../../../../../../..
	local secret=$CT_DIR/b/exec_cwd_escape-$1.secret token=host-secret-$RANDOM$RANDOM
	echo "$token" >"$secret"
	id=$(cl_id $c "$s")
	b=$(cl_bundle $c "$s" sh -c "$TRAP_INIT")
	ct_cfg "$b" '.root.readonly = false'
	ct_rt "$s" run -d -b "$b" "$id" </dev/null >"$b.stdio" 2>&1 || { cl_why $c "$s" "run -d failed: $(cat "$b.stdio")"; return; }
	ct_wait 10 cl_is "$s" "$id" running || { cl_why $c "$s" "not running"; return; }
	cl_exec "$s" "$id" -- sh -c 'for n in 3 4 5 6 7 8 9 10; do ln -s /proc/self/fd/$n /w$n; done' >/dev/null 2>&1
	for n in 3 4 5 6 7 8 9 10; do
		out=$(cl_exec "$s" "$id" --cwd /proc/self/fd/$n -- cat "$up$secret" 2>&1)
		grep -q "$token" <<<"$out" && cl_why $c "$s" "exec --cwd /proc/self/fd/$n read the host's file"
		out=$(cl_exec "$s" "$id" --cwd /w$n -- cat "$up$secret" 2>&1)
		grep -q "$token" <<<"$out" && cl_why $c "$s" "exec --cwd /w$n (a planted symlink to /proc/self/fd/$n) read the host's file"
	done
	jq --arg f "$up$secret" '.process | .args = ["cat", $f] | .cwd = "/proc/self/fd/6"' "$b/config.json" >"$b.process.json"
	out=$(cl_exec "$s" "$id" --process "$b.process.json" -- 2>&1)
	grep -q "$token" <<<"$out" && cl_why $c "$s" "exec --process with cwd /proc/self/fd/6 read the host's file"
	[ "$s" = moon ] || return 0
	out=$(cl_exec "$s" "$id" --cwd /proc/self/fd/6 -- true 2>&1) && cl_why $c "$s" "exec --cwd /proc/self/fd/6 succeeded"
	cl_want $c "$s" "the refusal does not say why: $out" grep -q 'process.cwd /proc/self/fd/6: refusing' <<<"$out"
	cl_want $c "$s" "a plain exec fails after the refusals" cl_exec "$s" "$id" --cwd /tmp -- true
}

# state of a container whose init exited while its supervisor could not
# reap it (stopped), or after the supervisor was killed -9: "stopped", as
# runc says, never "running" for a zombie; delete then cleans up
cl_state_orphaned() {
	local s=$1 c=state_orphaned id sup how
	id=$(cl_id $c "$s")
	for how in STOP KILL; do
		cl_start $c "$s" sh -c 'sleep 1' || return
		sup=$(jq -r .supervisor "$CT_DIR/moon/$id/state.json")
		[ "${sup:-0}" -gt 0 ] || { cl_why $c "$s" "no supervisor pid in the state record"; return; }
		kill -"$how" "$sup"
		cl_want $c "$s" "supervisor got SIG$how: state still '$(ct_state_status "$s" "$id")' 4 s after the init's exit" \
			ct_wait 4 cl_is "$s" "$id" stopped
		[ "$how" = STOP ] && kill -CONT "$sup"
		ct_wait 5 cl_is "$s" "$id" stopped
		ct_rt "$s" delete --force "$id" >/dev/null 2>&1
		cl_want $c "$s" "cgroups left after delete (SIG$how): $(cl_cgroup_dirs "$id" | tr '\n' ' ')" [ -z "$(cl_cgroup_dirs "$id")" ]
	done
}

# ---------------------------------------------------------------- kill, delete

# kill ID TERM: the init's trap exits 3; state says stopped; delete cleans up
cl_kill_term() {
	local s=$1 c=kill_term id
	id=$(cl_id $c "$s")
	cl_start $c "$s" sh -c "$TRAP_INIT" || return
	cl_want $c "$s" "kill $id TERM failed" ct_rt "$s" kill "$id" TERM
	cl_want $c "$s" "not stopped 5 s after TERM (state: $(ct_state_status "$s" "$id"))" ct_wait 5 cl_is "$s" "$id" stopped
	# a stopped container's state as runc shows it (runc: pid 0)
	ct_rt "$s" state "$id" 2>/dev/null | jq -c '{status, pid}' >"$CT_DIR/b/$c.stopped.$s"
	[ "$s" = moon ] && cl_want $c "$s" "stopped state $(cat "$CT_DIR/b/$c.stopped.moon"), runc's $(cat "$CT_DIR/b/$c.stopped.runc")" \
		cmp -s "$CT_DIR/b/$c.stopped.runc" "$CT_DIR/b/$c.stopped.moon"
	cl_want $c "$s" "delete of the stopped container failed" ct_rt "$s" delete "$id"
	cl_gone $c "$s" "$id"
}

# kill defaults to SIGTERM
cl_kill_default() {
	local s=$1 c=kill_default id
	id=$(cl_id $c "$s")
	cl_start $c "$s" sh -c "$TRAP_INIT" || return
	cl_want $c "$s" "kill $id failed" ct_rt "$s" kill "$id"
	cl_want $c "$s" "not stopped 5 s after kill (state: $(ct_state_status "$s" "$id"))" ct_wait 5 cl_is "$s" "$id" stopped
}

# kill --all KILL reaches exec'd processes too
cl_kill_all() {
	local s=$1 c=kill_all id
	id=$(cl_id $c "$s")
	cl_start $c "$s" sh -c "$TRAP_INIT" || return
	cl_exec "$s" "$id" --detach -- sleep 60 </dev/null >/dev/null 2>&1
	cl_want $c "$s" "kill --all failed" ct_rt "$s" kill --all "$id" KILL
	cl_want $c "$s" "not stopped after kill --all (state: $(ct_state_status "$s" "$id"))" ct_wait 5 cl_is "$s" "$id" stopped
	cl_want $c "$s" "processes left after kill --all: $(ct_root_pids "$CT_DIR/b/$c-$s/rootfs" | tr '\n' ' ')" \
		ct_wait 5 cl_no_pids "$CT_DIR/b/$c-$s/rootfs"
}
cl_no_pids() { [ -z "$(ct_root_pids "$1")" ]; }

# delete of a running container fails without --force and leaves it running
cl_delete_running() {
	local s=$1 c=delete_running id rc
	id=$(cl_id $c "$s")
	cl_start $c "$s" sh -c "$TRAP_INIT" || return
	ct_rt "$s" delete "$id" >"$CT_DIR/b/$c.err.$s" 2>&1
	rc=$?
	cl_want $c "$s" "delete of a running container exits 0" [ $rc != 0 ]
	cl_want $c "$s" "container not running after a refused delete" cl_is "$s" "$id" running
	[ "$s" = moon ] && cl_want $c "$s" "error is not one moonshim: line naming the id: $(cat "$CT_DIR/b/$c.err.moon")" \
		grep -qxE "$ERR_LINE.*$id.*" "$CT_DIR/b/$c.err.moon"
}

cl_delete_force() {
	local s=$1 c=delete_force id
	id=$(cl_id $c "$s")
	cl_start $c "$s" sh -c "$TRAP_INIT" || return
	cl_exec "$s" "$id" --detach -- sleep 60 </dev/null >/dev/null 2>&1
	cl_want $c "$s" "delete --force failed" ct_rt "$s" delete --force "$id"
	cl_gone $c "$s" "$id"
}

# a foreground run that ends on its own leaves nothing behind either
cl_run_cleanup() {
	local s=$1 c=run_cleanup id b
	id=$(cl_id $c "$s")
	b=$(cl_bundle $c "$s" sh -c 'exit 0')
	ct_rt "$s" run -b "$b" "$id" </dev/null >/dev/null 2>&1
	cl_gone $c "$s" "$id"
}

# ---------------------------------------------------------------- run's options

# --events FILE: one JSON object a line, with an exit line for the status
cl_events() {
	local s=$1 c=events id b rc
	id=$(cl_id $c "$s")
	b=$(cl_bundle $c "$s" sh -c 'echo hi; exit 4')
	ct_rt "$s" run --events "$b.events" -b "$b" "$id" </dev/null >/dev/null 2>&1
	rc=$?
	cl_want $c "$s" "run exit status $rc, want 4" [ $rc = 4 ]
	cl_want $c "$s" "no events file" [ -s "$b.events" ]
	[ -s "$b.events" ] || return
	cl_want $c "$s" "events file is not JSON lines: $(head -c 300 "$b.events")" jq -e . "$b.events" >/dev/null
	cl_want $c "$s" "no exit line with exit_status 4, id $id and a time: $(head -c 500 "$b.events")" \
		jq -se --arg id "$id" 'any(.[]; .type == "exit" and .exit_status == 4 and .id == $id and (.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T")))' "$b.events" >/dev/null
	cl_want $c "$s" "the exit line is not the last: $(tail -n1 "$b.events")" jq -se '.[-1].type == "exit"' "$b.events" >/dev/null
}

# a memory limit the init outgrows: the kernel's OOM kill is run's 137 (as
# with runc), and --events reports an oom_kill line before the exit line
cl_events_oom() {
	local s=$1 c=events_oom id b rc
	id=$(cl_id $c "$s")
	b=$(cl_bundle $c "$s" sh -c 'x=$(head -c 200000000 /dev/zero | tr "\0" a); echo survived ${#x}')
	ct_cfg "$b" '.linux.resources.memory = {limit: 33554432}'
	case $s in
	runc) ct_rt runc run -b "$b" "$id" </dev/null >"$b.out" 2>&1 ;;
	moon) ct_rt moon run --events "$b.events" -b "$b" "$id" </dev/null >"$b.out" 2>&1 ;;
	esac
	rc=$?
	cl_want $c "$s" "run exit status $rc, want 137: $(head -c 300 "$b.out")" [ $rc = 137 ]
	[ "$s" = moon ] || return
	cl_want $c "$s" "no oom_kill event for $id: $(grep -v memory.max "$b.events" | head -c 500)" \
		jq -se --arg id "$id" 'any(.[]; .type == "oom_kill" and .id == $id)' "$b.events" >/dev/null
	cl_want $c "$s" "the last event is not exit 137: $(tail -n1 "$b.events")" \
		jq -se '.[-1] | .type == "exit" and .exit_status == 137' "$b.events" >/dev/null
}

# --log FILE: the container's stdout and stderr as CRI k8s-file records
cl_log() {
	local s=$1 c=log id b bad
	id=$(cl_id $c "$s")
	b=$(cl_bundle $c "$s" sh -c 'echo out1; echo err1 >&2; echo out2')
	ct_rt "$s" run --log "$b.log" -b "$b" "$id" </dev/null >"$b.stdout" 2>"$b.stderr"
	cl_want $c "$s" "run failed: $(head -c 300 "$b.stderr")" [ $? = 0 ]
	cl_want $c "$s" "no log file" [ -s "$b.log" ]
	bad=$(grep -vE '^[0-9T:.-]+Z (stdout|stderr) [FP] ' "$b.log" 2>/dev/null | head -n3)
	cl_want $c "$s" "lines not in the CRI format: $bad" [ -z "$bad" ]
	cl_want $c "$s" "no \"stdout F out1\" record: $(head -c 300 "$b.log")" grep -qE 'Z stdout F out1$' "$b.log"
	cl_want $c "$s" "no \"stdout F out2\" record" grep -qE 'Z stdout F out2$' "$b.log"
	cl_want $c "$s" "no \"stderr F err1\" record" grep -qE 'Z stderr F err1$' "$b.log"
}

# a 40000-byte line is cut into 16 KiB P records and a last F one, which
# together give the line back
cl_log_long() {
	local s=$1 c=log_long id b
	id=$(cl_id $c "$s")
	b=$(cl_bundle $c "$s" sh -c 'head -c 40000 /dev/zero | tr "\0" x; echo; echo after')
	ct_rt "$s" run --log "$b.log" -b "$b" "$id" </dev/null >"$b.stdout" 2>"$b.stderr"
	cl_want $c "$s" "run failed: $(head -c 300 "$b.stderr")" [ $? = 0 ]
	cl_want $c "$s" "records not P... then F: $(cut -d' ' -f2,3 "$b.log" | tr '\n' ' ')" \
		[ "$(cut -d' ' -f2,3 "$b.log" | tr '\n' ' ')" = "stdout P stdout P stdout F stdout F " ]
	cl_want $c "$s" "the parts do not add up to the line" \
		[ "$(head -n3 "$b.log" | cut -d' ' -f4- | tr -d '\n')" = "$(head -c 40000 /dev/zero | tr '\0' x)" ]
}

# cl_big_text FILE: an 8 MB text of numbered 75-byte lines (106,666 of them).
cl_big_text() {
	awk 'BEGIN { for (i = 0; i < 106666; i++)
		printf "line %07d of a text file that the container writes out, %08x\n", i, i * 7919 }' >"$1"
}

# --log in its default (blocking) mode: a container that cats an 8 MB text
# to stdout, then to stderr, far faster than the log is written, has every
# line of both in the log, in order (the issue saw 88,088 and 7,446 of
# 106,667 and log_dropped_bytes: 11780000)
cl_log_lossless() {
	local s=$1 c=log_lossless id b
	id=$(cl_id $c "$s")
	b=$(cl_bundle $c "$s" sh -c 'cat /big.txt; cat /big.txt >&2')
	cl_big_text "$b/rootfs/big.txt"
	ct_rt "$s" run --log "$b.log" --events "$b.events" -b "$b" "$id" </dev/null \
		>"$b.stdout" 2>"$b.stderr"
	cl_want $c "$s" "run failed: $(head -c 300 "$b.stderr")" [ $? = 0 ]
	grep ' stdout F ' "$b.log" | cut -d' ' -f4- >"$b.out"
	grep ' stderr F ' "$b.log" | cut -d' ' -f4- >"$b.err"
	cl_want $c "$s" "stdout in the log: $(wc -l <"$b.out") of 106666 lines (or changed)" \
		cmp -s "$b.out" "$b/rootfs/big.txt"
	cl_want $c "$s" "stderr in the log: $(wc -l <"$b.err") of 106666 lines (or changed)" \
		cmp -s "$b.err" "$b/rootfs/big.txt"
	cl_want $c "$s" "records other than F ones: $(grep -vc ' [a-z]* F ' "$b.log")" \
		[ "$(wc -l <"$b.log")" = 213332 ]
	cl_want $c "$s" "the exit event counts drops: $(tail -n1 "$b.events")" \
		jq -se '.[-1] | .type == "exit" and (has("log_dropped_bytes") | not)' "$b.events" \
		>/dev/null
	# the mode is named, or refused before anything is made
	ct_rt "$s" run --log "$b.log2" --log-mode drop -b "$b" "$id" </dev/null >"$b.stdout2" 2>&1
	cl_want $c "$s" "--log-mode drop: exit $?, want 2" [ $? = 2 ]
	cl_want $c "$s" "--log-mode drop: \"$(head -c 200 "$b.stdout2")\"" \
		grep -q -- '--log-mode drop: blocking or non-blocking' "$b.stdout2"
}

# --go-watch: a program writing 8.3 MB to stderr in one write(2) (a Go
# panic's goroutine dump; busybox dd reads the file whole, then writes it
# once) into `2>file` — the file gets every byte, nothing is dropped (the
# issue saw exactly 1,048,576 bytes, cut mid-line)
cl_gowatch_lossless() {
	local s=$1 c=gowatch_lossless id b
	id=$(cl_id $c "$s")
	b=$(cl_bundle $c "$s" sh -c 'dd if=/big.txt bs=16M count=1 >&2 2>/dev/null; echo done')
	{ cl_big_text /dev/stdout; od -An -tx1 "$b/rootfs/bin/busybox"; } \
		| head -c 8300000 >"$b/rootfs/big.txt"
	ct_rt "$s" run --go-watch schedtrace=1000 --events "$b.events" -b "$b" "$id" </dev/null \
		>"$b.stdout" 2>"$b.stderr"
	cl_want $c "$s" "run failed: $(head -c 300 "$b.stdout")" [ $? = 0 ]
	cl_want $c "$s" "the container did not finish: $(head -c 300 "$b.stdout")" \
		grep -qx done "$b.stdout"
	cl_want $c "$s" "stderr got $(stat -c %s "$b.stderr") of 8300000 bytes (or changed)" \
		cmp -s "$b.stderr" "$b/rootfs/big.txt"
	cl_want $c "$s" "the exit event counts drops: $(tail -n1 "$b.events")" \
		jq -se '.[-1] | .type == "exit" and (has("stderr_dropped_bytes") | not)' "$b.events" \
		>/dev/null
}

# SIGTERM to a foreground run reaches the init, whose status becomes run's
cl_signal_forward() {
	local s=$1 c=signal_forward id b bg rc wd
	id=$(cl_id $c "$s")
	b=$(cl_bundle $c "$s" sh -c "$TRAP_INIT")
	case $s in
	runc) "$RUNC" --root "$CT_DIR/runc" run -b "$b" "$id" </dev/null >"$b.out" 2>&1 & ;;
	moon) "$MOON" --root "$CT_DIR/moon" run -b "$b" "$id" </dev/null >"$b.out" 2>&1 & ;;
	esac
	bg=$!
	if ! ct_wait 10 grep -q started "$b.out"; then
		cl_why $c "$s" "never started: $(head -c 300 "$b.out")"
		kill -KILL $bg 2>/dev/null
		wait $bg
		return
	fi
	kill -TERM $bg
	(sleep 10 && kill -KILL $bg 2>/dev/null) &
	wd=$!
	wait $bg
	rc=$?
	kill $wd 2>/dev/null
	cl_want $c "$s" "run's exit status $rc after SIGTERM, want the trap's 3" [ $rc = 3 ]
	cl_gone $c "$s" "$id"
}

# ---------------------------------------------------------------- --go-watch

# gw_profile N: a debug=1 goroutine profile of N distinct stacks, each parked
# in the runtime (its first printed PC is the first of "@"): N leak sites.
gw_profile() {
	awk -v n="$1" 'BEGIN {
		printf "goroutine profile: total %d\n", n
		for (i = 0; i < n; i++)
			printf "1 @ 0x%x 0x500000\n#\t0x%x\tmain.worker%d+0x1\t/src/main.go:%d\n#\t0x4fffff\tmain.loop+0x2\t/src/main.go:10\n\n", 4194304 + 2 * i, 4194304 + 2 * i, i, i
	}'
}
cl_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
GW_BIG_STACKS=190000 # ~22 MB: past the scraper's 16 MiB body cap and its 20000-stack cap
GW_RSS_SLACK_KB=2048 # what the big profile may leave resident (the detector's site table is ~0.5 MB)
GW_MIN_SCRAPES=12    # of ~20 in the case's 10 s at interval=0.5

# --go-watch pprof=: a hostile profile served for a while costs memory while
# it is served; once small ones come again the supervisor's RSS is back near
# what it was on small ones, and the scraper kept its interval throughout
cl_go_watch_memory() {
	local s=$1 c=go_watch_memory id b www sup base peak after n
	id=$(cl_id $c "$s")
	b=$(cl_bundle $c "$s" httpd -f -p 6060 -h /www)
	www=$b/rootfs/www/debug/pprof
	mkdir -p "$www"
	gw_profile 3 >"$b/small"
	gw_profile $GW_BIG_STACKS >"$b/big"
	cp "$b/small" "$www/goroutine"
	if ! ct_rt moon run -d --events "$b.events" --go-watch "pprof=http://127.0.0.1:6060,interval=0.5" \
		-b "$b" "$id" </dev/null >"$b.out" 2>&1; then
		cl_why $c "$s" "run -d failed: $(head -c 300 "$b.out")"
		return
	fi
	sup=$(jq -r .supervisor "$CT_DIR/moon/$id/state.json")
	sleep 3
	base=$(cl_rss_kb "$sup")
	cp "$b/big" "$www/goroutine.new" && mv "$www/goroutine.new" "$www/goroutine"
	sleep 3
	peak=$(cl_rss_kb "$sup")
	cp "$b/small" "$www/goroutine.new" && mv "$www/goroutine.new" "$www/goroutine"
	sleep 4
	after=$(cl_rss_kb "$sup")
	echo "supervisor VmRSS: small ${base:-?} kB, big ${peak:-?} kB, small again ${after:-?} kB" >"$b.rss"
	cl_want $c "$s" "the supervisor is gone" [ -n "$base" ] && [ -n "$after" ]
	[ -n "$base" ] && [ -n "$after" ] || return
	cl_want $c "$s" "$(cat "$b.rss"): more than $GW_RSS_SLACK_KB kB kept" [ "$after" -le $((base + GW_RSS_SLACK_KB)) ]
	ct_rt moon delete --force "$id" >/dev/null 2>&1
	ct_wait 5 grep -q '"go.watch".*"workload"' "$b.events"
	n=$(jq -s '[.[] | select(.type == "go.watch" and .subject == "workload")][0].scrapes // 0' "$b.events")
	cl_want $c "$s" "$n scrapes in 10 s at interval=0.5, want >= $GW_MIN_SCRAPES" [ "$n" -ge $GW_MIN_SCRAPES ]
}

# ---------------------------------------------------------------- version, install

# --version as runc words it; the shim's -v as containerd's Go shims print it;
# make install puts the program, containerd's name for it and the shipped
# Lua where the README says
cl_version_install() {
	local s=$1 c=version_install out d f
	out=$("$MOON" --version 2>&1)
	cl_want $c "$s" "moonshim --version said: $out" grep -qE '^moonshim version [0-9]+\.[0-9]+\.[0-9]+$' <<<"$out"
	cl_want $c "$s" "moonshim --version has no commit line: $out" grep -qE '^commit: [0-9a-f]+(-dirty)?$' <<<"$out"
	out=$("$(dirname "$MOON")/containerd-shim-moon-v2" -v 2>&1)
	cl_want $c "$s" "containerd-shim-moon-v2 -v said: $out" grep -qE '^  Version: +[0-9]+\.[0-9]+\.[0-9]+$' <<<"$out"
	d=$CT_DIR/b/install
	make -s -C "$CT_REPO" install DESTDIR="$d" PREFIX=/usr B="$(realpath --relative-to="$CT_REPO" "$(dirname "$MOON")")" >"$d.log" 2>&1 ||
		{ cl_why $c "$s" "make install failed: $(tail -3 "$d.log")"; return; }
	for f in bin/moonshim bin/containerd-shim-moon-v2 share/moonshim/policies/default.lua \
		share/moonshim/scripts/http-check.lua lib/libmoonrt.a include/moonshim/rt.h; do
		[ -e "$d/usr/$f" ] || cl_why $c "$s" "make install did not install /usr/$f"
	done
	[ "$(readlink "$d/usr/bin/containerd-shim-moon-v2")" = moonshim ] || cl_why $c "$s" "containerd-shim-moon-v2 is not a link to moonshim"
	cmp -s "$d/usr/bin/moonshim" "$MOON" || cl_why $c "$s" "the installed moonshim is not the built one"
}

# ---------------------------------------------------------------- main

# cases and the runtimes they run on (--events and --log are moonshim's own)
declare -A SIDES=(
	[state]="runc moon" [state_unknown]="runc moon" [ps]="runc moon" [list]="runc moon"
	[exec_ns]="runc moon" [exec_seccomp]="runc moon" [exec_opts]="runc moon" [exec_process]="runc moon"
	[exec_process_deep]="moon"
	[exec_detach]="runc moon" [exec_cwd_escape]="runc moon" [exec_e2big]="runc moon" [kill_term]="runc moon" [kill_default]="runc moon" [kill_all]="runc moon"
	[delete_running]="runc moon" [delete_force]="runc moon" [run_cleanup]="runc moon"
	[events]="moon" [state_orphaned]="moon" [events_oom]="runc moon" [log]="moon" [log_long]="moon" [signal_forward]="runc moon"
	[log_lossless]="moon" [gowatch_lossless]="moon" [go_watch_memory]="moon" [version_install]="moon"
)
ALL=(state state_unknown ps list exec_ns exec_seccomp exec_opts exec_process exec_process_deep exec_detach
	exec_cwd_escape exec_e2big kill_term kill_default kill_all delete_running delete_force run_cleanup events
	events_oom log log_long log_lossless gowatch_lossless signal_forward state_orphaned go_watch_memory
	version_install)
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=("${ALL[@]}")
[ -n "${CT_SIDES:-}" ] && for c in "${cases[@]}"; do SIDES[$c]=$(for s in ${SIDES[$c]}; do [[ " $CT_SIDES " == *" $s "* ]] && echo -n "$s "; done); done

ct_setup
mkdir -p "$CT_DIR/b"
ct_have_moon || echo "note: $MOON is not built; every moonshim side fails"
for c in "${cases[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
	cl_case "$c" "${SIDES[$c]}" </dev/null &
done
wait
ct_report container-cli "${cases[@]}"
