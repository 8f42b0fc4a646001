#!/bin/sh
# Runs inside the VM: what a pure cgroup v2 host looks like to moonshim.
echo VMTEST-BEGIN
fail=0
ctl=$(cat /sys/fs/cgroup/cgroup.controllers)
echo "controllers: $ctl"
for c in cpu memory pids io; do
	case " $ctl " in *" $c "*) ;; *) echo "missing controller $c"; fail=1 ;; esac
done
[ -r /sys/fs/cgroup/memory.pressure ] || [ -r /proc/pressure/memory ] || { echo "no PSI"; fail=1; }
cat /proc/pressure/memory
# the runtime's own suite on a pure v2 host (TCG is slow: loads scaled down)
export MOONSHIM_TEST_SCALE=10 MOONSHIM_EXPECT_LAYOUT=v2 TEST_VERBOSE=1
for t in /tests/*_tests; do
	[ -x "$t" ] || continue
	name=$(basename "$t" _tests)
	# of the containerd suite, the cases that need no containerd: Metrics
	filter=; [ "$name" = containerd ] && filter=metrics_
	TEST_SUITE="vm-$name" "$t" $filter || fail=1
done
# `moonshim run` on this host's cgroup2
[ -x /tests/moonshim ] && { sh /tests/container-tests.sh || fail=1; }
exit $fail
