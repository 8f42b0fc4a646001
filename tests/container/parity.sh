#!/bin/bash
# parity.sh — `moonshim run` against runc on the same bundles (Debian's
# /usr/sbin/runc 1.1.5, or RUNC=path, e.g. the pinned 1.5.3 from
# `bash .ci/godeps.sh runc`): each
# case builds two identical busybox bundles (mkbundle.sh's runc-spec defaults
# plus a jq edit), runs one under `runc run` and one under `moonshim run`, each
# with a private --root, and diffs what the workload saw: its stdout, its
# stderr, its exit status and, for some cases, facts read on the host after
# it exited. Each case also checks runc's output for what the case is about
# (so a case that no longer exercises anything fails instead of passing).
#   bash tests/container/parity.sh [CASE...]      (default: all)
#   CT_SIDES=runc bash tests/container/parity.sh  (runc only: checks the cases)
# Prints "ok NAME" / "FAIL NAME" (with the diff), then
# "container: N passed, N failed"; exits 1 on any failure.
#
# Normalisations (everything else must match byte for byte):
#   - both runtimes get the same container id, so ids need none;
#   - mounts: /sys/fs/cgroup and below are dropped: on this hybrid host runc
#     mounts a tmpfs plus one bind per v1 hierarchy of *its* cgroup path, and a
#     runtime with another default cgroup path (moonshim/ID) or another way of
#     exposing the hybrid tree legitimately differs; mount ids, parent ids,
#     device numbers and the rootfs' source are dropped (they name host state);
#   - /dev: times are dropped (stat without %y), everything else is compared;
#   - each side's bundle dir reads BUNDLE (bind-mount sources in mountinfo);
#   - pids other than 1 are never printed (a runtime may fork helpers inside);
#   - oom_minus where the host lacks CAP_SYS_RESOURCE: see the case.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

CT_SIDES=${CT_SIDES:-runc moon}
JOBS=${CT_JOBS:-4} # cases in flight; each is mostly waiting on fork/exec and mounts
# The runtimes run under this umask, not the usual 022, so a runtime that
# passes its own umask on to the container shows up (runc sets 0022).
CALLER_UMASK=077

# ---------------------------------------------------------------- case plumbing

# pc_mk NAME [--userns] [-- ARGS...]: $CT_DIR/c/NAME/{runc,moon} bundles, and a
# host dir for each side at $CT_DIR/c/NAME/SIDE/host (bind-mount sources).
pc_mk() {
	local name=$1 side
	shift
	for side in runc moon; do
		ct_bundle "$CT_DIR/c/$name/$side" "$@"
		mkdir -p "$CT_DIR/c/$name/$side/host"
	done
}

# pc_cfg NAME FILTER [JQ-ARGS...]: the same edit on both bundles; the filter
# sees $dir (that side's bundle dir) and $host (its host dir).
pc_cfg() {
	local name=$1 side
	shift
	for side in runc moon; do
		ct_cfg "$CT_DIR/c/$name/$side" "$1" --arg host "$CT_DIR/c/$name/$side/host" "${@:2}" || return 1
	done
}

pc_id() { echo "$CT_PREFIX-$1"; }

# pc_run1 NAME SIDE: one foreground run; SIDE.out, SIDE.err, SIDE.rc. Stdin is
# NAME/stdin when the case wrote one, else /dev/null.
pc_run1() {
	local name=$1 side=$2 d=$CT_DIR/c/$1 in=/dev/null
	[ -f "$d/stdin" ] && in=$d/stdin
	if [ "$side" = moon ] && ! ct_have_moon; then
		echo "moonshim not built ($MOON)" >"$d/$side.err"
		: >"$d/$side.out"
		echo 127 >"$d/$side.rc"
		return
	fi
	(umask "$CALLER_UMASK" && ct_rt "$side" run -b "$d/$side" "$(pc_id "$name")" <"$in" >"$d/$side.out" 2>"$d/$side.err")
	echo $? >"$d/$side.rc"
}

pc_run() {
	local side
	for side in $CT_SIDES; do pc_run1 "$1" "$side"; done
}

# pc_host NAME SIDE TEXT...: a fact observed on the host, compared like output.
pc_host() {
	local name=$1 side=$2
	shift 2
	echo "$*" >>"$CT_DIR/c/$name/$side.host"
}

# pc_text NAME SIDE: what gets diffed — stdout, stderr, exit status, host
# facts, with the side's bundle dir written as BUNDLE (bind sources show up in
# mountinfo, and each side has its own).
pc_text() {
	local d=$CT_DIR/c/$1 side=$2
	{
		echo "--- stdout"
		cat "$d/$side.out"
		echo "--- stderr"
		cat "$d/$side.err"
		echo "--- exit $(cat "$d/$side.rc")"
		if [ -f "$d/$side.host" ]; then
			echo "--- host"
			cat "$d/$side.host"
		fi
	} | sed "s|$d/$side|BUNDLE|g"
}

# pc_norm NAME: the case's normaliser pc_norm_NAME (a filter) if it has one.
pc_norm() {
	if declare -F "pc_norm_$1" >/dev/null; then "pc_norm_$1"; else cat; fi
}

# pc_norm_error WORD: for cases where the container never starts: stderr
# becomes "an error naming WORD" / "... not naming WORD" / "no error" (the two
# runtimes' wording, and runc's several log lines, differ legitimately).
pc_norm_error() {
	awk -v w="$1" '/^--- stderr$/ { print; inerr = 1; next }
	     /^--- / { if (inerr) print (n ? "an error" (named ? " naming " : " not naming ") w : "no error"); inerr = 0 }
	     inerr { n++; if (index($0, w)) named = 1; next }
	     { print }'
}

# pc_check NAME [ERE...]: runc's text must match every ERE (one per line, grep
# -E), then moonshim's text must equal runc's. Records the result.
pc_check() {
	local name=$1 d=$CT_DIR/c/$1 re miss=0
	shift
	pc_text "$name" runc | pc_norm "$name" >"$d/runc.txt"
	: >"$d/detail"
	for re in "$@"; do
		if ! grep -qE -- "$re" "$d/runc.txt"; then
			echo "runc's output lacks /$re/ (the case no longer tests what it says):" >>"$d/detail"
			miss=1
		fi
	done
	if [ $miss = 1 ]; then
		cat "$d/runc.txt" >>"$d/detail"
		ct_result "$name" fail "$d/detail"
		return
	fi
	case " $CT_SIDES " in *" moon "*) ;; *)
		ct_result "$name" ok
		return
		;;
	esac
	pc_text "$name" moon | pc_norm "$name" >"$d/moon.txt"
	if diff -u --label runc --label moonshim "$d/runc.txt" "$d/moon.txt" >"$d/detail"; then
		ct_result "$name" ok
	else
		ct_result "$name" fail "$d/detail"
	fi
}

# pc_simple NAME FILTER ERE... -- ARGS...: build, edit with FILTER ('.' for
# none), run both, check.
pc_simple() {
	local name=$1 filter=$2 res=()
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do res+=("$1"); shift; done
	pc_mk "$name" "$@"
	[ "$filter" = . ] || pc_cfg "$name" "$filter"
	pc_run "$name"
	pc_check "$name" "${res[@]}"
}

# Shell snippets the workloads share.
SH_CAPS='for f in /proc/1/status /proc/self/status; do echo "$f"; grep -E "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):" $f; done'
# mountinfo as: point, mount options, fstype, source, superblock options, root
# within the fs; without ids and device numbers; the rootfs as point, options
# and fstype only (its source and root are host paths); no cgroup mounts
SH_MOUNTS='awk '\''{ for (i = 7; $i != "-"; i++); if ($5 == "/") print "/", $6, $(i + 1); else if ($5 !~ "^/sys/fs/cgroup") print $5, $6, $(i + 1), $(i + 2), $(i + 3), $4 }'\'' /proc/self/mountinfo'

# ---------------------------------------------------------------- exit status

case_exit0() { pc_simple exit0 . '^--- exit 0$' -- true; }
case_exit7() { pc_simple exit7 . '^--- exit 7$' -- sh -c 'exit 7'; }
case_exit255() { pc_simple exit255 . '^--- exit 255$' -- sh -c 'exit 255'; }

# Killed from outside. The init of a pid namespace ignores every signal it has
# no handler for, except SIGKILL (and SIGSTOP) from an ancestor namespace, so:
# SIGKILL goes to the init (found on the host by its root directory); for
# SIGTERM the case drops the pid namespace, making init an ordinary process.
# Both are sent with kill(1) from the host, not through either runtime's kill.
pc_killed() { # NAME SIG DROP-PIDNS
	local name=$1 sig=$2 side d pid bg
	pc_mk "$name" -- sh -c 'echo started; exec sleep 60'
	[ "$3" = 1 ] && pc_cfg "$name" '.linux.namespaces |= map(select(.type != "pid"))'
	d=$CT_DIR/c/$name
	for side in $CT_SIDES; do
		if [ "$side" = moon ] && ! ct_have_moon; then pc_run1 "$name" moon; continue; fi
		ct_rt "$side" run -b "$d/$side" "$(pc_id "$name")" </dev/null >"$d/$side.out" 2>"$d/$side.err" &
		bg=$!
		# the init is the one process rooted in the bundle once it has exec'd sleep
		pid=
		ct_wait 10 pc_sleeping "$d/$side/rootfs" && pid=$(ct_root_pids "$d/$side/rootfs")
		if [ -n "$pid" ]; then
			kill "-$sig" $pid
		else
			echo "no container process found" >>"$d/$side.err"
		fi
		wait $bg
		echo $? >"$d/$side.rc"
	done
	pc_check "$name" "^--- exit $((128 + $(kill -l "$sig")))\$"
}
pc_sleeping() { # ROOTFS: exactly one process rooted there, and it is sleep
	local p
	p=$(ct_root_pids "$1")
	[ -n "$p" ] && [ "$(echo "$p" | wc -l)" = 1 ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = sleep ]
}
case_killed_kill() { pc_killed killed_kill KILL 0; }
case_killed_term() { pc_killed killed_term TERM 1; }

# ---------------------------------------------------------------- stdio

# stdout and stderr stay apart, big output arrives whole and in order
case_stdout() {
	pc_simple stdout . '^out 1$' '^err 2$' '^20000$' -- sh -c \
		'echo "out 1"; echo "err 2" >&2; printf "tab\there\n"; printf "no newline"; echo; seq 1 20000; echo end >&2'
}

case_stdin() {
	pc_mk stdin -- sh -c 'read first; echo "first=$first"; wc -l; echo done'
	{ echo hello; seq 1 100000; } >"$CT_DIR/c/stdin/stdin"
	pc_run stdin
	pc_check stdin '^first=hello$' '^100000$'
}

# ---------------------------------------------------------------- credentials

case_caps_default() { pc_simple caps_default . '^CapEff:	0000000020000420$' '^NoNewPrivs:	1$' -- sh -c "$SH_CAPS"; }

# extra capabilities in every set, inheritable included, so ambient ones can
# be raised (they need permitted and inheritable)
case_caps_extra() {
	pc_simple caps_extra '.process.capabilities |= (.inheritable = .bounding | with_entries(.value += ["CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_CHOWN"]))' \
		'^CapBnd:	00000000' -- sh -c "$SH_CAPS"
}

# ambient listed but inheritable empty: what happens to CapAmb
case_caps_ambient_noinh() {
	pc_simple caps_ambient_noinh '.process.capabilities |= (del(.inheritable) | .ambient = ["CAP_KILL", "CAP_NET_BIND_SERVICE"])' \
		'^CapAmb:' -- sh -c "$SH_CAPS"
}

case_nnp_false() { pc_simple nnp_false '.process.noNewPrivileges = false' '^NoNewPrivs:	0$' -- sh -c "$SH_CAPS"; }

case_seccomp_mkdir() {
	pc_simple seccomp_mkdir '.linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_X86_64"],
		syscalls: [{names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1}]}' \
		'^Seccomp:	2$' 'mkdir=1' 'Operation not permitted' -- \
		sh -c "$SH_CAPS"'; mkdir /dev/shm/x; echo mkdir=$?; touch /dev/shm/y; echo touch=$?'
}

# syscall names libseccomp 2.5.4 does not know (getxattrat is in
# containerd's default profile) are skipped, as runc skips them: the
# container runs and mkdir stays denied; moonshim also warns, naming them
# (one line, dropped before the diff; runc says nothing)
SECCOMP_UNKNOWN_WARN='^moonshim: warning: linux\.seccomp: syscall names libseccomp [0-9.]+ does not know are skipped \(no rule filters them\): getxattrat, no_such_syscall$'
pc_norm_seccomp_unknown() { grep -vE "$SECCOMP_UNKNOWN_WARN"; }
case_seccomp_unknown() {
	local d=$CT_DIR/c/seccomp_unknown
	pc_simple seccomp_unknown '.linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_X86_64"],
		syscalls: [{names: ["getxattrat", "mkdir", "mkdirat", "no_such_syscall"], action: "SCMP_ACT_ERRNO", errnoRet: 1},
		{names: ["no_such_syscall"], action: "SCMP_ACT_KILL"}]}' \
		'^Seccomp:	2$' 'mkdir=1' 'Operation not permitted' '^touch=0$' '^--- exit 0$' -- \
		sh -c 'grep ^Seccomp: /proc/self/status; mkdir /dev/shm/x; echo mkdir=$?; touch /dev/shm/y; echo touch=$?'
	case " $CT_SIDES " in *" moon "*)
		[ "$(grep -cE "$SECCOMP_UNKNOWN_WARN" "$d/moon.err")" = 1 ] ||
			{ echo "moonshim's stderr lacks the one warning /$SECCOMP_UNKNOWN_WARN/:" && cat "$d/moon.err"; } >>"$d/detail"
		[ -s "$d/detail" ] && ct_result seccomp_unknown fail "$d/detail"
		;;
	esac
}

# a non-root user with supplementary groups; init's caps show what the
# runtime left after the uid switch, the exec'd grep's what execve left
case_user() {
	pc_simple user '.process.user = {uid: 1000, gid: 1000, additionalGids: [10, 65534]}' \
		'^uid=1000\(moon\) gid=1000\(moon\) groups=10,65534' -- \
		sh -c 'id; echo "HOME=$HOME"; grep -E "^(Uid|Gid|Groups):" /proc/self/status; '"$SH_CAPS"'; touch /dev/shm/f; stat -c "%u:%g %a" /dev/shm/f'
}

# the caller's umask (077) does not reach the container; process.user.umask does
case_umask() { pc_simple umask . '^0022$' '^644$' -- sh -c 'umask; touch /dev/shm/f; stat -c %a /dev/shm/f'; }
case_umask_spec() { pc_simple umask_spec '.process.user.umask = 7' '^0007$' '^660$' -- sh -c 'umask; touch /dev/shm/f; stat -c %a /dev/shm/f'; }

# process.args[0] without a slash is looked up in the container's PATH (the
# spec's env), and arguments arrive exactly as given
case_args() {
	pc_simple args '.process.env = ["PATH=/nowhere:/bin"]' '^\|a b\|\|\*\|\$HOME\|--x\|$' -- \
		busybox sh -c 'printf "|"; printf "%s|" "$@"; echo' argv0 'a b' '' '*' '$HOME' '--x'
}
case_args_notfound() {
	# runc fails to start it (exit 1, "exec: \"echo\": executable file not
	# found in $PATH"); the error wording is not compared, only that there is one
	pc_simple args_notfound '.process.env = ["PATH=/nowhere"]' '^--- exit 1$' '^an error naming echo$' -- echo hi
}
pc_norm_args_notfound() { pc_norm_error echo; }

# ---------------------------------------------------------------- namespaces

case_hostname() {
	# (not .domainname: runc 1.1.5 ignores it)
	pc_simple hostname '.hostname = "parity-host"' '^parity-host$' -- \
		sh -c 'hostname; cat /proc/sys/kernel/hostname /proc/sys/kernel/domainname'
}

# (no pipelines: a pipeline's processes come and go while ps reads /proc)
case_pid1() {
	pc_simple pid1 . '^1$' -- sh -c 'echo $$; sleep 0 & wait; ps -o pid,ppid,comm >/dev/shm/ps; ls -d /proc/[0-9]* >/dev/shm/ls; grep -v " ps$" /dev/shm/ps; wc -l </dev/shm/ls'
}

case_netns() {
	pc_simple netns . '^lo$' 'LOOPBACK,UP' -- sh -c \
		'ls /sys/class/net; for f in /sys/class/net/*/operstate; do echo "$f $(cat $f)"; done; cat /sys/class/net/lo/flags; ip -o link; ip -o addr'
}

# no network namespace: the host's interfaces, as the host sees them
case_hostnet() {
	local side hostview
	pc_mk hostnet -- sh -c 'ls /sys/class/net; ip -o link | cut -d: -f2'
	pc_cfg hostnet '.linux.namespaces |= map(select(.type != "network"))'
	pc_run hostnet
	hostview=$(ls /sys/class/net; busybox ip -o link | cut -d: -f2) # the same ip as inside
	for side in $CT_SIDES; do
		if [ "$(cat "$CT_DIR/c/hostnet/$side.out")" = "$hostview" ]; then
			pc_host hostnet "$side" "same interfaces as the host"
		else
			pc_host hostnet "$side" "other interfaces than the host's"
		fi
	done
	pc_check hostnet '^same interfaces as the host$'
}

# the host's own values are untouched afterwards
case_sysctl() {
	local side
	pc_mk sysctl -- sh -c 'echo $(cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced)'
	pc_cfg sysctl '.linux.sysctl = {"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"}'
	local before; before=$(cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced | tr '\n' ' ')
	for side in $CT_SIDES; do
		pc_run1 sysctl "$side"
		pc_host sysctl "$side" "host before: $before after: $(cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced | tr '\n' ' ')"
	done
	pc_check sysctl '^1 1$'
}

case_oom_plus() { pc_simple oom_plus '.process.oomScoreAdj = 100' '^100 100$' -- sh -c 'echo $(cat /proc/1/oom_score_adj /proc/self/oom_score_adj)'; }
# Lowering oom_score_adj below the caller's needs CAP_SYS_RESOURCE. Where the
# tests run without it (this sandbox), runc fails to start the container
# (exit 1, "failed to update /proc/self/oom_score_adj: Permission denied");
# moonshim must fail the same way, so stderr is reduced to whether the one
# error names oom_score_adj (the two runtimes' wording differs legitimately).
has_cap_sys_resource() { (($(printf '%d' "0x$(awk '/^CapEff/ { print $2 }' /proc/self/status)") >> 24 & 1)); }
pc_norm_oom_minus() { pc_norm_error oom_score_adj; }
case_oom_minus() {
	if has_cap_sys_resource; then
		pc_simple oom_minus '.process.oomScoreAdj = -100' '^-100 -100$' -- sh -c 'echo $(cat /proc/1/oom_score_adj /proc/self/oom_score_adj)'
	else
		pc_simple oom_minus '.process.oomScoreAdj = -100' '^--- exit 1$' '^an error naming oom_score_adj$' -- sh -c 'echo $(cat /proc/1/oom_score_adj /proc/self/oom_score_adj)'
	fi
}

# a cgroup namespace: every hierarchy's path reads "/" inside
case_cgroupns() {
	pc_simple cgroupns '.linux.namespaces += [{type: "cgroup"}]' '^0::/$' -- cat /proc/self/cgroup
}

# linux.resources as the workload reads them back through /sys/fs/cgroup
# (where runc binds the container's own cgroup dir of each hierarchy)
case_resources() {
	pc_simple resources '.linux.resources += {memory: {limit: 67108864}, pids: {limit: 50}, cpu: {shares: 512, quota: 50000, period: 100000}}' \
		'^67108864$' '^50$' -- sh -c 'cd /sys/fs/cgroup && cat memory/memory.limit_in_bytes pids/pids.max cpu/cpu.shares cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us'
}

# the hierarchies the container joins: every one the host mounts (cpuset,
# cpuacct, blkio, freezer, name=systemd, ... on a v1/hybrid host), each line
# "NAME own" for a cgroup of its own and "NAME root" where it stayed outside
# (no ambient capabilities in these two: runc 1.5 warns on stderr that it
# cannot raise the runc-spec default's, which is not what they compare)
NO_AMBIENT='.process.capabilities.ambient = []'
case_cgroup_hierarchies() {
	pc_simple cgroup_hierarchies "$NO_AMBIENT" ' own$' -- sh -c 'awk -F: '\''{ print $2, ($3 == "/") ? "root" : "own" }'\'' /proc/self/cgroup | sort'
}

# linux.resources.cpu.cpus/.mems pin the container (this host has CPUs 0-1)
case_cpuset() {
	pc_simple cpuset "$NO_AMBIENT"' | .linux.resources += {cpu: {cpus: "1", mems: "0"}}' '^Cpus_allowed_list:	1$' \
		-- sh -c 'grep -E "^(Cpus|Mems)_allowed_list:" /proc/self/status'
}

case_userns() {
	local side h
	pc_mk userns --userns -- sh -c 'id; cat /proc/self/uid_map /proc/self/gid_map; '"$SH_CAPS"'; touch /mnt/made; mkdir /mnt/dir; echo x >/mnt/dir/f; ls -ln /mnt'
	pc_cfg userns '.mounts += [{destination: "/mnt", type: "bind", source: $host, options: ["rbind", "rw"]}]'
	for side in runc moon; do chown 100000:100000 "$CT_DIR/c/userns/$side/host"; done
	pc_run userns
	for side in $CT_SIDES; do
		h=$CT_DIR/c/userns/$side/host
		pc_host userns "$side" "$(cd "$h" && stat -c '%n %u:%g %a' made dir dir/f 2>&1)"
	done
	pc_check userns '^uid=0\(root\) gid=0\(root\)' '^ +0 +100000 +65536$' '^made 100000:100000'
}

# ---------------------------------------------------------------- filesystem

case_mounts() { pc_simple mounts . '^/ ro' '^/proc rw' -- sh -c "$SH_MOUNTS"; }

case_masked() {
	# /proc/kcore, /proc/sysrq-trigger etc. do not exist on every kernel (not
	# on the CI VM's); runc skips masked paths that are missing, so do both.
	pc_simple masked . '^/proc/keys 0 bytes rc=0$' '^/sys/firmware: *$' -- sh -c '
		for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /proc/latency_stats /proc/timer_stats; do
			echo "$f $(cat $f 2>/dev/null | wc -c) bytes rc=$(cat $f >/dev/null 2>&1; echo $?)"
		done
		for d in /sys/firmware /proc/acpi /proc/scsi /proc/asound; do echo "$d: $(ls $d 2>&1 | tr "\n" " ")"; done'
}

# opening for write is enough to see EROFS, and writes nothing if it succeeds
case_readonly_paths() {
	pc_simple readonly_paths . '/proc/sys/kernel/printk_ratelimit rc=1' -- sh -c '
		for f in /proc/sys/kernel/printk_ratelimit /proc/sys/vm/overcommit_memory /proc/sysrq-trigger /proc/irq/default_smp_affinity /proc/fs; do
			(: >>$f) 2>/dev/null; echo "$f rc=$?"
		done; (: >>/proc/self/oom_score_adj) && echo "/proc/self writable"'
}

case_rootfs_ro() {
	pc_simple rootfs_ro . 'Read-only file system' '^shm=0$' -- sh -c \
		'touch /x; echo root=$?; touch /tmp/x; echo tmp=$?; touch /dev/shm/x; echo shm=$?'
}

case_rootfs_rw() {
	local side
	pc_simple rootfs_rw '.root.readonly = false' '^root=0$' -- sh -c 'touch /x; echo root=$?; echo data >/tmp/x; echo tmp=$?'
	for side in $CT_SIDES; do
		pc_host rootfs_rw "$side" "$(cat "$CT_DIR/c/rootfs_rw/$side/rootfs/tmp/x" 2>&1); $(stat -c '%u:%g' "$CT_DIR/c/rootfs_rw/$side/rootfs/x" 2>&1)"
	done
	pc_check rootfs_rw '^root=0$' '^data; 0:0$'
}

case_rlimits() {
	pc_simple rlimits '.process.rlimits = [{type: "RLIMIT_NOFILE", soft: 4096, hard: 8192}, {type: "RLIMIT_NPROC", soft: 300, hard: 400},
		{type: "RLIMIT_CORE", soft: 0, hard: 1048576}, {type: "RLIMIT_STACK", soft: 4194304, hard: 8388608}, {type: "RLIMIT_MEMLOCK", soft: 65536, hard: 65536}]' \
		'^4096$' '^8192$' '^Max processes +300 +400' -- sh -c 'ulimit -n; ulimit -Hn; ulimit -u; ulimit -a; cat /proc/self/limits'
}

case_cwd_env() {
	pc_simple cwd_env '.process.cwd = "/tmp" | .process.env = ["PATH=/usr/bin:/bin", "FOO=bar baz", "EMPTY=", "DUP=1", "MOON=phase"]' \
		'^/tmp$' '^FOO=bar baz$' '^PATH=/usr/bin:/bin$' -- sh -c 'pwd; env | sort; echo "$PATH"'
}

# a cwd that is not in the rootfs is created by runc (its mode is not
# compared: runc makes it 0755 less the *caller's* umask, a quirk)
case_cwd_missing() {
	pc_simple cwd_missing '.process.cwd = "/new/dir" | .root.readonly = false' '^/new/dir$' -- sh -c 'pwd; stat -c "%F %u:%g" .'
}

case_dev() {
	pc_simple dev . '^/dev/null character special file 666 1:3 0:0$' -- sh -c \
		'cd /dev && stat -c "/dev/%n %F %a %t:%T %u:%g" * pts/* | sort; stat -c "%N" fd stdin stdout stderr ptmx 2>&1'
}

pc_bind() { # NAME RO-OR-RW
	local name=$1 mode=$2 side
	pc_mk "$name" -- sh -c 'cat /mnt/from-host; echo made >/mnt/from-container; echo write=$?; '"$SH_MOUNTS"' | grep "^/mnt "'
	pc_cfg "$name" '.mounts += [{destination: "/mnt", type: "bind", source: $host, options: ["rbind", $mode]}]' --arg mode "$mode"
	for side in runc moon; do echo "hello from host" >"$CT_DIR/c/$name/$side/host/from-host"; done
	pc_run "$name"
	for side in $CT_SIDES; do
		pc_host "$name" "$side" "$(cat "$CT_DIR/c/$name/$side/host/from-container" 2>&1)"
	done
}
case_bind_rw() { pc_bind bind_rw rw; pc_check bind_rw '^hello from host$' '^write=0$' '^made$'; }
case_bind_ro() { pc_bind bind_ro ro; pc_check bind_ro '^hello from host$' 'Read-only file system' '^/mnt ro'; }

case_tmpfs() {
	pc_simple tmpfs '.mounts += [{destination: "/scratch", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "noexec", "mode=1770", "size=1m", "uid=1000", "gid=1000"]}]' \
		'^/scratch rw,nosuid,nodev,noexec' '^1770 1000:1000$' -- sh -c \
		"$SH_MOUNTS"' | grep "^/scratch "; stat -c "%a %u:%g" /scratch; df -k /scratch | tail -n1 | awk "{print \$2}"; touch /scratch/f; echo touch=$?'
}

# ---------------------------------------------------------------- OCI hooks

# HOOK_SH: a host hook (sh + jq): one line into $1 with what it saw — its kind
# ($2), the state on stdin (id, status, pid as "1" / "host" / "none", the
# bundle, the annotations), its args after argv0, its HK_ env, its cwd, and
# whether it shares the mount namespace of the container's process ("ct") or
# of the host ("host").
HOOK_SH='out=$1 kind=$2; shift 2; st=$(cat); pid=$(echo "$st" | jq -r ".pid // 0")
	case $pid in 0) p=none ;; 1) p=1 ;; *) [ -d /proc/$pid ] && p=host-alive || p=host-gone ;; esac
	mnt=$(readlink /proc/self/ns/mnt); echo "$mnt" >"$out.$kind.mnt"; [ "$mnt" = "$MNT_HOST" ] && m=host || m=other
	echo "$kind id=$(echo "$st" | jq -r .id) status=$(echo "$st" | jq -r .status) pid=$p bundle=$(echo "$st" | jq -r .bundle) ann=$(echo "$st" | jq -c .annotations) args=$* env=$(env | grep ^HK_ | sort | tr "\n" " ")mnt=$m argv0=$0" >>"$out"'
# inside the container (busybox only): the same from sed
HOOK_CT_SH='st=$(cat); echo "$1 status=$(echo "$st" | sed -n "s/.*\"status\":\"\([a-z]*\)\".*/\1/p") pid=$(echo "$st" | sed -n "s/.*\"pid\":\([0-9]*\).*/\1/p") args=$2 env=$HK_A path=$PATH uid=$(id -u) cwd=$(pwd) argv0=$0" >>/mnt/hooks.log'

# hooks: every kind, each writing its line; the workload prints its own mount
# namespace so createContainer's can be compared with it.
pc_norm_hooks() { sed 's/^\(poststart .*\)status=created /\1status=running /'; }
case_hooks() {
	local side h
	pc_mk hooks -- sh -c 'readlink /proc/self/ns/mnt >/mnt/ct-mnt; echo ran; sleep 1'
	pc_cfg hooks '.mounts += [{destination: "/mnt", type: "bind", source: $host, options: ["rbind", "rw"]}]
		| .process.cwd = "/tmp" | .annotations = {"org.example/a": "b"}
		| def h(k; a): {path: "/bin/sh", args: (["hook-sh", "-c", $sh, "argv0-" + k, $host + "/hooks.log", k] + a), env: ["HK_KIND=" + k, "HK_X=1", "MNT_HOST=" + $mnt], timeout: 10};
		.hooks = {prestart: [h("prestart"; ["x"])], createRuntime: [h("createRuntime"; [])],
			createContainer: [h("createContainer"; ["y", "z"])],
			startContainer: [{path: "/bin/sh", args: ["sh", "-c", $ctsh, "ct0", "startContainer", "s1"], env: ["HK_A=a", "PATH=/bin"]},
				{path: "/bin/sh", args: ["sh", "-c", $ctsh, "ct0", "startContainer-noenv", "s2"]}],
			poststart: [h("poststart"; [])], poststop: [h("poststop"; [])]}' --arg sh "$HOOK_SH" --arg ctsh "$HOOK_CT_SH" --arg mnt "$(readlink /proc/self/ns/mnt)"
	pc_run hooks
	for side in $CT_SIDES; do
		h=$CT_DIR/c/hooks/$side/host
		# createContainer's mount namespace: the container's, not the host's
		# sorted: runc 1.1 runs poststart before the process has exec'd
		# (hence before startContainer, and with status "created"); the
		# runtime spec and moonshim run it after
		pc_host hooks "$side" "$(sed "s|$h|HOST|g; s|$CT_PREFIX|ID|g" "$h/hooks.log" 2>&1 | sort)"
		pc_host hooks "$side" "createContainer in the container's mount ns: $(cmp -s "$h/ct-mnt" "$h/hooks.log.createContainer.mnt" && echo yes || echo no)"
	done
	pc_check hooks '^prestart id=ID-hooks status=creating pid=host-alive bundle=BUNDLE ann=\{"org.example/a":"b"\} args=x env=HK_KIND=prestart HK_X=1 mnt=host argv0=argv0-prestart$' \
		'^createRuntime id=ID-hooks status=creating pid=host-alive' '^createContainer id=ID-hooks status=creating pid=1 .* args=y z .*mnt=other' "^createContainer in the container's mount ns: yes$" \
		'^startContainer status=created pid=1 args=s1 env=a path=/bin uid=0 cwd=/tmp argv0=ct0$' \
		'^poststart id=ID-hooks status=(created|running) pid=host-alive' '^poststop id=ID-hooks status=stopped pid=none' '^ran$'
}

# a failing createRuntime hook fails the create, naming the hook; the workload
# never runs, and the poststart hook never does
pc_norm_hook_fail() { pc_norm_error hook-fails-here; }
case_hook_fail() {
	local side
	pc_mk hook_fail -- sh -c 'echo workload ran'
	pc_cfg hook_fail '.hooks = {createRuntime: [{path: "/bin/sh", args: ["sh", "-c", "echo hook-fails-here >&2; exit 3"]}],
		poststart: [{path: "/bin/sh", args: ["sh", "-c", "touch " + $host + "/poststart"]}]}'
	pc_run hook_fail
	for side in $CT_SIDES; do
		pc_host hook_fail "$side" "poststart ran: $(ls "$CT_DIR/c/hook_fail/$side/host" | grep -c poststart)"
	done
	pc_check hook_fail '^an error naming hook-fails-here$' '^--- exit 1$' '^poststart ran: 0$'
}

# a hook past its timeout is killed (no sleep 31 left), and the create fails
# naming its timeout
pc_norm_hook_timeout() { pc_norm_error timeout; }
case_hook_timeout() {
	local side start
	pc_mk hook_timeout -- sh -c 'echo workload ran'
	pc_cfg hook_timeout '.hooks = {createContainer: [{path: "/bin/sh", args: ["sh", "-c", "exec sleep 31"], timeout: 1}]}'
	for side in $CT_SIDES; do
		start=$(date +%s)
		pc_run1 hook_timeout "$side"
		# killed after its 1 s: well before the sleep's 30 s, and gone
		pc_host hook_timeout "$side" "within 10 s: $(($(date +%s) - start < 10))"
		pc_host hook_timeout "$side" "hook still running: $(pgrep -fx 'sleep 31' | wc -l)"
	done
	pc_check hook_timeout '^an error naming timeout$' '^--- exit 1$' '^within 10 s: 1$'
}

# ---------------------------------------------------------------- idmapped mounts

# Debian's runc 1.1.5 has no idmapped mounts: these cases compare with the
# pinned runc 1.5.3 (.ci/godeps.sh builds it once and then finds it). Each
# case runs in its own subshell, so the override stays in the case.
pc_runc_idmap() {
	local bin
	bin=$(bash "$CT_REPO/.ci/godeps.sh" runc 2>/dev/null) && RUNC=$bin/runc
}
# OWNERS PATH...: one line per path, name and owner as seen
SH_OWNERS='owners() { for p; do stat -c "%n %u:%g" "$p" 2>&1; done; }'
# mappings: 0 -> 100000 (the --userns bundles' own), and one of the mount's own
MAP_CT='[{containerID: 0, hostID: 100000, size: 65536}]'

# runc 1.5.3 warns when it cannot raise the ambient capabilities runc spec
# lists (1.1.5 and moonshim leave them unraised silently)
pc_norm_idmap() { grep -v "level=warning msg=\"can't raise ambient capability"; }
pc_norm_idmap_same() { pc_norm_idmap; }
pc_norm_idmap_ct() { pc_norm_idmap; }
pc_norm_idmap_own() { pc_norm_idmap; }
pc_norm_idmap_nouserns() { pc_norm_idmap; }
pc_norm_idmap_recursive() { pc_norm_idmap; }

# pc_idmap_host NAME: each side's host dir holds f (root's) and dir d (root's)
pc_idmap_host() {
	local side h
	for side in runc moon; do
		h=$CT_DIR/c/$1/$side/host
		echo "from host" >"$h/f"
		mkdir -p "$h/d"
		chown 0:0 "$h" "$h/f" "$h/d"
	done
}

# pc_idmap_owners NAME PATH...: the owners on the host of PATHs under each
# side's host dir, and how many processes still hold a user namespace
# mapping to 101000 (the mounts' own mappings: their namespaces must be gone)
pc_idmap_owners() {
	local name=$1 side
	shift
	for side in $CT_SIDES; do
		pc_host "$name" "$side" "$(cd "$CT_DIR/c/$name/$side/host" && stat -c '%n %u:%g' "$@" 2>&1)"
		pc_host "$name" "$side" "holders left: $(grep -ls ' 101000 ' /proc/[0-9]*/uid_map | wc -l)"
	done
}

# the container's own mappings (given again on the mount): host root's files
# read as root's inside, and what root makes inside is host root's
case_idmap_same() {
	pc_runc_idmap
	pc_mk idmap_same --userns -- sh -c "$SH_OWNERS"'; id; owners /mnt/f /mnt/d /mnt; echo made >/mnt/made; mkdir /mnt/d/sub; owners /mnt/made /mnt/d/sub; '"$SH_MOUNTS"' | grep "^/mnt "'
	pc_cfg idmap_same '.mounts += [{destination: "/mnt", type: "bind", source: $host, options: ["rbind", "rw", "idmap"],
		uidMappings: '"$MAP_CT"', gidMappings: '"$MAP_CT"'}]'
	pc_idmap_host idmap_same
	pc_run idmap_same
	pc_idmap_owners idmap_same made d/sub
	pc_check idmap_same '^uid=0\(root\)' '^/mnt/f 0:0$' '^/mnt/made 0:0$' '^/mnt rw,.*idmapped' '^made 0:0$' '^d/sub 0:0$'
}

# idmap with no mappings of its own takes the container's; "ro" still applies
case_idmap_ct() {
	pc_runc_idmap
	pc_mk idmap_ct --userns -- sh -c "$SH_OWNERS"'; owners /mnt/f /mnt/d; touch /mnt/x; echo touch=$?; '"$SH_MOUNTS"' | grep "^/mnt "'
	pc_cfg idmap_ct '.mounts += [{destination: "/mnt", type: "bind", source: $host, options: ["bind", "ro", "idmap"]}]'
	pc_idmap_host idmap_ct
	pc_run idmap_ct
	pc_check idmap_ct '^/mnt/f 0:0$' 'Read-only file system' '^/mnt ro,.*idmapped'
}

# the mount's own mappings, other than the container's: host uid 0 reads as
# 1000 and gid 0 as 2000 inside; user 1000:2000 writes files host root owns
# (root inside, 100000 on the host, is not in the mount's mapping: EOVERFLOW)
case_idmap_own() {
	pc_runc_idmap
	pc_mk idmap_own --userns -- sh -c "$SH_OWNERS"'; id; owners /mnt/f /mnt/d; echo made >/mnt/made; owners /mnt/made'
	pc_cfg idmap_own '.process.user = {uid: 1000, gid: 2000}
		| .mounts += [{destination: "/mnt", type: "bind", source: $host, options: ["rbind", "rw", "idmap"],
		uidMappings: [{containerID: 0, hostID: 101000, size: 1000}], gidMappings: [{containerID: 0, hostID: 102000, size: 1000}]}]'
	pc_idmap_host idmap_own
	pc_run idmap_own
	pc_idmap_owners idmap_own made
	pc_check idmap_own '^uid=1000' '^/mnt/f 1000:2000$' '^/mnt/made 1000:2000$' '^made 0:0$' '^holders left: 0$'
}

# no user namespace in the container: a mount's own mapping swapping host
# ids 0 and 1000 (mappings without the idmap option are applied as idmap)
case_idmap_nouserns() {
	local side
	pc_runc_idmap
	pc_mk idmap_nouserns -- sh -c "$SH_OWNERS"'; id; owners /mnt/f /mnt/d /mnt; echo made >/mnt/made; owners /mnt/made'
	pc_cfg idmap_nouserns '.mounts += [{destination: "/mnt", type: "bind", source: $host, options: ["rbind", "rw"],
		uidMappings: [{containerID: 0, hostID: 1000, size: 1}, {containerID: 1000, hostID: 0, size: 1}],
		gidMappings: [{containerID: 0, hostID: 1000, size: 1}, {containerID: 1000, hostID: 0, size: 1}]}]'
	pc_idmap_host idmap_nouserns
	# the mount point reads as root's inside (root has no CAP_DAC_OVERRIDE)
	for side in runc moon; do chown 1000:1000 "$CT_DIR/c/idmap_nouserns/$side/host"; done
	pc_run idmap_nouserns
	pc_idmap_owners idmap_nouserns made
	pc_check idmap_nouserns '^uid=0\(root\)' '^/mnt/f 1000:1000$' '^/mnt 0:0$' '^/mnt/made 0:0$' '^made 1000:1000$'
}

# an rbind of a dir with a tmpfs mounted in it: idmap maps the top mount
# only (the tmpfs' root-owned file is nobody's inside), ridmap both
case_idmap_recursive() {
	local side h
	pc_runc_idmap
	pc_mk idmap_recursive --userns -- sh -c "$SH_OWNERS"'; owners /a/f /a/d/g /b/f /b/d/g'
	pc_cfg idmap_recursive '.mounts += [{destination: "/a", type: "bind", source: $host, options: ["rbind", "idmap"]},
		{destination: "/b", type: "bind", source: $host, options: ["rbind", "ridmap"]}]'
	pc_idmap_host idmap_recursive
	for side in runc moon; do
		h=$CT_DIR/c/idmap_recursive/$side/host
		mount -t tmpfs -o mode=755 tmpfs "$h/d" && echo in-tmpfs >"$h/d/g"
	done
	pc_run idmap_recursive
	pc_check idmap_recursive '^/a/f 0:0$' '^/a/d/g 65534:65534$' '^/b/f 0:0$' '^/b/d/g 0:0$'
}

# ---------------------------------------------------------------- rro, propagation (runc 1.5.3)

# pc_host_tree NAME: each side's host dir holds f and a tmpfs at sub with
# g in it (a submount the bind carries with rbind)
pc_host_tree() {
	local side h
	for side in runc moon; do
		h=$CT_DIR/c/$1/$side/host
		echo top >"$h/f"
		mkdir -p "$h/sub"
		mount -t tmpfs -o size=1m tmpfs "$h/sub" && echo in-sub >"$h/sub/g"
	done
}

# "rro": the bind and its submount are read-only (writes fail with EROFS,
# mountinfo says ro for both); "ro" beside it leaves the submount writable
case_rro() {
	pc_runc_idmap
	pc_mk rro -- sh -c 'cat /a/f /a/sub/g; for d in /a /a/sub /b /b/sub; do touch $d/new 2>&1; echo "$d touch=$?"; done; '"$SH_MOUNTS"' | grep -E "^/(a|b)"'
	pc_cfg rro '.mounts += [{destination: "/a", type: "bind", source: $host, options: ["rbind", "rro"]},
		{destination: "/b", type: "bind", source: $host, options: ["rbind", "ro"]}]'
	pc_host_tree rro
	pc_run rro
	pc_check rro '^/a touch=1$' '^/a/sub touch=1$' '^/b touch=1$' '^/b/sub touch=0$' '^/a/sub ro,' '^/b/sub rw,'
}
pc_norm_rro() { pc_norm_idmap; }

# rootfsPropagation rshared and an rshared bind of a shared host dir (what
# the CRI makes for a Bidirectional volume): a mount the host makes in it
# reaches the container, one the container makes reaches the host; the
# container's rootfs and its mounts do not leak into the host
SH_PROPAGATION='touch /mnt/started
	i=0; while [ ! -e /mnt/a/from-host ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	echo "in container: $(cat /mnt/a/from-host 2>&1)"
	mount -t tmpfs -o size=1m tmpfs /mnt/b && echo inside >/mnt/b/from-container
	i=0; while [ ! -e /mnt/checked ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	awk '\''$5 ~ "^/mnt" { print $5, ($7 ~ /^shared:/ ? "shared" : $7 ~ /^master:/ ? "slave" : "private") }'\'' /proc/self/mountinfo'
case_propagation_rshared() {
	local side h d=$CT_DIR/c/propagation_rshared
	pc_runc_idmap
	pc_mk propagation_rshared -- sh -c "$SH_PROPAGATION"
	pc_cfg propagation_rshared '.linux.rootfsPropagation = "rshared"
		| .process.capabilities |= with_entries(.value += ["CAP_SYS_ADMIN"])
		| .mounts += [{destination: "/mnt", type: "bind", source: $host, options: ["rbind", "rshared"]}]'
	for side in runc moon; do
		h=$d/$side/host
		mkdir -p "$h/a" "$h/b"
		mount --bind "$h" "$h" && mount --make-rshared "$h"
	done
	for side in $CT_SIDES; do
		h=$d/$side/host
		(
			i=0
			while [ ! -e "$h/started" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
			mount -t tmpfs -o size=1m tmpfs "$h/a" && echo outside >"$h/a/from-host"
			i=0
			while [ ! -e "$h/b/from-container" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
			pc_host propagation_rshared "$side" "on the host: $(cat "$h/b/from-container" 2>&1)"
			pc_host propagation_rshared "$side" "rootfs leaked: $(grep -c " $d/$side/rootfs " /proc/self/mountinfo)"
			touch "$h/checked"
		) &
		pc_run1 propagation_rshared "$side"
		wait $!
		umount -l "$h/b" "$h/a" "$h" 2>/dev/null
	done
	pc_check propagation_rshared '^in container: outside$' '^on the host: inside$' '^rootfs leaked: 0$' '^/mnt/b shared$'
}
pc_norm_propagation_rshared() { pc_norm_idmap; }

# ---------------------------------------------------------------- main

ALL=(exit0 exit7 exit255 killed_kill killed_term stdout stdin caps_default caps_extra caps_ambient_noinh
	nnp_false seccomp_mkdir seccomp_unknown user umask umask_spec args args_notfound hostname pid1 netns hostnet sysctl oom_plus oom_minus cgroupns resources userns mounts
	masked readonly_paths rootfs_ro rootfs_rw rlimits cwd_env cwd_missing dev bind_rw bind_ro tmpfs
	hooks hook_fail hook_timeout idmap_same idmap_ct idmap_own idmap_nouserns idmap_recursive cgroup_hierarchies cpuset
	rro propagation_rshared)
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=("${ALL[@]}")

ct_setup
ct_have_moon || echo "note: $MOON is not built; every moonshim side fails"
ct_parallel "$JOBS" "${cases[@]/#/case_}"
ct_report "${TEST_SUITE:-container}" "${cases[@]}" # tests/run.sh names each run
