#!/bin/bash
# Sourced by the bench/run_*.sh scripts whose benchmarks make cgroups
# (bench/fixture.c: moonshim-bench-<pid>-N). A benchmark removes them
# itself, also on failure and on SIGINT/SIGTERM; this catches what a
# SIGKILLed one left.
#   cgroup_leftovers SUITE PID    (SUITE names it in messages: "bench SUITE: ...")
cgroup_leftovers() {
	local d dirs=()
	for d in /sys/fs/cgroup/moonshim-bench-"$2"-* /sys/fs/cgroup/*/moonshim-bench-"$2"-*; do
		[ -d "$d" ] && dirs+=("$d")
	done
	[ ${#dirs[@]} -eq 0 ] && return
	for d in "${dirs[@]}"; do
		[ -e "$d/cgroup.kill" ] && echo 1 >"$d/cgroup.kill" 2>/dev/null
	done
	sleep 0.2
	for d in "${dirs[@]}"; do
		rmdir "$d" 2>/dev/null || echo "bench $1: could not remove $d"
	done
}
