#!/bin/bash
# Re-capture what each Go toolchain's runtime really prints, for the parser
# tests (tests/go/goparse_test.c reads tests/go/formats/<go version>/):
#   sched-gc.txt        stderr under GODEBUG=schedtrace=1000,gctrace=1 and
#                       GOMAXPROCS=4: SCHED and gctrace lines as they come
#   sched-detail.txt    2 s under GODEBUG=schedtrace=1000,scheddetail=1
#   goroutine-debug1.txt, goroutine-debug2.txt
#                       /debug/pprof/goroutine?debug=1 and ?debug=2 after
#                       SECONDS (default 65: past a minute, so debug=2's
#                       headers carry ", 1 minutes")
# of tests/go/capture/main.go, built by each toolchain with a go.mod whose go
# line is that toolchain's (its GODEBUG defaults, as a program written for it
# gets), in a fixed directory (/tmp/moonshim-goformats/<version>/capture) so
# that the paths in the profiles are the same at every capture.
# Toolchains: Go 1.19 = Debian's golang-go (/usr/bin/go), Go 1.26 = $GO
# (/usr/local/go/bin/go), Go 1.27 = GOTOOLCHAIN=go1.27.3 $GO (fetched once
# through the module proxy into the module cache, ~7 s). The three run side
# by side. Not run by `make test`: the captures are committed; after a
# re-capture, the values goparse_test.c asserts may need updating.
#   bash tests/go/capture-formats.sh [SECONDS]
set -euo pipefail
SECONDS_WAIT=${1:-65}
here=$(cd "$(dirname "$0")" && pwd)
GO=${GO:-/usr/local/go/bin/go}
GO119=${GO119:-/usr/bin/go}
WORK=/tmp/moonshim-goformats
for t in "$GO" "$GO119"; do
	[ -x "$t" ] || { echo "capture-formats: no Go toolchain at $t" >&2; exit 1; }
done
command -v curl >/dev/null || { echo "capture-formats: curl not found" >&2; exit 1; }

# capture LANG TOOLCHAIN-ENV GO: one toolchain, into formats/<its version>
capture() {
	local lang=$1 tcenv=$2 go=$3
	local ver w out pid addr
	ver=$(env $tcenv "$go" env GOVERSION)
	w=$WORK/$ver
	out=$here/formats/$ver
	rm -rf "$w"
	mkdir -p "$w/capture" "$out"
	cp "$here/capture/main.go" "$w/capture/"
	printf 'module capture\n\ngo %s\n' "$lang" >"$w/capture/go.mod"
	(cd "$w/capture" && env $tcenv CGO_ENABLED=0 GOFLAGS= "$go" build -o "$w/capture.bin" .)
	# the scheddetail sample: two ticks
	env GOMAXPROCS=4 GODEBUG=schedtrace=1000,scheddetail=1 "$w/capture.bin" \
		>/dev/null 2>"$out/sched-detail.txt" &
	pid=$!
	sleep 2.5
	kill "$pid"; wait "$pid" 2>/dev/null || true
	# the main run
	env GOMAXPROCS=4 GODEBUG=schedtrace=1000,gctrace=1 "$w/capture.bin" \
		>"$w/stdout" 2>"$out/sched-gc.txt" &
	pid=$!
	for _ in $(seq 100); do
		addr=$(sed -n 's/^listening //p' "$w/stdout")
		[ -n "$addr" ] && break
		sleep 0.1
	done
	[ -n "$addr" ] || { echo "capture-formats: $ver did not start" >&2; kill "$pid"; return 1; }
	sleep "$SECONDS_WAIT"
	curl -fsS "http://$addr/debug/pprof/goroutine?debug=1" -o "$out/goroutine-debug1.txt"
	curl -fsS "http://$addr/debug/pprof/goroutine?debug=2" -o "$out/goroutine-debug2.txt"
	kill "$pid"; wait "$pid" 2>/dev/null || true
	rm -rf "$w"
	echo "captured $ver into tests/go/formats/$ver"
}

pids=()
capture 1.19 "" "$GO119" & pids+=($!)
capture 1.26 "" "$GO" & pids+=($!)
capture 1.27 GOTOOLCHAIN=go1.27.3 "$GO" & pids+=($!)
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
rmdir "$WORK" 2>/dev/null || true
exit $rc
