# shellcheck shell=bash
# lib.sh — a private containerd for the shim's end-to-end suite and benchmarks:
# everything it owns (config, root, state, sockets, logs) lives in one temp dir,
# the shim under test is found on its PATH as containerd-shim-moon-v2 (so the
# runtime name io.containerd.moon.v2 resolves to it), and one cleanup trap
# leaves the host as it was. Source it, then call cd_start. It sets
#   CD_DIR    the temp dir (config.toml, root/, state/, bin/, fifo/, containerd.log, ...)
#   CD_SOCK   containerd's gRPC socket ($CD_DIR/c.sock; ttrpc at $CD_SOCK.ttrpc)
#   CD_NS     the containerd namespace every ctr call uses (cgroups land under
#             /<ns>/<id> or moonshim/<ns>/<id> on each hierarchy, so one name
#             finds them all; cleanup removes them, <ns> included)
#   CD_SHIM   the binary under test (MOONSHIM_SHIM, default build/containerd-shim-moon-v2)
#   CD_MAJOR  containerd's major version (CONTAINERD, default /usr/bin/containerd; CTR its ctr)
#   CD_RUNC_SHIM the containerd-shim-runc-v2 of that build (beside it, else on PATH)
#   CD_ROOTFS a busybox directory for `ctr run --rootfs` (cd_rootfs makes it)
# Ids that may make a container go through cd_id (recorded for cleanup and for
# the shim-socket names under /run/containerd/s). CD_KEEP=1 keeps the temp dir.

CD_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CD_SHIM=$(realpath -m "${MOONSHIM_SHIM:-$CD_REPO/build/containerd-shim-moon-v2}")
CD_CONTAINERD=${CONTAINERD:-/usr/bin/containerd}
CD_CTR=${CTR:-/usr/bin/ctr}
# the major version of $CD_CONTAINERD (1 or 2): its config's schema follows it
CD_MAJOR=$("$CD_CONTAINERD" --version 2>/dev/null | sed -nE 's/.* v?([0-9]+)\.[0-9]+\.[0-9]+.*/\1/p')
CD_MAJOR=${CD_MAJOR:-1}
# the runc shim of the same containerd build (containerd looks beside itself first)
CD_RUNC_SHIM=$(dirname "$CD_CONTAINERD")/containerd-shim-runc-v2
[ -x "$CD_RUNC_SHIM" ] || CD_RUNC_SHIM=$(command -v containerd-shim-runc-v2 || echo /usr/bin/containerd-shim-runc-v2)
CD_RUNC_SHIM=$(realpath -m "$CD_RUNC_SHIM")
CD_NS=${CD_NS:-moone2e$$}
CD_TIMEOUT=${CD_TIMEOUT:-30}  # seconds one ctr call may take before it is killed
CD_START_TRIES=200            # 50 ms polls for containerd to answer (10 s)
CD_SHIM_SOCKDIR=/run/containerd/s # where 1.6 shims put their sockets (not configurable)
CD_PID=

# ---------------------------------------------------------------- start, stop

# cd_config: containerd's config: version 2 for 1.x, version 3 for 2.x
# (whose plugin ids differ: the CRI is io.containerd.cri.v1.images and
# .runtime behind io.containerd.grpc.v1.cri). The CRI plugins are disabled
# (the slow part of start-up; ctr does not need them), and NRI (on by
# default in 2.x: its socket /var/run/nri/nri.sock is the host's, not
# ours); the default snapshotter is overlayfs.
cd_config() {
	local version=2 cri='"io.containerd.grpc.v1.cri"'
	if [ "$CD_MAJOR" -ge 2 ]; then
		version=3
		cri='"io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime",
  "io.containerd.podsandbox.controller.v1.podsandbox"'
	fi
	cat >"$CD_DIR/config.toml" <<EOF
version = $version
root = "$CD_DIR/root"
state = "$CD_DIR/state"
disabled_plugins = [$cri, "io.containerd.nri.v1.nri",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "$CD_SOCK"

[ttrpc]
  address = "$CD_SOCK.ttrpc"

[debug]
  level = "${CD_LOG_LEVEL:-info}"

[plugins.'io.containerd.snapshotter.v1.overlayfs']
  root_path = "$CD_DIR/root/overlayfs"
EOF
}

# cd_start: make the temp dir and start containerd in it (the first call), or
# start it again on the same dirs (cd_restart). Returns once ctr gets an answer.
cd_start() {
	if [ -z "${CD_DIR:-}" ]; then
		CD_DIR=$(mktemp -d /tmp/moonshim-cd.XXXXXX)
		CD_SOCK=$CD_DIR/c.sock
		mkdir -p "$CD_DIR/bin" "$CD_DIR/root" "$CD_DIR/state" "$CD_DIR/fifo"
		: >"$CD_DIR/ids"
		# containerd resolves io.containerd.X.v2 to containerd-shim-X-v2 on its PATH
		ln -s "$CD_SHIM" "$CD_DIR/bin/containerd-shim-moon-v2"
		ln -s "$CD_RUNC_SHIM" "$CD_DIR/bin/containerd-shim-runc-v2"
		cd_config
		trap cd_cleanup EXIT
		trap 'exit 130' INT TERM
	fi
	PATH="$CD_DIR/bin:$PATH" "$CD_CONTAINERD" --config "$CD_DIR/config.toml" \
		</dev/null >>"$CD_DIR/containerd.log" 2>&1 &
	CD_PID=$!
	local i
	for ((i = 0; i < CD_START_TRIES; i++)); do
		"$CD_CTR" --address "$CD_SOCK" version >/dev/null 2>&1 && return 0
		kill -0 "$CD_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "containerd did not answer on $CD_SOCK; its log:"
	tail -n 30 "$CD_DIR/containerd.log" | sed 's/^/    /'
	return 1
}

# cd_restart: containerd killed with SIGKILL (no chance to clean up, as in a
# crash), then started again on the same root, state and sockets.
cd_restart() {
	cd_crash
	cd_start
}

# cd_crash: containerd killed with SIGKILL, not started again (cd_start does).
cd_crash() {
	kill -9 "$CD_PID" 2>/dev/null
	wait "$CD_PID" 2>/dev/null
}

# cd_log_level LEVEL: the level the next cd_start logs at (trace shows each
# event a shim forwards: msg="event forwarded" topic=... ns=...).
cd_log_level() { sed -i -E "s/^(  level = ).*/\1\"$1\"/" "$CD_DIR/config.toml"; }

# cd_stop: SIGTERM, then SIGKILL after 5 s.
cd_stop() {
	[ -n "$CD_PID" ] || return 0
	kill "$CD_PID" 2>/dev/null
	local i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$CD_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -9 "$CD_PID" 2>/dev/null
	wait "$CD_PID" 2>/dev/null
	CD_PID=
}

# ---------------------------------------------------------------- ctr

# cd_ctr ARGS...: ctr against our containerd, in our namespace. containerd
# 2.2+ on a host with cgroup v1 controllers makes ctr print a deprecation
# warning on its stderr at every call (ctr's, not the task's): that line is
# dropped, the rest of stderr passes through and the status is ctr's.
CD_CTR_NOISE='level=warning msg="DEPRECATION: The support for cgroup v1 is deprecated'
cd_ctr() {
	if [ "$CD_MAJOR" -lt 2 ]; then
		timeout -k 5 "$CD_TIMEOUT" "$CD_CTR" --address "$CD_SOCK" -n "$CD_NS" "$@"
		return
	fi
	{ timeout -k 5 "$CD_TIMEOUT" "$CD_CTR" --address "$CD_SOCK" -n "$CD_NS" "$@" 2>&1 1>&3 3>&- |
		grep -vF "$CD_CTR_NOISE" >&2; return "${PIPESTATUS[0]}"; } 3>&1
}

# cd_id NAME: prints a container id (NAME plus the suite's pid), recorded so
# cleanup can find its task, cgroups and shim socket.
cd_id() {
	local id=$1-$$
	echo "$id" >>"$CD_DIR/ids"
	echo "$id"
}

# cd_task_status ID: the task's STATUS column in `ctr task ls`, or "none".
cd_task_status() {
	local s
	s=$(cd_ctr task ls 2>/dev/null | awk -v id="$1" '$1 == id {print $3}')
	echo "${s:-none}"
}

# cd_task_pid ID: the task's PID column in `ctr task ls`.
cd_task_pid() { cd_ctr task ls 2>/dev/null | awk -v id="$1" '$1 == id {print $2}'; }

# cd_wait SECONDS CMD...: poll CMD every 50 ms until it succeeds; false on timeout.
cd_wait() {
	local n=$(($1 * 20))
	shift
	while [ $n -gt 0 ]; do
		"$@" && return 0
		sleep 0.05
		n=$((n - 1))
	done
	return 1
}

cd_is_status() { [ "$(cd_task_status "$1")" = "$2" ]; }
cd_not_running() { [ "$(cd_task_status "$1")" != RUNNING ]; }

# cd_rm ID: kill, delete the task and the container, whatever state they are in.
cd_rm() {
	cd_ctr task resume "$1" >/dev/null 2>&1
	cd_ctr task kill -s SIGKILL "$1" >/dev/null 2>&1
	cd_wait 5 cd_not_running "$1"
	cd_ctr task delete -f "$1" >/dev/null 2>&1
	cd_ctr container delete "$1" >/dev/null 2>&1
}

# ---------------------------------------------------------------- what a container leaves

# cd_shim_socket ID: the socket path a 1.6 shim serves ID on:
# /run/containerd/s/sha256(<containerd address>/<ns>/<id>).
cd_shim_socket() {
	printf '%s' "$CD_SOCK/$CD_NS/$1" | sha256sum | awk -v d="$CD_SHIM_SOCKDIR" '{print d "/" $1}'
}

# cd_shim_pids [ID]: pids of shims serving our containerd or our namespace
# (for ID only if given). A shim's argv carries `-namespace <ns>`,
# `-address <our socket>` and `-id <id>`; other containerds on the host
# have other sockets and namespaces.
cd_shim_pids() {
	local p args
	# one grep over every cmdline picks the candidates (a fork per process
	# takes seconds on a busy host); each is then checked word by word
	for p in $(grep -lsaF -e "$CD_SOCK" -e "$CD_NS" /proc/[0-9]*/cmdline); do
		p=${p%/cmdline}
		args=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
		case $args in
		*containerd-shim*"-address $CD_SOCK "* | *containerd-shim*"-namespace $CD_NS "*) ;;
		*) continue ;;
		esac
		if [ -n "${1:-}" ]; then
			case "$args " in *" -id $1 "*) ;; *) continue ;; esac
		fi
		echo "${p#/proc/}"
	done
	return 0
}

# cd_cgroup_roots: the mount point of every cgroup hierarchy under
# /sys/fs/cgroup, whatever the layout: each v1 controller's and the unified
# one on a hybrid host, /sys/fs/cgroup itself on a pure-v2 one.
cd_cgroup_roots() {
	awk '{ for (i = 7; i < NF; i++) if ($i == "-") break }
	     ($(i + 1) == "cgroup" || $(i + 1) == "cgroup2") &&
	     ($5 == "/sys/fs/cgroup" || index($5, "/sys/fs/cgroup/") == 1) { print $5 }' \
		/proc/self/mountinfo
}

# cd_cgroup_dirs [ID]: the cgroup dirs of our namespace (or of ID in it) on
# every hierarchy, deepest first: /<ns> (a spec's cgroupsPath as ctr makes
# it) and moonshim/<ns> (the shim's default when the spec names none).
cd_cgroup_dirs() {
	local r d
	for r in $(cd_cgroup_roots); do for d in "$r/$CD_NS" "$r/moonshim/$CD_NS"; do
		[ -d "$d" ] || continue
		if [ -n "${1:-}" ]; then
			[ -d "$d/$1" ] && find "$d/$1" -depth -type d
		else
			find "$d" -depth -type d
		fi
	done; done
	return 0
}

# cd_leftovers ID: what the container ID left after its task and container
# were removed, one line each: a shim still running, its socket, a cgroup dir,
# a mount, a bundle, a file naming it under /run/containerd (runc state, FIFOs),
# a process still in its cgroup.
cd_leftovers() {
	local id=$1 p d s
	for p in $(cd_shim_pids "$id"); do
		echo "shim left: $p $(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline")"
	done
	s=$(cd_shim_socket "$id")
	[ -e "$s" ] && echo "shim socket left: $s"
	for d in $(cd_cgroup_dirs "$id"); do
		echo "cgroup left: $d"
		while read -r p; do
			echo "process left in $d: $p $(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline")"
		done 2>/dev/null <"$d/cgroup.procs"
	done
	for d in /sys/fs/cgroup/*/*/"$id" /sys/fs/cgroup/*/"$id" /sys/fs/cgroup/*/*/*/"$id"; do
		case $d in */"$CD_NS"/*) continue ;; esac
		[ -d "$d" ] && echo "cgroup left: $d"
	done
	awk -v id="$id" 'index($5, "/" id "/") || $5 ~ "/" id "$" {print "mount left: " $5}' /proc/self/mountinfo
	for d in "$CD_DIR"/state/io.containerd.runtime.v2.task/"$CD_NS"/"$id" \
		"$CD_DIR"/root/io.containerd.runtime.v2.task/"$CD_NS"/"$id"; do
		[ -e "$d" ] && echo "bundle left: $d"
	done
	find /run/containerd "$CD_DIR/fifo" -name "*$id*" 2>/dev/null | sed "s/^/file left: /"
	return 0
}

# ---------------------------------------------------------------- cleanup

# cd_kill_cgroup DIR: thaw a frozen cgroup, SIGKILL what is in it.
cd_kill_cgroup() {
	local fz=/sys/fs/cgroup/freezer/${1#/sys/fs/cgroup/*/} p
	[ -f "$fz/freezer.state" ] && echo THAWED >"$fz/freezer.state" 2>/dev/null
	while read -r p; do kill -9 "$p" 2>/dev/null; done 2>/dev/null <"$1/cgroup.procs"
}

cd_cleanup() {
	local id s d m i
	trap - EXIT
	# the tasks, through containerd while it is still up (short timeouts)
	if [ -n "$CD_PID" ] && kill -0 "$CD_PID" 2>/dev/null; then
		for id in $(CD_TIMEOUT=5 cd_ctr task ls -q 2>/dev/null); do
			CD_TIMEOUT=5 cd_rm "$id"
		done
		for id in $(CD_TIMEOUT=5 cd_ctr container ls -q 2>/dev/null); do
			CD_TIMEOUT=5 cd_ctr container delete "$id" >/dev/null 2>&1
		done
	fi
	cd_stop
	# whatever survived: processes in our cgroups, then the shims
	for d in $(cd_cgroup_dirs); do cd_kill_cgroup "$d"; done
	for s in $(cd_shim_pids); do kill -9 "$s" 2>/dev/null; done
	# runc-v2 keeps runc's state under /run/containerd/runc/<ns>
	if [ -d "/run/containerd/runc/$CD_NS" ]; then
		for id in "/run/containerd/runc/$CD_NS"/*; do
			[ -e "$id" ] || continue
			timeout 10 runc --root "/run/containerd/runc/$CD_NS" delete -f "${id##*/}" >/dev/null 2>&1
		done
		rm -rf "/run/containerd/runc/$CD_NS"
	fi
	# mounts under the temp dir, deepest first
	awk -v d="$CD_DIR" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null; done
	# cgroups: empty once their processes are gone (may take a moment)
	for ((i = 0; i < 20; i++)); do
		for d in $(cd_cgroup_dirs); do rmdir "$d" 2>/dev/null; done
		[ -z "$(cd_cgroup_dirs)" ] && break
		sleep 0.1
	done
	# shim sockets of our containers that no shim removed
	while read -r id; do
		[ -n "$id" ] && rm -f "$(cd_shim_socket "$id")"
	done <"$CD_DIR/ids"
	if [ -n "${CD_KEEP:-}" ]; then echo "kept $CD_DIR"; else rm -rf "$CD_DIR"; fi
}

# ---------------------------------------------------------------- rootfs

# cd_rootfs: $CD_DIR/rootfs, a static busybox with every applet as a symlink
# (for `ctr run --rootfs`), and sets CD_ROOTFS.
cd_rootfs() {
	CD_ROOTFS=$CD_DIR/rootfs
	mkdir -p "$CD_ROOTFS"/{bin,etc,proc,sys,dev,tmp,root}
	cp /bin/busybox "$CD_ROOTFS/bin/busybox"
	local a
	for a in $(/bin/busybox --list); do
		[ -e "$CD_ROOTFS/bin/$a" ] || ln -s busybox "$CD_ROOTFS/bin/$a"
	done
	chmod 1777 "$CD_ROOTFS/tmp"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$CD_ROOTFS/etc/passwd"
	printf 'root:x:0:\n' >"$CD_ROOTFS/etc/group"
}
