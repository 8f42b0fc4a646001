#!/bin/bash
# errors.sh — `moonshim run` on broken bundles: each case breaks one thing in
# a busybox bundle and expects
#   - a non-zero exit status (runc's own status when runc fails too: 1);
#   - nothing on stdout and ONE line on stderr, "moonshim: ...", naming the
#     problem: the file, the JSON path (mounts[N], linux.namespaces[N].type,
#     ...), the path or name at fault — each case lists the EREs it must match
#     (and, as !ERE, what it must not say);
#   - a clean host afterwards: no cgroup dir moonshim/ID on any hierarchy, no
#     state dir ROOT/ID, no process rooted in the bundle, no new mount in this
#     mount namespace (cases run one at a time so a new mount is ours).
# runc runs the same bundle first; its status and message are printed as a
# "# runc:" line under each case, as the reference to match.
#   bash tests/container/errors.sh [CASE...]
# Prints "ok NAME" / "FAIL NAME" (with the reasons), then
# "container-errors: N passed, N failed"; exits 1 on any failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

# ---------------------------------------------------------------- plumbing

er_id() { echo "$CT_PREFIX-$1"; }

# er_mk NAME [--userns] [-- ARGS...]: bundle $CT_DIR/b/NAME (default: true)
er_mk() {
	local name=$1
	shift
	[ "${1:-}" = --userns ] || [ "${1:-}" = -- ] || set -- -- true
	ct_bundle "$CT_DIR/b/$name" "$@"
}
er_cfg() { ct_cfg "$CT_DIR/b/$1" "${@:2}"; }

# er_runc NAME: runc on the bundle; "# runc: exit N: MESSAGE" into NAME/runc.
er_runc() {
	local name=$1 b=$CT_DIR/b/$1 rc msg
	ct_rt runc run -b "$b" "$(er_id "$name")" </dev/null >"$b.runc.out" 2>"$b.runc.err"
	rc=$?
	msg=$(sed -nE 's/.*level=(error|fatal) msg="(.*)"$/\2/p' "$b.runc.err" | tail -n1)
	[ -n "$msg" ] || msg=$(tail -n1 "$b.runc.err")
	echo "$rc" >"$b.runc.rc"
	echo "# runc: exit $rc: $msg" >"$b.runc"
	ct_rt runc delete -f "$(er_id "$name")" >/dev/null 2>&1
}

# er_expect NAME ERE...: run moonshim on the bundle and judge it (see the top).
er_expect() {
	local name=$1 b=$CT_DIR/b/$1 id rc lines runc_rc re
	shift
	id=$(er_id "$name")
	er_runc "$name"
	runc_rc=$(cat "$b.runc.rc")
	ct_mounts >"$b.mounts.before" # (after runc: whatever it left is not ours)
	: >"$b.why"
	if ! ct_have_moon; then
		echo "moonshim not built ($MOON)" >>"$b.why"
	else
		ct_rt moon run -b "$b" "$id" </dev/null >"$b.out" 2>"$b.err"
		rc=$?
		er_judge "$name" "$rc" "$runc_rc" "$@"
	fi
	er_clean "$name" "$id"
	er_record "$name"
}

# er_judge NAME RC RUNC-RC ERE...: status, stdout, the one stderr line.
er_judge() {
	local name=$1 rc=$2 runc_rc=$3 b=$CT_DIR/b/$1 lines re
	shift 3
	if [ "$rc" = 0 ]; then
		echo "exit status 0" >>"$b.why"
	elif [ "$runc_rc" != 0 ] && [ "$rc" != "$runc_rc" ]; then
		echo "exit status $rc, runc's is $runc_rc" >>"$b.why"
	fi
	[ -s "$b.out" ] && { echo "stdout not empty:"; head -n5 "$b.out"; } >>"$b.why"
	lines=$(grep -c . "$b.err")
	if [ "$lines" != 1 ]; then
		{ echo "$lines lines on stderr, want 1:"; head -n10 "$b.err"; } >>"$b.why"
	elif ! grep -q '^moonshim: ' "$b.err"; then
		{ echo "stderr line does not start with \"moonshim: \":"; cat "$b.err"; } >>"$b.why"
	fi
	for re in "$@"; do
		case $re in
		!*) grep -qE -- "${re#!}" "$b.err" && echo "stderr has /${re#!}/: $(head -c 300 "$b.err")" >>"$b.why" ;;
		*) grep -qE -- "$re" "$b.err" || echo "stderr lacks /$re/: $(head -c 300 "$b.err")" >>"$b.why" ;;
		esac
	done
}

# er_clean NAME ID: what the failed run left (see ct_leftovers), new mounts.
er_clean() {
	local name=$1 id=$2 b=$CT_DIR/b/$1
	ct_leftovers "$CT_DIR/moon" "$id" "$b" >>"$b.why"
	# a user namespace made for an idmapped mount's own mappings (host 101000)
	grep -ls ' 101000 ' /proc/[0-9]*/uid_map | sed 's/^/user namespace holder left: /' >>"$b.why"
	ct_mounts >"$b.mounts.after"
	comm -13 "$b.mounts.before" "$b.mounts.after" | sed 's/^/new mount: /' >>"$b.why"
}

er_record() {
	local b=$CT_DIR/b/$1
	{
		cat "$b.runc"
		[ -s "$b.err" ] && echo "# moonshim: $(head -c 300 "$b.err" | head -n1)"
		cat "$b.why"
	} >"$b.detail"
	if [ -s "$b.why" ]; then
		ct_result "$1" fail "$b.detail"
	else
		ct_result "$1" ok
		sed 's/^/    /' "$b.detail" >>"$CT_DIR/res/$1" # keep the reference visible
	fi
}

# ---------------------------------------------------------------- the spec file

# a syntax error on line 5 (jq pretty-prints one member a line)
case_json_malformed() {
	er_mk json_malformed
	jq . "$CT_DIR/b/json_malformed/config.json" | sed '5s/$/ oops/' >"$CT_DIR/b/json_malformed/c" &&
		mv "$CT_DIR/b/json_malformed/c" "$CT_DIR/b/json_malformed/config.json"
	er_expect json_malformed 'config\.json' '(line 5([^0-9]|$)|:5:)'
}

# 800 nested arrays under an unknown key (runc ignores it): refused by name,
# not a crash of the parser's recursion on a goroutine stack
case_json_deep() {
	local b=$CT_DIR/b/json_deep
	er_mk json_deep
	{ printf '{"deep": '; printf '[%.0s' $(seq 800); printf ']%.0s' $(seq 800); printf ', '; jq -c . "$b/config.json" | cut -c2-; } >"$b/c" &&
		mv "$b/c" "$b/config.json"
	er_expect json_deep 'config\.json: JSON nested deeper than 64 levels'
}

case_json_missing() {
	er_mk json_missing
	rm "$CT_DIR/b/json_missing/config.json"
	er_expect json_missing 'config\.json' '[Nn]o such file' '!line -1'
}

case_json_wrong_type() {
	er_mk json_wrong_type
	er_cfg json_wrong_type '.process.args = "true"'
	er_expect json_wrong_type 'process\.args'
}

case_args_empty() {
	er_mk args_empty
	er_cfg args_empty '.process.args = []'
	er_expect args_empty 'process\.args'
}

case_cwd_relative() {
	er_mk cwd_relative
	er_cfg cwd_relative '.process.cwd = "tmp"'
	er_expect cwd_relative 'process\.cwd'
}

case_rootfs_missing() {
	er_mk rootfs_missing
	er_cfg rootfs_missing '.root.path = "no-such-rootfs"'
	er_expect rootfs_missing 'no-such-rootfs'
}

case_ns_unknown() {
	er_mk ns_unknown
	er_cfg ns_unknown '.linux.namespaces += [{type: "bogus"}]'
	er_expect ns_unknown 'linux\.namespaces\[5\]\.type' 'bogus'
}

case_cap_unknown() {
	er_mk cap_unknown
	er_cfg cap_unknown '.process.capabilities.bounding += ["CAP_BOGUS"]'
	er_expect cap_unknown 'CAP_BOGUS' 'process\.capabilities\.bounding\[3\]'
}

case_rlimit_unknown() {
	er_mk rlimit_unknown
	er_cfg rlimit_unknown '.process.rlimits += [{type: "RLIMIT_BOGUS", soft: 1, hard: 1}]'
	er_expect rlimit_unknown 'RLIMIT_BOGUS' 'process\.rlimits\[1\]'
}

# fields moonshim refuses rather than run without (README: they would weaken
# isolation); runc 1.1.5 on this host: see the "# runc:" lines
case_apparmor() {
	er_mk apparmor
	er_cfg apparmor '.process.apparmorProfile = "moonshim-test"'
	er_expect apparmor 'process\.apparmorProfile'
}

case_selinux() {
	er_mk selinux
	er_cfg selinux '.process.selinuxLabel = "system_u:system_r:container_t:s0"'
	er_expect selinux 'process\.selinuxLabel'
}

# ---------------------------------------------------------------- id mappings

case_idmap_overlap() {
	er_mk idmap_overlap --userns -- true
	er_cfg idmap_overlap '.linux.uidMappings = [{containerID: 0, hostID: 100000, size: 1000}, {containerID: 500, hostID: 200000, size: 1000}]'
	er_expect idmap_overlap 'linux\.uidMappings'
}

case_idmap_size0() {
	er_mk idmap_size0 --userns -- true
	er_cfg idmap_size0 '.linux.uidMappings = [{containerID: 0, hostID: 100000, size: 0}]'
	er_expect idmap_size0 'linux\.uidMappings'
}

case_idmap_noroot() {
	er_mk idmap_noroot --userns -- true
	er_cfg idmap_noroot '.linux.uidMappings = [{containerID: 1, hostID: 100001, size: 65535}]'
	er_expect idmap_noroot 'linux\.uidMappings'
}

# ---------------------------------------------------------------- idmapped mounts

# Debian's runc 1.1.5 knows no idmapped mounts: the reference line comes
# from the pinned runc 1.5.3 (.ci/godeps.sh builds it once, then finds it).
er_idmount() { # NAME [--userns] FILTER ERE...
	local name=$1 userns= RUNC bin
	shift
	[ "$1" = --userns ] && { userns=--userns; shift; }
	bin=$(bash "$CT_REPO/.ci/godeps.sh" runc 2>/dev/null) && RUNC=$bin/runc
	er_mk "$name" $userns -- true
	er_cfg "$name" "$1" --arg host "$CT_DIR/b/$name/rootfs/tmp"
	shift
	er_expect "$name" "$@"
}
# mounts[7]: a bind of the bundle's own rootfs/tmp with idmap (and what the
# case adds); 101000 is the host id mappings here use (see er_clean)
IDM='.mounts += [{destination: "/mnt", type: "bind", source: $host, options: ["rbind", "idmap"]}] | .mounts[7]'
IDM_OWN='[{containerID: 0, hostID: 101000, size: 1000}]'

case_idmount_half() { er_idmount idmount_half --userns "$IDM.uidMappings = $IDM_OWN" 'mounts\[7\]\.gidMappings: missing'; }
case_idmount_empty() { er_idmount idmount_empty --userns "$IDM.uidMappings = [] | $IDM.gidMappings = []" 'mounts\[7\]\.uidMappings: empty'; }
case_idmount_overlap() {
	er_idmount idmount_overlap --userns "$IDM.uidMappings = [{containerID: 0, hostID: 101000, size: 10}, {containerID: 5, hostID: 201000, size: 10}]
		| $IDM.gidMappings = $IDM_OWN" 'mounts\[7\]\.uidMappings\[1\]: overlaps'
}
case_idmount_size0() { er_idmount idmount_size0 --userns "$IDM.uidMappings = [{containerID: 0, hostID: 101000, size: 0}] | $IDM.gidMappings = $IDM_OWN" 'mounts\[7\]\.uidMappings\[0\]\.size'; }
case_idmount_tmpfs() { er_idmount idmount_tmpfs --userns '.mounts += [{destination: "/mnt", type: "tmpfs", source: "tmpfs", options: ["idmap"]}]' 'mounts\[7\] \(/mnt\)' 'bind mount' 'tmpfs'; }
# idmap without mappings takes the container's user namespace: there is none
case_idmount_nouserns() { er_idmount idmount_nouserns "$IDM.options = [\"rbind\", \"idmap\"]" 'mounts\[7\] \(/mnt\)' 'user namespace'; }
case_idmount_missing() { er_idmount idmount_missing --userns "$IDM.source = \"/nonexistent/moonshim-src\"" 'mounts\[7\] \(/mnt\)' '/nonexistent/moonshim-src'; }
# procfs takes no idmapping: one error naming the destination; the user
# namespace made for the mount's own mappings is gone with the failure
case_idmount_unsupported() {
	er_idmount idmount_unsupported --userns "$IDM.source = \"/proc/sys\" | $IDM.uidMappings = $IDM_OWN | $IDM.gidMappings = $IDM_OWN" \
		'mounts\[7\] \(/mnt\)' '/proc/sys' 'does not support idmapped mounts'
}

# ---------------------------------------------------------------- seccomp

case_seccomp_action() {
	er_mk seccomp_action
	er_cfg seccomp_action '.linux.seccomp = {defaultAction: "SCMP_ACT_BOGUS", syscalls: []}'
	er_expect seccomp_action 'SCMP_ACT_BOGUS' 'linux\.seccomp\.defaultAction'
}

# ---------------------------------------------------------------- mounts

# the default spec has mounts[0..6]; the broken one is appended as mounts[7]
case_bind_missing() {
	er_mk bind_missing
	er_cfg bind_missing '.mounts += [{destination: "/mnt", type: "bind", source: "/nonexistent/moonshim-src", options: ["rbind"]}]'
	er_expect bind_missing 'mounts\[7\]' '/nonexistent/moonshim-src'
}

# "rro" on a kernel without mount_setattr (before 5.12; here nosys.py makes
# the call fail with ENOSYS for moonshim and its container): one error
# naming the mount and rro (runc runs the same bundle on the real kernel)
NR_MOUNT_SETATTR=442
case_rro_refused() {
	local real=$MOON MOON=$CT_DIR/moon-nosys-setattr
	printf '#!/bin/sh\nexec python3 %q %s -- %q "$@"\n' "$CT_REPO/tests/container/nosys.py" \
		"$NR_MOUNT_SETATTR" "$(realpath "$real")" >"$MOON"
	chmod +x "$MOON"
	er_mk rro_refused
	mkdir -p "$CT_DIR/b/rro_refused/src"
	er_cfg rro_refused '.mounts += [{destination: "/mnt", type: "bind", source: "src", options: ["rbind", "rro"]}]'
	er_expect rro_refused 'mounts\[7\] \(/mnt\)' 'rro' 'Function not implemented'
}

case_mount_through_file() {
	er_mk mount_through_file
	er_cfg mount_through_file '.mounts += [{destination: "/etc/passwd/sub", type: "tmpfs", source: "tmpfs"}]'
	er_expect mount_through_file 'mounts\[7\]' '/etc/passwd'
}

case_mount_type_unknown() {
	er_mk mount_type_unknown
	er_cfg mount_type_unknown '.mounts += [{destination: "/mnt", type: "nosuchfs", source: "x"}]'
	er_expect mount_type_unknown 'mounts\[7\]' 'nosuchfs'
}

# ---------------------------------------------------------------- late failures

# failures after the namespaces, cgroups and mounts exist: cleanup matters most
case_exec_missing() {
	er_mk exec_missing -- /no/such/program
	er_expect exec_missing '/no/such/program'
}

case_exec_not_executable() {
	er_mk exec_not_executable -- /etc/passwd
	er_expect exec_not_executable '/etc/passwd' '[Pp]ermission denied'
}

case_sysctl_unknown() {
	er_mk sysctl_unknown
	er_cfg sysctl_unknown '.linux.sysctl = {"kernel.no_such_knob": "1"}'
	er_expect sysctl_unknown 'kernel\.no_such_knob'
}

# runc's sysctl rules: only a sysctl of a namespace the container does not
# share with the host is written; the host's value must not move.
er_sysctl() { # NAME KEY VALUE FILTER ERE...
	local name=$1 key=$2 value=$3 filter=$4 before after
	shift 4
	er_mk "$name"
	er_cfg "$name" "$filter | .linux.sysctl = {(\$k): \$v}" --arg k "$key" --arg v "$value"
	before=$(cat "/proc/sys/${key//.//}")
	er_expect "$name" "$@"
	after=$(cat "/proc/sys/${key//.//}")
	[ "$before" = "$after" ] || { echo "the host's $key changed: $before -> $after" >>"$CT_DIR/b/$name.why"; er_record "$name"; }
}
case_sysctl_host_vm() {
	er_sysctl sysctl_host_vm vm.swappiness 37 . 'vm\.swappiness' 'not in a separate kernel namespace'
}
case_sysctl_host_kernel() { # new net and ipc namespaces do not make kernel.* the container's
	er_sysctl sysctl_host_kernel kernel.printk_ratelimit_burst 37 . 'kernel\.printk_ratelimit_burst' 'not in a separate kernel namespace'
}
case_sysctl_host_net() {
	er_sysctl sysctl_host_net net.ipv4.tcp_keepalive_probes 7 '.linux.namespaces |= map(select(.type != "network"))' \
		'net\.ipv4\.tcp_keepalive_probes' "host's network namespace"
}
case_sysctl_host_ipc() { # an ipc sysctl by its slash name, without an ipc namespace
	er_sysctl sysctl_host_ipc kernel/msgmax 12345 '.linux.namespaces |= map(select(.type != "ipc"))' \
		'kernel\.msgmax' "host's ipc namespace"
}

# CVE-2024-21626 on the run path: a cwd through a /proc magic link, named in
# config.json or planted as a symlink in the rootfs, is refused.
case_cwd_magiclink() {
	er_mk cwd_magiclink -- cat ../../../../../../../../etc/hostname
	er_cfg cwd_magiclink '.process.cwd = "/proc/self/fd/6"'
	er_expect cwd_magiclink 'process\.cwd:? /proc/self/fd/6'
}
case_cwd_planted() {
	er_mk cwd_planted -- cat ../../../../../../../../etc/hostname
	ln -s /proc/self/fd/6 "$CT_DIR/b/cwd_planted/rootfs/work"
	er_cfg cwd_planted '.process.cwd = "/work"'
	er_expect cwd_planted 'process\.cwd:? /work'
}

# execve's own E2BIG (after Start, when every other check has passed): one
# line naming it, not a silent exit 1 that looks like the workload's
case_args_too_big() { # one argument over the kernel's 128 KiB per string
	er_mk args_too_big -- true
	er_cfg args_too_big '.process.args += [("x" * 200000)]'
	er_expect args_too_big 'exec: "true"' 'too big|[Aa]rgument list too long'
}
case_env_too_big() { # 30 variables of 100 kB: over a quarter of the 8 MiB stack limit
	er_mk env_too_big -- true
	er_cfg env_too_big '.process.env = ["PATH=/bin"] + [range(30) | "X\(.)=" + ("y" * 100000)]'
	er_expect env_too_big 'exec: "true"' 'too big|[Aa]rgument list too long'
}

# a memory limit below what a process needs to start: runc's "unable to set
# memory limit to 4096 (current usage ...)", not "Broken pipe" and 137
case_memory_limit_tiny() {
	er_mk memory_limit_tiny -- true
	er_cfg memory_limit_tiny '.linux.resources.memory = {"limit": 4096}'
	er_expect memory_limit_tiny 'memory\.limit' 'unable to set memory limit to 4096' '!Broken pipe'
}

case_user_unmapped() {
	er_mk user_unmapped --userns -- true
	er_cfg user_unmapped '.process.user.uid = 70000'
	er_expect user_unmapped '70000'
}

# ---------------------------------------------------------------- lifecycle

# exec into a container whose init has exited: "not running"
case_exec_stopped() {
	local name=exec_stopped b=$CT_DIR/b/exec_stopped id runc_rc
	id=$(er_id $name)
	er_mk $name -- true
	: >"$b.why"
	ct_rt runc run -d -b "$b" "$id" </dev/null >/dev/null 2>&1
	ct_wait 5 er_is "runc" "$id" stopped
	ct_rt runc exec "$id" true >/dev/null 2>"$b.runc.err"
	runc_rc=$?
	echo "# runc: exit $runc_rc: $(sed -nE 's/.*msg="(.*)"$/\1/p' "$b.runc.err" | tail -n1)" >"$b.runc"
	ct_rt runc delete -f "$id" >/dev/null 2>&1
	ct_mounts >"$b.mounts.before"
	if ! ct_have_moon; then
		echo "moonshim not built ($MOON)" >>"$b.why"
	elif ! ct_rt moon run -d -b "$b" "$id" </dev/null >"$b.run.out" 2>&1; then
		{ echo "run -d failed:"; head -n5 "$b.run.out"; } >>"$b.why"
	elif ! ct_wait 5 er_is moon "$id" stopped; then
		echo "state never says stopped (last: $(ct_state_status moon "$id"))" >>"$b.why"
	else
		ct_rt moon exec "$id" -- true </dev/null >"$b.out" 2>"$b.err"
		# runc exits 255 here: exec's status is otherwise the process's own
		er_judge $name $? "$runc_rc" 'not running' "$id"
		ct_rt moon delete "$id" >>"$b.why" 2>&1 || echo "delete of the stopped container failed" >>"$b.why"
	fi
	er_clean $name "$id"
	er_record $name
}
er_is() { [ "$(ct_state_status "$1" "$2")" = "$3" ]; }

# a second run with an id in use fails and leaves the first one alone
case_id_in_use() {
	local name=id_in_use b=$CT_DIR/b/id_in_use id runc_rc
	id=$(er_id $name)
	er_mk $name -- sleep 60
	ct_bundle "$b-2" -- true
	: >"$b.why"
	ct_rt runc run -d -b "$b" "$id" </dev/null >/dev/null 2>&1
	ct_rt runc run -b "$b-2" "$id" </dev/null >/dev/null 2>"$b.runc.err"
	runc_rc=$?
	echo "# runc: exit $runc_rc: $(sed -nE 's/.*msg="(.*)"$/\1/p' "$b.runc.err" | tail -n1)" >"$b.runc"
	ct_rt runc delete -f "$id" >/dev/null 2>&1
	ct_mounts >"$b.mounts.before"
	if ! ct_have_moon; then
		echo "moonshim not built ($MOON)" >>"$b.why"
	elif ! ct_rt moon run -d -b "$b" "$id" </dev/null >"$b.run.out" 2>&1; then
		{ echo "run -d failed:"; head -n5 "$b.run.out"; } >>"$b.why"
	else
		ct_rt moon run -b "$b-2" "$id" </dev/null >"$b.out" 2>"$b.err"
		er_judge $name $? "$runc_rc" "$id" 'exists|in use'
		er_is moon "$id" running || echo "the first container is no longer running: $(ct_state_status moon "$id")" >>"$b.why"
		ct_rt moon delete --force "$id" >>"$b.why" 2>&1 || echo "delete --force failed" >>"$b.why"
	fi
	er_clean $name "$id"
	er_record $name
}

# ---------------------------------------------------------------- main

ALL=(json_malformed json_deep json_missing json_wrong_type args_empty cwd_relative rootfs_missing ns_unknown
	cap_unknown rlimit_unknown apparmor selinux idmap_overlap idmap_size0 idmap_noroot
	idmount_half idmount_empty idmount_overlap idmount_size0 idmount_tmpfs idmount_nouserns idmount_missing idmount_unsupported
	seccomp_action
	bind_missing rro_refused mount_through_file mount_type_unknown exec_missing exec_not_executable sysctl_unknown
	sysctl_host_vm sysctl_host_kernel sysctl_host_net sysctl_host_ipc cwd_magiclink cwd_planted
	args_too_big env_too_big memory_limit_tiny
	user_unmapped exec_stopped id_in_use)
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=("${ALL[@]}")

ct_setup
mkdir -p "$CT_DIR/b"
ct_have_moon || echo "note: $MOON is not built; every case fails"
for c in "${cases[@]}"; do "case_$c" </dev/null; done
ct_report container-errors "${cases[@]}"
