#!/bin/bash
# container-configs.sh BUNDLE USERNS_BUNDLE — the config.json of each case
# tests/vm/container-tests.sh runs inside the VM, as config-NAME.json.
set -euo pipefail
b=$1 u=$2
base=$b/config.json
cfg() { # name jq-filter [bundle]
	local dir=${3:-$b}
	jq "$2" "$dir/config.json" >"$dir/config-$1.json"
}
cfg exit7 '.process.args = ["sh", "-c", "echo hi; exit 7"]'
# the container's own cgroup as the root of its cgroup namespace, limits visible inside
cfg cgroup '.process.args = ["sh", "-c", "grep -c cgroup2 /proc/self/mountinfo; cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory.high /sys/fs/cgroup/pids.max"]
  | .linux.resources = {"memory": {"limit": 67108864}, "pids": {"limit": 32}, "unified": {"memory.high": "50331648"}}
  | .linux.namespaces += [{"type": "cgroup"}]'
cfg oom '.process.args = ["sh", "-c", "dd if=/dev/zero of=/dev/null bs=96M count=1; echo after"]
  | .linux.resources.memory = {"limit": 33554432, "swap": 33554432}'
# device rules: a node that exists but is denied (kmsg, c 1:11) and the standard ones allowed
cfg devices '.process.args = ["sh", "-c", "head -c 0 /dev/kmsg 2>/dev/null && echo kmsg-open || echo kmsg-denied; head -c 4 /dev/zero | wc -c"]
  | .linux.devices = [{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 420}]'
# memory.high crossed for real (pure v2 throttling) for a policy to see
cfg high '.process.args = ["sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; sleep 0.5"]
  | .linux.resources = {"memory": {"limit": 268435456}, "unified": {"memory.high": "16777216"}}'
cat >"$b/policy-high.lua" <<'L'
on("memory.high", function(ev)
  local m = cgroup.memory()
  emit("policy.action", { action = "saw-memory.high", current = m.current, high = m.high })
end)
L
cfg userns '.process.args = ["sh", "-c", "id -u; cat /proc/self/uid_map"]' "$u"
# pinned by linux.resources.cpu.cpus on the v2 cpuset controller, with a
# blkio weight (io.weight / io.bfq.weight); alive long enough to be read
cfg cpuset '.process.args = ["sh", "-c", "grep Cpus_allowed_list /proc/self/status; cat /proc/self/cgroup; sleep 3"]
  | .linux.resources = {"cpu": {"cpus": "1", "mems": "0"}, "blockIO": {"weight": 500}}'
# a hugepage limit on the v2 hugetlb controller (where the kernel has it)
cfg hugetlb '.process.args = ["sh", "-c", "sleep 3"]
  | .linux.resources = {"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}'
