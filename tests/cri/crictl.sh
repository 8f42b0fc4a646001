#!/bin/bash
# crictl.sh — the shim as Kubernetes reaches it: containerd 2.4's CRI plugin
# (tests/cri/lib.sh: private containerd, local registry, CNI bridge) driven
# by crictl, the same walk-through for the `moon` handler and for `runc`:
# runp, create, start, logs, exec (tty through script(1)), exec -s (also
# with a background child holding the pipes), stats, update (the memory
# limit in the container's cgroup), stop, rm, rmp; an OOM kill reported as
# OOMKilled; for moon a Lua policy that arrives as a pod annotation and
# acts; and, after all, no shim, mount, cgroup or shim socket left.
# Prints "cri-crictl: N passed, N failed" (exit 1 on any failure).
#   bash tests/cri/crictl.sh [HANDLER...]   (default: moon runc)
cd "$(dirname "$0")/../.." || exit 1
source tests/cri/lib.sh
HANDLERS=("${@:-moon}")
[ $# -eq 0 ] && HANDLERS=(moon runc)
passed=0 failed=0
IMG=registry.k8s.io/e2e-test-images/busybox:1.29-2
MEM_LIMIT=$((64 * 1024 * 1024)) MEM_NEW=$((96 * 1024 * 1024)) OOM_LIMIT=$((32 * 1024 * 1024))
PROMPT_SECONDS=10 # an exec -s whose child holds the pipes must be back within this

ok() { echo "  ok   $1"; passed=$((passed + 1)); }
bad() { echo "  FAIL $1: $2"; failed=$((failed + 1)); }
# check NAME CMD...: CMD's status decides
check() { # (its locals are named apart: an eval'd CMD sees the caller's)
	local _n=$1 _o
	shift
	if _o=$("$@" 2>&1); then ok "$_n"; else bad "$_n" "$(tail -n 5 <<<"$_o" | tr '\n' ' ')"; fi
}

if ! cri_start; then
	echo "cri-crictl: 0 passed, 1 failed"
	exit 1
fi
echo "containerd $("$CRI_CD_BIN/containerd" --version | awk '{print $3}') CRI on $CRI_SOCK, registry $CRI_REG"
cri_crictl pull "$IMG" >/dev/null || { echo "cri-crictl: 0 passed, 1 failed"; exit 1; }

# pod_json H NAME [ANNOTATIONS-JSON]: a pod on the CNI network, cgroups under our parent
pod_json() {
	local f=$CRI_DIR/$2.pod.json
	mkdir -p "$CRI_DIR/logs/$2"
	jq -n --arg n "$2" --arg uid "$2-$$" --arg logs "$CRI_DIR/logs/$2" --arg cg "$CRI_CGPARENT" \
		--argjson ann "${3:-{\}}" '{
		metadata: {name: $n, namespace: "moonshim", uid: $uid, attempt: 0},
		log_directory: $logs, annotations: $ann, linux: {cgroup_parent: $cg}}' >"$f"
	echo "$f"
}

# ctr_json NAME MEMORY-LIMIT CMD...: a busybox container
ctr_json() {
	local n=$1 mem=$2 f=$CRI_DIR/$1.ctr.json
	shift 2
	# (the command as a JSON array, one word a line: jq would take a "-c"
	# among --args as its own option)
	jq -n --arg n "$n" --arg img "$IMG" --argjson mem "$mem" \
		--argjson cmd "$(printf '%s\n' "$@" | jq -R . | jq -sc .)" '{
		metadata: {name: $n}, image: {image: $img}, command: $cmd,
		log_path: ($n + ".log"),
		linux: {resources: {memory_limit_in_bytes: $mem}}}' >"$f"
	echo "$f"
}

# cg_file ID FILE: the path of FILE in the container's cgroup, whichever
# hierarchy has it (hybrid: the v1 memory controller; pure v2: the unified one)
cg_file() {
	local d
	for d in $(cri_cgroup_dirs "$1"); do
		[ -f "$d/$2" ] && { echo "$d/$2"; return 0; }
	done
	return 1
}
mem_limit_file() { cg_file "$1" memory.limit_in_bytes || cg_file "$1" memory.max; }

state_is() { [ "$(cri_crictl inspect "$1" 2>/dev/null | jq -r .status.state)" = "$2" ]; }
wait_for() { # SECONDS CMD...
	local n=$(($1 * 10))
	shift
	while ((n-- > 0)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# ---------------------------------------------------------------- the walk-through

walk() { # handler
	local h=$1 pod pid cid out t0 t1 f want
	echo "== $h"
	pod=$(cri_crictl runp --runtime "$h" "$(pod_json "$h" "walk-$h")") ||
		{ bad "$h runp" "crictl runp failed"; return 1; }
	IDS+=("$pod")
	check "$h runp: pod ready" test "$(cri_crictl inspectp "$pod" | jq -r .status.state)" = SANDBOX_READY
	cid=$(cri_crictl create "$pod" "$(ctr_json "busy-$h" "$MEM_LIMIT" sh -c 'echo started; while :; do :; done')" \
		"$CRI_DIR/walk-$h.pod.json") || { bad "$h create" "crictl create failed"; return 1; }
	IDS+=("$cid")
	check "$h start" cri_crictl start "$cid"
	check "$h running" wait_for 10 state_is "$cid" CONTAINER_RUNNING
	check "$h logs" wait_for 10 eval 'cri_crictl logs "$cid" 2>&1 | grep -qx started'

	out=$(cri_crictl exec -s "$cid" sh -c 'echo out; echo err >&2' 2>&1)
	check "$h exec -s: stdout and stderr" eval 'grep -qx out <<<"$out" && grep -qx err <<<"$out"'
	# a non-zero code: crictl exits 1 and names the code and the stderr
	out=$(cri_crictl exec -s "$cid" sh -c 'echo out; echo err >&2; exit 3' 2>&1)
	check "$h exec -s: exit code 3" eval 'grep -q "exited with 3: err" <<<"$out"'
	t0=$(date +%s%N)
	out=$(timeout 30 "$CRICTL" --config "$CRI_DIR/crictl.yaml" --runtime-endpoint "unix://$CRI_SOCK" exec -s --timeout 15 "$cid" sh -c 'sleep 100 & echo hi' 2>&1)
	t1=$(date +%s%N)
	local took=$(((t1 - t0) / 1000000))
	if [ "$out" = hi ] && ((took < PROMPT_SECONDS * 1000)); then
		ok "$h exec -s with a background child holding the pipes: 'hi' in ${took} ms"
	elif [ "$h" = runc ]; then
		# containerd waits for the pipes to close (drain_exec_sync_io_timeout = 0):
		# runc's known behaviour (kubernetes#92057), noted, not counted
		echo "  note $h exec -s with a background child: '$out' after ${took} ms"
	else
		bad "$h exec -s with a background child" "got '$out' after ${took} ms"
	fi
	cri_crictl exec -s "$cid" killall sleep >/dev/null 2>&1

	out=$(SHELL=/bin/sh script -qec "timeout --foreground -k 5 30 $CRICTL --config $CRI_DIR/crictl.yaml --runtime-endpoint unix://$CRI_SOCK exec -it $cid sh -c 'tty; stty size; exit 5'" /dev/null </dev/null 2>&1)
	check "$h exec -it: a tty, exit code 5" eval 'grep -q "/dev/pts/" <<<"$out" && grep -q "exit code 5" <<<"$out"'

	# stats: the busy loop shows CPU time and memory (the CRI polls the shim's Metrics)
	sleep 2
	out=$(cri_crictl stats -o json --id "$cid" 2>&1)
	if jq -e '.stats[0] | (.cpu.usageCoreNanoSeconds.value | tonumber) > 0 and (.memory.workingSetBytes.value | tonumber) > 0' \
		<<<"$out" >/dev/null 2>&1; then
		ok "$h stats: cpu and memory non-zero"
	else
		bad "$h stats: cpu and memory non-zero" "$(jq -c '.stats[0] | {cpu, memory}' <<<"$out" 2>/dev/null || echo "$out")"
	fi

	# ListPodSandboxMetrics (crictl metricsp; what critest's pod metrics case
	# asks): the container's kernel memory is there (v1: memory.kmem.*)
	out=$(cri_crictl metricsp -o json 2>&1)
	check "$h pod metrics: container_memory_kernel_usage of the container" eval \
		'jq -e --arg c "$cid" "[.podMetrics[].containerMetrics[]? | select(.containerId == \$c) | .metrics[] | select(.name == \"container_memory_kernel_usage\")] | length > 0" <<<"$out" >/dev/null'

	f=$(mem_limit_file "$cid")
	check "$h memory limit in the cgroup" test "$(cat "$f" 2>/dev/null)" = "$MEM_LIMIT"
	check "$h update --memory" cri_crictl update --memory "$MEM_NEW" "$cid"
	check "$h update reached the cgroup" test "$(cat "$f" 2>/dev/null)" = "$MEM_NEW"

	check "$h stop" cri_crictl stop -t 2 "$cid"
	check "$h exited" state_is "$cid" CONTAINER_EXITED
	check "$h rm" cri_crictl rm "$cid"
	check "$h stopp" cri_crictl stopp "$pod"
	check "$h rmp" cri_crictl rmp "$pod"
	out=$(cri_leftovers "$pod" "$cid")
	check "$h nothing left of the pod" test -z "$out"
}

# An OOM kill: reason OOMKilled (containerd sets it from the shim's TaskOOM
# event, which must come before TaskExit).
oom() { # handler
	local h=$1 pod cid out
	pod=$(cri_crictl runp --runtime "$h" "$(pod_json "$h" "oom-$h")") || { bad "$h oom runp" failed; return 1; }
	IDS+=("$pod")
	cid=$(cri_crictl create "$pod" "$(ctr_json "oom-$h" "$OOM_LIMIT" sh -c 'echo go; tail /dev/zero')" \
		"$CRI_DIR/oom-$h.pod.json") && IDS+=("$cid") && cri_crictl start "$cid" >/dev/null ||
		{ bad "$h oom container" "create/start failed"; return 1; }
	check "$h oom: exited" wait_for 30 state_is "$cid" CONTAINER_EXITED
	out=$(cri_crictl inspect "$cid" | jq -r '.status | "\(.reason) \(.exitCode)"')
	check "$h oom: reason OOMKilled ($out)" test "${out% *}" = OOMKilled
	cri_crictl rm "$cid" >/dev/null && cri_crictl stopp "$pod" >/dev/null && cri_crictl rmp "$pod" >/dev/null
	check "$h oom: nothing left" test -z "$(cri_leftovers "$pod" "$cid")"
}

# A Lua policy from a pod annotation (io.moonshim.policy; containerd copies
# it into every container's spec through the runtime's pod_annotations):
# it writes a mark into the container through exec.container.
policy() {
	local pol pod cid
	# shellcheck disable=SC2016
	pol='go(function() sleep(0.3); exec.container({"sh", "-c", "echo policy-acted > /tmp/mark"}) end)'
	pod=$(cri_crictl runp --runtime moon "$(pod_json moon policy "$(jq -n --arg p "$pol" '{"io.moonshim.policy": $p}')")") ||
		{ bad "moon policy runp" failed; return 1; }
	IDS+=("$pod")
	cid=$(cri_crictl create "$pod" "$(ctr_json policy "$MEM_LIMIT" sleep 1000)" "$CRI_DIR/policy.pod.json") &&
		IDS+=("$cid") && cri_crictl start "$cid" >/dev/null || { bad "moon policy container" failed; return 1; }
	check "moon policy annotation in the spec" eval \
		'cri_crictl inspect "$cid" | jq -e ".info.runtimeSpec.annotations[\"io.moonshim.policy\"]" >/dev/null'
	check "moon policy from the pod annotation acted" wait_for 10 eval \
		'[ "$(cri_crictl exec -s "$cid" cat /tmp/mark 2>/dev/null)" = policy-acted ]'
	cri_crictl stop -t 1 "$cid" >/dev/null && cri_crictl rm "$cid" >/dev/null &&
		cri_crictl stopp "$pod" >/dev/null && cri_crictl rmp "$pod" >/dev/null
	check "moon policy: nothing left" test -z "$(cri_leftovers "$pod" "$cid")"
}

IDS=()
for h in "${HANDLERS[@]}"; do
	walk "$h"
	oom "$h"
done
[[ " ${HANDLERS[*]} " == *" moon "* ]] && policy
check "no shim left after all pods" test -z "$(cri_shim_pids)"
check "nothing left of any pod or container" test -z "$(cri_leftovers "${IDS[@]}")"
if ((failed)); then
	echo "-- containerd.log (last 40 lines)"
	tail -n 40 "$CRI_DIR/containerd.log" | sed 's/^/    /'
fi
echo "cri-crictl: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
