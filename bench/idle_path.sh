#!/bin/bash
# idle_path.sh [ROUNDS] — regenerates shim/idle_path.syms, the functions a
# settled shim runs (shim/idle_path_ld.sh lays them out side by side; why is
# said there). Each round builds the program, serves an idle `sleep`
# container from a private containerd (tests/containerd/lib.sh) while
# `perf` records every page fault on the machine for IDLE_SECONDS, and adds
# each function whose code faulted in that shim after mem_settle and lies
# outside .text.idle_path. It stops when a round adds nothing (ROUNDS,
# default 8, bounds it). Needs root, perf and containerd; a developer's
# tool, run by hand after the supervising path changes, then commit the
# list: a stale list costs memory (bench shim_rss shows it), never
# correctness.
set -euo pipefail
ROUNDS=${1:-8}
IDLE_SECONDS=${IDLE_SECONDS:-6}
REPO=$(cd "$(dirname "$0")/.." && pwd)
LIST=$REPO/shim/idle_path.syms
BIN=$REPO/build/moonshim
PY=/usr/bin/python3
command -v perf >/dev/null || { echo "idle_path: needs perf (apt-get install linux-perf)" >&2; exit 1; }
# shellcheck source=tests/containerd/lib.sh
. "$REPO/tests/containerd/lib.sh"
cd_start || exit 1
cd_rootfs

# new_functions PERFDATA: post-settle code faults of the settling shim, as
# function names without GCC's clone suffixes, that are not yet placed.
new_functions() {
	# a line: PID TIME: ADDR ADDR-SYMBOL IP IP-SYMBOL
	perf script -i "$1" -F pid,time,addr,ip,sym 2>/dev/null | "$PY" -c '
import re, subprocess, sys
bin, listf = sys.argv[1], sys.argv[2]
lo = hi = 0
for l in subprocess.run(["readelf", "-SW", bin], capture_output=True, text=True).stdout.splitlines():
    p = l.replace("[ ", "[").split()
    if ".text.idle_path" in p:
        i = p.index(".text.idle_path"); lo = int(p[i + 2], 16); hi = lo + int(p[i + 4], 16)
    if ".text" in p:
        i = p.index(".text"); text_end = int(p[i + 2], 16) + int(p[i + 4], 16)
rows = []
for l in sys.stdin:
    m = re.match(r"\s*(\d+)\s+(\S+):\s+([0-9a-f]+)\s+.*?\s([0-9a-f]+)\s+(\S+)\s*$", l)
    if m:
        rows.append((m.group(1), float(m.group(2)), int(m.group(3), 16), int(m.group(4), 16), m.group(5)))
# mem_settle drops the code it runs in, so drop_readonly faults right after
settle = [r for r in rows if r[4].startswith("drop_readonly")]
if not settle:
    sys.exit("idle_path: no mem_settle seen in the trace")
pid, t0 = settle[0][0], settle[0][1]
have = {x.split("#")[0].strip() for x in open(listf)}
new = set()
for p, t, addr, ip, sym in rows:
    if p == pid and t >= t0 and addr == ip and hi <= addr < text_end and sym != "[unknown]":
        name = re.sub(r"\.(lto_priv|constprop|isra|part|cold)(\.[0-9]+)?", "", sym)
        if name not in have:
            new.add(name)
print("\n".join(sorted(new)))
' "$BIN" "$LIST"
}

for ((round = 1; round <= ROUNDS; round++)); do
	make -C "$REPO" -s build/moonshim build/containerd-shim-moon-v2 >/dev/null
	id=$(cd_id idle-path-$round)
	perf record -q -e page-faults -c 1 -d -a -o "$CD_DIR/pf.data" -- sleep $((IDLE_SECONDS + 2)) >/dev/null 2>&1 &
	perf_pid=$!
	sleep 1
	cd_ctr run -d --runtime io.containerd.moon.v2 --fifo-dir "$CD_DIR/fifo" --rootfs "$CD_ROOTFS" "$id" /bin/sleep 1000 </dev/null >/dev/null
	wait $perf_pid
	rss=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$(cd_shim_pids "$id")/status")
	cd_rm "$id"
	new=$(new_functions "$CD_DIR/pf.data")
	echo "idle_path: round $round: shim VmRSS $rss kB, $(echo "$new" | grep -c .) functions to add${new:+: $(echo $new)}"
	[ -z "$new" ] && break
	echo "$new" >>"$LIST"
done
