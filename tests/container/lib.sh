# lib.sh — helpers shared by the container suites (parity.sh, errors.sh, cli.sh):
# a private temp dir with its cleanup, bundles copied from one busybox base,
# config edits with jq, the two runtimes under private roots, pass/fail
# bookkeeping and the summary line tests/run.sh parses. Source it; it sets
#   CT_DIR   the suite's temp dir (bundles, roots, outputs), removed on exit
#   MOON     build/moonshim (override with MOONSHIM=path)
#   RUNC     runc (override with RUNC=path)
# CT_KEEP=1 keeps the temp dir (containers and mounts are still cleaned up).
# Every container id a suite makes starts with $CT_PREFIX, so cleanup can find
# what a crashed case left behind without touching anybody else's containers.

CT_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MOON=${MOONSHIM:-$CT_REPO/build/moonshim}
RUNC=${RUNC:-/usr/sbin/runc}
# shellcheck disable=SC2034 # (used by the suites that source this)
CT_PREFIX=ct$$
CT_TIMEOUT=${CT_TIMEOUT:-30} # seconds one runtime invocation may take before it is killed
ct_passed=0 ct_failed=0

# ---------------------------------------------------------------- setup, cleanup

ct_setup() {
	CT_DIR=$(mktemp -d /tmp/moonshim-ct.XXXXXX)
	chmod 755 "$CT_DIR" # user-namespaced containers (root = uid 100000) reach their bundles through it
	mkdir -p "$CT_DIR/runc" "$CT_DIR/moon" "$CT_DIR/res"
	trap ct_cleanup EXIT
	trap 'exit 130' INT TERM
	bash "$CT_REPO/tests/container/mkbundle.sh" "$CT_DIR/base" >/dev/null
	bash "$CT_REPO/tests/container/mkbundle.sh" "$CT_DIR/base-userns" --userns >/dev/null
}

# Pids of host processes whose root directory is DIR (same device and inode:
# a container's pivoted root is the bundle's rootfs even though the path
# differs in its mount namespace).
ct_root_pids() {
	local p
	for p in /proc/[0-9]*; do
		[ "$p/root" -ef "$1" ] 2>/dev/null && echo "${p#/proc/}"
	done
	return 0
}

ct_cleanup() {
	local id b pid m
	trap - EXIT
	# runc's containers, then ours (either may be missing or broken)
	for id in "$CT_DIR"/runc/*/; do
		[ -d "$id" ] && timeout 10 "$RUNC" --root "$CT_DIR/runc" delete -f "$(basename "$id")" >/dev/null 2>&1
	done
	for id in "$CT_DIR"/moon/*/; do
		[ -d "$id" ] && timeout 10 "$MOON" --root "$CT_DIR/moon" delete --force "$(basename "$id")" >/dev/null 2>&1
	done
	# whatever still runs inside one of our rootfs
	for b in "$CT_DIR"/c/*/*/rootfs "$CT_DIR"/b/*/rootfs; do
		[ -d "$b" ] || continue
		for pid in $(ct_root_pids "$b"); do kill -9 "$pid" 2>/dev/null; done
	done
	# mounts a runtime leaked into the host namespace, deepest first
	awk -v d="$CT_DIR" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null; done
	if [ -n "${CT_KEEP:-}" ]; then echo "kept $CT_DIR"; else rm -rf "$CT_DIR"; fi
}

# ---------------------------------------------------------------- bundles

# ct_bundle DIR [--userns] [-- ARGS...]: a bundle in DIR copied from the base
# (same rootfs and config as mkbundle.sh) with process.args = ARGS.
ct_bundle() {
	local dir=$1 base=$CT_DIR/base
	shift
	if [ "${1:-}" = --userns ]; then base=$CT_DIR/base-userns; shift; fi
	[ "${1:-}" = -- ] && shift
	mkdir -p "$dir"
	cp -a "$base/rootfs" "$dir/rootfs"
	if [ $# -gt 0 ]; then
		jq --argjson argv "$(/usr/bin/python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@")" \
			'.process.args = $argv' <"$base/config.json" >"$dir/config.json"
	else
		cp "$base/config.json" "$dir/config.json"
	fi
}

# ct_cfg DIR FILTER [JQ-ARGS...]: edit DIR/config.json in place with jq; the
# filter sees $dir (the bundle) besides any --arg the caller passes.
ct_cfg() {
	local dir=$1 filter=$2
	shift 2
	jq --arg dir "$dir" "$@" "$filter" <"$dir/config.json" >"$dir/config.json.new" &&
		mv "$dir/config.json.new" "$dir/config.json"
}

# ---------------------------------------------------------------- runtimes

# ct_rt runc|moon ARGS...: one runtime under the suite's private root.
ct_rt() {
	local side=$1
	shift
	case $side in
	runc) timeout -k 5 "$CT_TIMEOUT" "$RUNC" --root "$CT_DIR/runc" "$@" ;;
	moon) timeout -k 5 "$CT_TIMEOUT" "$MOON" --root "$CT_DIR/moon" "$@" ;;
	esac
}

# ct_state_status SIDE ID: the container's status per `state`, or "none".
ct_state_status() {
	local s
	s=$(ct_rt "$1" state "$2" 2>/dev/null | jq -r .status 2>/dev/null)
	echo "${s:-none}"
}

# ct_wait SECONDS CMD...: poll CMD every 50 ms until it succeeds; false on timeout.
ct_wait() {
	local n=$(($1 * 20))
	shift
	while [ $n -gt 0 ]; do
		"$@" && return 0
		sleep 0.05
		n=$((n - 1))
	done
	return 1
}

ct_have_moon() { [ -x "$MOON" ]; }

# ---------------------------------------------------------------- host cleanliness

# What a failed `moonshim run` must not leave behind, as text to diff:
# cgroup dirs named after ID under moonshim/ on every hierarchy, the state dir,
# processes rooted in the bundle. Mount-table growth is checked separately
# (ct_mounts) because unrelated activity on the host can add mounts.
ct_leftovers() { # ROOT ID BUNDLE
	local root=$1 id=$2 bundle=$3 d pid
	for d in /sys/fs/cgroup/*/moonshim/"$id" /sys/fs/cgroup/moonshim/"$id"; do
		[ -d "$d" ] && echo "cgroup dir left: $d"
	done
	[ -e "$root/$id" ] && echo "state dir left: $root/$id"
	for pid in $(ct_root_pids "$bundle/rootfs"); do
		echo "process left: $pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
	done
	return 0
}

# Mount points of this mount namespace (mount id, point, fstype), sorted.
ct_mounts() {
	awk '{ for (i = 7; $i != "-"; i++); print $1, $5, $(i + 1) }' /proc/self/mountinfo | sort
}

# ---------------------------------------------------------------- results

# ct_result NAME STATUS [DETAIL-FILE]: record a case (parallel-safe: one file
# per case under res/, printed in order by ct_report).
ct_result() {
	local name=$1 status=$2 detail=${3:-}
	{
		if [ "$status" = ok ]; then echo "ok $name"; else echo "FAIL $name"; fi
		if [ "$status" != ok ] && [ -n "$detail" ] && [ -s "$detail" ]; then
			sed 's/^/    /' "$detail" | head -n 80
		fi
	} >"$CT_DIR/res/$name"
}

# ct_report SUMMARY-NAME NAMES...: print each case's lines in the given order,
# then "SUMMARY-NAME: N passed, N failed"; returns 1 if any failed.
ct_report() {
	local sname=$1 n
	shift
	for n in "$@"; do
		if [ -f "$CT_DIR/res/$n" ]; then
			cat "$CT_DIR/res/$n"
			if head -n1 "$CT_DIR/res/$n" | grep -q '^ok '; then
				ct_passed=$((ct_passed + 1))
			else
				ct_failed=$((ct_failed + 1))
			fi
		else
			echo "FAIL $n"
			echo "    (case crashed: no result)"
			ct_failed=$((ct_failed + 1))
		fi
	done
	echo "$sname: $ct_passed passed, $ct_failed failed"
	[ "$ct_failed" -eq 0 ]
}

# ct_parallel JOBS FUNCS...: run each function in the background, at most
# JOBS at a time; each records its own result with ct_result.
ct_parallel() {
	local jobs=$1 f
	shift
	for f in "$@"; do
		while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
		"$f" </dev/null &
	done
	wait
}
