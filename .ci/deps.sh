#!/bin/bash
# Install what moonshim needs from Debian's packages, only what is missing
# (idempotent; a fresh machine and CI run this first).
set -euo pipefail
PKGS=(
	gcc make clang libclang-rt-14-dev   # build, ASan/UBSan (gcc), TSan (clang)
	clang-format                        # the style: git clang-format on what a change touches
	jq python3                           # the container tests edit config.json with them
	valgrind                            # valgrind.h for stack registration
	libjansson-dev                      # JSON: watch output, OCI config, events
	golang-go                           # Go 1.19 (/usr/bin/go), only for tests/go/capture-formats.sh (the parser tests' Go 1.19 captures) and the README's Go 1.19 bench column; nothing is built with it
	gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user  # aarch64 build + run
	linux-image-cloud-amd64 qemu-system-x86 busybox-static cpio  # the pure cgroup v2 VM
	runc libcap-dev libseccomp-dev libnl-3-dev libnl-route-3-dev pkg-config  # moonshim run: containers, and runc as the parity peer
	containerd protobuf-c-compiler libprotobuf-c-dev  # the containerd shim: ttrpc messages (protoc-c), a real containerd for its tests
	liblua5.4-dev                       # health checks and policies in Lua
	curl                                # make demo drives its service with it; the scrape_cost peer
	strace                              # tests/fault: syscall faults injected into static moonshim
	prometheus                          # tests/metrics: the real Prometheus scraping `moonshim metrics`, and promtool
	tmux                                # tests/cli/observe.sh: `moonshim top` driven in a private tmux server
)
# Everything Go we build (the bench twins, the fixtures, the demo, godeps.sh
# below) uses $GO, Go 1.26 at /usr/local/go on this machine kind (it is not
# a Debian package: nothing here can install it)
GO=${GO:-/usr/local/go/bin/go}
GO_MIN_MINOR=26
gover=$("$GO" env GOVERSION 2>/dev/null) || {
	echo "deps: no Go toolchain at $GO: moonshim builds its Go programs with Go >= 1.$GO_MIN_MINOR there (set GO=/path/to/go)" >&2
	exit 1
}
minor=$(sed -n 's/^go1\.\([0-9]*\).*/\1/p' <<<"$gover")
if [ -z "$minor" ] || [ "$minor" -lt "$GO_MIN_MINOR" ]; then
	echo "deps: $GO is $gover; moonshim builds its Go programs with Go >= 1.$GO_MIN_MINOR (set GO=/path/to/go)" >&2
	exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "deps: installing ${missing[*]}"
	SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -q
	$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
	echo "deps: all present"
fi

# The Go programs the tests run against (containerd 2.4 and 1.7, runc 1.5,
# crictl/critest, crane, the CNI plugins), built from their modules at pinned
# versions and cached (.ci/godeps.sh); the first run on a new machine takes
# some minutes.
bash "$(dirname "$0")/godeps.sh" >/dev/null
