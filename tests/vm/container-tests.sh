#!/bin/sh
# Runs inside the VM: `moonshim run` on a pure cgroup v2 host — limits in
# the container's cgroup2, an OOM kill reported, device rules enforced by a
# BPF program, a user namespace, and no cgroup left behind.
ms=/tests/moonshim
root=/tmp/msroot
passed=0 failed=0
check() { # name, condition result (0 ok), details
	if [ "$2" = 0 ]; then passed=$((passed + 1)); echo "ok   vm-container/$1"
	else failed=$((failed + 1)); echo "FAIL vm-container/$1: $3"; fi
}
run() { # case bundle -> $out, $rc, events in /tmp/ev-$case
	cp "$2/config-$1.json" "$2/config.json"
	out=$($ms --root $root run --bundle "$2" --events /tmp/ev-$1 "c-$1" 2>&1)
	rc=$?
}
clean() { # no cgroup or state left for case $1
	[ ! -e "/sys/fs/cgroup/moonshim/c-$1" ] && [ ! -e "$root/c-$1" ]
}
[ -d /bundle ] || { echo "vm-container: 0 passed, 1 failed (no bundle in the VM)"; exit 1; }

run exit7 /bundle
[ "$out" = hi ] && [ $rc = 7 ]; check exit_status $? "rc=$rc out=$out"
clean exit7; check exit_cleans_up $? "left behind"

run cgroup /bundle
set -- $out
[ "$1" = 1 ] && [ "$2" = 67108864 ] && [ "$3" = 50331648 ] && [ "$4" = 32 ]
check cgroup2_limits_inside $? "$out"

run oom /bundle
grep -q '"type":"oom_kill"' /tmp/ev-oom && echo "$out" | grep -q after
check oom_kill_event $? "rc=$rc out=$out events=$(cat /tmp/ev-oom)"
clean oom; check oom_cleans_up $? "left behind"

run devices /bundle
[ "$(echo "$out" | head -1)" = kmsg-denied ] && [ "$(echo "$out" | tail -1)" = 4 ]
check devices_bpf $? "$out"

cp /bundle/config-high.json /bundle/config.json
out=$($ms --root $root run --bundle /bundle --events /tmp/ev-high --policy /bundle/policy-high.lua c-high 2>&1)
grep -q '"action":"saw-memory.high"' /tmp/ev-high && grep -q '"high":16777216' /tmp/ev-high
check policy_on_memory_high $? "out=$out events=$(cat /tmp/ev-high)"

run userns /ubundle
[ "$(echo "$out" | head -1)" = 0 ] && echo "$out" | grep -q "100000"
check user_namespace $? "rc=$rc $out"

# cpus "1": the v2 cpuset controller enabled down the tree, the process
# pinned (an Update's re-pin is the cgroup suite's
# cg_joins_every_hierarchy_and_cpuset_pins, run in this VM: `moonshim` has
# no update verb), its /proc/PID/cgroup the v2 path, the blkio weight in
# io.weight (runc's 10..1000 -> 1..10000 mapping: 500 -> 1 + 490 * 9999 / 990)
# or io.bfq.weight
bg() { # case -> $pid of its init once it is in its cgroup
	cp "/bundle/config-$1.json" /bundle/config.json
	$ms --root $root run --bundle /bundle "c-$1" >/tmp/out-$1 2>&1 &
	pid=
	for _ in $(seq 50); do
		pid=$(head -1 "/sys/fs/cgroup/moonshim/c-$1/cgroup.procs" 2>/dev/null)
		[ -n "$pid" ] && break
		sleep 0.1
	done
}
bg cpuset
cg=/sys/fs/cgroup/moonshim/c-cpuset
sleep 0.5
got=$(awk '/^Cpus_allowed_list:/ {print $2}' "/proc/$pid/status" 2>&1)
[ "$got" = 1 ] && [ "$(cat $cg/cpuset.cpus)" = 1 ] && [ "$(cat $cg/cpuset.mems)" = 0 ]
check cpuset_pins $? "pid=$pid Cpus_allowed_list=$got cpuset.cpus=$(cat $cg/cpuset.cpus 2>&1) mems=$(cat $cg/cpuset.mems 2>&1)"
grep -qx '0::/moonshim/c-cpuset' "/proc/$pid/cgroup"
check cpuset_proc_cgroup_v2_path $? "$(cat /proc/$pid/cgroup 2>&1)"
if [ -e $cg/io.bfq.weight ]; then w=$(awk '$1 == "default" {print $2}' $cg/io.bfq.weight); want=500
else w=$(awk '$1 == "default" {print $2}' $cg/io.weight); want=4950; fi
[ "$w" = "$want" ]; check blkio_weight_v2 $? "weight $w, want $want"
wait
out=$(cat /tmp/out-cpuset)
echo "$out" | grep -q 'Cpus_allowed_list:.1$' && echo "$out" | grep -qx '0::/moonshim/c-cpuset'
check cpuset_seen_inside $? "$out"
clean cpuset; check cpuset_cleans_up $? "left behind"
case " $(cat /sys/fs/cgroup/cgroup.controllers) " in
*" hugetlb "*)
	bg hugetlb
	sleep 0.5
	got=$(cat /sys/fs/cgroup/moonshim/c-hugetlb/hugetlb.2MB.max 2>&1)
	[ "$got" = 4194304 ]; check hugetlb_v2_max $? "hugetlb.2MB.max: $got"
	wait ;;
*) echo "skip vm-container/hugetlb_v2_max: no hugetlb controller in this kernel" ;;
esac

echo "vm-container: $passed passed, $failed failed"
[ $failed = 0 ]
