#!/bin/bash
# prom.sh — `moonshim metrics` against the real Prometheus (Debian's
# prometheus and promtool): a private Prometheus on loopback scrapes the
# exporter every second while real containers run under `moonshim run -d`,
# and Prometheus' query API must show what happened — a check healthy,
# then unhealthy; memory.high crossed and counted; the cgroup's limit and
# usage; a supervisor killed and its series gone. `promtool check metrics`
# must find a scrape clean. Prints "metrics-prom: N passed, N failed".
#   bash tests/metrics/prom.sh [CASE...]    (KEEP=1 keeps the temp dir)
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
MS=${MOONSHIM_BIN:-$REPO/build/moonshim}
T=$(mktemp -d /tmp/moonshim-prom.XXXXXX)
EXP_PID="" PROM_PID=""
cleanup() {
	local d
	for d in "$T"/root/*/; do
		[ -d "$d" ] && timeout 10 "$MS" --root "$T/root" delete --force "$(basename "$d")" >/dev/null 2>&1
	done
	[ -n "$EXP_PID" ] && kill "$EXP_PID" 2>/dev/null
	[ -n "$PROM_PID" ] && kill "$PROM_PID" 2>/dev/null
	wait 2>/dev/null
	[ "${KEEP:-0}" = 1 ] && echo "kept $T" || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   metrics-prom/$1"; }
bad() { failed=$((failed + 1)); echo "FAIL metrics-prom/$1: $2"; }
summary() { echo "metrics-prom: $passed passed, $failed failed"; exit $((failed > 0)); }

for tool in prometheus promtool curl jq; do
	command -v $tool >/dev/null || { bad setup "$tool is not installed (bash .ci/deps.sh)"; summary; }
done

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ─── containers ──────────────────────────────────────────────────────────
bash "$REPO/tests/container/mkbundle.sh" "$T/b" -- sh >/dev/null
mkdir -p "$T/b/rootfs/www" && echo ok >"$T/b/rootfs/www/healthz"
base=$(cat "$T/b/config.json")
bundle() { # NAME JQ-FILTER: a bundle with a copy of the base's rootfs
	mkdir -p "$T/$1"
	cp -a "$T/b/rootfs" "$T/$1/rootfs"
	jq "$2 | .root.readonly = false" <<<"$base" >"$T/$1/config.json"
}
# an httpd until the test makes /stop, then none: the check is healthy, then unhealthy
bundle hb '.process.args = ["sh", "-c", "httpd -f -p 8080 -h /www & while [ ! -e /stop ]; do sleep 0.2; done; kill %1; exec sleep 600"]'
cat >"$T/http.lua" <<'L'
check {
  name = "http", interval = 0.3, timeout = 0.5, retries = 2,
  run = function()
    local r, err = http.get("http://127.0.0.1:8080/healthz", { timeout = 0.5 })
    if not r then return false, err end
    return r.status == 200, r.status
  end,
}
L
# memory above memory.high (the soft limit on a v1/hybrid host) now and then
if grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
	high='.linux.resources.unified = {"memory.high": "16777216"}'
else
	high='.linux.resources.memory.reservation = 16777216'
fi
bundle mb ".process.args = [\"sh\", \"-c\", \"while :; do dd if=/dev/zero of=/dev/null bs=48M count=1 2>/dev/null; sleep 1; done\"]
  | .linux.resources.memory.limit = 134217728 | $high"

mkdir -p "$T/root" "$T/cdroot"
if ! "$MS" --root "$T/root" run -d --bundle "$T/hb" --check "$T/http.lua" h1 >"$T/h1.out" 2>&1; then
	bad setup "run -d h1: $(cat "$T/h1.out")"; summary
fi
if ! "$MS" --root "$T/root" run -d --bundle "$T/mb" m1 >"$T/m1.out" 2>&1; then
	bad setup "run -d m1: $(cat "$T/m1.out")"; summary
fi

# ─── the exporter and Prometheus ─────────────────────────────────────────
"$MS" --root "$T/root" metrics --listen 127.0.0.1:0 --containerd-root "$T/cdroot" 2>"$T/exporter.log" &
EXP_PID=$!
for _ in $(seq 50); do
	EPORT=$(grep -o 'port [0-9]*' "$T/exporter.log" | cut -d' ' -f2)
	[ -n "$EPORT" ] && break
	sleep 0.1
done
[ -n "${EPORT:-}" ] || { bad setup "exporter did not start: $(cat "$T/exporter.log")"; summary; }
PPORT=$(free_port)
cat >"$T/prometheus.yml" <<Y
global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: moonshim
    static_configs: [{targets: ["127.0.0.1:$EPORT"]}]
Y
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/tsdb" \
	--web.listen-address="127.0.0.1:$PPORT" --log.level=warn >"$T/prometheus.log" 2>&1 &
PROM_PID=$!

# q EXPR: the instant query's first value ("" when no series)
q() {
	curl -s --max-time 2 --get --data-urlencode "query=$1" "http://127.0.0.1:$PPORT/api/v1/query" |
		jq -r '.data.result[0].value[1] // empty' 2>/dev/null
}
# until SECONDS EXPR WANT: wait until the query says WANT ("any": some
# value, "none": no series)
until_q() {
	local end=$((SECONDS + $1)) v
	while [ $SECONDS -lt $end ]; do
		v=$(q "$2")
		if [ "$3" = any ] && [ -n "$v" ]; then echo "$v"; return 0; fi
		if [ "$3" = none ] && [ -z "$v" ]; then echo none; return 0; fi
		[ "$v" = "$3" ] && { echo "$v"; return 0; }
		sleep 0.5
	done
	echo "${v:-none}"
	return 1
}

if until_q 30 'up{job="moonshim"}' 1 >/dev/null; then ok prometheus_scrapes_exporter
else bad prometheus_scrapes_exporter "up=$(q 'up') $(tail -5 "$T/prometheus.log")"; summary; fi

v=$(until_q 20 'moonshim_containers{mode="run"}' 2)
[ "$v" = 2 ] && ok containers_counted || bad containers_counted "moonshim_containers{mode=run}=$v"

# the check: healthy while httpd answers, unhealthy after it is gone
h=$(until_q 20 'moonshim_check_healthy{id="h1",check="http",role="liveness"}' 1)
touch "$T/hb/rootfs/stop"
u=$(until_q 25 'moonshim_check_healthy{id="h1",check="http"}' 0)
s=$(q 'moonshim_container_health_status{id="h1",status="unhealthy"}')
f=$(q 'moonshim_probes_total{id="h1",check="http",outcome="fail"}')
if [ "$h" = 1 ] && [ "$u" = 0 ] && [ "$s" = 1 ] && [ "${f:-0}" -ge 2 ]; then ok check_flips_to_unhealthy
else bad check_flips_to_unhealthy "was healthy=$h now=$u status unhealthy=$s fails=$f"; fi

n=$(q 'moonshim_probe_duration_seconds_count{id="h1",check="http"}')
inf=$(q 'moonshim_probe_duration_seconds_bucket{id="h1",check="http",le="+Inf"}')
p=$(q 'sum(moonshim_probes_total{id="h1",check="http"})')
if [ -n "$n" ] && [ "$n" = "$inf" ] && [ "$n" -gt 0 ] 2>/dev/null && [ $((n - p)) -le 3 ] && [ $((p - n)) -le 3 ]; then
	ok probe_histogram_counts
else bad probe_histogram_counts "count=$n +Inf=$inf probes=$p"; fi

# memory.high crossed: counted by the kernel (v2) or the watcher (hybrid)
e=$(until_q 30 'moonshim_memory_events_total{id="m1",event="high"} > 0' any)
l=$(q 'container_spec_memory_limit_bytes{id="m1"}')
hb=$(q 'moonshim_memory_high_bytes{id="m1"}')
use=$(q 'container_memory_usage_bytes{id="m1"}')
if [ "${e:-none}" != none ] && [ "$l" = 134217728 ] && [ "$hb" = 16777216 ] && [ "${use:-0}" -gt 0 ]; then
	ok memory_high_event_counted
else bad memory_high_event_counted "high events=$e limit=$l high=$hb usage=$use"; fi

c=$(q 'container_cpu_usage_seconds_total{id="m1"} > 0')
w=$(q 'container_pressure_memory_waiting_seconds_total{id="m1"}')
if [ -n "$c" ] && { [ -n "$w" ] || [ ! -e /proc/pressure/memory ]; }; then ok cpu_and_psi_series
else bad cpu_and_psi_series "cpu=$c psi memory some=$w"; fi

# promtool on a scrape in Prometheus' text format, and in OpenMetrics
curl -s "http://127.0.0.1:$EPORT/metrics" >"$T/scrape.txt"
if out=$(promtool check metrics <"$T/scrape.txt" 2>&1) && [ -s "$T/scrape.txt" ]; then ok promtool_check_metrics_clean
else bad promtool_check_metrics_clean "$out"; fi
curl -s -H 'Accept: application/openmetrics-text; version=1.0.0' "http://127.0.0.1:$EPORT/metrics" >"$T/scrape.om"
ct=$(curl -s -o /dev/null -w '%{content_type}' -H 'Accept: application/openmetrics-text' "http://127.0.0.1:$EPORT/metrics")
if [ "$(tail -n 1 "$T/scrape.om")" = "# EOF" ] && [[ $ct == application/openmetrics-text* ]] &&
	grep -q '^# TYPE moonshim_probes counter$' "$T/scrape.om" && grep -q '^moonshim_probes_total{' "$T/scrape.om"; then
	ok openmetrics_negotiated
else bad openmetrics_negotiated "content-type=$ct last=$(tail -n 1 "$T/scrape.om")"; fi
# Prometheus itself took it as OpenMetrics (it asks for it first) without error
if ! grep -qi 'error' "$T/prometheus.log"; then ok prometheus_parsed_without_error
else bad prometheus_parsed_without_error "$(grep -i error "$T/prometheus.log" | head -3)"; fi

s404=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$EPORT/other")
s405=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$EPORT/metrics")
[ "$s404" = 404 ] && [ "$s405" = 405 ] && ok http_404_405 || bad http_404_405 "other=$s404 POST=$s405"

# a supervisor killed outright: its directory stays, its series go
sv=$(jq -r '.supervisor.pid' "$T/root/h1/status.json" 2>/dev/null)
if [ -n "$sv" ] && kill -9 "$sv" 2>/dev/null; then
	g=$(until_q 15 'count(moonshim_container_running{id="h1"})' none)
	n=$(q 'moonshim_containers{mode="run"}')
	if [ "$g" = none ] && [ "$n" = 1 ] && ! curl -s "http://127.0.0.1:$EPORT/metrics" | grep -q 'id="h1"'; then
		ok dead_supervisor_series_gone
	else bad dead_supervisor_series_gone "h1 series=$g containers=$n"; fi
else bad dead_supervisor_series_gone "no supervisor pid in $T/root/h1/status.json"; fi

if grep -q 'status.json' "$T/exporter.log"; then bad exporter_log_quiet "$(cat "$T/exporter.log")"
else ok exporter_log_quiet; fi
summary
