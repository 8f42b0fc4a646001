#!/bin/bash
# critest.sh — cri-tools' critest v1.37.0 (the CRI validation suite) against
# containerd 2.4 with its CRI plugin (tests/cri/lib.sh), once with
# --runtime-handler=moon and once with runc, in one containerd. Each run
# writes a JUnit report; the two are compared case by case: every case runc
# passes, moon must pass (named otherwise).
#   bash tests/cri/critest.sh quick   the focused subset (make test, both
#                                     handlers at once: < ~5 min)
#   bash tests/cri/critest.sh full    every case, handler after handler
#                                     (make critest), the table of counts
#   bash tests/cri/critest.sh focus RE  the cases matching RE, both handlers
#                                     at once (a case under work)
# Prints "cri-critest: N passed, N failed": N passed = cases both pass or
# runc fails too (not moon's doing), N failed = cases runc passes and moon
# does not. CRITEST_KEEP=DIR keeps the reports there.
cd "$(dirname "$0")/../.." || exit 1
source tests/cri/lib.sh
MODE=${1:-quick}

# Cases no runtime handler can pass here, skipped in both runs:
#  - a digest-pinned public image (its digest is the upstream build's)
#  - NRI (needs an NRI plugin socket of the test's own), AppArmor/SELinux
#    (not enabled on the host), Windows, the benchmarks
SKIP='image with digest|\[NRI\]|NRI|AppArmor|apparmor|SELinux|selinux|[Ww]indows|benchmark'
# quick: pods, containers, exec/ExecSync, logs, stats, update, streaming
# exec/attach, pod networking (CNI), an OOM kill, security contexts that
# need no special kernel: the paths a Kubernetes node uses every second
QUICK='running PodSandbox|stopping PodSandbox|removing PodSandbox|support starting container \[|stopping container \[|removing running container|execSync|exec with tty|support attach|starting container with log|listing container stats|DNS config|set hostname|HostNetwork is|port mapping with only container port|should support network$|should support container exec|should support container log|should support RunAsUser$|OOMKilled|ReadOnlyRootfs is true|support HostPID|HostIpc is true'

[ "$MODE" = focus ] && QUICK=${2:?focus needs a regex}

if ! cri_start; then
	echo "cri-critest: 0 passed, 1 failed"
	exit 1
fi
echo "containerd $("$CRI_CD_BIN/containerd" --version | awk '{print $3}') CRI on $CRI_SOCK, registry $CRI_REG, mode $MODE"
OUT=${CRITEST_KEEP:-$CRI_DIR/critest}
mkdir -p "$OUT"

run_critest() { # handler
	local h=$1 args=()
	[ "$MODE" != full ] && args+=(--ginkgo.focus="$QUICK")
	# the pulls go to our registry through hosts.toml; the images are named
	# as critest names them (no --registry-prefix)
	(cd "$OUT" && timeout -k 10 "${CRITEST_TIMEOUT:-3000}" "$CRITEST" \
		--runtime-endpoint "unix://$CRI_SOCK" --image-endpoint "unix://$CRI_SOCK" \
		--runtime-handler="$h" --ginkgo.skip="$SKIP" "${args[@]}" \
		--ginkgo.no-color --ginkgo.junit-report="$OUT/$h.xml" >"$OUT/$h.log" 2>&1)
	echo "critest $h: exit $? ($(grep -E '^Ran [0-9]+ of' "$OUT/$h.log"))"
}

if [ "$MODE" != full ]; then
	run_critest moon &
	m=$!
	run_critest runc
	wait $m
else
	run_critest moon
	run_critest runc
fi

# the comparison, from the two JUnit reports
python3 - "$OUT/moon.xml" "$OUT/runc.xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
def cases(path):
    r = {}
    try:
        root = ET.parse(path).getroot()
    except Exception as e:
        print(f"  no report {path}: {e}")
        return r
    for c in root.iter("testcase"):
        name = c.get("name", "")
        if name.startswith("[BeforeSuite]") or name.startswith("[AfterSuite]") or name.startswith("[SynchronizedBeforeSuite]"):
            continue
        st = c.get("status", "")
        if c.find("skipped") is not None or st == "skipped": s = "skipped"
        elif c.find("failure") is not None or c.find("error") is not None or st in ("failed", "panicked", "timedout", "interrupted"): s = "failed"
        else: s = "passed"
        msg = ""
        f = c.find("failure")
        if f is None: f = c.find("error")
        if f is not None: msg = (f.get("message") or f.text or "").strip().splitlines()[0][:300] if (f.get("message") or f.text) else ""
        r[name] = (s, msg)
    return r
moon, runc = cases(sys.argv[1]), cases(sys.argv[2])
def count(r, s): return sum(1 for v in r.values() if v[0] == s)
print(f"{'':10} {'moon':>6} {'runc':>6}")
for s in ("passed", "failed", "skipped"):
    print(f"{s:10} {count(moon, s):>6} {count(runc, s):>6}")
ok = bad = 0
for name in sorted(set(moon) | set(runc)):
    m = moon.get(name, ("missing", "")); r = runc.get(name, ("missing", ""))
    if r[0] == "skipped" and m[0] == "skipped": continue
    if m[0] == "passed" or r[0] != "passed":
        ok += 1
        if m[0] != "passed" and m[0] != "skipped":
            print(f"  both fail: {name}\n      moon: {m[1]}\n      runc: {r[1]}")
        elif m[0] == "skipped" and r[0] != "skipped":
            print(f"  moon skipped, runc {r[0]}: {name}")
    else:
        bad += 1
        print(f"  FAIL moon {m[0]}, runc passed: {name}\n      moon: {m[1]}")
if not moon or not runc:
    bad += 1
print(f"cri-critest: {ok} passed, {bad} failed")
sys.exit(1 if bad else 0)
EOF
