# shellcheck shell=bash
# lib.sh — containerd 2.4 with its CRI plugin, private to one test run, as
# Kubernetes would reach the shim: a temp dir holds containerd's config,
# root, state, sockets, the CNI config and IPAM state, the pod logs, and a
# local OCI registry (crane's, on loopback) that serves every image the
# tests pull; containerd's hosts.toml files point registry.k8s.io, gcr.io
# and k8s.gcr.io at it (as `server`, so nothing is ever asked of the real
# hosts). Two runtime handlers: `moon` (the shim under test, runtime_type
# io.containerd.moon.v2) and `runc` (the pinned containerd-shim-runc-v2 with
# runc 1.5.3), both cgroupfs. Source it, then cri_start. It sets
#   CRI_DIR   the temp dir;  CRI_SOCK  containerd's socket (crictl's endpoint)
#   CRI_REG   the registry, 127.0.0.1:PORT
# What must stay true: nothing outside CRI_DIR is left behind (cri_cleanup,
# on EXIT: pods, shims, mounts, netns, cgroups, the bridge, ip_forward as it
# was), and no traffic leaves the machine (pods get no default route).
# Independent of tests/containerd/lib.sh (that one runs ctr on 1.6/1.7/2.4).

CRI_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CRI_SHIM=$(realpath -m "${MOONSHIM_SHIM:-$CRI_REPO/build/containerd-shim-moon-v2}")
CRI_TIMEOUT=${CRI_TIMEOUT:-60} # seconds one crictl call may take
CRI_START_TRIES=400            # 50 ms polls for containerd's CRI to answer (20 s)
CRI_PID= CRI_REG_PID= CRI_DIR= CRI_BRIDGE= CRI_FWD_WAS=
CRI_NS=k8s.io # the CRI's containerd namespace (fixed by containerd)
CRI_SANDBOX_IMAGE=registry.k8s.io/moonshim/pause:1
CRI_CGPARENT=/moonshim-cri-$$ # the crictl pods' cgroup parent (cgroupfs driver)

# cri_deps: the pinned Go programs (built once by .ci/godeps.sh, cached);
# a variable already set (CRI_CD_BIN, CRI_RUNC, CRICTL, CRITEST, CRI_CRANE,
# CRI_CNI_BIN) is taken as it is.
cri_deps() {
	local g=$CRI_REPO/.ci/godeps.sh
	CRI_CD_BIN=${CRI_CD_BIN:-$(bash "$g" containerd2)} || return 1
	CRI_RUNC=${CRI_RUNC:-$(bash "$g" runc)/runc} || return 1
	CRI_CRANE=${CRI_CRANE:-$(bash "$g" crane)/crane} || return 1
	CRI_CNI_BIN=${CRI_CNI_BIN:-$(bash "$g" cni)} || return 1
	[ -n "${CRICTL:-}" ] && [ -n "${CRITEST:-}" ] && return 0
	local t
	t=$(bash "$g" critools) || return 1
	CRICTL=${CRICTL:-$t/crictl} CRITEST=${CRITEST:-$t/critest}
}

# cri_free_port: a TCP port on loopback that nothing listens on now.
cri_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------- registry, images

cri_registry_start() {
	local port i
	port=$(cri_free_port)
	CRI_REG=127.0.0.1:$port
	"$CRI_CRANE" registry serve --address "$CRI_REG" --disk "$CRI_DIR/registry" \
		</dev/null >>"$CRI_DIR/registry.log" 2>&1 &
	CRI_REG_PID=$!
	for ((i = 0; i < CRI_START_TRIES; i++)); do
		curl -sf "http://$CRI_REG/v2/" >/dev/null && return 0
		sleep 0.05
	done
	echo "registry did not answer on $CRI_REG"
	return 1
}

# cri_crane ARGS...: crane against the local registry (plain http on loopback).
cri_crane() { "$CRI_CRANE" --insecure "$@" >>"$CRI_DIR/images.log" 2>&1; }

# cri_layer DIR OUT: a reproducible tar of DIR (fixed owner and times).
cri_layer() {
	tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 -C "$1" -cf "$2" .
}

# cri_busybox_layer: $CRI_DIR/img/busybox.tar, the base layer of every image
# but pause: Debian's static busybox with every applet a symlink, and the
# users and groups critest's images carry (www-data, default-user, the group
# 50000 that default-user is a member of).
cri_busybox_layer() {
	local r=$CRI_DIR/img/busybox a
	mkdir -p "$r"/{bin,etc,proc,sys,dev,tmp,root,www,var/www,var/run,usr/bin,usr/sbin}
	cp /bin/busybox "$r/bin/busybox"
	# hard links, as busybox images have them: masking one applet
	# (critest's MaskedPaths masks /bin/ls) must not mask busybox itself
	for a in $(/bin/busybox --list); do
		[ -e "$r/bin/$a" ] || ln "$r/bin/busybox" "$r/bin/$a"
	done
	ln -s ../../bin/busybox "$r/usr/sbin/nginx"
	chmod 1777 "$r/tmp"
	cat >"$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
www-data:x:33:33:www-data:/var/www:/bin/sh
default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
	cat >"$r/etc/group" <<'EOF'
root:x:0:
www-data:x:33:
default-user:x:1000:
group-defined-in-image:x:50000:default-user
nogroup:x:65534:
EOF
	echo 'moonshim cri test web server' >"$r/www/index.html"
	# applets critest runs that Debian's busybox-static leaves out, as
	# small scripts over /proc: pgrep NAME (pids whose comm matches), and
	# ipcs -m (the ids of the IPC namespace's shared memory segments)
	cat >"$r/usr/bin/pgrep" <<'EOF'
#!/bin/sh
# pgrep PATTERN: the pids whose command name matches (exit 1: none)
[ $# -eq 1 ] || { echo "usage: pgrep PATTERN" >&2; exit 2; }
found=1
for d in /proc/[0-9]*; do
	c=$(cat "$d/comm" 2>/dev/null) || continue
	if echo "$c" | grep -Eq -- "$1"; then echo "${d#/proc/}"; found=0; fi
done
exit $found
EOF
	cat >"$r/usr/bin/ipcs" <<'EOF'
#!/bin/sh
# ipcs -m: the shared memory segments of this IPC namespace
[ "$1" = -m ] || { echo "usage: ipcs -m" >&2; exit 2; }
echo "------ Shared Memory Segments --------"
echo "key        shmid      owner      perms      bytes      nattch"
awk 'NR > 1 {printf "0x%08x %-10s %-10s %-10s %-10s %s\n", $1, $2, $8, $3, $4, $7}' /proc/sysvipc/shm
EOF
	chmod 755 "$r/usr/bin/pgrep" "$r/usr/bin/ipcs"
	cri_layer "$r" "$CRI_DIR/img/busybox.tar"
}

# cri_file_layer NAME: a layer holding one file /NAME (to make an image
# differ from its siblings), prints its path.
cri_file_layer() {
	local d=$CRI_DIR/img/file-$1
	mkdir -p "$d"
	echo "$1" >"$d/$1"
	cri_layer "$d" "$d.tar"
	echo "$d.tar"
}

# cri_image REF [crane mutate flags...]: pushes busybox (+ extra layers
# given as --append) as $CRI_REG/REF with the given config, linux/amd64;
# Cmd /bin/sh unless the flags set an entrypoint or a cmd (crane's list
# flags add up, so the default is not given beside them).
cri_image() {
	local ref=$CRI_REG/$1
	shift
	local cmd=(--cmd /bin/sh)
	case " $* " in *" --cmd"* | *" --entrypoint"*) cmd=() ;; esac
	cri_crane append --oci-empty-base -f "$CRI_DIR/img/busybox.tar" -t "$ref" &&
		cri_crane mutate "$ref" --set-platform linux/amd64 \
			-e PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			"${cmd[@]}" "$@" -t "$ref"
}

# cri_tag REF NEWTAG: the same manifest under another tag.
cri_tag() { cri_crane tag "$CRI_REG/$1" "$2"; }

# cri_images: every image the CRI tests and critest pull (critest's names:
# sigs.k8s.io/cri-tools pkg/validate/consts.go, pkg/framework/util.go).
cri_images() {
	mkdir -p "$CRI_DIR/img/pause/bin"
	gcc -static -O2 -Wall -Wextra -Werror -o "$CRI_DIR/img/pause/pause" "$CRI_REPO/tests/cri/pause.c" ||
		return 1
	rmdir "$CRI_DIR/img/pause/bin"
	cri_layer "$CRI_DIR/img/pause" "$CRI_DIR/img/pause.tar"
	mkdir -p "$CRI_DIR/img/nnp"
	gcc -static -O2 -Wall -Wextra -Werror -o "$CRI_DIR/img/nnp/nnp" "$CRI_REPO/tests/cri/nnp.c" || return 1
	chmod 4755 "$CRI_DIR/img/nnp/nnp"
	cri_layer "$CRI_DIR/img/nnp" "$CRI_DIR/img/nnp.tar"
	cri_busybox_layer
	local e2e=e2e-test-images cri=k8s-staging-cri-tools
	# busybox's httpd, run from /usr/sbin/nginx (a link to busybox) as
	# argv[0] httpd: critest's HostPID case finds it with `pidof nginx`
	# and reads its pid from /var/run/nginx.pid
	local web='echo $$ >/var/run/nginx.pid; echo httpd: serving /www on port $0; exec -a httpd /usr/sbin/nginx -f -v -p $0 -h /www'
	# the pod sandbox: our pause, alone in its image
	cri_crane append --oci-empty-base -f "$CRI_DIR/img/pause.tar" -t "$CRI_REG/moonshim/pause:1" &&
		cri_crane mutate "$CRI_REG/moonshim/pause:1" --set-platform linux/amd64 \
			--entrypoint /pause -u 65535:65535 -t "$CRI_REG/moonshim/pause:1" || return 1
	# critest's "same image from different registries" (registry.k8s.io and
	# k8s.gcr.io both reach pause here): another image than the sandbox's,
	# so removing it leaves the sandbox image alone
	cri_image pause:3.9 --append "$(cri_file_layer pause-3.9)" --entrypoint /bin/sleep --cmd infinity || return 1
	cri_image $e2e/busybox:1.29-2 || return 1
	cri_image $e2e/nonewprivs:1.3 --append "$CRI_DIR/img/nnp.tar" --entrypoint /nnp || return 1
	cri_image $e2e/nginx:1.14-2 --entrypoint /bin/sh --cmd="-c,$web,80" --exposed-ports 80/tcp || return 1
	cri_image $e2e/httpd:2.4.39-4 --entrypoint /bin/sh --cmd="-c,$web,80" --exposed-ports 80/tcp || return 1
	cri_image $cri/hostnet-nginx-amd64:latest --entrypoint /bin/sh --cmd="-c,$web,12003" || return 1
	local n
	for n in test-image-1 test-image-2 test-image-3 test-image-latest; do
		cri_image $cri/$n:latest --append "$(cri_file_layer $n)" || return 1
	done
	cri_image $cri/test-image-tags:1 --append "$(cri_file_layer same-image)" &&
		cri_tag $cri/test-image-tags:1 2 && cri_tag $cri/test-image-tags:1 3 || return 1
	cri_image $cri/test-image-tag:test --append "$(cri_file_layer test-image-tag)" &&
		cri_tag $cri/test-image-tag:test all || return 1
	cri_image $cri/test-image-user-uid:latest -u 1002 &&
		cri_image $cri/test-image-user-username:latest -u www-data &&
		cri_image $cri/test-image-user-uid-group:latest -u 1003:1004 &&
		cri_image $cri/test-image-user-username-group:latest -u www-data:1004 &&
		cri_image $cri/test-image-predefined-group:latest -u 1000
}

# ---------------------------------------------------------------- containerd

cri_hosts() { # host: a hosts.toml sending every pull for it to the registry
	mkdir -p "$CRI_DIR/certs.d/$1"
	printf 'server = "http://%s"\n' "$CRI_REG" >"$CRI_DIR/certs.d/$1/hosts.toml"
}

# cri_cni: a bridge network for pods (its own bridge and subnet, no NAT, no
# default route in the pod: the host and the pod reach each other, nothing
# else is reached).
cri_cni() {
	CRI_BRIDGE=mscri$(($$ % 100000))
	local net=$(($$ % 200 + 20))
	CRI_SUBNET=10.231.$net.0/24
	mkdir -p "$CRI_DIR/cni/net.d" "$CRI_DIR/cni/ipam"
	cat >"$CRI_DIR/cni/net.d/10-moonshim.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "moonshim-cri",
 "plugins": [
  {"type": "bridge", "bridge": "$CRI_BRIDGE", "isGateway": true, "ipMasq": false,
   "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$CRI_DIR/cni/ipam",
            "ranges": [[{"subnet": "$CRI_SUBNET"}]]}},
  {"type": "loopback"}
 ]}
EOF
}

# cri_no_sys_resource: true when this process lacks CAP_SYS_RESOURCE (24).
cri_no_sys_resource() {
	local eff
	eff=$(awk '/^CapEff:/ {print $2}' /proc/self/status)
	(((0x$eff >> 24 & 1) == 0))
}

cri_config() {
	cat >"$CRI_DIR/config.toml" <<EOF
version = 3
root = "$CRI_DIR/root"
state = "$CRI_DIR/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$CRI_SOCK"
[ttrpc]
  address = "$CRI_SOCK.ttrpc"
[debug]
  level = "${CRI_LOG_LEVEL:-info}"

[plugins.'io.containerd.internal.v1.opt']
  path = "$CRI_DIR/opt"
[plugins.'io.containerd.nri.v1.nri']
  socket_path = "$CRI_DIR/nri.sock"
[plugins.'io.containerd.snapshotter.v1.overlayfs']
  root_path = "$CRI_DIR/root/overlayfs"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '$CRI_SANDBOX_IMAGE'
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = '$CRI_DIR/certs.d'

[plugins.'io.containerd.cri.v1.runtime']
  netns_mounts_under_state_dir = true
  # this machine's root has no CAP_SYS_RESOURCE, so no process may lower an
  # oom_score_adj below its floor (the pause container's -998 fails with
  # EACCES in any runtime): containerd keeps scores at or above its own
  restrict_oom_score_adj = ${CRI_RESTRICT_OOM:-$(cri_no_sys_resource && echo true || echo false)}
  disable_apparmor = true
  drain_exec_sync_io_timeout = '${CRI_DRAIN_TIMEOUT:-0s}'
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['$CRI_CNI_BIN']
    conf_dir = '$CRI_DIR/cni/net.d'
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      runtime_path = '$CRI_CD_BIN/containerd-shim-runc-v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = '$CRI_RUNC'
        Root = '$CRI_DIR/runc'
        SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.moon]
      runtime_type = 'io.containerd.moon.v2'
      runtime_path = '$CRI_DIR/bin/containerd-shim-moon-v2'
      pod_annotations = ['io.moonshim.*']
      container_annotations = ['io.moonshim.*']

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
  stream_server_port = '0'
EOF
}

# cri_start: deps, temp dir, registry and images, containerd; returns once
# the CRI answers with its runtime ready.
cri_start() {
	cri_deps || { echo "cri: the pinned Go programs could not be built"; return 1; }
	[ -x "$CRI_SHIM" ] || { echo "cri: no shim at $CRI_SHIM (make all)"; return 1; }
	CRI_DIR=$(mktemp -d /tmp/moonshim-cri.XXXXXX)
	CRI_SOCK=$CRI_DIR/c.sock
	mkdir -p "$CRI_DIR"/{bin,root,state,runc,registry,img,opt,logs}
	# the shim decides its mode by the name it is run as
	ln -s "$CRI_SHIM" "$CRI_DIR/bin/containerd-shim-moon-v2"
	: >"$CRI_DIR/crictl.yaml" # (else crictl warns of a missing /etc/crictl.yaml)
	trap cri_cleanup EXIT
	trap 'exit 130' INT TERM
	cri_registry_start || return 1
	cri_images || { echo "cri: image build failed; its log:"; tail -n 20 "$CRI_DIR/images.log"; return 1; }
	local h
	for h in registry.k8s.io gcr.io k8s.gcr.io; do cri_hosts $h; done
	cri_cni
	cri_config
	CRI_FWD_WAS=$(cat /proc/sys/net/ipv4/ip_forward)
	"$CRI_CD_BIN/containerd" --config "$CRI_DIR/config.toml" \
		</dev/null >>"$CRI_DIR/containerd.log" 2>&1 &
	CRI_PID=$!
	local i
	for ((i = 0; i < CRI_START_TRIES; i++)); do
		cri_crictl info 2>/dev/null | grep -q '"RuntimeReady"' && return 0
		kill -0 "$CRI_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "containerd's CRI did not answer on $CRI_SOCK; its log:"
	tail -n 30 "$CRI_DIR/containerd.log" | sed 's/^/    /'
	return 1
}

# cri_crictl ARGS...: crictl against our containerd.
cri_crictl() {
	timeout -k 5 "$CRI_TIMEOUT" "$CRICTL" --config "$CRI_DIR/crictl.yaml" --runtime-endpoint "unix://$CRI_SOCK" \
		--image-endpoint "unix://$CRI_SOCK" --timeout "${CRI_TIMEOUT}s" "$@"
}

# ---------------------------------------------------------------- what is left

# cri_shim_pids: shims serving our containerd (argv: -address <our socket>).
cri_shim_pids() {
	local p args
	for p in /proc/[0-9]*; do
		args=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
		case $args in *containerd-shim*"-address $CRI_SOCK "*) echo "${p#/proc/}" ;; esac
	done
	return 0
}

# cri_cgroup_dirs ID...: the cgroup dirs named by a pod or container id on
# every hierarchy (cgroupfs driver: <parent>/<id>).
cri_cgroup_dirs() {
	local id
	for id in "$@"; do
		find /sys/fs/cgroup -maxdepth 4 -type d -name "$id" 2>/dev/null
	done
	return 0
}

# cri_leftovers ID...: shims, mounts, cgroups, shim sockets left behind by
# the given pod and container ids (one line each).
cri_leftovers() {
	local p id d
	for p in $(cri_shim_pids); do
		echo "shim left: $p $(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline")"
	done
	for d in $(cri_cgroup_dirs "$@"); do echo "cgroup left: $d"; done
	for id in "$@"; do
		awk -v id="$id" 'index($5, id) {print "mount left: " $5}' /proc/self/mountinfo
		d=$(printf '%s' "$CRI_SOCK/$CRI_NS/$id" | sha256sum | awk '{print "/run/containerd/s/" $1}')
		[ -e "$d" ] && echo "shim socket left: $d"
	done
	return 0
}

# ---------------------------------------------------------------- cleanup

cri_cleanup() {
	trap - EXIT
	local id i d m
	if [ -n "$CRI_PID" ] && kill -0 "$CRI_PID" 2>/dev/null; then
		for id in $(CRI_TIMEOUT=10 cri_crictl pods -q 2>/dev/null); do
			CRI_TIMEOUT=20 cri_crictl stopp "$id" >/dev/null 2>&1
			CRI_TIMEOUT=20 cri_crictl rmp -f "$id" >/dev/null 2>&1
		done
		kill "$CRI_PID" 2>/dev/null
		for ((i = 0; i < 100; i++)); do
			kill -0 "$CRI_PID" 2>/dev/null || break
			sleep 0.05
		done
		kill -9 "$CRI_PID" 2>/dev/null
		wait "$CRI_PID" 2>/dev/null
	fi
	[ -n "$CRI_REG_PID" ] && { kill "$CRI_REG_PID" 2>/dev/null; wait "$CRI_REG_PID" 2>/dev/null; }
	[ -n "$CRI_DIR" ] || return 0
	for i in $(cri_shim_pids); do kill -9 "$i" 2>/dev/null; done
	# runc's state of anything the runc shim left
	for d in "$CRI_DIR"/runc/"$CRI_NS"/*; do
		[ -e "$d" ] && timeout 10 "$CRI_RUNC" --root "$CRI_DIR/runc/$CRI_NS" delete -f "${d##*/}" >/dev/null 2>&1
	done
	awk -v d="$CRI_DIR" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null; done
	for d in /sys/fs/cgroup/*"$CRI_CGPARENT" /sys/fs/cgroup/*/*"$CRI_CGPARENT"; do
		[ -d "$d" ] && rmdir "$d" 2>/dev/null
	done
	[ -n "$CRI_BRIDGE" ] && ip link del "$CRI_BRIDGE" 2>/dev/null
	[ -n "$CRI_FWD_WAS" ] && echo "$CRI_FWD_WAS" >/proc/sys/net/ipv4/ip_forward
	if [ -n "${CRI_KEEP:-}" ]; then echo "kept $CRI_DIR"; else rm -rf "$CRI_DIR"; fi
}
