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

echo "vm-container: $passed passed, $failed failed"
[ $failed = 0 ]
