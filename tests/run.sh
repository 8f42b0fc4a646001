#!/bin/bash
# Run every test suite that `make all asan tsan aarch64` built and print one
# closing line "N passed, N failed" over all of them (exit 1 on any failure).
#   native   build/tests/runtime_tests
#   asan     the same under ASan+UBSan
#   tsan     the runtime under TSan (loads scaled down 10x: TSan is ~10x slower)
#   aarch64  the cross-built runtime under qemu-user
#   vm       the runtime in a qemu VM with a pure cgroup v2 kernel (tests/vm)
#   container build/moonshim run/exec/kill/... against runc (tests/container)
#   fuzz-replay the libFuzzer targets over their corpora (tests/fuzz)
cd "$(dirname "$0")/.."
passed=0 failed=0 broken=()

# tally NAME LOG: add the summaries in a suite's output to the totals
# (a suite prints one per test program: "<suite>[-x]: N passed, N failed")
tally() {
	local name=$1 log=$2 lines p f line
	lines=$(grep -E "^$name(-[a-z]+)?: [0-9]+ passed, [0-9]+ failed" "$log")
	if [ -z "$lines" ]; then
		echo "$name: no summary (crashed?)"; broken+=("$name"); failed=$((failed + 1))
		return
	fi
	while read -r line; do
		p=$(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$line")
		f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
		passed=$((passed + p)); failed=$((failed + f))
	done <<<"$lines"
}

suite() { # name, env..., command...
	local name=$1; shift
	local log; log=$(mktemp)
	echo "== $name"
	env TEST_SUITE="$name" "$@" 2>&1 | tee "$log"
	tally "$name" "$log"
	rm -f "$log"
}

# suite_bg NAME ENV... COMMAND...: a suite started in the background, its
# output kept until suites_wait prints it whole and tallies it (for suites
# that share nothing: each e2e suite has its own containerd, temp dir and
# namespace, and mostly waits on containers, so two overlap well)
bg_names=() bg_logs=() bg_pids=()
suite_bg() {
	local name=$1; shift
	local log; log=$(mktemp)
	env TEST_SUITE="$name" "$@" >"$log" 2>&1 &
	bg_pids+=($!) bg_names+=("$name") bg_logs+=("$log")
}
suites_wait() {
	local i
	for i in "${!bg_pids[@]}"; do
		wait "${bg_pids[$i]}"
		echo "== ${bg_names[$i]}"
		cat "${bg_logs[$i]}"
		tally "${bg_names[$i]}" "${bg_logs[$i]}"
		rm -f "${bg_logs[$i]}"
	done
	bg_names=() bg_logs=() bg_pids=()
}

# shim/'s layering: every #include "..." against the Makefile's USES_ table
suite check-layers bash tests/check-layers.sh
# every C file as clang-format writes it (make format)
suite check-format bash tests/check-format.sh
# the settled shim's code laid out side by side (shim/idle_path_ld.sh)
suite idle-path bash tests/idle_path.sh build/moonshim
suite runtime build/tests/runtime_tests
suite cgroup MOONSHIM_EXPECT_LAYOUT=hybrid build/tests/cgroup_tests
suite cgroup-asan MOONSHIM_EXPECT_LAYOUT=hybrid build/asan/tests/cgroup_tests
# ASan roughly halves speed: loads halved, wall-clock checks relaxed (scale > 1)
suite runtime-asan MOONSHIM_TEST_SCALE=2 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 build/asan/tests/runtime_tests
suite runtime-tsan MOONSHIM_TEST_SCALE=10 TSAN_OPTIONS=halt_on_error=1 build/tsan/tests/runtime_tests
suite runtime-aarch64 MOONSHIM_TEST_SCALE=4 qemu-aarch64 build/aarch64/tests/runtime_tests
suite vm bash tests/vm/run.sh build/vm build/tests/runtime_tests build/tests/cgroup_tests build/tests/containerd_tests build/moonshim
# the shim's lower modules on their own (tests/base, tests/io: JSON loader, log
# file, pty relay, tap; tests/go/selfwatch_test.c), natively and under ASan
suite container-unit build/tests/container_tests
suite container-unit-asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 build/asan/tests/container_tests
# device rules against the kernel: the v1 hierarchy and a cgroup2 BPF program
suite container-dev bash -c 'build/tests/dev_check && echo "container-dev: 1 passed, 0 failed" || echo "container-dev: 0 passed, 1 failed"'
# ttrpc (framing, server, client) on its own, natively and under ASan
suite containerd-unit build/tests/containerd_tests
suite containerd-unit-asan MOONSHIM_TEST_SCALE=2 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 build/asan/tests/containerd_tests
suite containerd bash tests/containerd/e2e.sh
# the same cases under containerd 2.4.2 and 1.7.35 (built from their modules by
# .ci/godeps.sh, with runc 1.5.3 first on PATH; the runc shim is that build's)
cd24=$(bash .ci/godeps.sh containerd2 | tail -n 1) cd17=$(bash .ci/godeps.sh containerd17 | tail -n 1)
runc15=$(bash .ci/godeps.sh runc | tail -n 1)
# the two run side by side; 2.4 runs the whole loop case (as 1.6 above), 1.7 a
# shorter one (E2E_LOOP_RUNS: the same leak checks over fewer containers)
suite_bg containerd-2.4 CONTAINERD="$cd24/containerd" CTR="$cd24/ctr" PATH="$runc15:$PATH" bash tests/containerd/e2e.sh
suite_bg containerd-1.7 CONTAINERD="$cd17/containerd" CTR="$cd17/ctr" PATH="$runc15:$PATH" E2E_LOOP_RUNS=20 bash tests/containerd/e2e.sh
suites_wait
# containerd 2.4's CRI plugin (tests/cri): crictl's walk-through with the moon
# and runc handlers, then critest's focused subset with both (make critest: all)
suite cri-crictl bash tests/cri/crictl.sh
suite cri-critest bash tests/cri/critest.sh quick
# the Lua engine (sandbox, preemption, budgets, memory caps), natively and under ASan
suite lua build/tests/lua_tests
suite lua-asan MOONSHIM_TEST_SCALE=2 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 build/asan/tests/lua_tests
# the Go parsers (SCHED, gctrace, pprof goroutine profiles) and the leak and
# scheduler detectors on real samples, natively and under ASan
suite go build/tests/go_tests
suite go-asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 build/asan/tests/go_tests
# every libFuzzer target over its corpus (tests/fuzz: seeds and the inputs
# of crashes fixed), built by `make fuzz-build` into build/fuzz
suite fuzz-replay bash tests/fuzz/replay.sh build/fuzz
# `moonshim metrics` scraped by the real Prometheus on loopback while
# containers run; its query API must show a check flipping and memory.high
# counted; promtool on a scrape (tests/metrics/prom.sh)
suite metrics-prom bash tests/metrics/prom.sh
# `moonshim run --check`: Lua health checks against a real container
suite lua-checks bash tests/lua/checks_e2e.sh
# container.restart(): exit- and health-driven restarts with backoff, a TERM in the backoff
suite lua-restart bash tests/lua/restart_e2e.sh
# `luabench event_to_handler`, 20 events: the bench case runs and cleans up
suite lua-bench bash tests/lua/bench_e2h.sh
# `moonshim run` and its verbs against runc on busybox bundles (root, runc, jq)
suite container bash tests/container/parity.sh
# the cgroup cases against the pinned runc 1.5.3 too (.ci/godeps.sh builds it)
suite container-runc15 RUNC="$(bash .ci/godeps.sh runc)/runc" bash tests/container/parity.sh cgroup_hierarchies cpuset
suite container-errors bash tests/container/errors.sh
suite container-cli bash tests/container/cli.sh
# `moonshim inspect`, `events` and `top` (top live under tmux) on published
# journals and real `moonshim run -d` containers with Lua checks
suite cli-observe bash tests/cli/observe.sh
suite cli-observe-asan MOONSHIM_BIN=build/asan/moonshim ASAN_OPTIONS=detect_leaks=1 bash tests/cli/observe.sh
# `moonshim run` with one syscall failing (strace's tampering: ENOMEM, EMFILE,
# EAGAIN in spawn, epoll, pidfd, cgroup writes, log writes): a clean refusal or
# the container's status, and nothing left behind
suite fault bash tests/fault/faults.sh
# `moonshim run --go-watch` on every Go fixture (leaks, look-alikes, scheduler
# pathologies), `make eval-go`'s idle pass only. A leak is confirmed after
# at least 45 s and 10 samples of growth; with the 20 fixtures and their
# supervisors sharing 2 cores that took 46-77 s in quiet passes, but in a
# fresh-clone CI (other suites still running) leak-waitgroup's first profile
# came only at 99 s and it was confirmed at 120 s, leak-httpbody's trend only
# suspected at 109 s (it had run out of descriptors at the bundle's 1024; the
# fixtures now get as many as the harness has): this guard allows 180 s. Even
# that did not bound confirmation: in the fresh-clone CI of f974100 (the same
# product code as a passing one) leak-mutex and leak-httpbody were suspected,
# their sites named, at 25-27 s and not confirmed by 180 s. So the guard fails
# on any false positive in any mode, on an anomaly not detected, and on a leak
# whose site no event named by then; confirmation times are printed, and the
# confirmation rule itself is tests/go/godetect_test.c's. The 60 s goal is
# `make eval-go`'s to report (it requires confirmation).
suite eval-go env EVAL_LOADS=idle EVAL_REQUIRE=named bash tests/go/eval.sh 180

[ ${#broken[@]} -eq 0 ] || echo "suites without a summary: ${broken[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
