#!/bin/bash
# Pod start under containerd 2.4's CRI (tests/cri/lib.sh: the moon and runc
# handlers on one private containerd, runc being containerd-shim-runc-v2
# with runc 1.5.3), the path a kubelet takes for every new pod.
#   pod_start  wall time of `crictl runp --runtime H pod.json` (the pause
#              sandbox on the CNI bridge), `crictl create` and `crictl start`
#              of a busybox `sleep` container, until `crictl inspect` says
#              CONTAINER_RUNNING; BENCH_RUNS times per handler, alternating
#              so machine noise hits both; medians. Each pod is stopped and
#              removed after its run (not timed). Target: ratio <= 1.0.
# Needs root and the pinned Go programs (.ci/godeps.sh); ~1 s per run.
#   bench/run_cri.sh [SHIM]    BENCH_RUNS=10  (SHIM: build/containerd-shim-moon-v2)
set -uo pipefail
[ $# -gt 0 ] && export MOONSHIM_SHIM=$1
# shellcheck source=tests/cri/lib.sh
. "$(dirname "$0")/../tests/cri/lib.sh"
RUNS=${BENCH_RUNS:-10}
POD_START_TARGET=1.0 # moon/runc
IMG=registry.k8s.io/e2e-test-images/busybox:1.29-2
RUNNING_TRIES=200 # inspect polls, 10 ms apart, before a run counts as failed

if [ "$(id -u)" -ne 0 ]; then
	echo "bench cri: skipped (needs root)"
	exit 0
fi

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
ratio() { awk -v m="$1" -v p="$2" 'BEGIN {if (p + 0 > 0) printf "%.3g", m / p; else print "n/a"}'; }
within() { awk -v v="$1" -v t="$2" 'BEGIN {exit !(v != "n/a" && v + 0 <= t + 0)}'; }
spread() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {printf "%.1f/%.1f/%.1f", v[1]/1000, v[int(NR*0.9+0.5)]/1000, v[NR]/1000}'; }
now_us() { echo "${EPOCHREALTIME/./}"; }

# pod and container configs for run NAME (a fresh uid each: pods never collide)
bench_configs() {
	local n=$1
	mkdir -p "$CRI_DIR/logs/$n"
	jq -n --arg n "$n" --arg uid "$n-$$" --arg logs "$CRI_DIR/logs/$n" --arg cg "$CRI_CGPARENT" '{
		metadata: {name: $n, namespace: "moonshim-bench", uid: $uid, attempt: 0},
		log_directory: $logs, linux: {cgroup_parent: $cg}}' >"$CRI_DIR/$n.pod.json"
	jq -n --arg img "$IMG" '{metadata: {name: "sleep"}, image: {image: $img},
		command: ["sleep", "1000"], log_path: "sleep.log"}' >"$CRI_DIR/$n.ctr.json"
}

# one_run H NAME: prints the µs from runp to a running container; the pod
# is removed afterwards. Fails (with what crictl said) if a step does.
one_run() {
	local h=$1 n=$2 t0 t1 pod cid i state
	bench_configs "$n"
	t0=$(now_us)
	pod=$(cri_crictl runp --runtime "$h" "$CRI_DIR/$n.pod.json" 2>"$CRI_DIR/bench.err") &&
		cid=$(cri_crictl create "$pod" "$CRI_DIR/$n.ctr.json" "$CRI_DIR/$n.pod.json" 2>>"$CRI_DIR/bench.err") &&
		cri_crictl start "$cid" >/dev/null 2>>"$CRI_DIR/bench.err"
	local rc=$?
	for ((i = 0; rc == 0 && i < RUNNING_TRIES; i++)); do
		state=$(cri_crictl inspect "$cid" 2>>"$CRI_DIR/bench.err" | jq -r .status.state)
		[ "$state" = CONTAINER_RUNNING ] && break
		sleep 0.01
	done
	t1=$(now_us)
	[ -n "${pod:-}" ] && { cri_crictl stopp "$pod" >/dev/null 2>&1; cri_crictl rmp "$pod" >/dev/null 2>&1; }
	if [ $rc -ne 0 ] || [ "$state" != CONTAINER_RUNNING ]; then
		echo "bench pod_start: $h run $n failed (state ${state:-none}):" >&2
		sed 's/^/  /' "$CRI_DIR/bench.err" >&2
		return 1
	fi
	echo $((t1 - t0))
}

pod_start() {
	local i t mt=() rt=() m r v
	cri_crictl pull "$IMG" >/dev/null || { echo "bench pod_start: pull $IMG failed" >&2; return 1; }
	# one unmeasured run each: containerd resolves the shims, the page
	# cache holds the binaries, the CNI plugins have run once
	one_run moon warm-moon >/dev/null || return 1
	one_run runc warm-runc >/dev/null || return 1
	for ((i = 0; i < RUNS; i++)); do
		t=$(one_run moon "moon$i") || return 1
		mt+=("$t")
		t=$(one_run runc "runc$i") || return 1
		rt+=("$t")
	done
	m=$(printf '%s\n' "${mt[@]}" | median | awk '{printf "%.1f", $1 / 1000}')
	r=$(printf '%s\n' "${rt[@]}" | median | awk '{printf "%.1f", $1 / 1000}')
	echo "  info: $RUNS runs each, alternating; crictl runp + create + start until inspect says running"
	echo "  info: moon min/p90/max $(spread "${mt[@]}") ms, runc-v2 $(spread "${rt[@]}") ms"
	if within "$(ratio "$m" "$r")" $POD_START_TARGET; then v=ok; else v=MISS; fi
	echo "bench pod_start: moonshim=$m ms runc_v2=$r ms ratio=$(ratio "$m" "$r") target<=$POD_START_TARGET $v"
}

cri_start || exit 1
echo "  info: containerd $("$CRI_CD_BIN/containerd" --version | awk '{print $3}') CRI, runc $("$CRI_RUNC" --version | awk 'NR == 1 {print $3}'), shim $CRI_SHIM"
pod_start || exit 1
