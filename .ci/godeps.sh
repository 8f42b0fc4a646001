#!/bin/bash
# Build the Go programs moonshim is tested against, each from its Go module at
# a pinned version (never a downloaded binary), into a cache that a second run
# finds and does not rebuild:
#   $MOONSHIM_DEPS/<name>-<version>/bin/...   (default /opt/moonshim-deps)
# A directory counts only once its .done marker is written, so an interrupted
# build is redone. Usage: godeps.sh [name...]  (default: all); prints the bin
# directories it made or found. The Go toolchain is chosen explicitly
# (GO, default /usr/local/go/bin/go), never by PATH order: Debian's golang-go
# is Go 1.19 and builds none of these.
set -euo pipefail
GO=${GO:-/usr/local/go/bin/go}
DEPS=${MOONSHIM_DEPS:-/opt/moonshim-deps}

# name  module  version  build-tags  cgo  package=output...
# containerd's own Makefile builds with no_btrfs/no_devmapper where those
# libraries are absent; runc needs cgo and libseccomp for its seccomp support;
# cni is the CNI plugins the CRI tests give pods a network with.
SPECS=(
	"containerd2|github.com/containerd/containerd/v2|v2.4.2|no_btrfs no_devmapper no_zfs urfave_cli_no_docs|1|./cmd/containerd=containerd ./cmd/ctr=ctr ./cmd/containerd-shim-runc-v2=containerd-shim-runc-v2"
	"containerd17|github.com/containerd/containerd|v1.7.35|no_btrfs no_devmapper no_zfs urfave_cli_no_docs|1|./cmd/containerd=containerd ./cmd/ctr=ctr ./cmd/containerd-shim-runc-v2=containerd-shim-runc-v2"
	"runc|github.com/opencontainers/runc|v1.5.3|seccomp urfave_cli_no_docs|1|.=runc"
	"critools|sigs.k8s.io/cri-tools|v1.37.0||0|./cmd/crictl=crictl test:./cmd/critest=critest"
	"crane|github.com/google/go-containerregistry|v0.22.1||0|./cmd/crane=crane"
	"cni|github.com/containernetworking/plugins|v1.9.1||0|./plugins/main/bridge=bridge ./plugins/main/loopback=loopback ./plugins/ipam/host-local=host-local"
)

build_one() { # spec
	local name mod ver tags cgo outs
	IFS='|' read -r name mod ver tags cgo outs <<<"$1"
	local dir=$DEPS/$name-$ver
	mkdir -p "$DEPS"
	# one builder per name: a second caller waits for the first, then finds .done
	exec {lock}>"$DEPS/.$name-$ver.lock"
	flock "$lock"
	if [ -f "$dir/.done" ]; then
		exec {lock}>&-
		echo "$dir/bin"
		return 0
	fi
	echo "godeps: building $mod@$ver" >&2
	rm -rf "$dir"
	mkdir -p "$dir/bin"
	export GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
	export GOMODCACHE=${GOMODCACHE:-$("$GO" env GOMODCACHE)}
	local src
	src=$("$GO" mod download -json "$mod@$ver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
	[ -n "$src" ] && [ -d "$src" ] || { echo "godeps: $mod@$ver: no source from the module proxy" >&2; return 1; }
	# build in a writable copy: the module cache is read-only, and its own
	# go.mod (with its replace directives) must drive the build
	rm -rf "$dir/src"
	cp -r "$src" "$dir/src"
	chmod -R u+w "$dir/src"
	local o pkg out
	for o in $outs; do
		pkg=${o%%=*} out=${o#*=}
		if [[ $pkg == test:* ]]; then
			(cd "$dir/src" && CGO_ENABLED=$cgo "$GO" test -mod=mod -c -o "$dir/bin/$out" "${pkg#test:}")
		else
			(cd "$dir/src" && CGO_ENABLED=$cgo "$GO" build -mod=mod -trimpath -tags "$tags" \
				-ldflags "-X $mod/version.Version=$ver" -o "$dir/bin/$out" "$pkg")
		fi
	done
	rm -rf "$dir/src"
	touch "$dir/.done"
	exec {lock}>&-
	echo "$dir/bin"
}

want=("$@")
for spec in "${SPECS[@]}"; do
	name=${spec%%|*}
	if ((${#want[@]})); then
		[[ " ${want[*]} " == *" $name "* ]] || continue
	fi
	build_one "$spec"
done
