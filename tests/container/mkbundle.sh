#!/bin/bash
# mkbundle.sh DIR [--userns] [-- ARGS...] — an OCI bundle in DIR: a busybox-static
# rootfs (every applet as a symlink, /etc/passwd and /etc/group with root,
# nobody and a "moon" user 1000) and the config.json `runc spec` writes, with
# terminal off and process.args set to ARGS (default: sh). --userns writes
# runc's rootless variant (a user namespace mapping 0 to the caller's uid),
# then maps 65536 ids from 100000 so non-root users exist inside.
# Used by the container tests, the demo and the benchmarks.
set -euo pipefail
dir=$1; shift
userns=0
if [ "${1:-}" = --userns ]; then userns=1; shift; fi
[ "${1:-}" = -- ] && shift
args=("$@"); [ ${#args[@]} -gt 0 ] || args=(sh)

mkdir -p "$dir/rootfs"/{bin,etc,proc,sys,dev,tmp,root,home/moon}
cp /bin/busybox "$dir/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do
	[ -e "$dir/rootfs/bin/$a" ] || ln -s busybox "$dir/rootfs/bin/$a"
done
chmod 1777 "$dir/rootfs/tmp"
cat >"$dir/rootfs/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
moon:x:1000:1000:moon:/home/moon:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat >"$dir/rootfs/etc/group" <<'G'
root:x:0:
moon:x:1000:
nogroup:x:65534:
G
echo "nameserver 127.0.0.1" >"$dir/rootfs/etc/resolv.conf"

rm -f "$dir/config.json"
if [ $userns = 1 ]; then
	(cd "$dir" && runc spec --rootless)
	# runc's rootless spec maps only the caller; give it a real range and
	# the network namespace of a normal container.
	jq '.linux.uidMappings = [{"containerID":0,"hostID":100000,"size":65536}]
	  | .linux.gidMappings = [{"containerID":0,"hostID":100000,"size":65536}]
	  | .linux.namespaces += [{"type":"network"}]' "$dir/config.json" >"$dir/config.json.new"
	mv "$dir/config.json.new" "$dir/config.json"
	chown -R 100000:100000 "$dir/rootfs"
else
	(cd "$dir" && runc spec)
fi
argv=$(/usr/bin/python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "${args[@]}")
jq --argjson argv "$argv" '.process.terminal = false | .process.args = $argv' \
	<"$dir/config.json" >"$dir/config.json.new"
mv "$dir/config.json.new" "$dir/config.json"
