#!/bin/bash
# Build the Go test fixtures (tests/go/fixtures/<name>/main.go, one main
# package each, stdlib only) into static binaries OUTDIR/<name>, the way the
# Makefile builds build/demo/web: with $GO (default /usr/local/go/bin/go,
# Go 1.26; never `go` from PATH, which is Debian's Go 1.19), CGO_ENABLED=0,
# a private GOCACHE and GOPATH under OUTDIR. No -trimpath and no -ldflags=-s, so
# profiles show the fixtures' absolute source paths with file:line.
#
# Idempotent: a binary newer than its main.go, its go.mod and this script
# is kept. Prints one line per fixture ("built NAME" / "up-to-date NAME").
# First checks that fixtures/expect.tsv names every fixture and that its
# site column is the line of the fixture's "// LEAK SITE" comment (and "-"
# where there is none); exits 1 on a mismatch or a failed build.
#
#   bash tests/go/build-fixtures.sh build/go-fixtures
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
fixtures=$here/fixtures
mkdir -p "$1"
out=$(cd "$1" && pwd)

GO=${GO:-/usr/local/go/bin/go}
[ -x "$GO" ] || { echo "build-fixtures: no Go toolchain at $GO (set GO=...)" >&2; exit 1; }

# expect.tsv against the sources
bad=0
declare -A listed=()
while IFS=$'\t' read -r name event kind site env cgroup; do
	[ "$name" = name ] && continue # header
	[ -n "$name" ] || continue
	listed[$name]=1
	src=$fixtures/$name/main.go
	if [ ! -f "$src" ]; then
		echo "build-fixtures: expect.tsv: $name: no $src" >&2; bad=1; continue
	fi
	[ -n "$cgroup" ] || { echo "build-fixtures: expect.tsv: $name: not 6 columns" >&2; bad=1; }
	marks=$(grep -n '// LEAK SITE$' "$src" | cut -d: -f1 || true)
	if [ "$(printf '%s' "$marks" | grep -c .)" -gt 1 ]; then
		echo "build-fixtures: $name: more than one // LEAK SITE" >&2; bad=1
	elif [ -n "$marks" ] && [ "$site" != "main.go:$marks" ]; then
		echo "build-fixtures: expect.tsv: $name: site $site, but // LEAK SITE is main.go:$marks" >&2; bad=1
	elif [ -z "$marks" ] && [ "$site" != - ]; then
		echo "build-fixtures: expect.tsv: $name: site $site, but main.go has no // LEAK SITE" >&2; bad=1
	fi
done <"$fixtures/expect.tsv"
for d in "$fixtures"/*/; do
	name=$(basename "$d")
	[ -n "${listed[$name]:-}" ] || { echo "build-fixtures: $name is not in expect.tsv" >&2; bad=1; }
done
[ $bad -eq 0 ] || exit 1

gover=$("$GO" env GOVERSION)
for d in "$fixtures"/*/; do
	name=$(basename "$d")
	bin=$out/$name
	# a binary another toolchain built is rebuilt ("go version FILE" names it)
	if [ -x "$bin" ] && [ "$bin" -nt "$d/main.go" ] && [ "$bin" -nt "$d/go.mod" ] && [ "$bin" -nt "$0" ] &&
		[ "$("$GO" version "$bin" 2>/dev/null | cut -d' ' -f2)" = "$gover" ]; then
		echo "up-to-date $name"
		continue
	fi
	if (cd "$d" && CGO_ENABLED=0 GOCACHE="$out/gocache" GOPATH="$out/gopath" GOFLAGS= \
		"$GO" build -o "$bin.tmp" .); then
		mv -f "$bin.tmp" "$bin"
		echo "built $name"
	else
		rm -f "$bin.tmp"
		echo "build-fixtures: $name failed" >&2
		exit 1
	fi
done
