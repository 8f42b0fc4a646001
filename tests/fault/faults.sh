#!/bin/bash
# faults.sh — `moonshim run` (and exec, kill on a detached container) with
# one syscall failing: strace's syscall tampering makes the kernel's answer
# ENOMEM, EMFILE, EAGAIN, ENOSPC or EBUSY for the chosen call — by path
# (-P: a cgroup file, the --log or --events file, the pidfd or signalfd) or
# by count (when=N) — in the supervisor and the container's child before
# exec (moonshim is static: LD_PRELOAD cannot reach it; ptrace can). The
# workload is /fault-init, a script printing a line to stdout and stderr and
# exiting 7. Each case expects one of
#   refuse  moonshim fails cleanly: a status that is neither 0 nor 7, and
#           ONE stderr line "moonshim: ..." matching the case's ERE (what
#           failed and why);
#   run     the container ran: status 7, and stderr is empty or (with an
#           ERE) one line matching it — a warning about what was lost;
# and, whatever happened, a clean host: the injection did fire (strace
# logged it), no cgroup dir moonshim/ID on any hierarchy (found from the
# mount table, not assumed), no state dir under --root, no process rooted
# in the bundle, no mount under the case's dir, and `moonshim state ID`
# answers with one line saying the container does not exist.
#   bash tests/fault/faults.sh [CASE...]
# Prints "ok NAME" / "FAIL NAME" (with the reasons), then
# "fault: N passed, N failed"; exits 1 on any failure.
set -uo pipefail
. "$(dirname "$0")/../container/lib.sh"

JOBS=${CT_JOBS:-2}
STRACE=${STRACE:-strace}
INIT=/fault-init # the workload, by a path no host file has (so -P sees only its execve)
STATUS=7         # its exit status

# ---------------------------------------------------------------- plumbing

fl_id() { echo "$CT_PREFIX-$1"; }
fl_dir() { echo "$CT_DIR/c/$1"; }
fl_why() { echo "$*" >>"$(fl_dir "$FL_CASE")/why"; }

# Mount points of every cgroup hierarchy (v1 and v2) on this host.
fl_cg_mounts() {
	awk '{ for (i = 7; $i != "-"; i++); if ($(i + 1) == "cgroup" || $(i + 1) == "cgroup2") print $5 }' \
		/proc/self/mountinfo
}

# fl_bundle NAME: the case's bundle, its init printing and exiting $STATUS.
fl_bundle() {
	local b
	b=$(fl_dir "$1")/b
	ct_bundle "$b" -- "$INIT"
	printf '#!/bin/sh\necho out\necho err >&2\nexit %s\n' "$STATUS" >"$b/rootfs$INIT"
	chmod 755 "$b/rootfs$INIT"
}

# fl_args NAME ARGS...: ARGS with the case's tokens expanded:
#   @CG/FILE  -P MOUNT/moonshim/ID/FILE for every cgroup hierarchy (@CG alone: the dir)
#   @LOG @EV  -P of the case's --log and --events files
#   @INIT     -P of the workload's path
fl_args() {
	local name=$1 d id a m
	shift
	d=$(fl_dir "$name")
	id=$(fl_id "$name")
	for a in "$@"; do
		case $a in
		@CG*) for m in $(fl_cg_mounts); do printf '%s\n' -P "$m/moonshim/$id${a#@CG}"; done ;;
		@LOG) printf '%s\n' -P "$d/log" ;;
		@EV) printf '%s\n' -P "$d/events" ;;
		@INIT) printf '%s\n' -P "$INIT" ;;
		*) printf '%s\n' "$a" ;;
		esac
	done
}

# fl_strace NAME OUT STRACE-ARGS... -- MOONSHIM-ARGS...: moonshim under strace
# (-f: its threads and the child until exec), the trace of the tampered
# calls in NAME/strace; stdout to OUT.out, stderr to OUT.err, status returned.
fl_strace() {
	local name=$1 out=$2 d sargs=()
	shift 2
	d=$(fl_dir "$name")
	while [ "$1" != -- ]; do sargs+=("$1"); shift; done
	shift
	mapfile -t sargs < <(fl_args "$name" "${sargs[@]}")
	timeout -k 5 "$CT_TIMEOUT" "$STRACE" -f -qq -o "$d/strace.$out" "${sargs[@]}" \
		"$MOON" --root "$CT_DIR/moon" "$@" </dev/null >"$d/$out.out" 2>"$d/$out.err"
}

# fl_judge NAME OUT RC EXPECT ERE: the status and the one stderr line.
fl_judge() {
	local name=$1 out=$2 rc=$3 expect=$4 re=$5 d lines
	d=$(fl_dir "$name")
	grep -q 'INJECTED' "$d/strace.$out" || fl_why "the fault was never injected (strace: $(head -c 200 "$d/strace.$out"))"
	lines=$(grep -c . "$d/$out.err")
	case $expect in
	refuse)
		{ [ "$rc" = 0 ] || [ "$rc" = "$STATUS" ]; } && fl_why "exit status $rc: not a refusal"
		[ "$rc" = 124 ] || [ "$rc" = 137 ] && fl_why "timed out"
		[ "$lines" = 1 ] || fl_why "$lines lines on stderr, want 1: $(head -n5 "$d/$out.err")"
		;;
	run)
		[ "$rc" = "$STATUS" ] || fl_why "exit status $rc, want the container's $STATUS ($(head -n3 "$d/$out.err"))"
		if [ -z "$re" ]; then
			[ "$lines" = 0 ] || fl_why "stderr not empty: $(head -n5 "$d/$out.err")"
		else
			[ "$lines" = 1 ] || fl_why "$lines lines on stderr, want 1: $(head -n5 "$d/$out.err")"
		fi
		;;
	esac
	if [ -n "$re" ]; then
		grep -q '^moonshim: ' "$d/$out.err" || fl_why "stderr does not start with \"moonshim: \": $(head -c 300 "$d/$out.err")"
		grep -qE -- "$re" "$d/$out.err" || fl_why "stderr lacks /$re/: $(head -c 300 "$d/$out.err")"
	fi
}

# fl_clean NAME: nothing of the container is left on the host.
fl_clean() {
	local name=$1 d id m pid
	d=$(fl_dir "$name")
	id=$(fl_id "$name")
	for m in $(fl_cg_mounts); do
		[ -d "$m/moonshim/$id" ] && fl_why "cgroup dir left: $m/moonshim/$id"
	done
	[ -e "$CT_DIR/moon/$id" ] && fl_why "state dir left: $CT_DIR/moon/$id"
	for pid in $(ct_root_pids "$d/b/rootfs"); do
		fl_why "process left: $pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
	done
	awk -v d="$d/" 'index($5, d) == 1 { print "mount left: " $5 }' /proc/self/mountinfo >>"$d/why"
	# `state` on what is gone: one line, not a crash or a half-made record
	local rc
	ct_rt moon state "$id" >"$d/state.out" 2>"$d/state.err"
	rc=$?
	if [ "$rc" = 0 ] || [ "$(grep -c . "$d/state.err")" != 1 ] ||
		! grep -q 'does not exist' "$d/state.err"; then
		fl_why "state after the run: exit $rc: $(head -c 200 "$d/state.out" "$d/state.err")"
	fi
}

fl_record() {
	local d
	d=$(fl_dir "$1")
	{
		[ -s "$d/run.err" ] && echo "# stderr: $(head -n1 "$d/run.err" | head -c 300)"
		cat "$d/why"
	} >"$d/detail"
	if [ -s "$d/why" ]; then
		ct_result "$1" fail "$d/detail"
	else
		ct_result "$1" ok
		sed 's/^/    /' "$d/detail" >>"$CT_DIR/res/$1"
	fi
}

# fl_run NAME EXPECT ERE [+memory] [RUN-ARGS...] -- STRACE-ARGS...: one
# `moonshim run` case (with --log and --events) judged as the top says;
# +memory gives the bundle a memory limit (a limit file is written).
fl_run() {
	local name=$1 expect=$2 re=$3 d id rc rargs=()
	shift 3
	while [ "$1" != -- ]; do rargs+=("$1"); shift; done
	shift
	FL_CASE=$name
	d=$(fl_dir "$name")
	id=$(fl_id "$name")
	mkdir -p "$d"
	: >"$d/why"
	fl_bundle "$name"
	if [ "${rargs[0]:-}" = +memory ]; then # a memory limit to write
		ct_cfg "$d/b" '.linux.resources.memory.limit = 67108864'
		rargs=("${rargs[@]:1}")
	fi
	fl_strace "$name" run "$@" -- run -b "$d/b" --log "$d/log" --events "$d/events" "${rargs[@]}" "$id"
	rc=$?
	fl_judge "$name" run "$rc" "$expect" "$re"
	if [ "$expect" = run ] && [ "$rc" = "$STATUS" ] && [ -z "$re" ]; then
		# nothing was lost: the output reached the log, the exit the stream
		grep -q ' stdout F out$' "$d/log" 2>/dev/null || fl_why "no stdout line in the log"
		grep -q ' stderr F err$' "$d/log" 2>/dev/null || fl_why "no stderr line in the log"
		grep -q "\"type\":\"exit\".*\"exit_status\":$STATUS" "$d/events" 2>/dev/null ||
			fl_why "no exit event with status $STATUS"
	fi
	fl_clean "$name"
	fl_record "$name"
}

# ---------------------------------------------------------------- detached: exec, kill

# fl_detached NAME VERB ERE STRACE-ARGS...: a detached container; VERB (exec
# or kill) under the fault must fail with one line matching ERE (exec: 255,
# as runc); then the container still runs, stops on its own (exit 7),
# `delete` removes it, and nothing is left.
fl_detached() {
	local name=$1 verb=$2 re=$3 d id rc
	shift 3
	FL_CASE=$name
	d=$(fl_dir "$name")
	id=$(fl_id "$name")
	mkdir -p "$d"
	: >"$d/why"
	fl_bundle "$name"
	ct_cfg "$d/b" '.process.args = ["sh", "-c", "sleep 1; exit 7"]'
	if ! ct_rt moon run -d -b "$d/b" "$id" </dev/null >"$d/start.out" 2>&1; then
		fl_why "run -d failed: $(head -c 300 "$d/start.out")"
	else
		case $verb in
		exec) fl_strace "$name" run "$@" -- exec "$id" true ;;
		kill) fl_strace "$name" run "$@" -- kill "$id" KILL ;;
		esac
		rc=$?
		fl_judge "$name" run "$rc" refuse "$re"
		[ "$verb" = exec ] && [ "$rc" != 255 ] && fl_why "exec's status $rc, want 255 (it could not start)"
		[ "$(ct_state_status moon "$id")" = running ] || fl_why "not running after the failed $verb"
		ct_wait 10 fl_stopped "$id" || fl_why "state never says stopped"
		ct_rt moon delete "$id" >"$d/delete.out" 2>&1 || fl_why "delete failed: $(head -c 300 "$d/delete.out")"
	fi
	fl_clean "$name"
	fl_record "$name"
}
fl_stopped() { [ "$(ct_state_status moon "$1")" = stopped ]; }

# ---------------------------------------------------------------- the matrix

# spawn: the container's clone3, the runtime's threads, the child's execve,
# --detach's fork
case_spawn_clone3_enomem() { fl_run spawn_clone3_enomem refuse 'clone3: Cannot allocate memory' -- -e trace=clone3 -e inject=clone3:error=ENOMEM:when=1; }
case_spawn_clone3_eagain() { fl_run spawn_clone3_eagain refuse 'clone3: Resource temporarily unavailable' -- -e trace=clone3 -e inject=clone3:error=EAGAIN:when=1; }
# the supervisor's second clone3 is the runtime's first thread
case_spawn_thread_eagain() { fl_run spawn_thread_eagain run '' -- -e trace=clone3 -e inject=clone3:error=EAGAIN:when=2; }
# the child's execve of the workload fails after the hold: its message comes
# back on the start socket, and the run fails with it (status 1, not the
# workload's)
case_spawn_execve_enomem() { fl_run spawn_execve_enomem refuse "$INIT.*Cannot allocate memory" -- @INIT -e trace=execve -e inject=execve:error=ENOMEM; }
case_spawn_execve_eagain() { fl_run spawn_execve_eagain refuse "$INIT.*Resource temporarily unavailable" -- @INIT -e trace=execve -e inject=execve:error=EAGAIN; }
case_spawn_detach_fork_eagain() { fl_run spawn_detach_fork_eagain refuse '--detach: fork: Resource temporarily unavailable' -d -- -e trace=clone -e inject=clone:error=EAGAIN:when=1; }

# epoll: the runtime's netpoller (instance, wake-up eventfd), then what
# supervision registers: the signalfd, the pidfd, cgroup.events
case_epoll_create_emfile() { fl_run epoll_create_emfile refuse 'netpoller \(epoll, eventfd\): Too many open files' -- -e trace=epoll_create1 -e inject=epoll_create1:error=EMFILE; }
case_epoll_create_enomem() { fl_run epoll_create_enomem refuse 'netpoller \(epoll, eventfd\): Cannot allocate memory' -- -e trace=epoll_create1 -e inject=epoll_create1:error=ENOMEM; }
case_epoll_eventfd_emfile() { fl_run epoll_eventfd_emfile refuse 'netpoller \(epoll, eventfd\): Too many open files' -- -e trace=eventfd2 -e inject=eventfd2:error=EMFILE:when=1; }
# the main thread's first epoll_ctl registers the wake-up eventfd
case_epoll_ctl_wakeup_enomem() { fl_run epoll_ctl_wakeup_enomem refuse 'netpoller \(epoll, eventfd\): Cannot allocate memory' -- -e trace=epoll_ctl -e inject=epoll_ctl:error=ENOMEM:when=1; }
case_epoll_ctl_signalfd_enomem() { fl_run epoll_ctl_signalfd_enomem run 'signalfd: Cannot allocate memory: signals are not forwarded' -- -P 'anon_inode:[signalfd]' -e trace=epoll_ctl -e inject=epoll_ctl:error=ENOMEM:when=1; }
case_epoll_ctl_pidfd_enomem() { fl_run epoll_ctl_pidfd_enomem run '' -- -P 'anon_inode:[pidfd]' -e trace=epoll_ctl -e inject=epoll_ctl:error=ENOMEM:when=1; }
case_epoll_ctl_cgevents_enomem() { fl_run epoll_ctl_cgevents_enomem run '' -- @CG/cgroup.events -e trace=epoll_ctl -e inject=epoll_ctl:error=ENOMEM:when=1; }
case_signalfd_emfile() { fl_run signalfd_emfile run 'signalfd: Too many open files: signals are not forwarded' -- -e trace=signalfd4 -e inject=signalfd4:error=EMFILE; }

# pidfd: the exit waiter's waitid; exec's pidfd_open of the init, kill's
# pidfd_send_signal (on a detached container)
case_pidfd_waitid_enomem() { fl_run pidfd_waitid_enomem run '' -- -e trace=waitid -e inject=waitid:error=ENOMEM:when=1; }
case_pidfd_waitid_eagain() { fl_run pidfd_waitid_eagain run '' -- -e trace=waitid -e inject=waitid:error=EAGAIN:when=1; }
case_pidfd_exec_open_emfile() { fl_detached pidfd_exec_open_emfile exec 'container init [0-9]+: Too many open files' -e trace=pidfd_open -e inject=pidfd_open:error=EMFILE:when=1; }
case_pidfd_exec_open_enomem() { fl_detached pidfd_exec_open_enomem exec 'container init [0-9]+: Cannot allocate memory' -e trace=pidfd_open -e inject=pidfd_open:error=ENOMEM:when=1; }
case_pidfd_kill_eagain() { fl_detached pidfd_kill_eagain kill 'Resource temporarily unavailable' -e trace=pidfd_send_signal -e inject=pidfd_send_signal:error=EAGAIN; }

# cgroup writes: the move into each hierarchy (the first, then the second
# cgroup.procs write), the v1 device rules (the third allow), the dir, the
# cgroup fd clone3 enters, the v1 OOM notification; removal answering EBUSY
case_cgroup_procs_enomem() { fl_run cgroup_procs_enomem refuse 'cgroup: moving pid [0-9]+ into .*/cgroup\.procs: Cannot allocate memory' -- @CG/cgroup.procs -e trace=write -e inject=write:error=ENOMEM:when=1; }
case_cgroup_procs2_eagain() { fl_run cgroup_procs2_eagain refuse 'cgroup: moving pid [0-9]+ into .*/cgroup\.procs: Resource temporarily unavailable' -- @CG/cgroup.procs -e trace=write -e inject=write:error=EAGAIN:when=2; }
case_cgroup_devices_enomem() { fl_run cgroup_devices_enomem refuse 'devices.*Cannot allocate memory' -- @CG/devices.allow @CG/devices.deny -e trace=write -e inject=write:error=ENOMEM:when=3; }
case_cgroup_mkdir_enomem() { fl_run cgroup_mkdir_enomem refuse 'mkdir .*Cannot allocate memory' -- @CG -e trace=mkdir -e inject=mkdir:error=ENOMEM:when=1; }
case_cgroup_fd_emfile() { fl_run cgroup_fd_emfile refuse 'cgroup .*: Too many open files' -- @CG -e trace=openat -e inject=openat:error=EMFILE:when=1; }
case_cgroup_limit_enomem() { fl_run cgroup_limit_enomem refuse 'linux.resources.*Cannot allocate memory' +memory -- @CG/memory.max @CG/memory.limit_in_bytes -e trace=write -e inject=write:error=ENOMEM:when=1; }
case_cgroup_oom_notify_enomem() { fl_run cgroup_oom_notify_enomem run '' -- @CG/cgroup.event_control @CG/memory.events -e trace=write,openat -e inject=write:error=ENOMEM -e inject=openat:error=ENOMEM; }
case_cgroup_rmdir_ebusy() { fl_run cgroup_rmdir_ebusy run '' -- @CG -e trace=rmdir -e inject=rmdir:error=EBUSY:when=1; }

# log writes: the --log file (opened to check it, again by the writer;
# each record written), the --events file; the log pipes
case_log_open_emfile() { fl_run log_open_emfile refuse '--log .*: Too many open files' -- @LOG -e trace=openat -e inject=openat:error=EMFILE:when=1; }
case_log_writer_open_emfile() { fl_run log_writer_open_emfile run 'open log file .*: Too many open files' -- @LOG -e trace=openat -e inject=openat:error=EMFILE:when=2; }
case_log_write_enospc() { fl_run log_write_enospc run '--log .*: writing: No space left on device \([0-9]+ bytes lost\)' -- @LOG -e trace=writev,write -e inject=writev:error=ENOSPC -e inject=write:error=ENOSPC; }
case_log_write_enomem() { fl_run log_write_enomem run '--log .*: writing: Cannot allocate memory' -- @LOG -e trace=writev,write -e inject=writev:error=ENOMEM -e inject=write:error=ENOMEM; }
case_log_write_eagain_once() { fl_run log_write_eagain_once run '--log .*: writing: Resource temporarily unavailable' -- @LOG -e trace=writev -e inject=writev:error=EAGAIN:when=1; }
case_log_pipe_emfile() { fl_run log_pipe_emfile refuse 'pipe: Too many open files' -- -e trace=pipe2 -e inject=pipe2:error=EMFILE:when=2; }
case_events_open_emfile() { fl_run events_open_emfile refuse '--events .*: Too many open files' -- @EV -e trace=openat -e inject=openat:error=EMFILE:when=1; }
case_events_write_enospc() { fl_run events_write_enospc run '--events .*: writing: No space left on device' -- @EV -e trace=write -e inject=write:error=ENOSPC; }
case_handshake_socketpair_emfile() { fl_run handshake_socketpair_emfile refuse 'socketpair: Too many open files' -- -e trace=socketpair -e inject=socketpair:error=EMFILE; }

ALL=(
	spawn_clone3_enomem spawn_clone3_eagain spawn_thread_eagain spawn_execve_enomem spawn_execve_eagain
	spawn_detach_fork_eagain
	epoll_create_emfile epoll_create_enomem epoll_eventfd_emfile epoll_ctl_wakeup_enomem
	epoll_ctl_signalfd_enomem epoll_ctl_pidfd_enomem epoll_ctl_cgevents_enomem signalfd_emfile
	pidfd_waitid_enomem pidfd_waitid_eagain pidfd_exec_open_emfile pidfd_exec_open_enomem pidfd_kill_eagain
	cgroup_procs_enomem cgroup_procs2_eagain cgroup_devices_enomem cgroup_mkdir_enomem cgroup_fd_emfile
	cgroup_limit_enomem cgroup_oom_notify_enomem cgroup_rmdir_ebusy
	log_open_emfile log_writer_open_emfile log_write_enospc log_write_enomem log_write_eagain_once
	log_pipe_emfile events_open_emfile events_write_enospc handshake_socketpair_emfile
)

# ---------------------------------------------------------------- main

cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=("${ALL[@]}")
if ! command -v "$STRACE" >/dev/null; then
	for c in "${cases[@]}"; do echo "FAIL $c"; echo "    strace is not installed (.ci/deps.sh)"; done
	echo "fault: 0 passed, ${#cases[@]} failed"
	exit 1
fi
ct_setup
mkdir -p "$CT_DIR/c"
ct_have_moon || echo "note: $MOON is not built; every case fails"
ct_parallel "$JOBS" "${cases[@]/#/case_}"
ct_report fault "${cases[@]}"
